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
    }
}
