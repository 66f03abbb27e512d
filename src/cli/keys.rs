//! `lakeshare keys rotate|list`.

use clap::Subcommand;

use super::StoreArgs;
use super::wiring;
use crate::storage::keyring::SigningKey;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current. The previous key stays valid for one URL lifetime, and
    /// running servers pick the new key up within 30 seconds.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List signing keys (ids and dates only).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a key subcommand.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        KeysCommand::Rotate { store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            let key = SigningKey::generate(now);
            catalog.rotate_signing_key(&key, now).await?;
            println!("new current signing key {}", key.id);
        }
        KeysCommand::List { store } => {
            let catalog = wiring::open_catalog(&wiring::state_path(&store)?).await?;
            for k in catalog.signing_keys().await? {
                println!(
                    "{} created {} {}",
                    k.id,
                    k.created_at_ms,
                    k.retired_at_ms
                        .map_or_else(|| "current".to_owned(), |r| format!("retired {r}"))
                );
            }
        }
    }
    Ok(())
}
