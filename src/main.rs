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
    // LAKESHARE_LOG_FORMAT=json: one JSON object per line, with the request span (request id,
    // route) on every event logged while serving a request.
    let json = std::env::var("LAKESHARE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only for a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    let cli = lakeshare::cli::Cli::parse();
    match lakeshare::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
