//! get_table_metadata: exactly two NDJSON lines, protocol and metaData.

use super::query::NdjsonResponse;
use super::resolve::{TableRef, VersionSpec};
use super::{Service, ServiceError};
use crate::domain::model::Principal;
use crate::protocol::capabilities::Capabilities;

impl Service {
    /// `GET .../metadata` with optional `version` or `timestamp`.
    pub async fn get_table_metadata(
        &self,
        principal: &Principal,
        t: TableRef<'_>,
        caps: &Capabilities,
        version: Option<&str>,
        timestamp: Option<&str>,
    ) -> Result<NdjsonResponse, ServiceError> {
        // Authorize first: callers learn nothing about tables they may not read.
        let auth = self
            .authorize(principal, t.share, t.schema, t.table)
            .await?;
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
        let opened = self.open_table(&auth, spec, caps).await?;
        Ok(NdjsonResponse::fixed(
            opened.resolved.snapshot.version(),
            opened.format,
            None,
            opened.head.to_vec(),
        ))
    }
}
