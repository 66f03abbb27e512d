//! The HTTP layer (axum): router, extractors, error rendering and streamed NDJSON bodies.
//!
//! Handlers parse wire input, call one [`crate::service::Service`] method and render its
//! result. Nothing here reaches the catalog, Delta logs or storage.

pub mod admin;
pub mod audit;
pub mod conn;
mod error;
mod extract;
mod json_errors;
pub mod metrics;
mod ndjson;
pub mod router;
mod routes;
mod telemetry;

pub use router::{AppState, PUBLIC_ROUTES, ROUTES, build_router};
