//! `lakeshare admin-token create|list|revoke`: admin API tokens, stored hashed (only a display
//! prefix is kept readable), expiring (90 days unless told otherwise), every change recorded.

use clap::Subcommand;

use super::StoreArgs;
use super::admin_client::{print_table, term_safe};
use super::wiring;

/// Default lifetime of a new admin token.
const DEFAULT_EXPIRY: &str = "90d";

/// Admin token subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin API token (printed once, stored hashed).
    Create {
        /// Administrator name.
        name: String,
        /// Lifetime: 90d, 12h, 30m, 45s (default 90d).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_in: Option<String>,
        /// A token that never expires (prefer an expiry and rotation).
        #[arg(long)]
        no_expiry: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List admin tokens: name, display prefix, created, expires, revoked (never a secret).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke every live token of an administrator, or one token by its display prefix.
    Revoke {
        /// Administrator name (all of their tokens).
        #[arg(required_unless_present = "prefix")]
        name: Option<String>,
        /// Only the token with this display prefix.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn iso(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339())
}

/// Runs an admin-token subcommand on the local store.
pub async fn run(cmd: AdminTokenCommand) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        AdminTokenCommand::Create {
            name,
            expires_in,
            no_expiry,
            store,
        } => {
            let expires_at = if no_expiry {
                None
            } else {
                let d = expires_in.as_deref().unwrap_or(DEFAULT_EXPIRY);
                Some(now.saturating_add(super::recipient::parse_duration_ms(d)?))
            };
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let new = crate::domain::token::generate();
            catalog
                .create_admin_token(&name, &new, expires_at, now)
                .await?;
            if let Some(e) = expires_at {
                eprintln!("(expires {})", iso(Some(e)));
            }
            println!("admin token: {}", new.secret);
            Ok(())
        }
        AdminTokenCommand::List { json, store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let tokens = catalog.list_admin_tokens().await?;
            let state = |t: &crate::catalog::AdminTokenInfo| {
                if t.revoked_at_ms.is_some() {
                    "revoked"
                } else if t.expires_at_ms.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                }
            };
            if json {
                let v: Vec<serde_json::Value> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "name": t.name, "prefix": t.prefix, "state": state(t),
                            "createdAt": iso(Some(t.created_at_ms)),
                            "expiresAt": t.expires_at_ms.map(|e| iso(Some(e))),
                            "revokedAt": t.revoked_at_ms.map(|e| iso(Some(e))),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            term_safe(&t.name),
                            t.prefix.clone(),
                            state(t).to_owned(),
                            iso(Some(t.created_at_ms)),
                            iso(t.expires_at_ms),
                            iso(t.revoked_at_ms),
                        ]
                    })
                    .collect();
                print_table(
                    &["NAME", "PREFIX", "STATE", "CREATED", "EXPIRES", "REVOKED"],
                    &rows,
                );
            }
            Ok(())
        }
        AdminTokenCommand::Revoke {
            name,
            prefix,
            store,
        } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let n = catalog
                .revoke_admin_tokens(name.as_deref(), prefix.as_deref(), now)
                .await?;
            if n == 0 {
                anyhow::bail!("no live admin token matched");
            }
            println!("revoked {n} admin token(s)");
            Ok(())
        }
    }
}
