//! The admin API's operations (Unity-Catalog-shaped): shares and their permissions,
//! recipients with activation links, token rotation.
//!
//! Recipients and grants are managed here through the same catalog methods the CLI uses;
//! tables and shares are in `admin_objects`. Changes are recorded as made by `admin:<name>`.

use super::{Service, ServiceError};
use crate::catalog::{NewActivation, NewRecipient, RecipientUpdate};
use crate::domain::model::RecipientInfo as Recipient;
use crate::domain::token;
use crate::protocol::admin as wire;

/// Lifetime of activation links issued by the admin API.
const ACTIVATION_LINK_TTL_MS: i64 = 7 * 24 * 3_600_000;

const ACTIVATION_PATH: &str = "/api/2.1/unity-catalog/public/data_sharing_activation/";

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidParameter(msg.into())
}

/// `activation` = (link, expiry of the token it will issue).
fn recipient_info(
    r: &Recipient,
    activation: Option<(String, Option<i64>)>,
    now: i64,
) -> wire::RecipientInfo {
    let activation_url = activation;
    let mut tokens: Vec<wire::RecipientTokenInfo> = r
        .tokens
        .iter()
        .filter(|t| t.revoked_at_ms.is_none() && t.expires_at_ms.is_none_or(|e| e > now))
        .map(|t| wire::RecipientTokenInfo {
            id: t.prefix.clone(),
            activation_url: None,
            created_at: t.created_at_ms,
            expiration_time: t.expires_at_ms,
        })
        .collect();
    let activated = !tokens.is_empty();
    if let Some((url, token_expiry)) = activation_url {
        let id = format!(
            "activation-{}",
            url.rsplit('/')
                .next()
                .unwrap_or_default()
                .chars()
                .take(8)
                .collect::<String>()
        );
        tokens.push(wire::RecipientTokenInfo {
            id,
            activation_url: Some(url),
            created_at: now,
            expiration_time: token_expiry,
        });
    }
    wire::RecipientInfo {
        name: r.name.clone(),
        authentication_type: "TOKEN".to_owned(),
        activated,
        comment: r.comment.clone(),
        created_at: r.created_at_ms,
        properties_kvpairs: wire::PropertiesKvPairs {
            properties: r.properties.clone(),
        },
        ip_access_list: wire::IpAccessList {
            allowed_ip_addresses: r.ip_access_list.clone(),
        },
        tokens,
        pending_activation_links: r
            .pending_links
            .iter()
            .filter(|l| l.expires_at_ms > now)
            .map(|l| wire::PendingActivationLink {
                created_at: l.created_at_ms,
                expiration_time: l.expires_at_ms,
                token_expiration_time: l.token_expires_at_ms,
            })
            .collect(),
        grants: r
            .grant_expiries
            .iter()
            .map(|(share, e)| wire::GrantEntry {
                share: share.clone(),
                expiration_time: *e,
            })
            .collect(),
    }
}

fn check_ips(list: &[String]) -> Result<(), ServiceError> {
    for ip in list {
        if ip.parse::<ipnet::IpNet>().is_err() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!(
                "'{ip}' in ip_access_list is not an IP address or CIDR (e.g. 10.0.0.0/8)"
            )));
        }
    }
    Ok(())
}

