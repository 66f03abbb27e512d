//! Issues directory-access credentials (see [`super::temp_creds`]) over HTTP: STS for S3 and
//! GCS, local signing for Azure. Only locations whose storage settings enable
//! `temporaryCredentials` get any.

use std::sync::Arc;

use object_store::aws::{AwsAuthorizer, AwsCredential};
use url::Url;

use super::cloud::{StorageRule, StoreRegistry};
use super::error::StorageError;
use super::location::StoreKind;
use super::temp_creds::{
    DirectorySas, IssuedCredential, STS_MIN_SECONDS, ServiceAccountKey, TempCredential,
    bucket_and_prefix, gcs_access_boundary, gcs_exchange_form, gcs_jwt_assertion,
    parse_sts_response, s3_session_policy, sts_params, sts_session_name,
};

const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// Sends a SigV4-signed STS request (form parameters `params`) and parses the credentials.
pub(crate) async fn call_sts(
    http: &reqwest::Client,
    base: &AwsCredential,
    region: &str,
    endpoint: &str,
    params: &std::collections::BTreeMap<&'static str, String>,
) -> Result<(TempCredential, i64), StorageError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(object_store::client::HttpRequestBody::from(body.clone()))
        .map_err(|e| StorageError::Config(format!("STS endpoint '{endpoint}': {e}")))?;
    AwsAuthorizer::new(base, "sts", region)
        .with_sign_payload(true)
        .try_authorize(&mut request, None)
        .map_err(|e| unavailable("signing the STS request", e))?;
    let response = http
        .post(endpoint)
        .headers(request.headers().clone())
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable("STS unreachable", e))?;
    let text = response
        .text()
        .await
        .map_err(|e| unavailable("STS response", e))?;
    parse_sts_response(&text)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("{what}: {e}"))
}

/// Issues temporary credentials for tables under storage locations that allow it.
#[derive(Debug)]
pub struct TempCredentialIssuer {
    registry: Arc<StoreRegistry>,
    http: reqwest::Client,
}

impl TempCredentialIssuer {
    /// An issuer over the registry's storage settings.
    pub fn new(registry: Arc<StoreRegistry>) -> Self {
        Self {
            registry,
            http: reqwest::Client::new(),
        }
    }

    /// Whether directory access is configured for `root`.
    pub fn enabled_for(&self, root: &Url) -> bool {
        self.rule(root).is_some()
    }

    fn rule(&self, root: &Url) -> Option<&StorageRule> {
        self.registry
            .rule_for(root)
            .filter(|r| r.directory.is_some())
    }

    /// Credentials for the directory `root`, valid for `validity_s` seconds (STS may shorten
    /// it; the returned expiry is the real one).
    pub async fn issue(
        &self,
        root: &Url,
        recipient: &str,
        validity_s: i64,
        now_ms: i64,
    ) -> Result<IssuedCredential, StorageError> {
        let rule = self.rule(root).ok_or_else(|| {
            StorageError::Config("directory access is not enabled for this location".into())
        })?;
        let (credential, expiration_ms) = match rule.kind {
            StoreKind::S3 => self.aws(rule, root, recipient, validity_s).await?,
            StoreKind::Azure => azure(rule, root, validity_s, now_ms)?,
            StoreKind::Gcs => self.gcs(rule, root, now_ms).await?,
            StoreKind::Local => {
                return Err(StorageError::Config(
                    "local tables have no directory access".into(),
                ));
            }
        };
        Ok(IssuedCredential {
            location: root.to_string(),
            credential,
            expiration_ms,
        })
    }

    async fn aws(
        &self,
        rule: &StorageRule,
        root: &Url,
        recipient: &str,
        validity_s: i64,
    ) -> Result<(TempCredential, i64), StorageError> {
        let directory = rule.directory.clone().unwrap_or_default();
        let region = rule.option("aws_region").unwrap_or("us-east-1").to_owned();
        let base: Arc<AwsCredential> = match (
            rule.option("aws_access_key_id"),
            rule.option("aws_secret_access_key"),
        ) {
            (Some(id), Some(secret)) => Arc::new(AwsCredential {
                key_id: id.to_owned(),
                secret_key: secret.to_owned(),
                token: rule.option("aws_session_token").map(str::to_owned),
            }),
            _ => {
                let store = self.registry.store_for(root)?;
                let s3 = store
                    .s3
                    .ok_or_else(|| StorageError::Config("not an S3 location".into()))?;
                s3.credentials()
                    .get_credential()
                    .await
                    .map_err(|e| unavailable("AWS credentials", e))?
            }
        };
        let (bucket, prefix) = bucket_and_prefix(root);
        let policy = s3_session_policy(&bucket, &prefix);
        let duration = validity_s.clamp(STS_MIN_SECONDS, 43_200);
        let params = sts_params(
            directory.role_arn.as_deref(),
            &sts_session_name(recipient),
            &policy,
            duration,
        );
        let endpoint = directory
            .sts_endpoint
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com/"));
        call_sts(&self.http, &base, &region, &endpoint, &params).await
    }

