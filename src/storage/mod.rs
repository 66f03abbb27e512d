//! Where tables live and how recipients get at their files: table locations (local disk, S3,
//! Azure, GCS), storage settings and object stores (`cloud`), the [`signer::UrlSigner`] trait
//! with one implementation per kind of store (`local` for Lakeshare-served files,
//! `object_signer` for the cloud stores' own pre-signed URLs), signing keys, and local file
//! serving.
//!
//! Nothing here knows about recipients' grants or the protocol; the service passes in what
//! it has already authorized.

pub mod assume_role;
pub mod azure_sas;
pub mod cloud;
pub mod error;
pub mod keyring;
pub mod local;
pub mod location;
pub mod object_signer;
pub mod range;
pub mod signer;
pub mod temp_creds;
pub mod temp_issuer;