impl Service {
    /// Resolves an admin bearer token to the administrator's name.
    pub async fn admin_authenticate(&self, bearer: Option<&str>) -> Result<String, ServiceError> {
        let presented = bearer
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ServiceError::Unauthenticated("missing admin bearer token".to_owned())
            })?;
        self.inner
            .catalog
            .lookup_admin_token(&token::hash(presented), self.now_ms())
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("the admin token is not valid".into()))
    }

    async fn recipient(&self, name: &str) -> Result<Recipient, ServiceError> {
        self.inner
            .catalog
            .get_recipient(name)
            .await?
            .filter(|r| r.revoked_at_ms.is_none())
            .ok_or_else(|| ServiceError::NotFound(format!("Recipient '{name}' does not exist.")))
    }

    /// A new activation link (stored by the caller's catalog change, in its transaction).
    fn new_activation_link(
        &self,
        origin: &str,
        token_expires_at_ms: Option<i64>,
    ) -> (String, NewActivation) {
        let code = token::generate()
            .secret
            .trim_start_matches(token::TOKEN_PREFIX)
            .to_owned();
        let activation = NewActivation {
            code_hash: token::hash(&code),
            expires_at_ms: self.now_ms().saturating_add(ACTIVATION_LINK_TTL_MS),
            token_expires_at_ms,
        };
        let link = format!("{}{ACTIVATION_PATH}{code}", origin.trim_end_matches('/'));
        (link, activation)
    }

    /// `GET /shares/{name}/permissions`.
    pub async fn admin_share_permissions(
        &self,
        share: &str,
    ) -> Result<wire::PermissionsList, ServiceError> {
        let found =
            self.inner.catalog.get_share(share).await?.ok_or_else(|| {
                ServiceError::NotFound(format!("Share '{share}' does not exist."))
            })?;
        let now = self.now_ms();
        let recipients = self.inner.catalog.list_recipients().await?;
        Ok(wire::PermissionsList {
            privilege_assignments: recipients
                .into_iter()
                .filter(|r| r.revoked_at_ms.is_none())
                .filter(|r| {
                    r.grant_expiries.iter().any(|(s, e)| {
                        s.eq_ignore_ascii_case(&found.name) && e.is_none_or(|e| e > now)
                    })
                })
                .map(|r| wire::PrivilegeAssignment {
                    principal: r.name,
                    privileges: vec!["SELECT".to_owned()],
                })
                .collect(),
        })
    }

    /// `PATCH /shares/{name}/permissions`.
    pub async fn admin_update_share_permissions(
        &self,
        admin: &str,
        share: &str,
        update: &wire::UpdatePermissions,
    ) -> Result<wire::PermissionsList, ServiceError> {
        let now = self.now_ms();
        for change in &update.changes {
            for p in change.add.iter().chain(&change.remove) {
                if !p.eq_ignore_ascii_case("SELECT") {
                    return Err(bad(format!(
                        "unsupported privilege '{p}': shares only grant SELECT"
                    )));
                }
            }
            if !change.add.is_empty() {
                self.admin_catalog(admin)
                    .add_grant(&change.principal, share, None, now)
                    .await?;
            }
            if !change.remove.is_empty() {
                self.admin_catalog(admin)
                    .remove_grant(&change.principal, share)
                    .await?;
            }
        }
        self.admin_share_permissions(share).await
    }

    /// `POST /recipients`.
    pub async fn admin_create_recipient(
        &self,
        admin: &str,
        req: &wire::CreateRecipient,
        origin: &str,
    ) -> Result<wire::RecipientInfo, ServiceError> {
        if req
            .authentication_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("TOKEN"))
        {
            return Err(bad(
                "only authentication_type TOKEN is supported (open Delta Sharing)",
            ));
        }
        let ips = req
            .ip_access_list
            .clone()
            .unwrap_or_default()
            .allowed_ip_addresses;
        check_ips(&ips)?;
        let now = self.now_ms();
        let (link, activation) = self.new_activation_link(origin, req.expiration_time);
        // The recipient and its link are one change: both or neither.
        self.admin_catalog(admin)
            .create_recipient(
                &NewRecipient {
                    activation: Some(activation),
                    name: req.name.clone(),
                    shares: Vec::new(),
                    token_expires_at_ms: req.expiration_time,
                    properties: req
                        .properties_kvpairs
                        .clone()
                        .unwrap_or_default()
                        .properties,
                    ip_access_list: ips,
                    comment: req.comment.clone(),
                },
                None,
                now,
            )
            .await?;
        Ok(recipient_info(
            &self.recipient(&req.name).await?,
            Some((link, req.expiration_time)),
            now,
        ))
    }

    /// `GET /recipients`.
    pub async fn admin_list_recipients(&self) -> Result<wire::ListRecipients, ServiceError> {
        let now = self.now_ms();
        Ok(wire::ListRecipients {
            recipients: self
                .inner
                .catalog
                .list_recipients()
                .await?
                .iter()
                .filter(|r| r.revoked_at_ms.is_none())
                .map(|r| recipient_info(r, None, now))
                .collect(),
        })
    }

    /// `GET /recipients/{name}`.
    pub async fn admin_get_recipient(
        &self,
        name: &str,
    ) -> Result<wire::RecipientInfo, ServiceError> {
        Ok(recipient_info(
            &self.recipient(name).await?,
            None,
            self.now_ms(),
        ))
    }

    /// `PATCH /recipients/{name}`.
    pub async fn admin_update_recipient(
        &self,
        admin: &str,
        name: &str,
        req: &wire::UpdateRecipient,
    ) -> Result<wire::RecipientInfo, ServiceError> {
        if req.new_name.as_deref().is_some_and(|n| n != name) {
            return Err(bad("renaming a recipient is not supported"));
        }
        if req.expiration_time.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(bad(
                "expiration_time cannot be changed on an existing recipient: a token's expiry \
                 is fixed when it is issued; to change it, rotate the token \
                 (POST /recipients/{name}/rotate-token) or revoke the grant's share with an \
                 expiry (PATCH /shares/{share}/permissions)",
            ));
        }
        if req.owner.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(bad("owner is not supported by Lakeshare"));
        }
        let current = self.recipient(name).await?;
        let ips = req.ip_access_list.clone().map(|l| l.allowed_ip_addresses);
        if let Some(list) = &ips {
            check_ips(list)?;
        }
        let (set_properties, remove_properties) = match &req.properties_kvpairs {
            None => (Default::default(), Vec::new()),
            Some(p) => (
                p.properties.clone(),
                current
                    .properties
                    .keys()
                    .filter(|k| !p.properties.contains_key(*k))
                    .cloned()
                    .collect(),
            ),
        };
        self.admin_catalog(admin)
            .update_recipient(
                name,
                &RecipientUpdate {
                    set_properties,
                    remove_properties,
                    ip_access_list: ips,
                    comment: req.comment.clone(),
                },
            )
            .await?;
        self.admin_get_recipient(name).await
    }

    /// `DELETE /recipients/{name}`: revokes the recipient and all its tokens.
    pub async fn admin_delete_recipient(
        &self,
        admin: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        if self
            .admin_catalog(admin)
            .revoke_recipient(name, self.now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "Recipient '{name}' does not exist."
            )))
        }
    }

    /// `POST /recipients/{name}/rotate-token`: existing tokens expire after the given seconds
    /// (0 = now); a new activation link issues the next token.
    pub async fn admin_rotate_token(
        &self,
        admin: &str,
        name: &str,
        req: &wire::RotateToken,
        origin: &str,
    ) -> Result<wire::RecipientInfo, ServiceError> {
        if req.existing_token_expire_in_seconds < 0 {
            return Err(bad("existing_token_expire_in_seconds cannot be negative"));
        }
        let now = self.now_ms();
        let grace_ms = req.existing_token_expire_in_seconds.saturating_mul(1000);
        let (link, activation) = self.new_activation_link(origin, None);
        if !self
            .admin_catalog(admin)
            .rotate_token(name, None, Some(&activation), None, grace_ms, now)
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "Recipient '{name}' does not exist."
            )));
        }
        Ok(recipient_info(
            &self.recipient(name).await?,
            Some((link, None)),
            now,
        ))
    }

    /// `GET /recipients/{name}/share-permissions`.
    pub async fn admin_recipient_share_permissions(
        &self,
        name: &str,
    ) -> Result<wire::RecipientSharePermissions, ServiceError> {
        let r = self.recipient(name).await?;
        let now = self.now_ms();
        Ok(wire::RecipientSharePermissions {
            permissions_out: r
                .grant_expiries
                .iter()
                .filter(|(_, e)| e.is_none_or(|e| e > now))
                .map(|(share, _)| wire::ShareToPrivilegeAssignment {
                    share_name: share.clone(),
                    privilege_assignments: vec![wire::PrivilegeAssignment {
                        principal: r.name.clone(),
                        privileges: vec!["SELECT".to_owned()],
                    }],
                })
                .collect(),
        })
    }
}

