//! Object stores for cloud table locations: storage settings per location prefix (credentials
//! never leave the server), and a registry that builds one `object_store` client per
//! (settings, bucket or container), shared by the Delta log reader and the URL signer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

use super::error::StorageError;
use super::location::StoreKind;

/// Settings for the locations under one prefix: the store's `object_store` configuration keys
/// (`aws_region`, `azure_storage_account_key`, `google_service_account_key`, ...), values
/// already resolved from the environment or files.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageRule {
    /// Location prefix (normalized URL, ends with `/`); the longest match wins.
    pub prefix: String,
    /// The store these settings are for.
    pub kind: StoreKind,
    /// `object_store` configuration keys and values.
    pub options: Vec<(String, String)>,
    /// Directory access (temporary credentials), when enabled for these locations.
    pub directory: Option<DirectorySettings>,
    /// S3: credentials from STS AssumeRole, renewed by Lakeshare (known expiry).
    pub assume_role: Option<super::assume_role::AssumeRoleSettings>,
}

/// How temporary credentials are issued for tables under a storage location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySettings {
    /// S3: role to assume (else `GetFederationToken` with the configured user's keys).
    pub role_arn: Option<String>,
    /// STS endpoint (S3: default `https://sts.<region>.amazonaws.com`; GCS: default
    /// `https://sts.googleapis.com/v1/token`).
    pub sts_endpoint: Option<String>,
}