    async fn gcs(
        &self,
        rule: &StorageRule,
        root: &Url,
        now_ms: i64,
    ) -> Result<(TempCredential, i64), StorageError> {
        let key_json = match (
            rule.option("google_service_account_key"),
            rule.option("google_service_account"),
        ) {
            (Some(inline), _) => inline.to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| StorageError::Config(format!("service account key {path}: {e}")))?,
            _ => {
                return Err(StorageError::Config(
                    "GCS temporary credentials need a service account key".into(),
                ));
            }
        };
        let key: ServiceAccountKey = serde_json::from_str(&key_json)
            .map_err(|e| StorageError::Config(format!("service account key: {e}")))?;
        let token_uri = key
            .token_uri
            .clone()
            .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned());
        let assertion = gcs_jwt_assertion(&key, &token_uri, now_ms / 1000)?;
        let source: serde_json::Value = self
            .http
            .post(&token_uri)
            .header(http::header::CONTENT_TYPE, FORM)
            .body(form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", assertion),
            ]))
            .send()
            .await
            .map_err(|e| unavailable("OAuth token endpoint unreachable", e))?
            .json()
            .await
            .map_err(|e| unavailable("OAuth token response", e))?;
        let source_token = source["access_token"]
            .as_str()
            .ok_or_else(|| unavailable("OAuth token response", source["error"].to_string()))?;
        let (bucket, prefix) = bucket_and_prefix(root);
        let boundary = gcs_access_boundary(&bucket, &prefix);
        let sts = rule
            .directory
            .as_ref()
            .and_then(|d| d.sts_endpoint.clone())
            .unwrap_or_else(|| "https://sts.googleapis.com/v1/token".to_owned());
        let exchanged: serde_json::Value = self
            .http
            .post(&sts)
            .header(http::header::CONTENT_TYPE, FORM)
            .body(form(&gcs_exchange_form(source_token, &boundary)))
            .send()
            .await
            .map_err(|e| unavailable("GCS STS unreachable", e))?
            .json()
            .await
            .map_err(|e| unavailable("GCS STS response", e))?;
        let token = exchanged["access_token"]
            .as_str()
            .ok_or_else(|| unavailable("GCS STS refused", exchanged["error"].to_string()))?;
        let expires_in = exchanged["expires_in"].as_i64().unwrap_or(3600);
        Ok((
            TempCredential::GcpToken {
                oauth_token: token.to_owned(),
            },
            now_ms.saturating_add(expires_in.saturating_mul(1000)),
        ))
    }
}

fn azure(
    rule: &StorageRule,
    root: &Url,
    validity_s: i64,
    now_ms: i64,
) -> Result<(TempCredential, i64), StorageError> {
    let key = rule
        .option("azure_storage_account_key")
        .ok_or_else(|| StorageError::Config("Azure directory SAS needs the account key".into()))?;
    let account = rule
        .option("azure_storage_account_name")
        .map(str::to_owned)
        .or_else(|| {
            root.host_str()
                .and_then(|h| h.split('.').next())
                .map(str::to_owned)
        })
        .ok_or_else(|| StorageError::Config("no Azure account name".into()))?;
    let (container, prefix) = bucket_and_prefix(root);
    let fmt = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let expiry_ms = now_ms.saturating_add(validity_s.saturating_mul(1000));
    let (start, expiry) = (fmt(now_ms.saturating_sub(300_000)), fmt(expiry_ms));
    let allow_http = rule
        .option("allow_http")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sas = DirectorySas {
        account: &account,
        container: &container,
        directory: prefix.trim_end_matches('/'),
        start: &start,
        expiry: &expiry,
        protocol: if allow_http { "" } else { "https" },
    };
    Ok((
        TempCredential::AzureSas {
            sas_token: sas.token(key)?,
        },
        // The SAS expiry has whole seconds.
        expiry_ms - expiry_ms.rem_euclid(1000),
    ))
}
