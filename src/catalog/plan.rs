//! Policy as code: the difference between a declared state and the catalog, as a list of
//! [`Change`]s that a store applies in one transaction.
//!
//! The diff is pure; [`plan`] reads the catalog and [`apply`] hands the changes to the store.

use std::collections::BTreeMap;
use std::fmt;

use super::state::{
    CatalogState, DeclaredState, GrantDecl, Origin, RecipientDecl, SchemaDecl, ShareDecl, TableDecl,
};
use super::{CatalogError, CatalogStore, Result};

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new, empty share.
    CreateShare {
        /// Name.
        name: String,
        /// Comment.
        comment: Option<String>,
        /// URL lifetime (seconds).
        url_ttl_seconds: Option<i64>,
    },
    /// A share's comment or URL lifetime changes.
    UpdateShare {
        /// Name.
        name: String,
        /// Comment before.
        before: Option<String>,
        /// Comment after.
        after: Option<String>,
        /// URL lifetime before (seconds).
        ttl_before: Option<i64>,
        /// URL lifetime after (seconds).
        ttl_after: Option<i64>,
    },
    /// A share, its schemas, tables and grants go.
    DeleteShare {
        /// Name.
        name: String,
        /// How many tables it holds.
        tables: usize,
    },
    /// A new, empty schema in a share.
    CreateSchema {
        /// Share.
        share: String,
        /// Name.
        name: String,
    },
    /// A schema and its tables go.
    DeleteSchema {
        /// Share.
        share: String,
        /// Name.
        name: String,
        /// How many tables it holds.
        tables: usize,
    },
    /// A table is added to a schema.
    AddTable {
        /// Share.
        share: String,
        /// Schema.
        schema: String,
        /// The table.
        table: TableDecl,
    },
    /// A table's settings change.
    UpdateTable {
        /// Share.
        share: String,
        /// Schema.
        schema: String,
        /// Before.
        before: TableDecl,
        /// After.
        after: TableDecl,
    },
    /// A table leaves its share.
    RemoveTable {
        /// Share.
        share: String,
        /// Schema.
        schema: String,
        /// Alias.
        name: String,
    },
    /// A recipient without a token (the token comes from an activation link or the CLI).
    CreateRecipient(RecipientDecl),
    /// A recipient's comment, properties or IP allow list change (grants are separate).
    UpdateRecipient {
        /// Before.
        before: RecipientDecl,
        /// After.
        after: RecipientDecl,
    },
    /// A recipient and all its tokens are revoked.
    RevokeRecipient {
        /// Name.
        name: String,
    },
    /// A share is granted, or a grant's expiry changes.
    Grant {
        /// Recipient.
        recipient: String,
        /// The grant.
        grant: GrantDecl,
    },
    /// A grant's expiry changes.
    UpdateGrant {
        /// Recipient.
        recipient: String,
        /// Share.
        share: String,
        /// Expiry before (ms).
        before: Option<i64>,
        /// Expiry after (ms).
        after: Option<i64>,
    },
    /// A grant is removed.
    RemoveGrant {
        /// Recipient.
        recipient: String,
        /// Share.
        share: String,
    },
}

