//! get_table_metadata: exactly two NDJSON lines, protocol and metaData.

use super::query::NdjsonResponse;
use super::resolve::VersionSpec;
use super::{Service, ServiceError, format};
use crate::domain::model::Principal;
use crate::protocol::capabilities::Capabilities;

impl Service {
    /// `GET .../metadata` with optional `version` or `timestamp`.
    #[allow(clippy::too_many_arguments)]
    pub async fn get_table_metadata(
        &self,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
        caps: &Capabilities,
        version: Option<&str>,
        timestamp: Option<&str>,
    ) -> Result<NdjsonResponse, ServiceError> {
        let spec = match (version, timestamp) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::InvalidParameter(
                    "Please only provide one of: version,timestamp".to_owned(),
                ));
            }
            (Some(v), None) => VersionSpec::Version(v.trim().parse().map_err(|_| {
                ServiceError::InvalidParameter(format!(
                    "'version' must be a whole number, got '{v}'"
                ))
            })?),
            (None, Some(t)) => VersionSpec::Timestamp(t.to_owned()),
            (None, None) => VersionSpec::Latest,
        };
        let auth = self.authorize(principal, share, schema, table).await?;
        let resolved = self.resolve(&auth, spec).await?;
        let fmt = format::negotiate(caps, &resolved.info, auth.table())?;
        let [protocol, metadata] = format::head_lines(fmt, &resolved.info, auth.table())?;
        Ok(NdjsonResponse::fixed(
            resolved.snapshot.version(),
            fmt,
            None,
            vec![protocol, metadata],
        ))
    }
}
