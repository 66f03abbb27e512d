//! Lakeshare admin extensions: policy plans and applies (the same YAML as `lakeshare
//! plan/apply`), the "what can recipient R see" preview, and the admin change log.

use super::{Service, ServiceError};
use crate::catalog::plan::{self, Change, Scope};
use crate::catalog::{DeclaredState, Origin};
use crate::domain::model::{Grants, Principal, PrincipalKind};
use crate::domain::policy::authorize_table;
use crate::protocol::admin as wire;

/// A plan as wire changes.
pub fn planned(changes: &[Change]) -> Vec<wire::PlannedChange> {
    changes
        .iter()
        .map(|c| wire::PlannedChange {
            action: c.kind().to_owned(),
            object_type: c.object_type().to_owned(),
            name: c.object_name(),
            details: c.details(),
            destructive: c.is_destructive(),
            summary: c.to_string(),
        })
        .collect()
}

impl Service {
    /// Plans (and with `apply`, applies in one transaction) a declared state. Destructive
    /// changes need `allow_delete`; nothing is applied if any change fails.
    pub async fn admin_policy(
        &self,
        admin: &str,
        declared: &DeclaredState,
        apply: bool,
        allow_delete: bool,
    ) -> Result<wire::PolicyPlan, ServiceError> {
        let plan = plan::plan(self.inner.catalog.as_ref(), declared, Scope::Policy).await?;
        let mut warnings = plan.warnings.clone();
        warnings.extend(self.check_tables(&plan.changes, false).await?);
        let destructive: Vec<String> = plan.destructive().iter().map(|c| c.to_string()).collect();
        if apply && !allow_delete && !destructive.is_empty() {
            return Err(ServiceError::InvalidParameter(format!(
                "refusing {} destructive change(s) without allow_delete (--allow-delete): {}",
                destructive.len(),
                destructive.join("; ")
            )));
        }
        if apply && !plan.changes.is_empty() {
            self.admin_catalog(admin)
                .apply_changes(&plan.changes, Origin::Apply, self.now_ms())
                .await?;
        }
        Ok(wire::PolicyPlan {
            changes: planned(&plan.changes),
            applied: apply,
            warnings,
        })
    }

    /// What recipient `name` can read now: its granted shares, their tables, and the files a
    /// latest-snapshot query would return under its partition filters (paths only, never URLs).
    pub async fn admin_preview(
        &self,
        name: &str,
        max_files: usize,
    ) -> Result<wire::RecipientPreview, ServiceError> {
        let recipient = self
            .inner
            .catalog
            .get_recipient(name)
            .await?
            .filter(|r| r.revoked_at_ms.is_none())
            .ok_or_else(|| ServiceError::NotFound(format!("Recipient '{name}' does not exist.")))?;
        let shares = self
            .inner
            .catalog
            .granted_shares(&recipient.id, self.now_ms())
            .await?;
        let principal = Principal {
            recipient_id: recipient.id.clone(),
            recipient_name: recipient.name.clone(),
            token_prefix: "preview".to_owned(),
            kind: PrincipalKind::Recipient,
            grants: Grants::Shares(shares.clone()),
            properties: recipient.properties.clone(),
        };
        let mut tables = Vec::new();
        for share in &shares {
            for table in self
                .inner
                .catalog
                .list_tables(share, None)
                .await?
                .unwrap_or_default()
            {
                let partitions = super::admin_objects::wire_partitions(
                    table
                        .partition_spec
                        .as_ref()
                        .and_then(|s| serde_json::to_string(s).ok())
                        .as_deref(),
                );
                let mut entry = wire::PreviewTable {
                    share: table.share.clone(),
                    schema: table.schema.clone(),
                    name: table.name.clone(),
                    version: None,
                    total_files: 0,
                    matching_files: 0,
                    files: Vec::new(),
                    partitions,
                    error: None,
                };
                let Ok(auth) = authorize_table(&principal, table) else {
                    continue;
                };
                match self.latest(&auth).await {
                    Err(e) => entry.error = Some(e.to_string()),
                    Ok(resolved) => {
                        let snapshot = resolved.snapshot.clone();
                        let name = auth.table().qualified_name();
                        let files = self
                            .blocking(move |reader| {
                                reader
                                    .files(&snapshot)
                                    .map_err(|e| ServiceError::from_delta(e, &name))
                            })
                            .await;
                        entry.version = Some(resolved.snapshot.version());
                        match files {
                            Err(e) => entry.error = Some(e.to_string()),
                            Ok(files) => {
                                entry.total_files = files.len();
                                let keys = &resolved.info.partition_keys;
                                let visible: Vec<_> = files
                                    .iter()
                                    .filter(|f| auth.admits(&f.partition_values, keys))
                                    .collect();
                                entry.matching_files = visible.len();
                                entry.files = visible
                                    .into_iter()
                                    .take(max_files)
                                    .map(|f| wire::PreviewFile {
                                        path: f.path.clone(),
                                        size: f.size,
                                        partition_values: f.partition_values.clone(),
                                    })
                                    .collect();
                            }
                        }
                    }
                }
                tables.push(entry);
            }
        }
        Ok(wire::RecipientPreview {
            recipient: recipient.name,
            shares,
            tables,
        })
    }

    /// The most recent admin changes, newest first.
    pub async fn admin_changes(&self, limit: usize) -> Result<wire::ChangeLog, ServiceError> {
        Ok(wire::ChangeLog {
            changes: self
                .inner
                .catalog
                .admin_changes(limit.clamp(1, 10_000))
                .await?
                .into_iter()
                .map(|c| wire::ChangeRecord {
                    seq: c.seq,
                    at: c.at_ms,
                    actor: c.actor,
                    action: c.action,
                    target: c.target,
                    details: serde_json::from_str(&c.details).unwrap_or(serde_json::Value::Null),
                })
                .collect(),
        })
    }
}
