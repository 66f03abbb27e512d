//! One file per endpoint group.

pub(crate) mod activation;
mod activation_page;
pub(crate) mod credentials;
pub(crate) mod files;
pub(crate) mod ops;
pub(crate) mod shares;
pub(crate) mod tables;
