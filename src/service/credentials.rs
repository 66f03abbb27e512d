//! Directory access: `POST .../temporary-table-credentials`. The same authorization step as
//! every data path, then the history gate, the location check, and the storage's issuer.
//! Tables with a restriction enforced file by file (a history floor, a partition filter) never
//! get directory access: it would bypass the restriction
//! ([`crate::domain::model::SharedTable::url_only_reason`]).

use super::{Service, ServiceError};
use crate::domain::model::{Principal, SharedTable};
use crate::protocol::credentials as wire;
use crate::storage::temp_creds::TempCredential;

impl Service {
    /// Whether listings advertise `accessModes: ["url", "dir"]` for `table`.
    pub(crate) fn directory_access_offered(&self, _principal: &Principal, t: &SharedTable) -> bool {
        t.url_only_reason().is_none()
            && self
                .inner
                .temp_credentials
                .as_ref()
                .is_some_and(|i| i.enabled_for(t.location.url()))
    }

    /// Temporary read-only credentials for the table's directory.
    pub async fn temporary_table_credentials(
        &self,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
        req: &wire::TemporaryCredentialsRequest,
    ) -> Result<wire::TemporaryCredentialsResponse, ServiceError> {
        let auth = self.authorize(principal, share, schema, table).await?;
        let t = auth.table();
        let name = t.qualified_name();
        if !t.history_shared {
            return Err(ServiceError::InvalidParameter(format!(
                "temporary credentials need history sharing, which is not enabled for table \
                 '{name}'"
            )));
        }
        if let Some(why) = t.url_only_reason().or_else(|| {
            auth.partition_filter()
                .is_some()
                .then(|| "it is shared with a partition filter".to_owned())
        }) {
            return Err(ServiceError::Forbidden(format!(
                "directory access is not available for table '{name}' because {why}: read it \
                 through query URLs"
            )));
        }
        let issuer = self
            .inner
            .temp_credentials
            .as_ref()
            .filter(|i| i.enabled_for(t.location.url()))
            .ok_or_else(|| {
                ServiceError::InvalidParameter(format!(
                    "directory access is not offered for table '{name}' (its accessModes are \
                     url only)"
                ))
            })?;
        let root = t.location.url();
        if let Some(loc) = req.location.as_deref().filter(|l| !l.is_empty()) {
            let dotted = loc
                .split('/')
                .any(|seg| seg == ".." || seg == "." || seg.eq_ignore_ascii_case("%2e%2e"));
            // The same spelling rules as configured locations (s3a → s3, encoding of spaces).
            let inside =
                crate::storage::location::TableLocation::parse(loc, std::path::Path::new("/"))
                    .is_ok_and(|l| l.url().as_str().starts_with(root.as_str()));
            if dotted || !inside {
                return Err(ServiceError::InvalidParameter(format!(
                    "location '{loc}' is not valid: it must be the same as or under this \
                     table's configured storage location."
                )));
            }
        }
        let validity = self.inner.settings.temp_credential_validity_s.max(1);
        let issued = issuer
            .issue(root, &principal.recipient_name, validity, self.now_ms())
            .await
            .map_err(|e| {
                tracing::warn!(table = %name, error = %e, "temporary credentials failed");
                ServiceError::Unavailable(format!(
                    "cannot issue temporary credentials for table '{name}' now; retry later"
                ))
            })?;
        let mut credentials = wire::TemporaryCredentials {
            location: issued.location,
            aws_temp_credentials: None,
            azure_user_delegation_sas: None,
            gcp_oauth_token: None,
            expiration_time: issued.expiration_ms,
        };
        match issued.credential {
            TempCredential::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                credentials.aws_temp_credentials = Some(wire::AwsTempCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token,
                });
            }
            TempCredential::AzureSas { sas_token } => {
                credentials.azure_user_delegation_sas = Some(wire::AzureSas { sas_token });
            }
            TempCredential::GcpToken { oauth_token } => {
                credentials.gcp_oauth_token = Some(wire::GcpOauthToken { oauth_token });
            }
        }
        Ok(wire::TemporaryCredentialsResponse { credentials })
    }
}
