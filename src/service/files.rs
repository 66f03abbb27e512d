//! get_file: serving data and deletion-vector files of local tables through signed URLs.
//!
//! Checks, in order: the signature and expiry (key may be the current one or one retired
//! less than one URL lifetime ago), the table, the recipient's current state and grant (so
//! a revoked recipient's outstanding URLs stop working), and that the file resolves under
//! the table root after following symlinks.

use super::{Service, ServiceError};
use crate::domain::model::{CONFIG_TOKEN_RECIPIENT_ID, Grants, Principal, PrincipalKind};
use crate::domain::policy::authorize_table;
use crate::storage::local::{FileUrlClaims, decode_path, display_name, verify};
use crate::storage::range::{self, ByteRange, FileBody};

/// A file request as it arrives: the path segment and the signed query parameters.
#[derive(Debug, Clone, Default)]
pub struct FileRequest {
    /// Encoded file reference (path segment).
    pub file: String,
    /// File-name segment (must match the file reference).
    pub name: String,
    /// `t`: table key.
    pub table: Option<String>,
    /// `r`: recipient id.
    pub recipient: Option<String>,
    /// `exp`: expiry in seconds.
    pub expires: Option<String>,
    /// `kid`: key id.
    pub key_id: Option<String>,
    /// `sig`: signature.
    pub signature: Option<String>,
    /// `sp`: the pre-signed marker, always `r` (a constant of the URL scheme: any other value
    /// is refused, as if it were signed).
    pub marker: Option<String>,
    /// Parameters a signed URL never carries, and repeated ones.
    pub unexpected: Vec<String>,
    /// `Range` header.
    pub range: Option<String>,
    /// HEAD request (no body).
    pub head: bool,
}

fn denied(why: &str) -> ServiceError {
    ServiceError::Forbidden(format!("access to this file is denied: {why}"))
}

impl Service {
    /// Opens a signed file for download.
    pub async fn get_file(&self, req: &FileRequest) -> Result<FileBody, ServiceError> {
        let field = |v: &Option<String>, name: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| denied(&format!("missing '{name}' parameter")))
        };
        let claims = FileUrlClaims {
            log_path: decode_path(&req.file).map_err(|_| denied("malformed file reference"))?,
            table_key: field(&req.table, "t")?,
            recipient_id: field(&req.recipient, "r")?,
            expires_at_s: field(&req.expires, "exp")?
                .parse()
                .map_err(|_| denied("malformed 'exp'"))?,
            key_id: field(&req.key_id, "kid")?,
        };
        if req.marker.as_deref() != Some("r") {
            return Err(denied("the 'sp' parameter must be 'r', as signed"));
        }
        if let Some(p) = req.unexpected.first() {
            return Err(denied(&format!(
                "unexpected or repeated parameter '{p}' (a signed URL carries t, r, exp, kid, \
                 sp and sig once each)"
            )));
        }
        if display_name(&claims.log_path) != req.name {
            return Err(denied("the file name does not match the signed file"));
        }
        let sig = field(&req.signature, "sig")?;
        let now = self.now_ms();
        verify(
            &self.inner.keyring,
            &claims,
            &sig,
            now,
            self.inner.settings.url_ttl_ms,
        )?;
        let table = self
            .inner
            .catalog
            .get_table_by_id(&claims.table_key)
            .await?
            .ok_or_else(|| denied("the table is no longer shared"))?;
        // The same authorization step as every other table read, for the recipient the URL
        // was issued to, with its grants as they are now.
        let no_longer = || denied("the recipient is no longer granted this table");
        let principal = self
            .url_principal(&claims.recipient_id)
            .await?
            .ok_or_else(no_longer)?;
        let auth = authorize_table(&principal, table).map_err(|_| no_longer())?;
        let path = auth.table().location.resolve_local_file(&claims.log_path)?;
        let range = ByteRange::parse(req.range.as_deref());
        Ok(range::open(&path, range, req.head).await?)
    }
}

impl Service {
    /// The principal a signed URL was issued to, as it is now (`None` if it no longer exists
    /// or was revoked).
    async fn url_principal(&self, recipient_id: &str) -> Result<Option<Principal>, ServiceError> {
        let settings = &self.inner.settings;
        Ok(match recipient_id {
            "anonymous" => settings.allow_anonymous.then(Principal::anonymous),
            CONFIG_TOKEN_RECIPIENT_ID => settings
                .config_token_hash
                .is_some()
                .then(|| Principal::config_token(String::new())),
            id => match self.inner.catalog.active_recipient_name(id).await? {
                None => None,
                Some(name) => Some(Principal {
                    recipient_id: id.to_owned(),
                    recipient_name: name,
                    token_prefix: String::new(),
                    kind: PrincipalKind::Recipient,
                    grants: Grants::Shares(
                        self.inner.catalog.granted_shares(id, self.now_ms()).await?,
                    ),
                    properties: Default::default(),
                }),
            },
        })
    }
}
