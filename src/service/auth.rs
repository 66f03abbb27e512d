//! Authentication: bearer token → [`Principal`].

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Service, ServiceError};
use crate::domain::model::{Grants, Principal, PrincipalKind};
use crate::domain::token;

/// Whose token a request carried, once the token is known (valid or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The recipient's name.
    pub recipient_name: String,
    /// The token's display prefix.
    pub token_prefix: String,
}

impl Service {
    /// Resolves the bearer token of a request. Unknown, revoked and expired tokens are refused
    /// (fail closed); a missing token is accepted only with `--allow-anonymous`.
    ///
    /// `client_ip` is the caller's address (the TCP peer, or the forwarded address when the
    /// peer is a trusted proxy); a recipient with an IP allow list is refused (403) from
    /// anywhere else.
    ///
    /// Also returns who the token belongs to whenever that is known, whatever the outcome
    /// (a revoked or expired token, a refused address, a limit), so that refusals are
    /// attributed to the recipient in the audit log.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        client_ip: Option<IpAddr>,
    ) -> (Option<Identity>, Result<Principal, ServiceError>) {
        let mut identity = None;
        let result = self
            .authenticate_inner(bearer, client_ip, &mut identity)
            .await
            .and_then(|p| self.admit(p));
        self.inner.telemetry.auth(match &result {
            Ok(_) => "ok",
            Err(ServiceError::Unauthenticated(m)) if m.starts_with("missing") => "missing",
            Err(ServiceError::Unauthenticated(m)) if m.contains("revoked") => "revoked",
            Err(ServiceError::Unauthenticated(m)) if m.contains("expired") => "expired",
            Err(ServiceError::Unauthenticated(_)) => "invalid",
            Err(ServiceError::Forbidden(_)) => "ip_denied",
            Err(_) => "error",
        });
        (identity, result)
    }

    /// Counts the request against the recipient's per-minute limit.
    fn admit(&self, p: Principal) -> Result<Principal, ServiceError> {
        let limits = self.inner.settings.limits.for_recipient(&p.properties);
        self.inner
            .limits
            .admit_request(&p.recipient_id, &limits, self.now_ms())
            .map_err(ServiceError::from)?;
        Ok(p)
    }

    async fn authenticate_inner(
        &self,
        bearer: Option<&str>,
        client_ip: Option<IpAddr>,
        identity: &mut Option<Identity>,
    ) -> Result<Principal, ServiceError> {
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
            // Configured tokens may be short: identify them by a hash, never by their text.
            let p = Principal::config_token(format!("config:{}", &hex::encode(hash)[..8]));
            *identity = Some(Identity {
                recipient_name: p.recipient_name.clone(),
                token_prefix: p.token_prefix.clone(),
            });
            return Ok(p);
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
        *identity = Some(Identity {
            recipient_name: record.recipient_name.clone(),
            token_prefix: record.prefix.clone(),
        });
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
        if !ip_allowed(&record.ip_access_list, client_ip) {
            return Err(ServiceError::Forbidden(format!(
                "requests for recipient '{}' are not allowed from {}",
                record.recipient_name,
                client_ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string())
            )));
        }
        let shares = self
            .inner
            .catalog
            .granted_shares(&record.recipient_id, self.now_ms())
            .await?;
        Ok(Principal {
            recipient_id: record.recipient_id,
            recipient_name: record.recipient_name,
            token_prefix: record.prefix,
            kind: PrincipalKind::Recipient,
            grants: Grants::Shares(shares),
            properties: record.properties,
        })
    }
}

/// Whether `ip` is in the allow list (empty list = any address; an unparsable entry allows
/// nothing, and an unknown address is refused when a list exists).
pub(crate) fn ip_allowed(list: &[String], ip: Option<IpAddr>) -> bool {
    if list.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    list.iter().any(|entry| match entry.parse::<IpNet>() {
        Ok(net) => net.contains(&ip),
        Err(_) => entry.parse::<IpAddr>().is_ok_and(|single| single == ip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(ip_allowed(&[], ip("1.2.3.4")));
        let list = vec!["10.1.2.0/24".to_owned(), "192.168.0.7".to_owned()];
        assert!(ip_allowed(&list, ip("10.1.2.200")));
        assert!(ip_allowed(&list, ip("192.168.0.7")));
        assert!(ip_allowed(&list, ip("::ffff:10.1.2.9")));
        assert!(!ip_allowed(&list, ip("10.1.3.1")));
        assert!(!ip_allowed(&list, None));
        assert!(!ip_allowed(&["garbage".to_owned()], ip("10.1.2.1")));
    }
}
