//! Lakeshare: a Delta Sharing server.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view. Modules, from the wire inwards:
//! [`server`] (HTTP), [`service`] (the application layer), [`domain`] (vocabulary and the
//! authorization proof), [`hints`] (predicate pruning), [`delta`] (table reading),
//! [`storage`] (locations, signing, file serving), [`catalog`] (state store),
//! [`config`] and [`cli`] (wiring), [`protocol`] (wire types).

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod delta;
pub mod domain;
pub mod hints;
pub mod protocol;
pub mod server;
pub mod service;
pub mod storage;
