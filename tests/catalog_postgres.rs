//! The catalog conformance suite on PostgreSQL. Needs `LAKESHARE_TEST_PG_URL` (a server URL
//! whose user may create databases); `scripts/test.sh` starts a private cluster and sets it.
//! Built only with `--features pg-tests`, so a plain `cargo test` does not need PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/catalog_suite.rs"]
mod catalog_suite;

use sqlx::Connection as _;

#[tokio::test]
async fn postgres_catalog_passes_the_suite() {
    let admin = std::env::var("LAKESHARE_TEST_PG_URL").expect(
        "LAKESHARE_TEST_PG_URL must point at a PostgreSQL server (scripts/test.sh starts one)",
    );
    let db = format!("lakeshare_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => panic!("LAKESHARE_TEST_PG_URL must end with /DATABASE"),
    };
    let store = lakeshare::catalog::sql::SqlCatalog::open(&url)
        .await
        .unwrap();
    catalog_suite::run(&store).await;
    catalog_suite::audit_is_append_only(&url).await;
}
