//! Wiring of concrete adapters into the service (used by `serve`, `demo` and tests).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::StoreArgs;
use crate::catalog::sql::SqlCatalog;
use crate::catalog::{CatalogStore, DynCatalog};
use crate::config::Config;
use crate::delta::reader::TableReader;
use crate::domain::clock::{ClockRef, SystemClock};
use crate::domain::token;
use crate::service::{Service, ServiceSettings};
use crate::storage::cloud::StoreRegistry;
use crate::storage::keyring::{Keyring, KeyringRef, SigningKey};
use crate::storage::local::LocalUrlSigner;
use crate::storage::object_signer::{ObjectStoreUrlSigner, RoutingSigner};
use crate::storage::signer::ScopedSigner;
use crate::storage::temp_issuer::TempCredentialIssuer;

/// The state store for `args`: explicit `--state` (a SQLite file path, or a `postgres://` URL
/// for a catalog shared by several replicas), else `lakeshare.db` next to the config.
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

/// A state store location fit for printing: a PostgreSQL URL without its password.
pub fn redacted(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => location.to_owned(),
    }
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

fn is_postgres(location: &Path) -> bool {
    let text = location.to_string_lossy();
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// `serve` never creates an empty state store: a missing SQLite file means recipients were
/// created elsewhere (or not at all), and serving would refuse everyone. With a config
/// `authorization.bearerToken` or `--allow-anonymous` (no recipients needed) it is created.
pub fn check_serving_state(location: &Path, no_recipients_needed: bool) -> anyhow::Result<()> {
    if is_postgres(location) || no_recipients_needed || location.exists() {
        return Ok(());
    }
    bail!(
        "refusing to start: no state store at {}: create a recipient first (`lakeshare recipient create NAME \
         --share SHARE --state {0}`) or an empty store (`lakeshare migrate --state {0}`); \
         pass --state PATH (or set LAKESHARE_STATE) to use another one",
        location.display()
    )
}

/// Opens the state store: PostgreSQL for `postgres://` / `postgresql://` URLs, else SQLite.
/// Changes made through it are recorded as made by `actor`.
pub async fn open_catalog_as(location: &Path, actor: &str) -> anyhow::Result<DynCatalog> {
    let text = location.to_string_lossy();
    if !is_postgres(location) {
        let dir = location
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if dir.exists() && !tempfile_probe(dir) {
            bail!(
                "the state store's folder {} is not writable by this user: pass --state PATH \
                 (or set LAKESHARE_STATE) to a writable location, e.g. \
                 /var/lib/lakeshare/lakeshare.db",
                dir.display()
            );
        }
    }
    let catalog = SqlCatalog::open(&text)
        .await
        .with_context(|| format!("cannot open the state store at {}", redacted(&text)))?;
    Ok(Arc::new(catalog.with_actor(actor)))
}

/// Whether a file can be created in `dir` (SQLite needs its journal and WAL files there).
fn tempfile_probe(dir: &Path) -> bool {
    let probe = dir.join(format!(".lakeshare-write-probe-{}", std::process::id()));
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    if ok {
        let _ = std::fs::remove_file(&probe);
    }
    ok
}

/// Opens the state store for a CLI command (changes recorded as `cli:<user>`).
pub async fn open_catalog(location: &Path) -> anyhow::Result<DynCatalog> {
    open_catalog_as(location, &cli_actor()).await
}

/// `cli:<user>`: who changes made from this shell are recorded as: `$USER` or `$LOGNAME`,
/// else the operating system's name for this process's user (containers and services often
/// run without `$USER`), else `uid:<n>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(os_user)
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{user}")
}

/// The user name of this process's real uid (Linux: `/proc/self/status` and `/etc/passwd`).
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_owned())
        })
    });
    Some(name.unwrap_or_else(|| format!("uid:{uid}")))
}

/// Loads the signing keys, generating and persisting the first one if there is none.
pub async fn load_keyring(catalog: &dyn CatalogStore, clock: &ClockRef) -> anyhow::Result<Keyring> {
    let mut keys = catalog.signing_keys().await?;
    if !keys.iter().any(|k| k.retired_at_ms.is_none()) {
        let key = SigningKey::generate(clock.now_ms());
        // Another replica starting at the same moment may win (one current key is enforced
        // by the store); either way, use what the store holds.
        if let Err(e) = catalog.add_first_signing_key(&key).await {
            tracing::info!(error = %e, "another replica created the first signing key");
        }
        keys = catalog.signing_keys().await?;
    }
    Ok(Keyring::new(keys))
}

/// Reads keys from a key file: one secret per line (hex or base64, at least 32 bytes), the
/// first is current, the others are previous keys, retired at `now_ms`. Key ids are derived
/// from the secrets, so every replica with the same file agrees on them.
pub fn keys_from_file(path: &Path, now_ms: i64) -> anyhow::Result<Vec<SigningKey>> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read urlSigningKeyFile {}", path.display()))?;
    let mut keys = Vec::new();
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let secret = hex::decode(line)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(line).ok())
            .with_context(|| {
                format!(
                    "{}: line {} is neither hex nor base64",
                    path.display(),
                    i + 1
                )
            })?;
        if secret.len() < 32 {
            anyhow::bail!(
                "{}: key on line {} has {} bytes; use at least 32 random bytes (e.g. `openssl rand -hex 32`)",
                path.display(),
                i + 1,
                secret.len()
            );
        }
        let id = hex::encode(&sha2::Sha256::digest(&secret)[..4]);
        keys.push(SigningKey {
            id,
            secret,
            created_at_ms: now_ms - i as i64,
            retired_at_ms: (i > 0).then_some(now_ms),
        });
    }
    if keys.is_empty() {
        anyhow::bail!("{}: no key found", path.display());
    }
    Ok(keys)
}

