//! Wire types of the Delta Sharing protocol: every JSON body, NDJSON line, request header and
//! profile file Lakeshare reads or writes on the recipient API.
//!
//! This module depends on no other Lakeshare module. Only these types are serialized to
//! recipients; domain types never are.

pub mod actions;
pub mod admin;
pub mod capabilities;
pub mod credentials;
pub mod error;
pub mod listing;
pub mod profile;
pub mod request;
