//! Admin operations on registered tables and shares (Unity's `/tables` and `/shares`): every
//! share change is turned into the same [`Change`]s a policy file produces and applied in one
//! transaction.

use super::{Service, ServiceError};
use crate::catalog::plan::{self, Change, Scope};
use crate::catalog::{
    CatalogState, DeclaredState, Origin, RegisteredTable, SchemaDecl, ShareDecl, TableDecl,
};
use crate::domain::partition_filter::{Condition, Entry, Op, PartitionSpec};
use crate::protocol::admin as wire;
use crate::storage::location::TableLocation;

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidParameter(msg.into())
}

/// A Unity name part: letters, digits and underscores.
fn check_part(kind: &str, name: &str) -> Result<(), ServiceError> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(format!(
            "invalid {kind} name '{name}': use letters, digits, '_' and '-'"
        )));
    }
    Ok(())
}

fn table_info(t: &RegisteredTable) -> wire::TableInfo {
    let mut parts = t.full_name.splitn(3, '.');
    let catalog = parts.next().unwrap_or_default().to_owned();
    let schema = parts.next().unwrap_or_default().to_owned();
    let name = parts.next().unwrap_or_default().to_owned();
    wire::TableInfo {
        name,
        catalog_name: catalog,
        schema_name: schema,
        full_name: t.full_name.clone(),
        table_type: "EXTERNAL".to_owned(),
        data_source_format: "DELTA".to_owned(),
        storage_location: t.location.clone(),
        comment: t.comment.clone(),
        created_at: t.created_at_ms,
        created_by: t.created_by.clone(),
    }
}

/// The stored partition filter (JSON of a [`PartitionSpec`]) as Unity partitions.
pub(crate) fn wire_partitions(json: Option<&str>) -> Option<Vec<wire::Partition>> {
    let spec: PartitionSpec = serde_json::from_str(json?).ok()?;
    Some(
        spec.entries
            .into_iter()
            .map(|e| wire::Partition {
                values: e
                    .values
                    .into_iter()
                    .map(|c| wire::PartitionValue {
                        name: c.name,
                        op: match c.op {
                            Op::Equal => "EQUAL",
                            Op::Like => "LIKE",
                        }
                        .to_owned(),
                        value: c.value,
                        recipient_property_key: c.recipient_property_key,
                    })
                    .collect(),
            })
            .collect(),
    )
}