/// Everything `serve` runs.
pub struct Wired {
    /// The service.
    pub service: Service,
    /// The keyring (reloaded periodically).
    pub keyring: KeyringRef,
    /// The catalog.
    pub catalog: DynCatalog,
    /// Object stores of cloud tables (shared by the reader and the signer).
    pub stores: Arc<StoreRegistry>,
    /// The table reader.
    pub reader: Arc<TableReader>,
}

/// The object stores for the config's `storage` settings.
pub fn storage_registry(config: &Config) -> Arc<StoreRegistry> {
    Arc::new(StoreRegistry::new(config.storage.clone()))
}

/// Builds the service for `config` over `catalog`.
pub async fn wire(
    config: &Config,
    catalog: DynCatalog,
    allow_anonymous: bool,
    clock: ClockRef,
) -> anyhow::Result<Wired> {
    let keyring = match &config.url_signing_key_file {
        Some(path) => Keyring::new(keys_from_file(path, clock.now_ms())?),
        None => load_keyring(catalog.as_ref(), &clock).await?,
    };
    let keyring: KeyringRef = Arc::new(RwLock::new(keyring));
    let ttl_ms = config.url_ttl_seconds.saturating_mul(1000);
    let stores = storage_registry(config);
    let signer = Arc::new(ScopedSigner::new(RoutingSigner::new(
        LocalUrlSigner::new(keyring.clone(), ttl_ms),
        ObjectStoreUrlSigner::new(stores.clone(), ttl_ms),
    )));
    let reader = Arc::new(TableReader::new(stores.clone(), config.cache_size));
    let settings = ServiceSettings {
        url_ttl_ms: ttl_ms,
        evaluate_json_hints: config.evaluate_json_hints,
        evaluate_json_hints_v2: config.evaluate_json_hints_v2,
        allow_anonymous,
        config_token_hash: config.bearer_token.as_deref().map(token::hash),
        page_size_limit: config.page_size_limit,
        page_token_ttl_ms: config.page_token_ttl_ms,
        refresh_token_ttl_ms: config.refresh_token_ttl_ms,
        async_max_concurrent_per_recipient: config.async_max_concurrent_per_recipient,
        async_result_ttl_ms: config.async_result_ttl_ms,
        temp_credential_validity_s: config.temp_credential_validity_s,
        limits: config.limits,
        async_test_delay_ms: std::env::var("LAKESHARE_TEST_ASYNC_QUERY_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..ServiceSettings::default()
    };
    let async_store: Arc<dyn crate::domain::async_query::AsyncQueryStore> = catalog.clone();
    let service = Service::new(
        catalog.clone(),
        reader.clone(),
        signer,
        keyring.clone(),
        settings,
        clock,
    )
    .with_async_store(async_store)
    .with_temp_credentials(Arc::new(TempCredentialIssuer::new(stores.clone())));
    Ok(Wired {
        service,
        keyring,
        catalog,
        stores,
        reader,
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

/// Checks every declared partition filter against its table's partition columns (opening
/// those tables). The error names the table and the column.
pub async fn validate_partition_filters(config: &Config) -> anyhow::Result<()> {
    use crate::domain::partition_filter::PartitionSpec;
    let reader = Arc::new(TableReader::new(storage_registry(config), 4));
    for share in &config.shares {
        for schema in &share.schemas {
            for table in &schema.tables {
                let Some(json) = &table.partition_filter else {
                    continue;
                };
                let name = format!("{}.{}.{}", share.name, schema.name, table.name);
                let spec: PartitionSpec = serde_json::from_str(json)?;
                let url = url::Url::parse(&table.location)?;
                let r = reader.clone();
                let columns = tokio::task::spawn_blocking(move || {
                    let s = r.latest(&url)?;
                    Ok::<_, crate::delta::DeltaError>(
                        r.info(&s)?.metadata.partition_columns.clone(),
                    )
                })
                .await?
                .with_context(|| {
                    format!("table '{name}': cannot open it to check its partitions")
                })?;
                spec.validate(Some(&columns))
                    .map_err(|e| anyhow::anyhow!("table '{name}': {e}"))?;
            }
        }
    }
    Ok(())
}

/// The system clock.
pub fn system_clock() -> ClockRef {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_lines_are_current_then_previous() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.path().join("keys");
        std::fs::write(
            &path,
            format!("{}\n\n{}\n", "ab".repeat(32), "cd".repeat(32)),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let keys = keys_from_file(&path, 1000).unwrap_or_else(|e| unreachable!("{e}"));
        let ring = Keyring::new(keys.clone());
        assert_eq!(
            ring.current().map(|k| k.id.clone()),
            Some(keys[0].id.clone())
        );
        assert!(ring.accepted(&keys[1].id, 1500, 1000).is_some());
        assert!(ring.accepted(&keys[1].id, 2000, 1000).is_none());
        std::fs::write(&path, "abcd\n").unwrap_or_else(|e| unreachable!("{e}"));
        let err = keys_from_file(&path, 0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("at least 32"), "{err}");
    }
}
