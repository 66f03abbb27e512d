//! The single authorization step of every table read.
//!
//! [`authorize_table`] is the only way to obtain an [`Authorized`] proof, and the service's
//! table-reading and URL-signing helpers take that proof as an argument. Its fields are
//! private to this module, so no other code path can fabricate one.
//!
//! ```compile_fail
//! use lakeshare::domain::policy::Authorized;
//! // The fields are private: a proof cannot be built outside the policy module.
//! let proof = Authorized { table: todo!(), principal: todo!(), filter: None };
//! ```

use crate::domain::model::{Principal, SharedTable};
use crate::domain::partition_filter::ResolvedFilter;

/// Proof that `principal` may read `table` (share granted, recipient active), with the
/// partition filter that applies to it.
#[derive(Debug, Clone)]
pub struct Authorized {
    table: SharedTable,
    principal: Principal,
    filter: Option<ResolvedFilter>,
}

impl Authorized {
    /// The authorized table.
    pub fn table(&self) -> &SharedTable {
        &self.table
    }
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    /// The mandatory partition filter (`None` = every file qualifies).
    pub fn partition_filter(&self) -> Option<&ResolvedFilter> {
        self.filter.as_ref()
    }

    /// Whether a file with these partition values may be handed to the caller (the
    /// recipient's partition filter; fails closed as [`ResolvedFilter::matches`] does).
    pub fn admits(
        &self,
        partition_values: &std::collections::BTreeMap<String, Option<String>>,
        partition_keys: &std::collections::HashMap<String, String>,
    ) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.matches(partition_values, partition_keys))
    }
}

/// Why access was refused. Ungranted and unknown objects are indistinguishable to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The share is not granted to the caller (answered exactly like a missing share).
    NotGranted,
}

/// Decides whether `principal` may read `table`.
pub fn authorize_table(principal: &Principal, table: SharedTable) -> Result<Authorized, Denial> {
    if principal.grants.covers(&table.share) {
        let filter = table
            .partition_spec
            .as_ref()
            .map(|spec| spec.resolve(&principal.properties));
        Ok(Authorized {
            table,
            principal: principal.clone(),
            filter,
        })
    } else {
        Err(Denial::NotGranted)
    }
}

/// Whether `principal` may see share `share` in listings.
pub fn may_see_share(principal: &Principal, share: &str) -> bool {
    principal.grants.covers(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Grants, PrincipalKind};
    use crate::storage::location::TableLocation;

    fn table(share: &str) -> SharedTable {
        SharedTable {
            url_ttl_ms: None,
            share: share.into(),
            share_id: "sid".into(),
            schema: "s".into(),
            name: "t".into(),
            id: "id".into(),
            location: TableLocation::parse("/t", std::path::Path::new("/"))
                .unwrap_or_else(|e| unreachable!("{e}")),
            history_shared: false,
            start_version: 0,
            partition_spec: None,
        }
    }

    #[test]
    fn only_granted_shares_are_readable() {
        let p = Principal {
            recipient_id: "r".into(),
            recipient_name: "r".into(),
            token_prefix: "lks_abcd".into(),
            kind: PrincipalKind::Recipient,
            grants: Grants::Shares(vec!["Sales".into()]),
            properties: Default::default(),
        };
        assert!(authorize_table(&p, table("sales")).is_ok());
        assert_eq!(
            authorize_table(&p, table("hr")).err(),
            Some(Denial::NotGranted)
        );
        assert!(may_see_share(&p, "SALES"));
        assert!(!may_see_share(&p, "hr"));
    }
}