impl Change {
    /// Whether the change takes access away or deletes objects (`apply` needs
    /// `--allow-delete` for these).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Self::DeleteShare { .. }
                | Self::DeleteSchema { .. }
                | Self::RemoveTable { .. }
                | Self::RevokeRecipient { .. }
                | Self::RemoveGrant { .. }
        )
    }

    /// `create`, `update` or `delete`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateShare { .. }
            | Self::CreateSchema { .. }
            | Self::AddTable { .. }
            | Self::CreateRecipient(_)
            | Self::Grant { .. } => "create",
            Self::UpdateShare { .. }
            | Self::UpdateTable { .. }
            | Self::UpdateRecipient { .. }
            | Self::UpdateGrant { .. } => "update",
            _ => "delete",
        }
    }

    /// The kind of object (`share`, `schema`, `table`, `recipient`, `grant`).
    pub fn object_type(&self) -> &'static str {
        match self {
            Self::CreateShare { .. } | Self::UpdateShare { .. } | Self::DeleteShare { .. } => {
                "share"
            }
            Self::CreateSchema { .. } | Self::DeleteSchema { .. } => "schema",
            Self::AddTable { .. } | Self::UpdateTable { .. } | Self::RemoveTable { .. } => "table",
            Self::CreateRecipient(_)
            | Self::UpdateRecipient { .. }
            | Self::RevokeRecipient { .. } => "recipient",
            Self::Grant { .. } | Self::UpdateGrant { .. } | Self::RemoveGrant { .. } => "grant",
        }
    }

    /// The object's name (`share.schema.table`, `recipient -> share`, ...).
    pub fn object_name(&self) -> String {
        match self {
            Self::CreateShare { name, .. }
            | Self::UpdateShare { name, .. }
            | Self::DeleteShare { name, .. }
            | Self::RevokeRecipient { name } => name.clone(),
            Self::CreateSchema { share, name } | Self::DeleteSchema { share, name, .. } => {
                format!("{share}.{name}")
            }
            Self::RemoveTable {
                share,
                schema,
                name,
            } => format!("{share}.{schema}.{name}"),
            Self::AddTable {
                share,
                schema,
                table,
            } => format!("{share}.{schema}.{}", table.name),
            Self::UpdateTable {
                share,
                schema,
                after,
                ..
            } => format!("{share}.{schema}.{}", after.name),
            Self::CreateRecipient(r) => r.name.clone(),
            Self::UpdateRecipient { after, .. } => after.name.clone(),
            Self::Grant { recipient, grant } => format!("{recipient} -> {}", grant.share),
            Self::RemoveGrant { recipient, share }
            | Self::UpdateGrant {
                recipient, share, ..
            } => {
                format!("{recipient} -> {share}")
            }
        }
    }

    /// What changes, as `field: before -> after` phrases (empty for creations and deletions).
    pub fn details(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, before: String, after: String| {
            if before != after {
                out.push(format!("{name}: {before} -> {after}"));
            }
        };
        match self {
            Self::UpdateShare {
                before,
                after,
                ttl_before,
                ttl_after,
                ..
            } => {
                field("comment", show_opt(before), show_opt(after));
                let ttl =
                    |t: &Option<i64>| t.map_or_else(|| "(default)".to_owned(), |s| format!("{s}s"));
                field(
                    "preSignedUrlTimeoutSeconds",
                    ttl(ttl_before),
                    ttl(ttl_after),
                );
            }
            Self::UpdateTable { before, after, .. } => {
                field("location", before.location.clone(), after.location.clone());
                field(
                    "historyShared",
                    before.history_shared.to_string(),
                    after.history_shared.to_string(),
                );
                field(
                    "startVersion",
                    before.start_version.to_string(),
                    after.start_version.to_string(),
                );
                field(
                    "partitions",
                    show_opt(&before.partition_filter),
                    show_opt(&after.partition_filter),
                );
                if after.id.is_some() {
                    field("id", show_opt(&before.id), show_opt(&after.id));
                }
            }
            Self::UpdateRecipient { before, after } => {
                field(
                    "comment",
                    show_opt(&before.comment),
                    show_opt(&after.comment),
                );
                field(
                    "properties",
                    show_map(&before.properties),
                    show_map(&after.properties),
                );
                field(
                    "ipAccessList",
                    format!("{:?}", before.ip_access_list),
                    format!("{:?}", after.ip_access_list),
                );
            }
            Self::AddTable { table, .. } => out.push(format!("location: {}", table.location)),
            Self::DeleteShare { tables, .. } | Self::DeleteSchema { tables, .. } => {
                out.push(format!("with {tables} table(s)"));
            }
            Self::Grant { grant, .. } => {
                if let Some(e) = grant.expires_at_ms {
                    out.push(format!("expires: {}", show_ms(e)));
                }
            }
            Self::UpdateGrant { before, after, .. } => {
                let show = |e: &Option<i64>| e.map_or_else(|| "never".to_owned(), show_ms);
                out.push(format!("expires: {} -> {}", show(before), show(after)));
            }
            Self::RevokeRecipient { .. } => out.push("revokes all its tokens".to_owned()),
            _ => {}
        }
        out
    }
}

