//! Wiring of concrete adapters into the service (used by `serve`, `demo` and tests).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;

use super::StoreArgs;
use crate::catalog::sqlite::SqliteCatalog;
use crate::catalog::{CatalogStore, DynCatalog};
use crate::config::Config;
use crate::delta::reader::TableReader;
use crate::domain::clock::{ClockRef, SystemClock};
use crate::domain::token;
use crate::service::{Service, ServiceSettings};
use crate::storage::keyring::{Keyring, KeyringRef, SigningKey};
use crate::storage::local::LocalUrlSigner;
use crate::storage::signer::ScopedSigner;

/// The state store path for `args` (explicit `--state`, else next to the config).
pub fn state_path(args: &StoreArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.state {
        return Ok(p.clone());
    }
    let config = args
        .config
        .as_ref()
        .context("pass --config FILE (the state store lives next to it) or --state DB")?;
    Ok(default_state_path(config))
}

/// `lakeshare.db` in the config file's folder.
pub fn default_state_path(config: &Path) -> PathBuf {
    config
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("lakeshare.db")
}

/// Opens the state store.
pub async fn open_catalog(path: &Path) -> anyhow::Result<Arc<SqliteCatalog>> {
    Ok(Arc::new(SqliteCatalog::open(path).await.with_context(
        || format!("cannot open state store {}", path.display()),
    )?))
}

/// Loads the signing keys, generating and persisting the first one if there is none.
pub async fn load_keyring(catalog: &dyn CatalogStore, clock: &ClockRef) -> anyhow::Result<Keyring> {
    let mut keys = catalog.signing_keys().await?;
    if !keys.iter().any(|k| k.retired_at_ms.is_none()) {
        let key = SigningKey::generate(clock.now_ms());
        catalog.rotate_signing_key(&key, clock.now_ms()).await?;
        keys = catalog.signing_keys().await?;
    }
    Ok(Keyring::new(keys))
}

/// Everything `serve` runs.
pub struct Wired {
    /// The service.
    pub service: Service,
    /// The keyring (reloaded periodically).
    pub keyring: KeyringRef,
    /// The catalog.
    pub catalog: DynCatalog,
}

/// Builds the service for `config` over `catalog`.
pub async fn wire(
    config: &Config,
    catalog: DynCatalog,
    allow_anonymous: bool,
    clock: ClockRef,
) -> anyhow::Result<Wired> {
    let keyring: KeyringRef = Arc::new(RwLock::new(load_keyring(catalog.as_ref(), &clock).await?));
    let ttl_ms = config.url_ttl_seconds.saturating_mul(1000);
    let signer = Arc::new(ScopedSigner::new(LocalUrlSigner::new(
        keyring.clone(),
        ttl_ms,
    )));
    let reader = Arc::new(TableReader::new_local(config.cache_size));
    let settings = ServiceSettings {
        url_ttl_ms: ttl_ms,
        evaluate_json_hints: config.evaluate_json_hints,
        evaluate_json_hints_v2: config.evaluate_json_hints_v2,
        allow_anonymous,
        config_token_hash: config.bearer_token.as_deref().map(token::hash),
        ..ServiceSettings::default()
    };
    let service = Service::new(
        catalog.clone(),
        reader,
        signer,
        keyring.clone(),
        settings,
        clock,
    );
    Ok(Wired {
        service,
        keyring,
        catalog,
    })
}

/// Reloads the keyring from the store every `every`, so rotations by `lakeshare keys rotate`
/// take effect without a restart.
pub fn spawn_keyring_refresh(catalog: DynCatalog, keyring: KeyringRef, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match catalog.signing_keys().await {
                Ok(keys) if keys.iter().any(|k| k.retired_at_ms.is_none()) => {
                    if let Ok(mut ring) = keyring.write() {
                        *ring = Keyring::new(keys);
                    }
                }
                Ok(_) => tracing::warn!(
                    "state store has no current signing key; keeping the old keyring"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot reload signing keys"),
            }
        }
    });
}

/// The system clock.
pub fn system_clock() -> ClockRef {
    Arc::new(SystemClock)
}
