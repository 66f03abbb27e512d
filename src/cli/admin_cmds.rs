//! `lakeshare share|table|plan|apply|admin-log` and `lakeshare recipient preview`: admin
//! operations through [`AdminClient`], on the local store or a remote admin API.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use http::Method;
use serde_json::json;

use super::admin_client::{AdminClient, Body, EXT, TargetArgs, UC, encode, print_table};
use crate::protocol::admin as wire;

/// `lakeshare share ...`.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// List shares.
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Show a share and its tables.
    Show {
        /// Share name.
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Create an empty share.
    Create {
        /// Share name.
        name: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Delete a share with its tables and grants.
    Delete {
        /// Share name.
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Add a registered table to a share.
    AddTable {
        /// Share name.
        share: String,
        /// Registered table (`catalog.schema.table`, see `lakeshare table register`).
        table: String,
        #[command(flatten)]
        object: ObjectArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Change a shared table's history, floor or partition filter.
    UpdateTable {
        /// Share name.
        share: String,
        /// Alias in the share (`schema.table`).
        alias: String,
        #[command(flatten)]
        object: ObjectArgs,
        /// Remove the partition filter.
        #[arg(long, conflicts_with = "partitions")]
        no_partitions: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove a table from a share.
    RemoveTable {
        /// Share name.
        share: String,
        /// Alias in the share (`schema.table`).
        alias: String,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// Settings of a shared table.
#[derive(Debug, Clone, clap::Args)]
pub struct ObjectArgs {
    /// Alias recipients see (`schema.table`; default: the table's own schema and name).
    #[arg(long = "as")]
    pub shared_as: Option<String>,
    /// Share history (time travel, streaming, change data feed).
    #[arg(long, overrides_with = "no_history")]
    pub history: bool,
    /// Do not share history.
    #[arg(long)]
    pub no_history: bool,
    /// Lowest version recipients may read.
    #[arg(long)]
    pub start_version: Option<i64>,
    /// Partition filter entry (repeatable; a file qualifies if it matches any): comma-separated
    /// conditions `col=value`, `col~pattern` (SQL LIKE) or `col=@property` (the recipient's
    /// property), e.g. `--partition 'country=@country,year=2024'`.
    #[arg(long = "partition")]
    pub partitions: Vec<String>,
}

/// `lakeshare table ...`.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Register a Delta table by location as `catalog.schema.table`.
    Register {
        /// `catalog.schema.table`.
        name: String,
        /// Table root (URL or absolute path).
        location: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List registered tables (optionally of `catalog` or `catalog.schema`).
    List {
        /// `catalog` or `catalog.schema`.
        prefix: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Show a registered table.
    Show {
        /// `catalog.schema.table`.
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Unregister a table (shares keep the tables they hold).
    Unregister {
        /// `catalog.schema.table`.
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `lakeshare plan|apply FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Policy file: the reference config format plus `recipients` (with their `shares`).
    pub file: PathBuf,
    /// With `plan`: exit with status 2 when there are changes (for CI drift checks).
    #[arg(long)]
    pub exit_code: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Parses `col=value,col~pattern,col=@prop` into one partition entry.
fn partition_entry(text: &str) -> anyhow::Result<wire::Partition> {
    let mut values = Vec::new();
    for cond in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (name, op, rhs) = if let Some((n, v)) = cond.split_once('~') {
            (n, "LIKE", v)
        } else if let Some((n, v)) = cond.split_once('=') {
            (n, "EQUAL", v)
        } else {
            bail!("partition condition '{cond}': use col=value, col~pattern or col=@property");
        };
        let (value, key) = match rhs.strip_prefix('@') {
            Some(p) => (None, Some(p.to_owned())),
            None => (Some(rhs.to_owned()), None),
        };
        values.push(wire::PartitionValue {
            name: name.trim().to_owned(),
            op: op.to_owned(),
            value,
            recipient_property_key: key,
        });
    }
    if values.is_empty() {
        bail!("empty --partition");
    }
    Ok(wire::Partition { values })
}

fn object(name: String, a: &ObjectArgs, clear: bool) -> anyhow::Result<serde_json::Value> {
    let mut o = json!({ "name": name, "data_object_type": "TABLE" });
    if let Some(alias) = &a.shared_as {
        o["shared_as"] = json!(alias);
    }
    if a.history || a.no_history {
        o["history_data_sharing_status"] = json!(if a.history { "ENABLED" } else { "DISABLED" });
    }
    if let Some(v) = a.start_version {
        o["start_version"] = json!(v);
    }
    if clear {
        o["partitions"] = json!([]);
    } else if !a.partitions.is_empty() {
        let parts = a
            .partitions
            .iter()
            .map(|p| partition_entry(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        o["partitions"] = serde_json::to_value(parts)?;
    }
    Ok(o)
}

fn partitions_text(p: Option<&Vec<wire::Partition>>) -> String {
    let Some(p) = p else { return "-".to_owned() };
    p.iter()
        .map(|e| {
            e.values
                .iter()
                .map(|v| {
                    let op = if v.op == "LIKE" { "~" } else { "=" };
                    match (&v.value, &v.recipient_property_key) {
                        (_, Some(k)) => format!("{}{op}@{k}", v.name),
                        (Some(x), None) => format!("{}{op}{x}", v.name),
                        (None, None) => format!("{}{op}NULL", v.name),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn show_share(s: &wire::ShareInfo) {
    println!(
        "share {} (owner: {}){}",
        s.name,
        s.owner.as_deref().unwrap_or("-"),
        s.comment
            .as_deref()
            .map(|c| format!(" - {c}"))
            .unwrap_or_default()
    );
    let rows: Vec<Vec<String>> = s
        .objects
        .iter()
        .map(|o| {
            vec![
                o.shared_as.clone().unwrap_or_default(),
                o.name.clone(),
                o.history_data_sharing_status.clone().unwrap_or_default(),
                o.start_version.map(|v| v.to_string()).unwrap_or_default(),
                partitions_text(o.partitions.as_ref()),
            ]
        })
        .collect();
    print_table(
        &["SHARED AS", "TABLE", "HISTORY", "START", "PARTITIONS"],
        &rows,
    );
}

/// Runs a share subcommand.
pub async fn run_share(cmd: ShareCommand) -> anyhow::Result<()> {
    match cmd {
        ShareCommand::List { target } => {
            let c = AdminClient::connect(&target).await?;
            let list: wire::ListShares = c.call(Method::GET, &format!("{UC}/shares"), None).await?;
            if target.json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .shares
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.owner.clone().unwrap_or_default(),
                        s.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["SHARE", "OWNER", "COMMENT"], &rows);
            Ok(())
        }
        ShareCommand::Show { name, target } => {
            let c = AdminClient::connect(&target).await?;
            let s: wire::ShareInfo = c
                .call(Method::GET, &format!("{UC}/shares/{}", encode(&name)), None)
                .await?;
            if target.json {
                return print_json(&s);
            }
            show_share(&s);
            Ok(())
        }
        ShareCommand::Create {
            name,
            comment,
            target,
        } => {
            let c = AdminClient::connect(&target).await?;
            let s: wire::ShareInfo = c
                .call(
                    Method::POST,
                    &format!("{UC}/shares"),
                    Some(Body::Json(json!({"name": name, "comment": comment}))),
                )
                .await?;
            if target.json {
                return print_json(&s);
            }
            println!("created share {}", s.name);
            Ok(())
        }
        ShareCommand::Delete { name, target } => {
            let c = AdminClient::connect(&target).await?;
            let _: serde_json::Value = c
                .call(
                    Method::DELETE,
                    &format!("{UC}/shares/{}", encode(&name)),
                    None,
                )
                .await?;
            if target.json {
                return print_json(&json!({"deleted": name}));
            }
            println!("deleted share {name} (its tables and grants are gone)");
            Ok(())
        }
        ShareCommand::AddTable {
            share,
            table,
            object: o,
            target,
        } => update(&target, &share, "ADD", object(table, &o, false)?).await,
        ShareCommand::UpdateTable {
            share,
            alias,
            object: o,
            no_partitions,
            target,
        } => {
            let mut obj = object(alias.clone(), &o, no_partitions)?;
            obj["shared_as"] = json!(alias);
            update(&target, &share, "UPDATE", obj).await
        }
        ShareCommand::RemoveTable {
            share,
            alias,
            target,
        } => {
            let obj = json!({"name": alias, "shared_as": alias});
            update(&target, &share, "REMOVE", obj).await
        }
    }
}

async fn update(
    target: &TargetArgs,
    share: &str,
    action: &str,
    obj: serde_json::Value,
) -> anyhow::Result<()> {
    let c = AdminClient::connect(target).await?;
    let s: wire::ShareInfo = c
        .call(
            Method::PATCH,
            &format!("{UC}/shares/{}", encode(share)),
            Some(Body::Json(
                json!({"updates": [{"action": action, "data_object": obj}]}),
            )),
        )
        .await?;
    if target.json {
        return print_json(&s);
    }
    show_share(&s);
    Ok(())
}

fn table_rows(tables: &[wire::TableInfo]) -> Vec<Vec<String>> {
    tables
        .iter()
        .map(|t| {
            vec![
                t.full_name.clone(),
                t.storage_location.clone(),
                t.created_by.clone(),
            ]
        })
        .collect()
}

/// Runs a table subcommand.
pub async fn run_table(cmd: TableCommand) -> anyhow::Result<()> {
    match cmd {
        TableCommand::Register {
            name,
            location,
            comment,
            target,
        } => {
            let parts: Vec<&str> = name.split('.').collect();
            let [catalog, schema, table] = parts[..] else {
                bail!("table name '{name}' must be catalog.schema.table");
            };
            let location = if location.contains("://") {
                location
            } else {
                std::path::Path::new(&location)
                    .canonicalize()
                    .with_context(|| format!("table location {location}"))?
                    .to_string_lossy()
                    .into_owned()
            };
            let c = AdminClient::connect(&target).await?;
            let t: wire::TableInfo = c
                .call(
                    Method::POST,
                    &format!("{UC}/tables"),
                    Some(Body::Json(json!({
                        "name": table, "catalog_name": catalog, "schema_name": schema,
                        "table_type": "EXTERNAL", "data_source_format": "DELTA",
                        "storage_location": location, "comment": comment,
                    }))),
                )
                .await?;
            if target.json {
                return print_json(&t);
            }
            println!("registered {} at {}", t.full_name, t.storage_location);
            Ok(())
        }
        TableCommand::List { prefix, target } => {
            let c = AdminClient::connect(&target).await?;
            let mut query = String::new();
            if let Some(p) = &prefix {
                let mut parts = p.splitn(2, '.');
                if let Some(cat) = parts.next() {
                    query.push_str(&format!("?catalog_name={}", encode(cat)));
                }
                if let Some(sch) = parts.next() {
                    query.push_str(&format!("&schema_name={}", encode(sch)));
                }
            }
            let list: wire::ListTables = c
                .call(Method::GET, &format!("{UC}/tables{query}"), None)
                .await?;
            if target.json {
                return print_json(&list);
            }
            print_table(
                &["TABLE", "LOCATION", "REGISTERED BY"],
                &table_rows(&list.tables),
            );
            Ok(())
        }
        TableCommand::Show { name, target } => {
            let c = AdminClient::connect(&target).await?;
            let t: wire::TableInfo = c
                .call(Method::GET, &format!("{UC}/tables/{}", encode(&name)), None)
                .await?;
            if target.json {
                return print_json(&t);
            }
            print_table(&["TABLE", "LOCATION", "REGISTERED BY"], &table_rows(&[t]));
            Ok(())
        }
        TableCommand::Unregister { name, target } => {
            let c = AdminClient::connect(&target).await?;
            let _: serde_json::Value = c
                .call(
                    Method::DELETE,
                    &format!("{UC}/tables/{}", encode(&name)),
                    None,
                )
                .await?;
            if target.json {
                return print_json(&json!({"unregistered": name}));
            }
            println!("unregistered {name}");
            Ok(())
        }
    }
}

/// `lakeshare plan` (`apply = false`) or `lakeshare apply`. Returns the exit status.
pub async fn run_policy(args: PolicyArgs, apply: bool, allow_delete: bool) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // Validate locally first (and resolve relative table locations against the file).
    let base = args
        .file
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let local = crate::config::parse(&text, &base)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    for w in &local.warnings {
        eprintln!("warning: {}: {w}", args.file.display());
    }
    let resolved = resolved_policy(&text, &local)?;
    let c = AdminClient::connect(&args.target).await?;
    let path = if apply {
        format!("{EXT}/policy/apply?allow_delete={allow_delete}")
    } else {
        format!("{EXT}/policy/plan")
    };
    let plan: wire::PolicyPlan = c
        .call(Method::POST, &path, Some(Body::Yaml(resolved)))
        .await?;
    if args.target.json {
        print_json(&plan)?;
    } else {
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
        if plan.changes.is_empty() {
            println!("No changes: the catalog matches {}.", args.file.display());
        } else {
            for c in &plan.changes {
                println!("  {}", c.summary);
            }
            let count = |a: &str| plan.changes.iter().filter(|c| c.action == a).count();
            let destructive = plan.changes.iter().filter(|c| c.destructive).count();
            println!(
                "{} to create, {} to update, {} to delete{}.",
                count("create"),
                count("update"),
                count("delete"),
                if destructive > 0 && !apply {
                    format!(" ({destructive} destructive: apply needs --allow-delete)")
                } else {
                    String::new()
                }
            );
            if apply {
                println!(
                    "Applied {} change(s) in one transaction.",
                    plan.changes.len()
                );
                for c in &plan.changes {
                    if c.object_type == "recipient" && c.action == "create" {
                        println!(
                            "Recipient {} has no token yet: send it a link from `lakeshare \
                             recipient link {}` (or rotate-token in the admin API).",
                            c.name, c.name
                        );
                    }
                }
            }
        }
    }
    Ok(if args.exit_code && !apply && !plan.changes.is_empty() {
        2
    } else {
        0
    })
}

/// The policy text with relative table locations made absolute (a server cannot resolve
/// them against a file it does not have).
fn resolved_policy(text: &str, parsed: &crate::config::Config) -> anyhow::Result<String> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(text)?;
    if let Some(shares) = doc.get_mut("shares").and_then(|s| s.as_sequence_mut()) {
        for (share, decl) in shares.iter_mut().zip(&parsed.shares) {
            let Some(schemas) = share.get_mut("schemas").and_then(|s| s.as_sequence_mut()) else {
                continue;
            };
            for (schema, sdecl) in schemas.iter_mut().zip(&decl.schemas) {
                let Some(tables) = schema.get_mut("tables").and_then(|t| t.as_sequence_mut())
                else {
                    continue;
                };
                for (table, tdecl) in tables.iter_mut().zip(&sdecl.tables) {
                    if let Some(map) = table.as_mapping_mut() {
                        map.insert("location".into(), tdecl.location.clone().into());
                    }
                }
            }
        }
    }
    Ok(serde_yaml::to_string(&doc)?)
}

/// `lakeshare recipient preview NAME`.
pub async fn run_preview(name: &str, max_files: usize, target: &TargetArgs) -> anyhow::Result<()> {
    let c = AdminClient::connect(target).await?;
    let p: wire::RecipientPreview = c
        .call(
            Method::GET,
            &format!(
                "{EXT}/recipients/{}/preview?max_files={max_files}",
                encode(name)
            ),
            None,
        )
        .await?;
    if target.json {
        return print_json(&p);
    }
    println!(
        "recipient {} can read shares: {}",
        p.recipient,
        if p.shares.is_empty() {
            "(none)".to_owned()
        } else {
            p.shares.join(", ")
        }
    );
    let rows: Vec<Vec<String>> = p
        .tables
        .iter()
        .map(|t| {
            vec![
                format!("{}.{}.{}", t.share, t.schema, t.name),
                t.version.map(|v| v.to_string()).unwrap_or_default(),
                match &t.error {
                    Some(e) => format!("error: {e}"),
                    None => format!("{} of {}", t.matching_files, t.total_files),
                },
                partitions_text(t.partitions.as_ref()),
            ]
        })
        .collect();
    print_table(&["TABLE", "VERSION", "FILES", "PARTITION FILTER"], &rows);
    Ok(())
}

/// `lakeshare admin-log`.
pub async fn run_log(limit: usize, target: &TargetArgs) -> anyhow::Result<()> {
    let c = AdminClient::connect(target).await?;
    let log: wire::ChangeLog = c
        .call(Method::GET, &format!("{EXT}/changes?limit={limit}"), None)
        .await?;
    for ch in &log.changes {
        let at = chrono::DateTime::from_timestamp_millis(ch.at)
            .map_or_else(|| ch.at.to_string(), |d| d.to_rfc3339());
        if target.json {
            println!(
                "{}",
                json!({"seq": ch.seq, "at": at, "actor": ch.actor, "action": ch.action,
                    "target": ch.target, "details": ch.details})
            );
        } else {
            println!(
                "{at}  {:<16} {:<20} {:<28} {}",
                ch.actor, ch.action, ch.target, ch.details
            );
        }
    }
    Ok(())
}