fn show_opt(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| "(none)".to_owned(), |s| format!("{s:?}"))
}

fn show_map(m: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn show_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |d| d.to_rfc3339())
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind() {
            "create" => '+',
            "update" => '~',
            _ => '-',
        };
        write!(f, "{sign} {} {}", self.object_type(), self.object_name())?;
        let details = self.details();
        if !details.is_empty() {
            write!(f, " ({})", details.join("; "))?;
        }
        Ok(())
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn table_changed(current: &TableDecl, desired: &TableDecl) -> bool {
    current.location != desired.location
        || current.history_shared != desired.history_shared
        || current.start_version != desired.start_version
        || current.partition_filter != desired.partition_filter
        || desired
            .id
            .as_ref()
            .is_some_and(|id| current.id.as_ref() != Some(id))
}

fn diff_schema(share: &str, current: &SchemaDecl, desired: &SchemaDecl, out: &mut Vec<Change>) {
    for dt in &desired.tables {
        match current.tables.iter().find(|t| same(&t.name, &dt.name)) {
            None => out.push(Change::AddTable {
                share: share.to_owned(),
                schema: current.name.clone(),
                table: dt.clone(),
            }),
            Some(ct) if table_changed(ct, dt) => out.push(Change::UpdateTable {
                share: share.to_owned(),
                schema: current.name.clone(),
                before: ct.clone(),
                after: TableDecl {
                    name: ct.name.clone(),
                    id: dt.id.clone().or_else(|| ct.id.clone()),
                    source_name: dt.source_name.clone().or_else(|| ct.source_name.clone()),
                    ..dt.clone()
                },
            }),
            Some(_) => {}
        }
    }
    for ct in &current.tables {
        if !desired.tables.iter().any(|t| same(&t.name, &ct.name)) {
            out.push(Change::RemoveTable {
                share: share.to_owned(),
                schema: current.name.clone(),
                name: ct.name.clone(),
            });
        }
    }
}

fn create_share(d: &ShareDecl, out: &mut Vec<Change>) {
    out.push(Change::CreateShare {
        name: d.name.clone(),
        comment: d.comment.clone(),
        url_ttl_seconds: d.url_ttl_seconds,
    });
    for s in &d.schemas {
        create_schema(&d.name, s, out);
    }
}

fn create_schema(share: &str, s: &SchemaDecl, out: &mut Vec<Change>) {
    out.push(Change::CreateSchema {
        share: share.to_owned(),
        name: s.name.clone(),
    });
    for t in &s.tables {
        out.push(Change::AddTable {
            share: share.to_owned(),
            schema: s.name.clone(),
            table: t.clone(),
        });
    }
}

fn diff_share(current: &ShareDecl, desired: &ShareDecl, out: &mut Vec<Change>) {
    if current.comment != desired.comment || current.url_ttl_seconds != desired.url_ttl_seconds {
        out.push(Change::UpdateShare {
            name: current.name.clone(),
            before: current.comment.clone(),
            after: desired.comment.clone(),
            ttl_before: current.url_ttl_seconds,
            ttl_after: desired.url_ttl_seconds,
        });
    }
    for ds in &desired.schemas {
        match current.schemas.iter().find(|s| same(&s.name, &ds.name)) {
            None => create_schema(&current.name, ds, out),
            Some(cs) => diff_schema(&current.name, cs, ds, out),
        }
    }
    for cs in &current.schemas {
        if !desired.schemas.iter().any(|s| same(&s.name, &cs.name)) {
            // Each table is removed on its own (and recorded), then the empty schema.
            for t in &cs.tables {
                out.push(Change::RemoveTable {
                    share: current.name.clone(),
                    schema: cs.name.clone(),
                    name: t.name.clone(),
                });
            }
            out.push(Change::DeleteSchema {
                share: current.name.clone(),
                name: cs.name.clone(),
                tables: cs.tables.len(),
            });
        }
    }
}

