//! Where tables live and how recipients get at their files: table locations, the
//! [`signer::UrlSigner`] trait (one implementation per store), signing keys, and local file
//! serving for tables on local disk.
//!
//! Nothing here knows about recipients' grants or the protocol; the service passes in what
//! it has already authorized.

pub mod error;
pub mod keyring;
pub mod local;
pub mod location;
pub mod range;
pub mod signer;
