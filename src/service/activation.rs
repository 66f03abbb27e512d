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

/// What the landing page of an activation link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLanding {
    /// The recipient the link is for.
    pub recipient: String,
    /// Granted shares and their grant expiries (ms).
    pub shares: Vec<(String, Option<i64>)>,
    /// When the link stops working (ms).
    pub link_expires_at_ms: i64,
    /// When the token it issues expires (ms), if ever.
    pub token_expires_at_ms: Option<i64>,
}

impl Service {
    /// Redeems an activation code: issues the recipient's token and returns its profile, with
    /// `endpoint` as the sharing endpoint URL, and the recipient's name.
    pub async fn activate(
        &self,
        code: &str,
        endpoint: &str,
    ) -> Result<(ProfileV1, String), ServiceError> {
        let new = token::generate();
        let activation = self
            .inner
            .catalog
            .activate(&token::hash(code), &new, self.now_ms())
            .await?
            .ok_or_else(not_found)?;
        Ok((
            ProfileV1 {
                share_credentials_version: 1,
                endpoint: endpoint.to_owned(),
                bearer_token: new.secret,
                expiration_time: activation.token_expires_at_ms.and_then(iso),
            },
            activation.recipient_name,
        ))
    }

    /// The unused, unexpired activation behind `code` (404 otherwise), without redeeming it.
    async fn redeemable(&self, code: &str) -> Result<crate::catalog::Activation, ServiceError> {
        self.inner
            .catalog
            .activation_info(&token::hash(code), self.now_ms())
            .await?
            .ok_or_else(not_found)
    }

    /// What a partner opening the link in a browser is shown, without redeeming it: who the
    /// link is for, which shares (with their grant expiries), until when the link works and
    /// when the token it issues will expire.
    pub async fn activation_landing(&self, code: &str) -> Result<ActivationLanding, ServiceError> {
        let activation = self.redeemable(code).await?;
        let recipient = self
            .inner
            .catalog
            .get_recipient(&activation.recipient_name)
            .await?
            .filter(|r| r.revoked_at_ms.is_none())
            .ok_or_else(not_found)?;
        Ok(ActivationLanding {
            shares: recipient
                .shares
                .iter()
                .map(|s| {
                    let exp = recipient.grant_expiries.get(s).copied().flatten();
                    (s.clone(), exp)
                })
                .collect(),
            recipient: activation.recipient_name,
            link_expires_at_ms: activation.expires_at_ms,
            token_expires_at_ms: activation.token_expires_at_ms,
        })
    }

    /// Whether an activation code can still be redeemed (without redeeming it): the link's
    /// expiry, as JSON.
    pub async fn activation_info(&self, code: &str) -> Result<serde_json::Value, ServiceError> {
        let activation = self.redeemable(code).await?;
        Ok(serde_json::json!({
            "activationUrlExpirationTime": iso(activation.expires_at_ms),
            "tokenExpirationTime": activation.token_expires_at_ms.and_then(iso),
        }))
    }
}
