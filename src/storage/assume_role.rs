//! S3 credentials Lakeshare obtains itself with STS `AssumeRole` (`assumeRoleArn`), so that it
//! knows when they expire: they are renewed once less than half of the session is left, and
//! signers never announce a URL expiry beyond the credential's (a pre-signed URL dies with the
//! credential that signed it). Set `assumeRoleDurationSeconds` to at least twice the longest
//! URL lifetime and URLs always get their full lifetime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use object_store::CredentialProvider;
use object_store::aws::{AwsCredential, AwsCredentialProvider};

use super::temp_creds::TempCredential;
use super::temp_issuer::call_sts;

/// How the role is assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleSettings {
    /// The role.
    pub role_arn: String,
    /// Session length, seconds (STS allows 900 to the role's maximum).
    pub duration_s: i64,
    /// STS endpoint (default `https://sts.<region>.amazonaws.com/`).
    pub sts_endpoint: Option<String>,
}

/// A credential provider that assumes a role and renews it at half-life.
#[derive(Debug)]
pub struct AssumeRoleProvider {
    base: AwsCredentialProvider,
    settings: AssumeRoleSettings,
    region: String,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<(Arc<AwsCredential>, i64)>>,
    expiry_ms: Arc<AtomicI64>,
}

impl AssumeRoleProvider {
    /// A provider calling STS with `base` credentials.
    pub fn new(base: AwsCredentialProvider, settings: AssumeRoleSettings, region: String) -> Self {
        Self {
            base,
            settings,
            region,
            http: reqwest::Client::new(),
            cache: tokio::sync::Mutex::new(None),
            expiry_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Expiry (ms) of the credential handed out last (0 before the first).
    pub fn expiry_handle(&self) -> Arc<AtomicI64> {
        self.expiry_ms.clone()
    }
}

/// Whether a credential expiring at `expiry_ms`, from a session of `duration_s`, should be
/// renewed at `now_ms` (less than half of the session left).
pub fn needs_renewal(expiry_ms: i64, duration_s: i64, now_ms: i64) -> bool {
    expiry_ms - now_ms < duration_s.saturating_mul(500)
}

fn generic(e: impl std::fmt::Display) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: format!("assume role: {e}").into(),
    }
}

#[async_trait]
impl CredentialProvider for AssumeRoleProvider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cache = self.cache.lock().await;
        let now = chrono::Utc::now().timestamp_millis();
        if let Some((c, exp)) = cache.as_ref()
            && !needs_renewal(*exp, self.settings.duration_s, now)
        {
            return Ok(c.clone());
        }
        let base = self.base.get_credential().await?;
        let mut params: BTreeMap<&'static str, String> = BTreeMap::new();
        params.insert("Action", "AssumeRole".to_owned());
        params.insert("Version", "2011-06-15".to_owned());
        params.insert("RoleArn", self.settings.role_arn.clone());
        params.insert("RoleSessionName", "lakeshare-signer".to_owned());
        params.insert(
            "DurationSeconds",
            self.settings.duration_s.clamp(900, 43_200).to_string(),
        );
        let endpoint = self
            .settings
            .sts_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com/", self.region));
        let (cred, expiry) = call_sts(&self.http, &base, &self.region, &endpoint, &params)
            .await
            .map_err(generic)?;
        let TempCredential::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        } = cred
        else {
            return Err(generic("STS returned no AWS credentials"));
        };
        let c = Arc::new(AwsCredential {
            key_id: access_key_id,
            secret_key: secret_access_key,
            token: Some(session_token),
        });
        self.expiry_ms.store(expiry, Ordering::Relaxed);
        *cache = Some((c.clone(), expiry));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_renewed_at_half_life() {
        // A one-hour session: kept while more than 30 minutes are left.
        assert!(!needs_renewal(3_600_000, 3600, 0));
        assert!(!needs_renewal(3_600_000, 3600, 1_799_999));
        assert!(needs_renewal(3_600_000, 3600, 1_800_001));
        assert!(needs_renewal(0, 3600, 0));
    }
}
