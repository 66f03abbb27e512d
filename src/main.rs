//! The `lakeshare` binary.

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_env("LAKESHARE_LOG").unwrap_or_else(|_| {
        EnvFilter::new(
            "info,object_store=warn,delta_kernel=warn,delta_kernel_default_engine=warn,sqlx=warn",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = lakeshare::cli::Cli::parse();
    match lakeshare::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
