//! Domain vocabulary shared by the catalog, the service and the CLI: shared objects,
//! recipients, principals, and the authorization proof. No I/O happens here.

pub mod async_query;
pub mod clock;
pub mod limits;
pub mod model;
pub mod names;
pub mod partition_filter;
pub mod policy;
pub mod token;
