//! Command line: `serve`, `recipient`, `grant`, `share`, `table`, `plan`, `apply`,
//! `check-config`, `keys`, `admin-token`, `admin-log`, `demo`.

pub mod admin_client;
mod admin_cmds;
mod admin_tokens;
pub mod audit;
mod audit_report;
mod check;
mod demo;
mod keys;
mod recipient;
mod recipient_remote;
pub mod serve;
pub mod storage_check;
pub mod wiring;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Lakeshare: share live Delta tables over the Delta Sharing protocol.
#[derive(Debug, Parser)]
#[command(name = "lakeshare", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the state store is: next to a config file, or an explicit database path.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Config file; the state store defaults to `lakeshare.db` next to it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// State store: a SQLite file path or a `postgres://` URL (env `LAKESHARE_STATE`).
    #[arg(long, env = "LAKESHARE_STATE")]
    pub state: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sharing server.
    Serve(serve::ServeArgs),
    /// Manage recipients (tokens, properties, IP allow lists).
    #[command(subcommand)]
    Recipient(recipient::RecipientCommand),
    /// Grant shares to recipients, or remove grants.
    #[command(subcommand)]
    Grant(recipient::GrantCommand),
    /// Validate a config and open every table location.
    CheckConfig {
        /// The config file.
        config: PathBuf,
    },
    /// Manage URL and token signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Start a server on sample tables, with a ready-to-use profile.
    Demo(demo::DemoArgs),
    /// Manage admin API tokens (create with an expiry, list, revoke).
    #[command(subcommand)]
    AdminToken(admin_tokens::AdminTokenCommand),
    /// Show who changed what and when (shares, tables, recipients, grants, keys), newest first.
    AdminLog {
        /// How many changes.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        target: admin_client::TargetArgs,
    },
    /// Create or upgrade the state store's schema (also done by every command at start).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The tamper-evident audit log: signing keys, verification, export.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage shares and the tables they hold.
    #[command(subcommand)]
    Share(admin_cmds::ShareCommand),
    /// Register Delta tables by location (then add them to shares).
    #[command(subcommand)]
    Table(admin_cmds::TableCommand),
    /// Show the changes that `apply` would make to match a policy file (create/update/delete
    /// per object).
    Plan(admin_cmds::PolicyArgs),
    /// Health probe for containers without curl: GET the URL (e.g.
    /// `http://127.0.0.1:8080/readyz`); exit 0 on a 2xx answer, 1 otherwise.
    Probe {
        /// The URL to fetch.
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Make the catalog match a policy file, in one transaction (all or nothing).
    Apply {
        #[command(flatten)]
        policy: admin_cmds::PolicyArgs,
        /// Allow changes that delete objects or take access away.
        #[arg(long)]
        allow_delete: bool,
    },
}

/// Runs the CLI.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Recipient(cmd) => {
            let change = cmd
                .remote()
                .is_none()
                .then(|| cmd.local_change().map(|(a, t, s)| (a, t, s.clone())))
                .flatten();
            recipient::run(cmd).await?;
            match change {
                Some((action, target, store)) => audit::record_cli(&store, action, &target).await,
                None => Ok(()),
            }
        }
        Command::Grant(cmd) => {
            let change = cmd
                .remote()
                .is_none()
                .then(|| cmd.local_change().map(|(a, t, s)| (a, t, s.clone())))
                .flatten();
            recipient::run_grant(cmd).await?;
            match change {
                Some((action, target, store)) => audit::record_cli(&store, action, &target).await,
                None => Ok(()),
            }
        }
        Command::CheckConfig { config } => check::run(&config).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Demo(args) => demo::run(args).await,
        Command::AdminToken(cmd) => admin_tokens::run(cmd).await,
        Command::AdminLog { limit, target } => admin_cmds::run_log(limit, &target).await,
        Command::Migrate { store } => {
            let path = wiring::state_path(&store)?;
            let text = path.to_string_lossy();
            let catalog = crate::catalog::sql::SqlCatalog::open(&text)
                .await
                .with_context(|| {
                    format!("cannot open the state store at {}", wiring::redacted(&text))
                })?;
            let (version, known) = catalog.schema_version().await?;
            println!(
                "state store {} ({:?}) is at schema version {version} ({known} migrations known)",
                wiring::redacted(&text),
                catalog.backend()
            );
            Ok(())
        }
        Command::Audit(cmd) => audit::run(cmd).await,
        Command::Share(cmd) => admin_cmds::run_share(cmd).await,
        Command::Table(cmd) => admin_cmds::run_table(cmd).await,
        Command::Plan(args) => exit_with(admin_cmds::run_policy(args, false, false).await?),
        Command::Probe { url, timeout } => {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(timeout.max(1)))
                .build()?;
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => {
                    eprintln!("{url}: HTTP {}", r.status().as_u16());
                    exit_with(1)
                }
                Err(e) => {
                    eprintln!("{url}: {e}");
                    exit_with(1)
                }
            }
        }
        Command::Apply {
            policy,
            allow_delete,
        } => exit_with(admin_cmds::run_policy(policy, true, allow_delete).await?),
    }
}

fn exit_with(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    Ok(())
}
