//! `lakeshare recipient create|revoke|list`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::StoreArgs;
use super::wiring;
use crate::catalog::CatalogStore;
use crate::domain::token;
use crate::protocol::profile::ProfileV1;

/// Recipient subcommands.
#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// Create a recipient with a new token, grant it shares, and write its profile file.
    Create {
        /// Recipient name (unique).
        name: String,
        /// Share to grant (repeatable).
        #[arg(long = "share", required = true)]
        shares: Vec<String>,
        /// Token expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z). Default: never.
        #[arg(long)]
        expires: Option<String>,
        /// Endpoint URL for the profile (default: from the config's host, port and endpoint).
        #[arg(long)]
        endpoint: Option<String>,
        /// Where to write the profile file.
        #[arg(long)]
        profile: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a recipient and all its tokens (its next request is refused).
    Revoke {
        /// Recipient name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List recipients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn default_endpoint(store: &StoreArgs) -> anyhow::Result<String> {
    let path = store
        .config
        .as_ref()
        .context("pass --endpoint URL (or --config FILE to derive it)")?;
    let c = crate::config::load(path).map_err(anyhow::Error::msg)?;
    let scheme = if c.ssl.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://{}:{}{}", c.host, c.port, c.endpoint))
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339())
}

/// Runs a recipient subcommand.
pub async fn run(cmd: RecipientCommand) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        RecipientCommand::Create {
            name,
            shares,
            expires,
            endpoint,
            profile,
            store,
        } => {
            let expires_at = expires
                .as_deref()
                .map(|e| {
                    chrono::DateTime::parse_from_rfc3339(e)
                        .map(|d| d.timestamp_millis())
                        .with_context(|| format!("invalid --expires '{e}': use RFC 3339"))
                })
                .transpose()?;
            if expires_at.is_some_and(|e| e <= now) {
                eprintln!("warning: --expires is in the past; the token is expired already");
            }
            let endpoint = match endpoint {
                Some(e) => e,
                None => default_endpoint(&store)?,
            };
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            if let Some(cfg) = &store.config {
                let config = crate::config::load(cfg).map_err(anyhow::Error::msg)?;
                catalog.import_shared_objects(&config.shares).await?;
            }
            let new = token::generate();
            catalog
                .create_recipient(&name, &shares, &new, expires_at, now)
                .await
                .with_context(|| format!("cannot create recipient '{name}'"))?;
            let doc = ProfileV1 {
                share_credentials_version: 1,
                endpoint,
                bearer_token: new.secret.clone(),
                expiration_time: expires_at
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            };
            write_private(&profile, &serde_json::to_vec_pretty(&doc)?)?;
            println!(
                "created recipient '{name}' (token {}…) granted {:?}; profile written to {}",
                new.display_prefix,
                shares,
                profile.display()
            );
            Ok(())
        }
        RecipientCommand::Revoke { name, store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            if !catalog.revoke_recipient(&name, now).await? {
                bail!("no active recipient named '{name}'");
            }
            println!("revoked recipient '{name}' and all its tokens");
            Ok(())
        }
        RecipientCommand::List { json, store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let list = catalog.list_recipients().await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "name": r.name, "id": r.id, "shares": r.shares,
                            "createdAt": fmt_ms(Some(r.created_at_ms)),
                            "revokedAt": r.revoked_at_ms.map(|m| fmt_ms(Some(m))),
                            "tokens": r.tokens.iter().map(|(p, e)| serde_json::json!({"prefix": p, "expiresAt": e.map(|m| fmt_ms(Some(m)))})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{:<24} {:<8} {:<32} {:<26} TOKENS",
                    "NAME", "STATE", "SHARES", "CREATED"
                );
                for r in list {
                    let state = if r.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let tokens: Vec<String> = r
                        .tokens
                        .iter()
                        .map(|(p, e)| format!("{p}… (expires {})", fmt_ms(*e)))
                        .collect();
                    println!(
                        "{:<24} {:<8} {:<32} {:<26} {}",
                        r.name,
                        state,
                        r.shares.join(","),
                        fmt_ms(Some(r.created_at_ms)),
                        tokens.join("; ")
                    );
                }
            }
            Ok(())
        }
    }
}

/// Writes a file readable by its owner only (profiles hold a secret).
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write as _;
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
