//! Per-recipient limits with an injectable clock: requests per minute answer 429 with
//! `Retry-After` until the next minute; a daily bytes quota stops further file URLs until the
//! next UTC day.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use lakeshare::domain::clock::ManualClock;
use lakeshare::domain::limits::Limits;
use lakeshare::service::ServiceSettings;

const DAY: i64 = 86_400_000;

/// A server on the plain golden table with `limits`, at a manual clock.
async fn limited(limits: Limits, clock: &std::sync::Arc<ManualClock>) -> support::TestServer {
    support::start_with_clock(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings {
            limits,
            ..ServiceSettings::default()
        },
        clock.clone(),
    )
    .await
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    client.get(url).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn requests_per_minute_are_limited_until_the_next_minute() {
    let clock = ManualClock::at(100 * DAY + 10_000);
    let server = limited(
        Limits {
            requests_per_minute: Some(3),
            ..Limits::default()
        },
        &clock,
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/shares", server.base);
    for _ in 0..3 {
        assert_eq!(get(&client, &url, &server.token).await.status(), 200);
    }
    let refused = get(&client, &url, &server.token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["retry-after"].to_str().unwrap(),
        "50",
        "seconds until the next minute"
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errorCode"], "RESOURCE_EXHAUSTED");
    clock.set(100 * DAY + 60_000);
    assert_eq!(get(&client, &url, &server.token).await.status(), 200);
}

#[tokio::test]
async fn a_daily_files_quota_stops_file_urls_until_the_next_day() {
    let clock = ManualClock::at(100 * DAY + 1_000);
    let server = limited(
        Limits {
            // The table has 2 active files: the first query takes them; the second would
            // cross the quota.
            files_per_day: Some(3),
            ..Limits::default()
        },
        &clock,
    )
    .await;
    let client = reqwest::Client::new();
    let query = format!("{}/shares/s/schemas/d/tables/plain/query", server.base);
    let post = || {
        client
            .post(&query)
            .bearer_auth(&server.token)
            .json(&serde_json::json!({}))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().contains("\"file\""));
    let second = post().await.unwrap();
    assert_eq!(second.status(), 429, "the quota is used up");
    let retry: i64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, (DAY - 1_000) / 1000);
    // Listing still works: the quota is about data, not metadata.
    let list = get(&client, &format!("{}/shares", server.base), &server.token).await;
    assert_eq!(list.status(), 200);
    clock.set(101 * DAY);
    assert_eq!(post().await.unwrap().status(), 200, "a new day");
}

#[tokio::test]
async fn a_query_that_would_cross_the_daily_quota_hands_out_nothing() {
    let clock = ManualClock::at(100 * DAY + 1_000);
    let server = limited(
        Limits {
            // 2 active files in the table: the query would cross the limit.
            files_per_day: Some(1),
            ..Limits::default()
        },
        &clock,
    )
    .await;
    let client = reqwest::Client::new();
    let query = format!("{}/shares/s/schemas/d/tables/plain/query", server.base);
    let answer = client
        .post(&query)
        .bearer_auth(&server.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429, "refused whole, before any line");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errorCode"], "RESOURCE_EXHAUSTED");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("1 files per day"),
        "{body}"
    );
    // Nothing was counted: a one-file page (maxFiles) still fits.
    for _ in 0..1 {
        let page = client
            .post(&query)
            .bearer_auth(&server.token)
            .json(&serde_json::json!({"maxFiles": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.text().await.unwrap().matches("\"file\"").count(), 1);
    }
    let over = client
        .post(&query)
        .bearer_auth(&server.token)
        .json(&serde_json::json!({"maxFiles": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429, "1 file handed out, never 2");
}
