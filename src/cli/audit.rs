//! `lakeshare audit keygen|verify|export`, and the wiring of the audit writer for `serve`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::{StoreArgs, wiring};
use crate::audit::chain::{SigningKey, verify};
use crate::audit::writer::AuditWriter;
use crate::audit::{AuditEvent, AuditStore};
use crate::catalog::DynCatalog;
use crate::config::Config;

/// Environment variable holding the checkpoint signing seed (base64).
pub const KEY_ENV: &str = "LAKESHARE_AUDIT_SIGNING_KEY";

/// `lakeshare audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Create a checkpoint signing key: the private seed goes to OUT (mode 0600, keep it out of
    /// the database host's backups), the public key is printed (the verifier needs only it).
    Keygen {
        /// Where to write the private seed.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify every hash chain and signed checkpoint; exit 1 and name the first bad position.
    Verify {
        /// Public key (base64) or a file holding it.
        #[arg(long)]
        public_key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A per-partner access report: requests by kind, tables and versions read, refusals,
    /// source addresses, and a chart of activity per day (Markdown or HTML).
    Report {
        /// Recipient name.
        #[arg(long)]
        recipient: String,
        /// From (RFC 3339, inclusive).
        #[arg(long)]
        from: Option<String>,
        /// To (RFC 3339, exclusive).
        #[arg(long)]
        to: Option<String>,
        /// `md` or `html`.
        #[arg(long, default_value = "md")]
        format: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export events as JSON lines or CSV.
    Export {
        /// `jsonl` or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// From (RFC 3339, inclusive).
        #[arg(long)]
        from: Option<String>,
        /// To (RFC 3339, exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Only this recipient (or `admin:<name>`).
        #[arg(long)]
        recipient: Option<String>,
        /// Only this table (`share.schema.table`).
        #[arg(long)]
        table: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn signing_key(config: &Config) -> anyhow::Result<Option<SigningKey>> {
    let text = match (&config.audit_signing_key_file, std::env::var(KEY_ENV).ok()) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read auditSigningKeyFile {}", path.display()))?,
        ),
        (None, Some(env)) => Some(env),
        (None, None) => None,
    };
    text.map(|t| SigningKey::from_seed_b64(&t).map_err(anyhow::Error::from))
        .transpose()
}

/// Records a change made from the CLI on the local store as an audit event (a chain of its
/// own, signed when the config names a key).
pub async fn record_cli(store: &StoreArgs, action: &str, target: &str) -> anyhow::Result<()> {
    let catalog = wiring::open_catalog(&wiring::state_path(store)?).await?;
    let config = match &store.config {
        Some(path) => crate::config::load(path).map_err(anyhow::Error::msg)?,
        None => crate::config::parse("version: 1\n", std::path::Path::new("."))
            .map_err(anyhow::Error::msg)?,
    };
    let writer = writer_for(&config, catalog, false)?;
    let mut params = std::collections::BTreeMap::new();
    params.insert("target".to_owned(), target.to_owned());
    writer
        .record(AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            kind: "cli".to_owned(),
            method: "CLI".to_owned(),
            route: action.to_owned(),
            principal: Some(wiring::cli_actor()),
            params,
            status: 200,
            ..AuditEvent::default()
        })
        .await?;
    writer.checkpoint().await?;
    Ok(())
}

/// Starts this process's audit writer (a new chain) over the catalog.
pub fn start_writer(config: &Config, catalog: DynCatalog) -> anyhow::Result<AuditWriter> {
    writer_for(config, catalog, true)
}

/// A writer for this process; `warn` about unsigned checkpoints (servers do, CLI commands not).
pub fn writer_for(config: &Config, catalog: DynCatalog, warn: bool) -> anyhow::Result<AuditWriter> {
    let key = signing_key(config)?;
    if key.is_none() && warn {
        tracing::warn!(
            "audit checkpoints are not signed (no auditSigningKeyFile or {KEY_ENV}): the hash \
             chains show edits, but not edits made by someone who recomputes every later hash"
        );
    }
    let store: Arc<dyn AuditStore> = catalog;
    Ok(AuditWriter::start_with_sink(
        uuid::Uuid::new_v4().to_string(),
        store,
        key,
        config.audit_checkpoint_every,
        config
            .audit_jsonl
            .as_ref()
            .map(|(path, max)| crate::audit::writer::JsonlSink {
                path: path.clone(),
                max_bytes: *max,
            }),
    ))
}

fn ms(text: &Option<String>, what: &str) -> anyhow::Result<Option<i64>> {
    text.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .with_context(|| format!("--{what} '{t}' is not RFC 3339"))
        })
        .transpose()
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "at",
    "request_id",
    "kind",
    "method",
    "route",
    "principal",
    "token_prefix",
    "client_ip",
    "share",
    "schema",
    "table",
    "table_version",
    "status",
    "error_code",
    "duration_ms",
    "params",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(e: &AuditEvent) -> String {
    let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        e.id.clone(),
        at,
        e.request_id.clone(),
        e.kind.clone(),
        e.method.clone(),
        e.route.clone(),
        o(&e.principal),
        o(&e.token_prefix),
        o(&e.client_ip),
        o(&e.share),
        o(&e.schema),
        o(&e.table),
        e.table_version.map(|v| v.to_string()).unwrap_or_default(),
        e.status.to_string(),
        o(&e.error_code),
        e.duration_ms.to_string(),
        serde_json::to_string(&e.params).unwrap_or_default(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// Runs an audit subcommand.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Keygen { out } => {
            let (seed, key) = SigningKey::generate()?;
            std::fs::write(&out, format!("{seed}\n"))
                .with_context(|| format!("cannot write {}", out.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600))?;
            }
            println!("public key: {}", key.public_b64());
            Ok(())
        }
        AuditCommand::Verify { public_key, store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let public = match public_key {
                Some(p) if std::path::Path::new(&p).is_file() => {
                    Some(std::fs::read_to_string(&p)?.trim().to_owned())
                }
                other => other,
            };
            let records = catalog.audit_records().await?;
            let checkpoints = catalog.audit_checkpoints().await?;
            let report = verify(&records, &checkpoints, public.as_deref());
            println!(
                "{} record(s) in {} chain(s); {} signed checkpoint(s) verified; {} record(s) \
                 after the last checkpoint of their chain",
                report.records, report.writers, report.checkpoints_verified, report.uncovered
            );
            if public.is_none() {
                println!(
                    "no --public-key: only the hash chains were checked (signed checkpoints \
                     catch edits made by someone who recomputes the hashes)"
                );
            }
            if let Some(first) = report.problems.first() {
                for p in &report.problems {
                    eprintln!("BAD chain {} at record {}: {}", p.writer, p.seq, p.reason);
                }
                bail!(
                    "the audit log does not verify: first bad position is record {} of chain {}",
                    first.seq,
                    first.writer
                );
            }
            println!("audit log OK");
            Ok(())
        }
        AuditCommand::Report {
            recipient,
            from,
            to,
            format,
            store,
        } => {
            let (from_ms, to_ms) = (ms(&from, "from")?, ms(&to, "to")?);
            if format != "md" && format != "html" {
                bail!("--format '{format}': use md or html");
            }
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let mut events = Vec::new();
            for r in catalog.audit_records().await? {
                // Filter on the hashed body, never on the indexed columns (which verify
                // checks against it, but which an attacker could move).
                let e: AuditEvent = serde_json::from_str(&r.body)?;
                if from_ms.is_some_and(|f| e.at_ms < f) || to_ms.is_some_and(|t| e.at_ms >= t) {
                    continue;
                }
                if e.principal.as_deref() == Some(recipient.as_str()) {
                    events.push(e);
                }
            }
            let period = format!(
                "{} to {}",
                from.as_deref().unwrap_or("the beginning"),
                to.as_deref().unwrap_or("now")
            );
            let f = super::audit_report::figures(&events);
            print!(
                "{}",
                if format == "html" {
                    super::audit_report::html(&recipient, &period, &f)
                } else {
                    super::audit_report::markdown(&recipient, &period, &f)
                }
            );
            Ok(())
        }
        AuditCommand::Export {
            format,
            from,
            to,
            recipient,
            table,
            store,
        } => {
            let (from, to) = (ms(&from, "from")?, ms(&to, "to")?);
            if format != "jsonl" && format != "csv" {
                bail!("--format '{format}': use jsonl or csv");
            }
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let mut events: Vec<AuditEvent> = Vec::new();
            for r in catalog.audit_records().await? {
                // Filter on the hashed body, never on the indexed columns.
                let e: AuditEvent = serde_json::from_str(&r.body)
                    .with_context(|| format!("record {} of chain {}", r.seq, r.writer))?;
                if from.is_some_and(|f| e.at_ms < f) || to.is_some_and(|t| e.at_ms >= t) {
                    continue;
                }
                if recipient
                    .as_ref()
                    .is_some_and(|w| e.principal.as_ref() != Some(w))
                {
                    continue;
                }
                if let Some(t) = &table {
                    let full = format!(
                        "{}.{}.{}",
                        e.share.as_deref().unwrap_or_default(),
                        e.schema.as_deref().unwrap_or_default(),
                        e.table.as_deref().unwrap_or_default()
                    );
                    if !full.eq_ignore_ascii_case(t) {
                        continue;
                    }
                }
                events.push(e);
            }
            events.sort_by_key(|e| e.at_ms);
            if format == "csv" {
                println!("{}", CSV_COLUMNS.join(","));
                for e in &events {
                    println!("{}", csv_row(e));
                }
            } else {
                for e in &events {
                    println!("{}", serde_json::to_string(e)?);
                }
            }
            Ok(())
        }
    }
}
