//! Meta-test over the route table: every recipient route refuses an anonymous caller, a
//! revoked token, an expired token, and a caller without a grant; signed file URLs stop
//! working when the recipient is revoked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use lakeshare::server::ROUTES;
use lakeshare::service::ServiceSettings;

fn concrete(path: &str) -> String {
    path.replace("{share}", "s")
        .replace("{schema}", "d")
        .replace("{table}", "plain")
        .replace("{queryId}", "q")
        .replace("{file}", "eA")
        .replace("{name}", "x.parquet")
}

async fn status(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> u16 {
    let mut req = client
        .request(method.parse().unwrap(), format!("{base}{}", concrete(path)))
        .body("{}");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_recipient_route_refuses_unauthorized_callers() {
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings::default(),
    )
    .await;
    let revoked = support::add_recipient(&server, "revoked", &["s"], None).await;
    support::revoke(&server, "revoked").await;
    let expired = support::add_recipient(&server, "expired", &["s"], Some(1)).await;
    let ungranted = support::add_recipient(&server, "ungranted", &[], None).await;
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (method, path) in ROUTES {
        if path.starts_with("/files/") {
            continue; // signed URLs carry their own credential; checked below
        }
        let base = &server.base;
        assert_eq!(
            status(&client, base, method, path, None).await,
            401,
            "{method} {path} anonymous"
        );
        assert_eq!(
            status(&client, base, method, path, Some("lks_not-a-token")).await,
            401,
            "{method} {path} unknown token"
        );
        assert_eq!(
            status(&client, base, method, path, Some(&revoked)).await,
            401,
            "{method} {path} revoked token"
        );
        assert_eq!(
            status(&client, base, method, path, Some(&expired)).await,
            401,
            "{method} {path} expired token"
        );
        if path.contains("{share}") {
            assert_eq!(
                status(&client, base, method, path, Some(&ungranted)).await,
                404,
                "{method} {path} without a grant"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} routes checked");
}

#[tokio::test]
async fn file_urls_of_a_revoked_recipient_stop_working() {
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings::default(),
    )
    .await;
    let token = support::add_recipient(&server, "later-revoked", &["s"], None).await;
    let client = reqwest::Client::new();
    let body = client
        .post(format!(
            "{}/shares/s/schemas/d/tables/plain/query",
            server.base
        ))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let url = body
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v.get("file")?.get("url")?.as_str()?.to_owned())
        })
        .expect("a file line");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    support::revoke(&server, "later-revoked").await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn activation_links_issue_a_working_profile_exactly_once() {
    use lakeshare::catalog::{CatalogStore, NewRecipient};
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings::default(),
    )
    .await;
    let catalog = lakeshare::catalog::sql::SqlCatalog::open(
        &server._dir.path().join("state.db").to_string_lossy(),
    )
    .await
    .unwrap();
    catalog
        .create_recipient(
            &NewRecipient {
                name: "invitee".to_owned(),
                shares: vec!["s".to_owned()],
                ..NewRecipient::default()
            },
            None,
            0,
        )
        .await
        .unwrap();
    let code = "activation-code-of-test";
    let hash = lakeshare::domain::token::hash(code);
    let far = i64::MAX / 2;
    catalog
        .create_activation(
            "invitee",
            &lakeshare::catalog::NewActivation {
                code_hash: hash,
                expires_at_ms: far,
                token_expires_at_ms: None,
            },
            0,
        )
        .await
        .unwrap();
    let root = server.base.trim_end_matches("/delta-sharing").to_owned();
    let client = reqwest::Client::new();
    let info = format!("{root}/api/2.1/unity-catalog/public/data_sharing_activation_info/{code}");
    let redeem = format!("{root}/api/2.1/unity-catalog/public/data_sharing_activation/{code}");
    assert_eq!(client.get(&info).send().await.unwrap().status(), 200);
    // A browser (or a link scanner) gets the landing page; nothing is redeemed.
    let page = client
        .get(&redeem)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Download the profile file")
    );
    assert_eq!(client.head(&redeem).send().await.unwrap().status(), 200);
    assert_eq!(
        client.get(&info).send().await.unwrap().status(),
        200,
        "still unused"
    );
    let profile: serde_json::Value = client
        .get(&redeem)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["shareCredentialsVersion"], 1);
    assert_eq!(profile["endpoint"].as_str(), Some(server.base.as_str()));
    let token = profile["bearerToken"].as_str().unwrap().to_owned();
    let shares = client
        .get(format!("{}/shares", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(shares.status(), 200, "the activated token works");
    assert_eq!(
        client
            .get(&redeem)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "second redemption"
    );
    assert_eq!(client.head(&redeem).send().await.unwrap().status(), 404);
    assert_eq!(
        client.get(&info).send().await.unwrap().status(),
        404,
        "used link"
    );
    let unknown = format!("{root}/api/2.1/unity-catalog/public/data_sharing_activation/nope");
    assert_eq!(client.get(&unknown).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn every_admin_route_refuses_callers_without_an_admin_token() {
    use lakeshare::server::admin::{ADMIN_ROUTES, AdminState, build_admin_router};
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings::default(),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", listener.local_addr().unwrap());
    let app = build_admin_router(AdminState {
        service: server.service.clone(),
        recipient_origin: "http://127.0.0.1:1".to_owned(),
        local_actor: None,
        audit: None,
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = reqwest::Client::new();
    for (method, path) in ADMIN_ROUTES {
        let url = format!("{admin}{}", path.replace("{name}", "s"));
        for token in [
            None,
            Some("lks_not-an-admin-token"),
            Some(server.token.as_str()),
        ] {
            let mut req = client.request(method.parse().unwrap(), &url).body("{}");
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {token:?}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error_code"], "UNAUTHENTICATED");
        }
    }
    let probe = client
        .get(format!("{admin}/.well-known/databricks-config"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 404);
}
