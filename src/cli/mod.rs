//! Command line: `serve`, `recipient`, `check-config`, `keys`, `demo`.

mod check;
mod demo;
mod keys;
mod recipient;
pub mod serve;
pub mod wiring;

use std::path::PathBuf;

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
    /// State store (SQLite file) path.
    #[arg(long)]
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
    /// Manage admin API tokens.
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Show who changed what and when (recipients, grants, keys, config imports).
    AdminLog {
        /// How many changes, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Admin token subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin API token (printed once, stored hashed).
    Create {
        /// Administrator name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs the CLI.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Recipient(cmd) => recipient::run(cmd).await,
        Command::Grant(cmd) => recipient::run_grant(cmd).await,
        Command::CheckConfig { config } => check::run(&config).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Demo(args) => demo::run(args).await,
        Command::AdminToken(AdminTokenCommand::Create { name, store }) => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let new = crate::domain::token::generate();
            catalog
                .create_admin_token(&name, &new, chrono::Utc::now().timestamp_millis())
                .await?;
            println!("admin token: {}", new.secret);
            Ok(())
        }
        Command::AdminLog { limit, json, store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            for c in catalog.admin_changes(limit).await? {
                let at = chrono::DateTime::from_timestamp_millis(c.at_ms)
                    .map_or_else(|| c.at_ms.to_string(), |d| d.to_rfc3339());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"seq": c.seq, "at": at, "actor": c.actor,
                            "action": c.action, "target": c.target,
                            "details": serde_json::from_str::<serde_json::Value>(&c.details)
                                .unwrap_or(serde_json::Value::Null)})
                    );
                } else {
                    println!(
                        "{at}  {:<16} {:<24} {:<20} {}",
                        c.actor, c.action, c.target, c.details
                    );
                }
            }
            Ok(())
        }
    }
}