/// Unity partitions as a stored partition filter; an empty list clears the filter.
fn partition_filter(parts: &[wire::Partition]) -> Result<Option<String>, ServiceError> {
    if parts.is_empty() {
        return Ok(None);
    }
    let mut entries = Vec::with_capacity(parts.len());
    for p in parts {
        let mut values = Vec::with_capacity(p.values.len());
        for v in &p.values {
            let op = match v.op.to_ascii_uppercase().as_str() {
                "EQUAL" => Op::Equal,
                "LIKE" => Op::Like,
                other => {
                    return Err(bad(format!(
                        "partition op '{other}' on '{}' is not supported; accepted: EQUAL, LIKE",
                        v.name
                    )));
                }
            };
            values.push(Condition {
                name: v.name.clone(),
                op,
                value: v.value.clone(),
                recipient_property_key: v.recipient_property_key.clone(),
            });
        }
        entries.push(Entry { values });
    }
    let spec = PartitionSpec { entries };
    spec.validate(None).map_err(bad)?;
    serde_json::to_string(&spec)
        .map(Some)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

fn object_of(share: &str, schema: &str, t: &TableDecl) -> wire::SharedDataObject {
    wire::SharedDataObject {
        name: t
            .source_name
            .clone()
            .unwrap_or_else(|| format!("{share}.{schema}.{}", t.name)),
        data_object_type: Some("TABLE".to_owned()),
        shared_as: Some(format!("{schema}.{}", t.name)),
        history_data_sharing_status: Some(
            if t.history_shared {
                "ENABLED"
            } else {
                "DISABLED"
            }
            .to_owned(),
        ),
        start_version: Some(t.start_version),
        cdf_enabled: Some(t.history_shared),
        partitions: wire_partitions(t.partition_filter.as_deref()),
        status: Some("ACTIVE".to_owned()),
        comment: None,
    }
}

fn share_info(state: &CatalogState, s: &ShareDecl, with_objects: bool) -> wire::ShareInfo {
    wire::ShareInfo {
        name: s.name.clone(),
        comment: s.comment.clone(),
        owner: state.origin(&s.name).map(|o| o.as_str().to_owned()),
        url_ttl_seconds: s.url_ttl_seconds,
        objects: if with_objects {
            s.schemas
                .iter()
                .flat_map(|c| c.tables.iter().map(|t| object_of(&s.name, &c.name, t)))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Applies the fields a request sets on a data object.
fn set_fields(t: &mut TableDecl, o: &wire::SharedDataObject) -> Result<(), ServiceError> {
    if let Some(status) = &o.history_data_sharing_status {
        t.history_shared = match status.to_ascii_uppercase().as_str() {
            "ENABLED" => true,
            "DISABLED" => false,
            other => {
                return Err(bad(format!(
                    "history_data_sharing_status '{other}' is not supported; accepted: ENABLED, \
                     DISABLED"
                )));
            }
        };
    }
    if o.cdf_enabled == Some(true) {
        t.history_shared = true;
    }
    if let Some(v) = o.start_version {
        if v < 0 {
            return Err(bad("start_version cannot be negative"));
        }
        t.start_version = v;
    }
    if let Some(parts) = &o.partitions {
        t.partition_filter = partition_filter(parts)?;
    }
    Ok(())
}

/// `schema.table` from `shared_as`, or the last two parts of the object's name.
fn alias(o: &wire::SharedDataObject) -> Result<(String, String), ServiceError> {
    let source = o.shared_as.clone().unwrap_or_else(|| {
        let parts: Vec<&str> = o.name.split('.').collect();
        parts[parts.len().saturating_sub(2)..].join(".")
    });
    match source.split('.').collect::<Vec<_>>()[..] {
        [schema, table] if !schema.is_empty() && !table.is_empty() => {
            check_part("schema", schema)?;
            check_part("table", table)?;
            Ok((schema.to_owned(), table.to_owned()))
        }
        _ => Err(bad(format!(
            "shared_as '{source}' must be '<schema>.<table>'"
        ))),
    }
}

/// Finds a data object by `shared_as`, or by its name (registered or `share.schema.table`)
/// when that is unambiguous.
fn find<'a>(
    share: &'a mut ShareDecl,
    o: &wire::SharedDataObject,
) -> Result<Option<(&'a mut SchemaDecl, usize)>, ServiceError> {
    let share_name = share.name.clone();
    let matches = |schema: &SchemaDecl, t: &TableDecl| {
        let alias = format!("{}.{}", schema.name, t.name);
        match &o.shared_as {
            Some(w) => w.eq_ignore_ascii_case(&alias),
            None => {
                t.source_name
                    .as_ref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&o.name))
                    || format!("{share_name}.{alias}").eq_ignore_ascii_case(&o.name)
            }
        }
    };
    let hits: usize = share
        .schemas
        .iter()
        .map(|c| c.tables.iter().filter(|t| matches(c, t)).count())
        .sum();
    if hits > 1 {
        return Err(bad(format!(
            "'{}' is shared more than once in share '{share_name}'; name the object with \
             shared_as",
            o.name
        )));
    }
    for schema in &mut share.schemas {
        if let Some(i) = schema.tables.iter().position(|t| matches(schema, t)) {
            return Ok(Some((schema, i)));
        }
    }
    Ok(None)
}

impl Service {
    /// The catalog, recording changes as made by `actor` (`admin:<name>`, `cli:<user>`).
    pub(crate) fn admin_catalog(&self, actor: &str) -> crate::catalog::DynCatalog {
        self.inner.catalog.as_actor(actor)
    }

    /// `POST /tables`: registers an external Delta table after checking it can be read.
    pub async fn admin_create_table(
        &self,
        admin: &str,
        req: &wire::CreateTable,
    ) -> Result<wire::TableInfo, ServiceError> {
        check_part("catalog", &req.catalog_name)?;
        check_part("schema", &req.schema_name)?;
        check_part("table", &req.name)?;
        if req
            .table_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("EXTERNAL"))
        {
            return Err(bad(
                "only table_type EXTERNAL is supported (tables stay where they are)",
            ));
        }
        if req
            .data_source_format
            .as_deref()
            .is_some_and(|f| !f.eq_ignore_ascii_case("DELTA"))
        {
            return Err(bad("only data_source_format DELTA is supported"));
        }
        let raw = req.storage_location.trim();
        if !raw.contains("://") && !raw.starts_with('/') {
            return Err(bad(format!(
                "storage_location '{raw}' must be a URL (file:///..., s3://...) or an absolute path"
            )));
        }
        let location = TableLocation::parse(raw, std::path::Path::new("/"))
            .map_err(|e| bad(format!("storage_location: {e}")))?;
        let url = location.url().clone();
        self.blocking(move |reader| {
            reader.latest(&url).map(|_| ()).map_err(|e| {
                bad(format!(
                    "storage_location '{url}' is not a readable Delta table: {e}"
                ))
            })
        })
        .await?;
        let table = RegisteredTable {
            full_name: format!("{}.{}.{}", req.catalog_name, req.schema_name, req.name),
            location: location.url().to_string(),
            comment: req.comment.clone(),
            created_at_ms: self.now_ms(),
            created_by: admin.to_owned(),
        };
        self.admin_catalog(admin).register_table(&table).await?;
        Ok(table_info(&table))
    }

    /// `GET /tables/{full_name}`.
    pub async fn admin_get_table(&self, full_name: &str) -> Result<wire::TableInfo, ServiceError> {
        self.inner
            .catalog
            .registered_table(full_name)
            .await?
            .map(|t| table_info(&t))
            .ok_or_else(|| ServiceError::NotFound(format!("Table '{full_name}' does not exist.")))
    }

    /// `GET /tables?catalog_name=&schema_name=`.
    pub async fn admin_list_tables(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
    ) -> Result<wire::ListTables, ServiceError> {
        let prefix = match (catalog, schema) {
            (Some(c), Some(s)) => format!("{c}.{s}."),
            (Some(c), None) => format!("{c}."),
            _ => String::new(),
        };
        Ok(wire::ListTables {
            tables: self
                .inner
                .catalog
                .list_registered_tables(&prefix)
                .await?
                .iter()
                .map(table_info)
                .collect(),
        })
    }

    /// `DELETE /tables/{full_name}` (shares keep the tables they already hold).
    pub async fn admin_delete_table(
        &self,
        admin: &str,
        full_name: &str,
    ) -> Result<(), ServiceError> {
        if self
            .admin_catalog(admin)
            .delete_registered_table(full_name)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "Table '{full_name}' does not exist."
            )))
        }
    }

    /// `GET /shares`.
    pub async fn admin_list_shares(&self) -> Result<wire::ListShares, ServiceError> {
        let state = self.inner.catalog.catalog_state().await?;
        Ok(wire::ListShares {
            shares: state
                .shares
                .iter()
                .map(|s| share_info(&state, s, false))
                .collect(),
        })
    }

    /// `GET /shares/{name}` (objects are always included).
    pub async fn admin_get_share(&self, name: &str) -> Result<wire::ShareInfo, ServiceError> {
        let state = self.inner.catalog.catalog_state().await?;
        let share = state
            .share(name)
            .ok_or_else(|| ServiceError::NotFound(format!("Share '{name}' does not exist.")))?;
        Ok(share_info(&state, share, true))
    }

    /// `POST /shares`.
    pub async fn admin_create_share(
        &self,
        admin: &str,
        req: &wire::CreateShare,
    ) -> Result<wire::ShareInfo, ServiceError> {
        check_part("share", &req.name)?;
        if req.storage_root.is_some() {
            return Err(bad(
                "storage_root is not supported: shared tables stay where they are",
            ));
        }
        self.admin_catalog(admin)
            .apply_changes(
                &[Change::CreateShare {
                    name: req.name.clone(),
                    comment: req.comment.clone(),
                    url_ttl_seconds: check_ttl(req.url_ttl_seconds)?,
                }],
                Origin::Api,
                self.now_ms(),
            )
            .await
            .map_err(|e| match e {
                crate::catalog::CatalogError::Invalid(m) if m.contains("already exists") => {
                    ServiceError::Conflict(format!("Share '{}' already exists.", req.name))
                }
                other => other.into(),
            })?;
        self.admin_get_share(&req.name).await
    }

    /// `DELETE /shares/{name}`: the share, its tables and its grants.
    pub async fn admin_delete_share(&self, admin: &str, name: &str) -> Result<(), ServiceError> {
        let state = self.inner.catalog.catalog_state().await?;
        let share = state
            .share(name)
            .ok_or_else(|| ServiceError::NotFound(format!("Share '{name}' does not exist.")))?;
        self.not_config_owned(&state, &share.name)?;
        self.admin_catalog(admin)
            .apply_changes(
                &[Change::DeleteShare {
                    name: share.name.clone(),
                    tables: share.schemas.iter().map(|c| c.tables.len()).sum(),
                }],
                Origin::Api,
                self.now_ms(),
            )
            .await?;
        Ok(())
    }

    fn not_config_owned(&self, state: &CatalogState, share: &str) -> Result<(), ServiceError> {
        if state.origin(share) == Some(Origin::Config) {
            return Err(bad(format!(
                "share '{share}' is declared in the server's config file, which owns it: change \
                 it there (or remove it from the file to manage it through this API)"
            )));
        }
        Ok(())
    }

    /// `PATCH /shares/{name}`: comment and data object updates (`ADD`, `UPDATE`, `REMOVE`),
    /// all applied in one transaction.
    pub async fn admin_update_share(
        &self,
        admin: &str,
        name: &str,
        req: &wire::UpdateShare,
    ) -> Result<wire::ShareInfo, ServiceError> {
        if req
            .new_name
            .as_deref()
            .is_some_and(|n| !n.eq_ignore_ascii_case(name))
        {
            return Err(bad("renaming a share is not supported"));
        }
        if req.storage_root.is_some() {
            return Err(bad("storage_root is not supported"));
        }
        let state = self.inner.catalog.catalog_state().await?;
        let current = state
            .share(name)
            .ok_or_else(|| ServiceError::NotFound(format!("Share '{name}' does not exist.")))?
            .clone();
        self.not_config_owned(&state, &current.name)?;
        let mut working = current.clone();
        if let Some(c) = &req.comment {
            working.comment = Some(c.clone()).filter(|c| !c.is_empty());
        }
        if let Some(t) = req.url_ttl_seconds {
            working.url_ttl_seconds = if t == 0 { None } else { check_ttl(Some(t))? };
        }
        for u in &req.updates {
            let o = &u.data_object;
            if o.data_object_type
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("TABLE"))
            {
                return Err(bad(format!(
                    "data_object_type '{}' is not supported; accepted: TABLE",
                    o.data_object_type.as_deref().unwrap_or_default()
                )));
            }
            match u.action.to_ascii_uppercase().as_str() {
                "ADD" => self.add_object(&mut working, o).await?,
                "UPDATE" => {
                    let (schema, i) =
                        find(&mut working, o)?.ok_or_else(|| missing_object(name, o))?;
                    set_fields(&mut schema.tables[i], o)?;
                }
                "REMOVE" => {
                    let (schema, i) =
                        find(&mut working, o)?.ok_or_else(|| missing_object(name, o))?;
                    schema.tables.remove(i);
                    working.schemas.retain(|s| !s.tables.is_empty());
                }
                other => {
                    return Err(bad(format!(
                        "update action '{other}' is not supported; accepted: ADD, UPDATE, REMOVE"
                    )));
                }
            }
        }
        let only = CatalogState {
            shares: vec![current],
            ..CatalogState::default()
        };
        let desired = DeclaredState {
            shares: Some(vec![working]),
            recipients: None,
        };
        let (changes, _) = plan::diff(&only, &desired, Scope::Policy).map_err(bad)?;
        self.check_tables(&changes, true).await?;
        if !changes.is_empty() {
            self.admin_catalog(admin)
                .apply_changes(&changes, Origin::Api, self.now_ms())
                .await?;
        }
        self.admin_get_share(name).await
    }

    async fn add_object(
        &self,
        share: &mut ShareDecl,
        o: &wire::SharedDataObject,
    ) -> Result<(), ServiceError> {
        let registered = self
            .inner
            .catalog
            .registered_table(&o.name)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "Table '{}' does not exist; register it first with POST \
                     /api/2.1/unity-catalog/tables",
                    o.name
                ))
            })?;
        let (schema_name, table_name) = alias(o)?;
        if find(
            share,
            &wire::SharedDataObject {
                shared_as: Some(format!("{schema_name}.{table_name}")),
                ..o.clone()
            },
        )?
        .is_some()
        {
            return Err(ServiceError::Conflict(format!(
                "'{schema_name}.{table_name}' is already shared in share '{}'",
                share.name
            )));
        }
        let mut table = TableDecl {
            name: table_name,
            id: None,
            location: registered.location,
            history_shared: false,
            start_version: 0,
            partition_filter: None,
            source_name: Some(registered.full_name),
        };
        set_fields(&mut table, o)?;
        match share
            .schemas
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(&schema_name))
        {
            Some(s) => s.tables.push(table),
            None => share.schemas.push(SchemaDecl {
                name: schema_name,
                tables: vec![table],
            }),
        }
        Ok(())
    }

    /// Opens the tables that `changes` add or update: partition filters must name partition
    /// columns. Unreadable tables are an error when `strict`, a warning otherwise.
    pub(crate) async fn check_tables(
        &self,
        changes: &[Change],
        strict: bool,
    ) -> Result<Vec<String>, ServiceError> {
        let mut warnings = Vec::new();
        for c in changes {
            let (name, table) = match c {
                Change::AddTable {
                    share,
                    schema,
                    table,
                } => (format!("{share}.{schema}.{}", table.name), table),
                Change::UpdateTable {
                    share,
                    schema,
                    after,
                    ..
                } => (format!("{share}.{schema}.{}", after.name), after),
                _ => continue,
            };
            let url = url::Url::parse(&table.location)
                .map_err(|e| bad(format!("table '{name}': location: {e}")))?;
            let columns = self
                .blocking(move |reader| {
                    let s = reader.latest(&url).map_err(|e| bad(e.to_string()))?;
                    Ok(reader
                        .info(&s)
                        .map_err(|e| bad(e.to_string()))?
                        .metadata
                        .partition_columns
                        .clone())
                })
                .await;
            match (columns, &table.partition_filter) {
                (Ok(cols), Some(json)) => {
                    let spec: PartitionSpec = serde_json::from_str(json)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    spec.validate(Some(&cols))
                        .map_err(|e| bad(format!("table '{name}': {e}")))?;
                }
                (Ok(_), None) => {}
                (Err(e), _) if strict => {
                    return Err(bad(format!("table '{name}' cannot be read: {e}")));
                }
                (Err(e), _) => warnings.push(format!(
                    "table '{name}' cannot be read now ({e}); recipients will get an error \
                     until it can"
                )),
            }
        }
        Ok(warnings)
    }
}

fn check_ttl(t: Option<i64>) -> Result<Option<i64>, ServiceError> {
    if let Some(t) = t {
        crate::domain::model::check_url_ttl(
            "url_ttl_seconds (0 in an update = the server default)",
            t,
        )
        .map_err(bad)?;
    }
    Ok(t)
}

fn missing_object(share: &str, o: &wire::SharedDataObject) -> ServiceError {
    ServiceError::NotFound(format!(
        "Data object '{}' is not in share '{share}'",
        o.shared_as.as_deref().unwrap_or(&o.name)
    ))
}