impl StorageRule {
    /// The value of an `object_store` option.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for StorageRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: show the keys only.
        f.debug_struct("StorageRule")
            .field("prefix", &self.prefix)
            .field("kind", &self.kind)
            .field(
                "keys",
                &self.options.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A built store: reads (the kernel engine) and signing share it.
#[derive(Debug, Clone)]
pub struct CloudStore {
    /// Cache key: settings prefix and bucket/container.
    pub key: String,
    /// The store, rooted at the bucket or container.
    pub store: Arc<dyn ObjectStore>,
    /// Its signer.
    pub signer: Arc<dyn Signer>,
    /// The S3 client itself (its credential provider issues STS requests' credentials).
    pub s3: Option<Arc<object_store::aws::AmazonS3>>,
    /// Expiry (ms) of the credential that signs URLs, when Lakeshare knows it.
    pub credential_expiry_ms: Option<Arc<std::sync::atomic::AtomicI64>>,
    /// Azure: the account and its shared key, when the store signs with the account key
    /// (Lakeshare then signs blob SAS URLs itself, over the decoded blob name).
    pub azure_shared_key: Option<AzureSharedKey>,
}

/// An Azure storage account name and its base64 account key.
#[derive(Clone)]
pub struct AzureSharedKey {
    /// The account name.
    pub account: String,
    /// The base64 account key (a secret: never in `Debug`).
    pub key: String,
}

impl std::fmt::Debug for AzureSharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSharedKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Storage rules and the stores built from them.
#[derive(Debug, Default)]
pub struct StoreRegistry {
    rules: Vec<StorageRule>,
    built: Mutex<HashMap<String, CloudStore>>,
}

impl StoreRegistry {
    /// A registry over `rules`.
    pub fn new(rules: Vec<StorageRule>) -> Self {
        Self {
            rules,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[StorageRule] {
        &self.rules
    }

    /// The rule that applies to `root` (longest prefix), if any. Azure's two spellings match
    /// each other: `az://container/...` (account from the settings) and
    /// `abfss://container@account.dfs.core.windows.net/...`.
    pub fn rule_for(&self, root: &Url) -> Option<&StorageRule> {
        self.rules
            .iter()
            .filter(|r| root.as_str().starts_with(&r.prefix) || azure_covers(r, root))
            .max_by_key(|r| r.prefix.len())
    }

    /// The store for a cloud table root (built on first use). Without a matching rule the
    /// store's standard environment settings apply (`AWS_*`, `AZURE_*`, `GOOGLE_*`, instance
    /// and workload identities).
    pub fn store_for(&self, root: &Url) -> Result<CloudStore, StorageError> {
        let kind = StoreKind::of(root)
            .filter(|k| *k != StoreKind::Local)
            .ok_or_else(|| StorageError::Unsupported(root.to_string()))?;
        let rule = self.rule_for(root);
        let bucket = format!(
            "{}://{}{}",
            root.scheme(),
            if root.username().is_empty() {
                String::new()
            } else {
                format!("{}@", root.username())
            },
            root.host_str().unwrap_or_default()
        );
        let key = format!("{}|{bucket}", rule.map_or("", |r| r.prefix.as_str()));
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = built.get(&key) {
            return Ok(s.clone());
        }
        let mut options: Vec<(String, String)> =
            rule.map(|r| r.options.clone()).unwrap_or_default();
        // An `abfss://` rule carries the account in its URL: an `az://` table needs it spelled out.
        if kind == StoreKind::Azure
            && root.scheme() == "az"
            && !options
                .iter()
                .any(|(k, _)| k == "azure_storage_account_name")
            && let Some(account) = rule
                .and_then(|r| Url::parse(&r.prefix).ok())
                .filter(|u| u.scheme() == "abfss")
                .and_then(|u| {
                    u.host_str()
                        .and_then(|h| h.split('.').next())
                        .map(str::to_owned)
                })
        {
            options.push(("azure_storage_account_name".to_owned(), account));
        }
        let options = options.as_slice();
        let assume = rule.and_then(|r| r.assume_role.clone());
        let (store, signer, s3, credential_expiry_ms, azure_shared_key) =
            build(kind, &bucket, options, assume)?;
        let s = CloudStore {
            key: key.clone(),
            store,
            signer,
            s3,
            credential_expiry_ms,
            azure_shared_key,
        };
        built.insert(key, s.clone());
        Ok(s)
    }
}

/// (account if known, container, path) of an Azure URL.
fn azure_parts(
    url: &Url,
    account_setting: Option<&str>,
) -> Option<(Option<String>, String, String)> {
    match url.scheme() {
        "abfss" => Some((
            url.host_str()
                .and_then(|h| h.split('.').next())
                .map(str::to_owned),
            url.username().to_owned(),
            url.path().to_owned(),
        )),
        "az" => Some((
            account_setting.map(str::to_owned),
            url.host_str().unwrap_or_default().to_owned(),
            url.path().to_owned(),
        )),
        _ => None,
    }
}

/// Whether an Azure rule written in one spelling covers a root written in the other.
fn azure_covers(rule: &StorageRule, root: &Url) -> bool {
    if rule.kind != StoreKind::Azure {
        return false;
    }
    let account = rule.option("azure_storage_account_name");
    let Ok(prefix) = Url::parse(&rule.prefix) else {
        return false;
    };
    let (Some((ra, rc, rp)), Some((ta, tc, tp))) =
        (azure_parts(&prefix, account), azure_parts(root, account))
    else {
        return false;
    };
    let accounts_agree = match (ra, ta) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(&b),
        _ => false,
    };
    accounts_agree && rc == tc && tp.starts_with(&rp)
}

fn config_err(kind: StoreKind, e: impl std::fmt::Display) -> StorageError {
    StorageError::Config(format!("{kind:?} store: {e}"))
}

/// A store and its signer (the same object behind two traits), the S3 client for STS, the
/// signing credential's expiry when known, and Azure's shared key when it signs.
type StoreAndSigner = (
    Arc<dyn ObjectStore>,
    Arc<dyn Signer>,
    Option<Arc<object_store::aws::AmazonS3>>,
    Option<Arc<std::sync::atomic::AtomicI64>>,
    Option<AzureSharedKey>,
);

/// The well-known account key of Azurite and the legacy storage emulator (public).
const EMULATOR_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The account key an Azure builder will sign with, if it signs with one: an access key and no
/// other credential (bearer token, SAS, service principal), or the emulator's default.
fn azure_shared_key(b: &MicrosoftAzureBuilder) -> Option<AzureSharedKey> {
    use object_store::azure::AzureConfigKey as K;
    let get = |k: K| b.get_config_value(&k).filter(|v| !v.is_empty());
    let emulator = get(K::UseEmulator).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // object_store's order: the emulator takes an access key first, then a bearer token or a
    // SAS, else its default key; elsewhere a bearer token comes before an access key.
    let key = match (get(K::AccessKey), emulator) {
        (Some(k), true) => k,
        (None, true) if get(K::Token).is_none() && get(K::SasKey).is_none() => {
            EMULATOR_ACCOUNT_KEY.to_owned()
        }
        (Some(k), false) if get(K::Token).is_none() => k,
        _ => return None,
    };
    let account =
        get(K::AccountName).or_else(|| emulator.then(|| "devstoreaccount1".to_owned()))?;
    Some(AzureSharedKey { account, key })
}

/// Fail fast when a store is unreachable: recipients get a retryable 5xx within seconds
/// instead of waiting for the default three-minute retry budget.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Defaults applied before the configured settings (which may override them).
const DEFAULTS: &[(&str, &str)] = &[("connect_timeout", "5s"), ("timeout", "60s")];

fn build(
    kind: StoreKind,
    bucket_url: &str,
    options: &[(String, String)],
    assume_role: Option<super::assume_role::AssumeRoleSettings>,
) -> Result<StoreAndSigner, StorageError> {
    match kind {
        StoreKind::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(bucket_url)
                .with_retry(retry());
            for (k, v) in DEFAULTS
                .iter()
                .map(|(k, v)| (*k, *v))
                .chain(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                b = b.with_config(k.parse().map_err(|e| config_err(kind, e))?, v);
            }
            let mut expiry = None;
            if let Some(settings) = assume_role {
                // The base credentials (static keys or the environment) only call STS.
                let base = b.clone().build().map_err(|e| config_err(kind, e))?;
                let region = options
                    .iter()
                    .find(|(k, _)| k == "aws_region")
                    .map_or_else(|| "us-east-1".to_owned(), |(_, v)| v.clone());
                let provider = Arc::new(super::assume_role::AssumeRoleProvider::new(
                    base.credentials().clone(),
                    settings,
                    region,
                ));
                expiry = Some(provider.expiry_handle());
                b = b.with_credentials(provider);
            }
            let s = Arc::new(b.build().map_err(|e| config_err(kind, e))?);
            Ok((s.clone(), s.clone(), Some(s), expiry, None))
        }
        StoreKind::Azure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(bucket_url)
                .with_retry(retry());
            for (k, v) in DEFAULTS
                .iter()
                .map(|(k, v)| (*k, *v))
                .chain(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                b = b.with_config(k.parse().map_err(|e| config_err(kind, e))?, v);
            }
            let shared_key = azure_shared_key(&b);
            let s = Arc::new(b.build().map_err(|e| config_err(kind, e))?);
            Ok((s.clone(), s, None, None, shared_key))
        }
        StoreKind::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(bucket_url)
                .with_retry(retry());
            for (k, v) in DEFAULTS
                .iter()
                .map(|(k, v)| (*k, *v))
                .chain(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                b = b.with_config(k.parse().map_err(|e| config_err(kind, e))?, v);
            }
            let s = Arc::new(b.build().map_err(|e| config_err(kind, e))?);
            Ok((s.clone(), s, None, None, None))
        }
        StoreKind::Local => Err(StorageError::Unsupported(bucket_url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, kind: StoreKind, opts: &[(&str, &str)]) -> StorageRule {
        StorageRule {
            assume_role: None,
            directory: None,
            prefix: prefix.to_owned(),
            kind,
            options: opts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_secrets_stay_out_of_debug_output() {
        let r = StoreRegistry::new(vec![
            rule("s3://b/", StoreKind::S3, &[("aws_region", "eu-west-1")]),
            rule(
                "s3://b/special/",
                StoreKind::S3,
                &[("aws_secret_access_key", "TOPSECRET")],
            ),
        ]);
        let url = Url::parse("s3://b/special/t/").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            r.rule_for(&url).map(|r| r.prefix.as_str()),
            Some("s3://b/special/")
        );
        assert!(!format!("{r:?}").contains("TOPSECRET"));
    }

    #[test]
    fn azure_spellings_cover_each_other() {
        let r = StoreRegistry::new(vec![
            rule(
                "az://lake/wh/",
                StoreKind::Azure,
                &[("azure_storage_account_name", "acct")],
            ),
            rule(
                "abfss://other@acct.dfs.core.windows.net/",
                StoreKind::Azure,
                &[],
            ),
        ]);
        let url = |s: &str| Url::parse(s).unwrap_or_else(|e| unreachable!("{e}"));
        let hit = |s: &str| r.rule_for(&url(s)).map(|r| r.prefix.clone());
        assert_eq!(
            hit("abfss://lake@acct.dfs.core.windows.net/wh/t/").as_deref(),
            Some("az://lake/wh/")
        );
        assert_eq!(
            hit("abfss://lake@elsewhere.dfs.core.windows.net/wh/t/"),
            None
        );
        assert_eq!(hit("az://lake/other/t/"), None);
        assert_eq!(
            hit("az://other/t/").as_deref(),
            None,
            "an az:// root has no account unless the rule names one"
        );
    }

    #[test]
    fn stores_are_built_once_per_bucket_and_settings() {
        let r = StoreRegistry::new(vec![rule(
            "s3://b/",
            StoreKind::S3,
            &[
                ("aws_region", "us-east-1"),
                ("aws_access_key_id", "AKID"),
                ("aws_secret_access_key", "SECRET"),
            ],
        )]);
        let a = r
            .store_for(&Url::parse("s3://b/t1/").unwrap_or_else(|e| unreachable!("{e}")))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let b = r
            .store_for(&Url::parse("s3://b/t2/").unwrap_or_else(|e| unreachable!("{e}")))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(Arc::ptr_eq(&a.store, &b.store));
        let bad = StoreRegistry::new(vec![rule("s3://b/", StoreKind::S3, &[("nonsense", "x")])]);
        let e = bad.store_for(&Url::parse("s3://b/t/").unwrap_or_else(|e| unreachable!("{e}")));
        assert!(matches!(e, Err(StorageError::Config(_))), "{e:?}");
    }
}
