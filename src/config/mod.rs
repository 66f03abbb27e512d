//! Configuration: the reference Delta Sharing server's YAML, accepted unchanged, validated
//! into [`Config`] at start-up. Nothing after start-up sees the raw form.

mod raw;
mod storage;
mod validate;

pub use validate::{
    Config, ConnectionLimits, MetricsListener, SslConfig, check_public_url, load, parse,
    parse_policy,
};
