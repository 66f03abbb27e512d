//! The catalog conformance suite on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/catalog_suite.rs"]
mod catalog_suite;

#[tokio::test]
async fn sqlite_catalog_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        lakeshare::catalog::sql::SqlCatalog::open(&dir.path().join("s.db").to_string_lossy())
            .await
            .unwrap();
    catalog_suite::run(&store).await;
    let path = dir.path().join("s.db");
    catalog_suite::audit_is_append_only(&format!("sqlite://{}", path.display())).await;
}