/// Default and longest lifetime of an admin token created through the API.
const ADMIN_TOKEN_DEFAULT_S: i64 = 90 * 24 * 3600;
const ADMIN_TOKEN_MAX_S: i64 = 400 * 24 * 3600;

fn admin_token_entry(t: &crate::catalog::AdminTokenInfo, now: i64) -> wire::AdminTokenEntry {
    wire::AdminTokenEntry {
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        state: if t.revoked_at_ms.is_some() {
            "revoked"
        } else if t.expires_at_ms.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
        .to_owned(),
        created_at: t.created_at_ms,
        expiration_time: t.expires_at_ms,
        revoked_at: t.revoked_at_ms,
    }
}

impl Service {
    /// `GET /api/2.1/lakeshare/admin-tokens`.
    pub async fn admin_list_admin_tokens(&self) -> Result<wire::ListAdminTokens, ServiceError> {
        let now = self.now_ms();
        Ok(wire::ListAdminTokens {
            admin_tokens: self
                .inner
                .catalog
                .list_admin_tokens()
                .await?
                .iter()
                .map(|t| admin_token_entry(t, now))
                .collect(),
        })
    }

    /// `POST /api/2.1/lakeshare/admin-tokens`: a new token, shown once, stored hashed.
    pub async fn admin_create_admin_token(
        &self,
        admin: &str,
        req: &wire::CreateAdminToken,
    ) -> Result<wire::CreatedAdminToken, ServiceError> {
        let lifetime = req.lifetime_seconds.unwrap_or(ADMIN_TOKEN_DEFAULT_S);
        if !(1..=ADMIN_TOKEN_MAX_S).contains(&lifetime) {
            return Err(bad(format!(
                "lifetime_seconds must be between 1 and {ADMIN_TOKEN_MAX_S} (400 days)"
            )));
        }
        let now = self.now_ms();
        let new = token::generate();
        let expires = now.saturating_add(lifetime.saturating_mul(1000));
        self.admin_catalog(admin)
            .create_admin_token(&req.name, &new, Some(expires), now)
            .await?;
        let info = crate::catalog::AdminTokenInfo {
            name: req.name.clone(),
            prefix: new.display_prefix.clone(),
            created_at_ms: now,
            expires_at_ms: Some(expires),
            revoked_at_ms: None,
        };
        Ok(wire::CreatedAdminToken {
            token: new.secret,
            info: admin_token_entry(&info, now),
        })
    }

    /// `DELETE /api/2.1/lakeshare/admin-tokens/{prefix}`.
    pub async fn admin_revoke_admin_token(
        &self,
        admin: &str,
        prefix: &str,
    ) -> Result<(), ServiceError> {
        match self
            .admin_catalog(admin)
            .revoke_admin_tokens(None, Some(prefix), self.now_ms())
            .await?
        {
            0 => Err(ServiceError::NotFound(format!(
                "no live admin token with prefix '{prefix}'"
            ))),
            _ => Ok(()),
        }
    }
}