fn diff_recipient(current: &RecipientDecl, desired: &RecipientDecl, out: &mut Vec<Change>) {
    if current.comment != desired.comment
        || current.properties != desired.properties
        || current.ip_access_list != desired.ip_access_list
    {
        out.push(Change::UpdateRecipient {
            before: RecipientDecl {
                grants: Vec::new(),
                ..current.clone()
            },
            after: RecipientDecl {
                name: current.name.clone(),
                grants: Vec::new(),
                ..desired.clone()
            },
        });
    }
    for g in &desired.grants {
        match current.grants.iter().find(|c| same(&c.share, &g.share)) {
            None => out.push(Change::Grant {
                recipient: current.name.clone(),
                grant: g.clone(),
            }),
            Some(c) if c.expires_at_ms != g.expires_at_ms => out.push(Change::UpdateGrant {
                recipient: current.name.clone(),
                share: c.share.clone(),
                before: c.expires_at_ms,
                after: g.expires_at_ms,
            }),
            Some(_) => {}
        }
    }
    for c in &current.grants {
        if !desired.grants.iter().any(|g| same(&g.share, &c.share)) {
            out.push(Change::RemoveGrant {
                recipient: current.name.clone(),
                share: c.share.clone(),
            });
        }
    }
}

/// Which shares a declared share list governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A policy file (`lakeshare plan/apply`): every share except those the server's config
    /// file owns, which are reconciled from that file at start and left alone here.
    Policy,
    /// The server's config file at start: creates and updates the declared shares and deletes
    /// only config-owned shares it no longer declares.
    ConfigOwned,
}

/// The changes that turn `current` into `desired` (creations first, deletions last), and
/// warnings about declarations that are ignored. Fails, naming the problem, when the declared
/// state is inconsistent.
pub fn diff(
    current: &CatalogState,
    desired: &DeclaredState,
    scope: Scope,
) -> std::result::Result<(Vec<Change>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let config_owned = |name: &str| current.origin(name) == Some(Origin::Config);
    if let Some(shares) = &desired.shares {
        for d in shares {
            match current.share(&d.name) {
                None => create_share(d, &mut out),
                Some(c) if scope == Scope::Policy && config_owned(&c.name) => {
                    let mut ignored = Vec::new();
                    diff_share(c, d, &mut ignored);
                    if !ignored.is_empty() {
                        warnings.push(format!(
                            "share '{}' is declared in the server's config file, which owns it; its {} difference(s) here are ignored",
                            c.name,
                            ignored.len()
                        ));
                    }
                }
                Some(c) => diff_share(c, d, &mut out),
            }
        }
        for c in &current.shares {
            let deletable = match scope {
                Scope::Policy => !config_owned(&c.name),
                Scope::ConfigOwned => config_owned(&c.name),
            };
            if deletable && !shares.iter().any(|d| same(&d.name, &c.name)) {
                out.push(Change::DeleteShare {
                    name: c.name.clone(),
                    tables: c.schemas.iter().map(|s| s.tables.len()).sum(),
                });
            }
        }
    }
    if let Some(recipients) = &desired.recipients {
        let share_exists = |name: &str| match &desired.shares {
            Some(shares) => shares.iter().any(|s| same(&s.name, name)) || config_owned(name),
            None => current.share(name).is_some(),
        };
        for d in recipients {
            if let Some(g) = d.grants.iter().find(|g| !share_exists(&g.share)) {
                return Err(format!(
                    "recipient '{}' is granted share '{}', which is not declared and does not \
                     exist",
                    d.name, g.share
                ));
            }
            if current.revoked_recipients.iter().any(|n| same(n, &d.name))
                && !current.recipients.iter().any(|c| same(&c.name, &d.name))
            {
                return Err(format!(
                    "recipient '{}' was revoked; names of revoked recipients are not reused, \
                     declare it under a new name",
                    d.name
                ));
            }
            match current.recipients.iter().find(|c| same(&c.name, &d.name)) {
                None => {
                    out.push(Change::CreateRecipient(RecipientDecl {
                        grants: Vec::new(),
                        ..d.clone()
                    }));
                    for g in &d.grants {
                        out.push(Change::Grant {
                            recipient: d.name.clone(),
                            grant: g.clone(),
                        });
                    }
                }
                Some(c) => diff_recipient(c, d, &mut out),
            }
        }
        for c in &current.recipients {
            if !recipients.iter().any(|d| same(&d.name, &c.name)) {
                out.push(Change::RevokeRecipient {
                    name: c.name.clone(),
                });
            }
        }
    }
    // Creations and updates first (in declaration order), then removals from the most
    // specific object outwards, so that every change applies to a consistent catalog.
    let rank = |c: &Change| match c {
        Change::RemoveGrant { .. } => 1,
        Change::RevokeRecipient { .. } => 2,
        Change::RemoveTable { .. } => 3,
        Change::DeleteSchema { .. } => 4,
        Change::DeleteShare { .. } => 5,
        _ => 0,
    };
    out.sort_by_key(rank);
    Ok((out, warnings))
}

