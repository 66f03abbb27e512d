//! Authentication: bearer token → [`Principal`].

use super::{Service, ServiceError};
use crate::domain::model::{Grants, Principal, PrincipalKind};
use crate::domain::token;

impl Service {
    /// Resolves the bearer token of a request. Unknown, revoked and expired tokens are refused
    /// (fail closed); a missing token is accepted only with `--allow-anonymous`.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, ServiceError> {
        let Some(presented) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
            if self.inner.settings.allow_anonymous {
                return Ok(Principal::anonymous());
            }
            return Err(ServiceError::Unauthenticated(
                "missing bearer token: send 'Authorization: Bearer <token>' from your profile"
                    .to_owned(),
            ));
        };
        let hash = token::hash(presented);
        if let Some(expected) = &self.inner.settings.config_token_hash
            && token::hashes_equal(expected, &hash)
        {
            return Ok(Principal::config_token(token::display_prefix(presented)));
        }
        let invalid = || ServiceError::Unauthenticated("the bearer token is not valid".into());
        let record = self
            .inner
            .catalog
            .lookup_token(&hash)
            .await?
            .ok_or_else(invalid)?;
        if !token::hashes_equal(&record.hash, &hash) {
            return Err(invalid());
        }
        if record.token_revoked_at_ms.is_some() || record.recipient_revoked_at_ms.is_some() {
            return Err(ServiceError::Unauthenticated(
                "the bearer token has been revoked".to_owned(),
            ));
        }
        if record.expires_at_ms.is_some_and(|exp| exp <= self.now_ms()) {
            return Err(ServiceError::Unauthenticated(
                "the bearer token has expired: ask your data provider for a new profile".into(),
            ));
        }
        let shares = self
            .inner
            .catalog
            .granted_shares(&record.recipient_id)
            .await?;
        Ok(Principal {
            recipient_id: record.recipient_id,
            recipient_name: record.recipient_name,
            token_prefix: record.prefix,
            kind: PrincipalKind::Recipient,
            grants: Grants::Shares(shares),
        })
    }
}
