//! One-time activation links: the recipient fetches its profile once; the token is generated
//! at that moment (no secret is stored before), and the link answers 404 afterwards.

use super::{Service, ServiceError};
use crate::domain::token;
use crate::protocol::profile::ProfileV1;

fn not_found() -> ServiceError {
    ServiceError::NotFound(
        "this activation link is unknown, expired or already used; ask your data provider for a \
         new one"
            .to_owned(),
    )
}

fn iso(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl Service {
    /// Redeems an activation code: issues the recipient's token and returns its profile, with
    /// `endpoint` as the sharing endpoint URL.
    pub async fn activate(&self, code: &str, endpoint: &str) -> Result<ProfileV1, ServiceError> {
        let new = token::generate();
        let activation = self
            .inner
            .catalog
            .activate(&token::hash(code), &new, self.now_ms())
            .await?
            .ok_or_else(not_found)?;
        Ok(ProfileV1 {
            share_credentials_version: 1,
            endpoint: endpoint.to_owned(),
            bearer_token: new.secret,
            expiration_time: activation.token_expires_at_ms.and_then(iso),
        })
    }

    /// Whether an activation code can still be redeemed (without redeeming it): the link's
    /// expiry, as JSON.
    pub async fn activation_info(&self, code: &str) -> Result<serde_json::Value, ServiceError> {
        let activation = self
            .inner
            .catalog
            .activation_info(&token::hash(code), self.now_ms())
            .await?
            .ok_or_else(not_found)?;
        Ok(serde_json::json!({
            "activationUrlExpirationTime": iso(activation.expires_at_ms),
            "tokenExpirationTime": activation.token_expires_at_ms.and_then(iso),
        }))
    }
}