/// A computed plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The changes, in the order they apply.
    pub changes: Vec<Change>,
    /// Declarations that are ignored, and why.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether applying needs `--allow-delete`.
    pub fn destructive(&self) -> Vec<&Change> {
        self.changes.iter().filter(|c| c.is_destructive()).collect()
    }
}

/// Reads the catalog and computes the changes that make it match `desired`.
pub async fn plan(
    catalog: &dyn CatalogStore,
    desired: &DeclaredState,
    scope: Scope,
) -> Result<Plan> {
    let current = catalog.catalog_state().await?;
    let (changes, warnings) = diff(&current, desired, scope).map_err(CatalogError::Invalid)?;
    Ok(Plan { changes, warnings })
}

/// Makes the config-owned shares match the config file's `shares` (creating, updating and
/// deleting them), as the server does at every start. Shares created through the admin API or
/// `lakeshare apply` are left alone. Replicas starting together may race: a plan that fails
/// because another replica applied it first is recomputed.
pub async fn reconcile_config(
    catalog: &dyn CatalogStore,
    shares: &[ShareDecl],
    now_ms: i64,
) -> Result<Plan> {
    let desired = DeclaredState {
        shares: Some(shares.to_vec()),
        recipients: None,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply(
            catalog,
            &desired,
            Scope::ConfigOwned,
            Origin::Config,
            true,
            now_ms,
        )
        .await
        {
            Err(CatalogError::Invalid(_) | CatalogError::Conflict(_)) if attempt < 3 => {}
            other => return other,
        }
    }
}

/// Computes and applies the plan in one transaction; refuses destructive changes unless
/// `allow_delete`. Returns the applied plan.
pub async fn apply(
    catalog: &dyn CatalogStore,
    desired: &DeclaredState,
    scope: Scope,
    origin: Origin,
    allow_delete: bool,
    now_ms: i64,
) -> Result<Plan> {
    let plan = plan(catalog, desired, scope).await?;
    let destructive = plan.destructive();
    if !allow_delete && !destructive.is_empty() {
        let list: Vec<String> = destructive.iter().map(ToString::to_string).collect();
        return Err(CatalogError::Invalid(format!(
            "refusing {} destructive change(s) without --allow-delete: {}",
            list.len(),
            list.join("; ")
        )));
    }
    if !plan.changes.is_empty() {
        catalog.apply_changes(&plan.changes, origin, now_ms).await?;
    }
    Ok(plan)
}
