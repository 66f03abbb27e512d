//! The `CatalogStore` conformance suite: one set of assertions every implementation runs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lakeshare::catalog::plan::{Scope, apply, plan, reconcile_config};
use lakeshare::catalog::{
    CatalogError, CatalogStore, Change, DeclaredState, GrantDecl, NewActivation, NewRecipient,
    Origin, RecipientDecl, RecipientUpdate, RegisteredTable, SchemaDecl, ShareDecl, TableDecl,
};
use lakeshare::domain::token;
use lakeshare::storage::keyring::SigningKey;

fn decls() -> Vec<ShareDecl> {
    let table = |name: &str, history: bool| TableDecl {
        name: name.to_owned(),
        id: None,
        location: format!("file:///data/{name}/"),
        history_shared: history,
        start_version: 0,
        partition_filter: None,
        source_name: None,
    };
    vec![
        ShareDecl {
            name: "Sales".to_owned(),
            comment: None,
            url_ttl_seconds: Some(900),
            schemas: vec![
                SchemaDecl {
                    name: "eu".to_owned(),
                    tables: vec![table("orders", true), table("Customers", false)],
                },
                SchemaDecl {
                    name: "us".to_owned(),
                    tables: vec![TableDecl {
                        partition_filter: Some(
                            r#"[{"values":[{"name":"country","op":"EQUAL","recipientPropertyKey":"c"}]}]"#
                                .to_owned(),
                        ),
                        ..table("returns", true)
                    }],
                },
            ],
        },
        ShareDecl {
            name: "hr".to_owned(),
            comment: Some("people".to_owned()),
            url_ttl_seconds: None,
            schemas: vec![],
        },
    ]
}

/// Runs every check against `store` (a fresh, empty store).
pub async fn run(store: &dyn CatalogStore) {
    // Shared objects: order, case-insensitive lookups, ids, partition filters.
    let first = reconcile_config(store, &decls(), 1).await.unwrap();
    assert!(!first.changes.is_empty());
    let again = reconcile_config(store, &decls(), 2).await.unwrap();
    assert!(
        again.changes.is_empty(),
        "reconcile is idempotent: {:?}",
        again.changes
    );
    let shares = store.list_shares().await.unwrap();
    assert_eq!(
        shares.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Sales", "hr"]
    );
    assert_eq!(
        store.get_share("SALES").await.unwrap().unwrap().name,
        "Sales"
    );
    assert!(store.get_share("nope").await.unwrap().is_none());
    let schemas = store.list_schemas("sales").await.unwrap().unwrap();
    assert_eq!(
        schemas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["eu", "us"]
    );
    assert!(store.list_schemas("nope").await.unwrap().is_none());
    let all = store.list_tables("Sales", None).await.unwrap().unwrap();
    assert_eq!(
        all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["orders", "Customers", "returns"]
    );
    assert!(
        store
            .list_tables("Sales", Some("nope"))
            .await
            .unwrap()
            .is_none()
    );
    let t = store
        .get_table("SALES", "EU", "customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.name, "Customers");
    assert!(!t.history_shared);
    assert_eq!(
        t.url_ttl_ms,
        Some(900_000),
        "the share's URL lifetime reaches its tables"
    );
    let r = store
        .get_table("sales", "us", "returns")
        .await
        .unwrap()
        .unwrap();
    assert!(r.partition_spec.is_some());
    assert_eq!(
        store.get_table_by_id(&r.id).await.unwrap().unwrap().name,
        "returns"
    );

    // Recipients and tokens.
    assert_eq!(store.active_recipient_count().await.unwrap(), 0);
    let tok = token::generate();
    let id = store
        .create_recipient(
            &NewRecipient {
                name: "Acme".to_owned(),
                shares: vec!["sales".to_owned()],
                token_expires_at_ms: Some(10_000),
                properties: [("c".to_owned(), "US".to_owned())].into(),
                ip_access_list: vec!["10.0.0.0/8".to_owned()],
                comment: Some("partner".to_owned()),
                activation: None,
            },
            Some(&tok),
            1_000,
        )
        .await
        .unwrap();
    let dup = store
        .create_recipient(
            &NewRecipient {
                name: "ACME".to_owned(),
                ..NewRecipient::default()
            },
            Some(&token::generate()),
            1_000,
        )
        .await;
    assert!(
        dup.is_err(),
        "recipient names are unique case-insensitively"
    );
    let bad_share = store
        .create_recipient(
            &NewRecipient {
                name: "other".to_owned(),
                shares: vec!["nope".to_owned()],
                ..NewRecipient::default()
            },
            Some(&token::generate()),
            1_000,
        )
        .await;
    assert!(bad_share.is_err(), "granting an unknown share fails");
    let rec = store.lookup_token(&tok.hash).await.unwrap().unwrap();
    assert_eq!(rec.recipient_id, id);
    assert_eq!(rec.expires_at_ms, Some(10_000));
    assert_eq!(rec.properties.get("c").map(String::as_str), Some("US"));
    assert_eq!(rec.ip_access_list, ["10.0.0.0/8"]);
    assert!(
        store
            .lookup_token(&token::hash("nope"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.granted_shares(&id, 2_000).await.unwrap(), ["Sales"]);
    assert_eq!(store.active_recipient_count().await.unwrap(), 1);
    assert_eq!(
        store.active_recipient_name(&id).await.unwrap().as_deref(),
        Some("Acme")
    );

    // Updates.
    let update = RecipientUpdate {
        set_properties: [("region".to_owned(), "emea".to_owned())].into(),
        remove_properties: vec!["c".to_owned()],
        ip_access_list: Some(vec![]),
        comment: Some("renamed partner".to_owned()),
    };
    assert!(store.update_recipient("acme", &update).await.unwrap());
    let rec = store.lookup_token(&tok.hash).await.unwrap().unwrap();
    assert_eq!(rec.properties.len(), 1);
    assert!(rec.ip_access_list.is_empty());

    // Grants with expiry.
    store
        .add_grant("acme", "HR", Some(5_000), 2_000)
        .await
        .unwrap();
    assert_eq!(
        store.granted_shares(&id, 4_999).await.unwrap(),
        ["hr", "Sales"]
    );
    assert_eq!(store.granted_shares(&id, 5_000).await.unwrap(), ["Sales"]);
    store.add_grant("acme", "hr", None, 2_000).await.unwrap(); // replaces the expiry
    assert_eq!(
        store.granted_shares(&id, 9_000).await.unwrap(),
        ["hr", "Sales"]
    );
    assert!(store.remove_grant("acme", "hr").await.unwrap());
    assert!(!store.remove_grant("acme", "hr").await.unwrap());
    assert!(store.add_grant("acme", "nope", None, 1).await.is_err());

    // Rotation with grace, then without.
    let second = token::generate();
    assert!(
        store
            .rotate_token("acme", Some(&second), None, None, 3_000, 4_000)
            .await
            .unwrap()
    );
    let old = store.lookup_token(&tok.hash).await.unwrap().unwrap();
    assert_eq!(
        old.expires_at_ms,
        Some(7_000),
        "old token expires after the grace"
    );
    assert!(old.token_revoked_at_ms.is_none());
    // An unredeemed link issued before a rotation dies with it; the rotation's own link works.
    let early = NewActivation {
        code_hash: token::hash("early-link"),
        expires_at_ms: 1_000_000,
        token_expires_at_ms: None,
    };
    store
        .create_activation("acme", &early, 4_500)
        .await
        .unwrap();
    assert!(
        store
            .activation_info(&early.code_hash, 4_600)
            .await
            .unwrap()
            .is_some()
    );
    let fresh = NewActivation {
        code_hash: token::hash("fresh-link"),
        expires_at_ms: 1_000_000,
        token_expires_at_ms: None,
    };
    let third = token::generate();
    assert!(
        store
            .rotate_token("acme", Some(&third), Some(&fresh), None, 0, 5_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .activate(&early.code_hash, &token::generate(), 5_001)
            .await
            .unwrap()
            .is_none(),
        "a link from before the rotation mints no token"
    );
    assert!(
        store
            .activation_info(&fresh.code_hash, 5_001)
            .await
            .unwrap()
            .is_some()
    );
    let second_rec = store.lookup_token(&second.hash).await.unwrap().unwrap();
    assert_eq!(second_rec.token_revoked_at_ms, Some(5_000));
    assert!(
        store
            .lookup_token(&third.hash)
            .await
            .unwrap()
            .unwrap()
            .token_revoked_at_ms
            .is_none()
    );
    let info = store.get_recipient("ACME").await.unwrap().unwrap();
    assert_eq!(info.tokens.len(), 3);
    // A recipient created with its link: both are there, or neither.
    let with_link = NewRecipient {
        name: "linked".to_owned(),
        activation: Some(NewActivation {
            code_hash: token::hash("linked-code"),
            expires_at_ms: 1_000_000,
            token_expires_at_ms: Some(900_000),
        }),
        ..NewRecipient::default()
    };
    store
        .create_recipient(&with_link, None, 5_000)
        .await
        .unwrap();
    let a = store
        .activation_info(&token::hash("linked-code"), 5_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.recipient_name, "linked");
    let clash = NewRecipient {
        name: "linked2".to_owned(),
        shares: vec!["nope".to_owned()],
        activation: Some(NewActivation {
            code_hash: token::hash("orphan-code"),
            expires_at_ms: 1_000_000,
            token_expires_at_ms: None,
        }),
        ..NewRecipient::default()
    };
    assert!(store.create_recipient(&clash, None, 5_000).await.is_err());
    assert!(
        store
            .activation_info(&token::hash("orphan-code"), 5_001)
            .await
            .unwrap()
            .is_none(),
        "a failed creation leaves no link behind"
    );
    assert!(store.get_recipient("linked2").await.unwrap().is_none());
    assert!(store.revoke_recipient("linked", 5_000).await.unwrap());
    assert_eq!(
        info.properties.get("region").map(String::as_str),
        Some("emea")
    );

    // Revocation.
    assert!(store.revoke_recipient("acme", 6_000).await.unwrap());
    assert!(!store.revoke_recipient("acme", 6_000).await.unwrap());
    let rec = store.lookup_token(&third.hash).await.unwrap().unwrap();
    assert!(rec.recipient_revoked_at_ms.is_some() && rec.token_revoked_at_ms.is_some());
    assert!(store.active_recipient_name(&id).await.unwrap().is_none());
    assert_eq!(store.active_recipient_count().await.unwrap(), 0);
    assert!(
        !store
            .rotate_token("acme", Some(&token::generate()), None, None, 0, 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_recipients().await.unwrap().len(),
        2,
        "acme and linked"
    );

    // Signing keys: one first key only, then rotation.
    assert!(store.signing_keys().await.unwrap().is_empty());
    let k1 = SigningKey::generate(100);
    store.add_first_signing_key(&k1).await.unwrap();
    assert!(
        store
            .add_first_signing_key(&SigningKey::generate(100))
            .await
            .is_err(),
        "a second first key is refused"
    );
    let k2 = SigningKey::generate(200);
    store.rotate_signing_key(&k2, 200).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    let stored1 = keys.iter().find(|k| k.id == k1.id).unwrap();
    let stored2 = keys.iter().find(|k| k.id == k2.id).unwrap();
    assert_eq!(stored1.retired_at_ms, Some(200));
    assert_eq!(stored2.retired_at_ms, None);
    assert_eq!(stored2.secret, k2.secret);

    // Admin changes: recorded with the change, newest first, never a token secret.
    let changes = store.admin_changes(100).await.unwrap();
    let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
    for wanted in [
        "share.create",
        "table.create",
        "recipient.create",
        "recipient.update",
        "grant.add",
        "grant.remove",
        "recipient.rotate_token",
        "recipient.revoke",
        "signing_key.create",
        "signing_key.rotate",
    ] {
        assert!(
            actions.contains(&wanted),
            "no '{wanted}' change recorded: {actions:?}"
        );
    }
    assert!(
        changes.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    for secret in [&tok.secret, &second.secret, &third.secret] {
        assert!(
            !changes.iter().any(|c| c.details.contains(secret.as_str())),
            "a token secret leaked into the admin change records"
        );
    }
    assert_eq!(store.admin_changes(2).await.unwrap().len(), 2);

    // Async query state.
    async_queries(store).await;

    managed_objects(store).await;

    audit_log(store).await;
}

/// The audit tables: append, read back, and refuse UPDATE and DELETE.
async fn audit_log(s: &dyn CatalogStore) {
    use lakeshare::audit::AuditRecord;
    use lakeshare::audit::chain::{GENESIS, SigningKey, link_hash, verify};
    let mut prev = GENESIS.to_owned();
    let mut records = Vec::new();
    for seq in 1..=3 {
        let body = serde_json::to_string(&lakeshare::audit::event::AuditEvent {
            id: format!("e{seq}"),
            at_ms: seq,
            principal: Some("r".into()),
            ..Default::default()
        })
        .unwrap();
        let hash = link_hash("w", seq, &prev, &body);
        records.push(AuditRecord {
            writer: "w".into(),
            seq,
            at_ms: seq,
            principal: Some("r".into()),
            share: None,
            table: None,
            body,
            prev_hash: prev.clone(),
            hash: hash.clone(),
        });
        prev = hash;
    }
    s.append_audit(&records).await.unwrap();
    let (_, key) = SigningKey::generate().unwrap();
    s.append_checkpoint(&key.checkpoint("w", 3, &prev, 3))
        .await
        .unwrap();
    let back = s.audit_records().await.unwrap();
    assert_eq!(back, records);
    let mut report_msg = verify(&back, &[], None).problems;
    assert!(report_msg.is_empty(), "{report_msg:?}");
    // The indexed columns are checked against the hashed body.
    let mut moved = back.clone();
    moved[1].at_ms += 86_400_000;
    report_msg = verify(&moved, &[], None).problems;
    assert_eq!(report_msg.first().map(|p| p.seq), Some(2), "{report_msg:?}");
    let report = verify(
        &back,
        &s.audit_checkpoints().await.unwrap(),
        Some(&key.public_b64()),
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.checkpoints_verified, 1);
    // A duplicate position is refused (one chain per writer, no overwrite).
    assert!(s.append_audit(&records[..1]).await.is_err());
}

fn table(name: &str, location: &str) -> TableDecl {
    TableDecl {
        name: name.to_owned(),
        id: None,
        location: location.to_owned(),
        history_shared: false,
        start_version: 0,
        partition_filter: None,
        source_name: None,
    }
}

/// Policy as code and admin-API objects: plans, all-or-nothing apply, ownership, registry.
async fn managed_objects(s: &dyn CatalogStore) {
    s.create_recipient(
        &NewRecipient {
            name: "legacy".to_owned(),
            ..NewRecipient::default()
        },
        None,
        9,
    )
    .await
    .unwrap();
    let desired = DeclaredState {
        shares: Some(vec![ShareDecl {
            name: "policy".to_owned(),
            comment: Some("from git".to_owned()),
            url_ttl_seconds: None,
            schemas: vec![SchemaDecl {
                name: "s".to_owned(),
                tables: vec![table("t1", "file:///p/t1/"), table("t2", "file:///p/t2/")],
            }],
        }]),
        recipients: Some(vec![RecipientDecl {
            name: "partner".to_owned(),
            comment: None,
            properties: [("country".to_owned(), "FR".to_owned())].into(),
            ip_access_list: vec!["10.0.0.0/8".to_owned()],
            grants: vec![GrantDecl {
                share: "policy".to_owned(),
                expires_at_ms: None,
            }],
        }]),
    };
    // A plan against the catalog as the suite left it: everything else is deleted.
    let p = plan(s, &desired, Scope::Policy).await.unwrap();
    let text: Vec<String> = p.changes.iter().map(ToString::to_string).collect();
    for wanted in [
        "+ share policy",
        "+ schema policy.s",
        "+ table policy.s.t1 (location: file:///p/t1/)",
        "+ recipient partner",
        "+ grant partner -> policy",
    ] {
        assert!(
            text.iter().any(|t| t == wanted),
            "missing '{wanted}' in {text:#?}"
        );
    }
    assert!(
        !text.iter().any(|t| t.contains("Sales")),
        "a policy leaves config-owned shares alone: {text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t == "- recipient legacy (revokes all its tokens)"),
        "recipients not declared are revoked: {text:#?}"
    );
    let before = s.catalog_state().await.unwrap();
    let refused = apply(s, &desired, Scope::Policy, Origin::Apply, false, 10).await;
    assert!(
        matches!(&refused, Err(CatalogError::Invalid(m)) if m.contains("--allow-delete")),
        "{refused:?}"
    );
    assert_eq!(
        s.catalog_state().await.unwrap(),
        before,
        "a refused apply changed the catalog"
    );

    // A failure in the middle of a transaction leaves nothing behind.
    let failing = vec![
        Change::CreateShare {
            name: "half".to_owned(),
            comment: None,
            url_ttl_seconds: None,
        },
        Change::RemoveTable {
            share: "half".to_owned(),
            schema: "none".to_owned(),
            name: "none".to_owned(),
        },
    ];
    let err = s.apply_changes(&failing, Origin::Apply, 11).await;
    assert!(
        matches!(&err, Err(CatalogError::Invalid(m)) if m.contains("nothing was changed")),
        "{err:?}"
    );
    assert_eq!(
        s.catalog_state().await.unwrap(),
        before,
        "a failed apply changed the catalog"
    );

    // Shares-only policy (no recipients section): recipients are left alone.
    let shares_only = DeclaredState {
        shares: desired.shares.clone(),
        recipients: None,
    };
    apply(s, &shares_only, Scope::Policy, Origin::Apply, true, 12)
        .await
        .unwrap();
    let after = s.catalog_state().await.unwrap();
    assert_eq!(
        after
            .shares
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["Sales", "hr", "policy"]
    );
    assert_eq!(
        after.recipients, before.recipients,
        "recipients are not managed by this file"
    );
    assert!(s.get_share("Sales").await.unwrap().is_some());

    apply(s, &desired, Scope::Policy, Origin::Apply, true, 13)
        .await
        .unwrap();
    let again = plan(s, &desired, Scope::Policy).await.unwrap();
    assert!(
        again.changes.is_empty(),
        "apply twice is a no-op: {:?}",
        again.changes
    );
    let r = s.get_recipient("partner").await.unwrap().unwrap();
    assert_eq!(r.properties["country"], "FR");
    assert!(r.shares.contains(&"policy".to_owned()));

    // Updates show field-level differences.
    let mut changed = desired.clone();
    if let Some(shares) = changed.shares.as_mut() {
        shares[0].schemas[0].tables[0].history_shared = true;
        shares[0].schemas[0].tables.pop();
    }
    if let Some(rs) = changed.recipients.as_mut() {
        rs[0]
            .properties
            .insert("country".to_owned(), "DE".to_owned());
    }
    let p = plan(s, &changed, Scope::Policy).await.unwrap();
    let text: Vec<String> = p.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "~ table policy.s.t1 (historyShared: false -> true)",
            "~ recipient partner (properties: {country=FR} -> {country=DE})",
            "- table policy.s.t2",
        ]
    );
    // A revoked recipient's name is not reused.
    assert!(s.revoke_recipient("partner", 14).await.unwrap());
    let e = plan(s, &desired, Scope::Policy).await;
    assert!(
        matches!(&e, Err(CatalogError::Invalid(m)) if m.contains("revoked")),
        "{e:?}"
    );

    // Config reconcile only deletes config-owned shares.
    reconcile_config(s, &[], 15).await.unwrap();
    assert!(
        s.get_share("policy").await.unwrap().is_some(),
        "apply-owned share kept"
    );
    reconcile_config(s, &decls(), 16).await.unwrap();
    reconcile_config(s, &[], 17).await.unwrap();
    assert!(
        s.get_share("Sales").await.unwrap().is_none(),
        "config-owned share removed"
    );

    // Registered tables.
    let reg = RegisteredTable {
        full_name: "main.sales.orders".to_owned(),
        location: "file:///p/orders/".to_owned(),
        comment: None,
        created_at_ms: 20,
        created_by: "alice".to_owned(),
    };
    s.register_table(&reg).await.unwrap();
    assert!(matches!(
        s.register_table(&reg).await,
        Err(CatalogError::Conflict(_))
    ));
    assert_eq!(
        s.registered_table("MAIN.sales.ORDERS").await.unwrap(),
        Some(reg.clone())
    );
    assert_eq!(
        s.list_registered_tables("main.sales").await.unwrap(),
        vec![reg.clone()]
    );
    assert!(s.list_registered_tables("other.").await.unwrap().is_empty());
    assert!(
        s.delete_registered_table("main.sales.orders")
            .await
            .unwrap()
    );
    assert!(
        !s.delete_registered_table("main.sales.orders")
            .await
            .unwrap()
    );
}

async fn async_queries(s: &dyn CatalogStore) {
    use lakeshare::domain::async_query::{AsyncQuery, AsyncStatus, Submission};
    let q = |id: &str, r: &str, key: &str, at: i64| AsyncQuery {
        id: id.into(),
        recipient_id: r.into(),
        table_id: "t".into(),
        key: key.into(),
        body: b"{}".to_vec(),
        version: 7,
        status: AsyncStatus::Pending,
        submitted_at_ms: at,
        finished_at_ms: None,
    };
    assert!(matches!(
        s.submit(q("1", "a", "k", 0), 1, 100).await.unwrap(),
        Submission::Started(_)
    ));
    match s.submit(q("2", "a", "k", 0), 1, 100).await.unwrap() {
        Submission::Existing(e) => assert_eq!((e.id.as_str(), e.version), ("1", 7)),
        other => panic!("duplicate key must return the first query, got {other:?}"),
    }
    assert_eq!(
        s.submit(q("3", "a", "k2", 0), 1, 100).await.unwrap(),
        Submission::OverLimit
    );
    assert!(matches!(
        s.submit(q("4", "b", "k", 0), 1, 100).await.unwrap(),
        Submission::Started(_)
    ));
    s.finish("1", AsyncStatus::Failed("boom".into()), 10)
        .await
        .unwrap();
    let got = s.get("1", 50, 100).await.unwrap().unwrap();
    assert_eq!(got.status, AsyncStatus::Failed("boom".into()));
    assert_eq!(got.body, b"{}");
    assert!(
        s.get("1", 110, 100).await.unwrap().is_none(),
        "expired results are gone"
    );
    assert!(s.get("nope", 0, 100).await.unwrap().is_none());
    assert!(matches!(
        s.submit(q("5", "a", "k2", 20), 1, 100).await.unwrap(),
        Submission::Started(_)
    ));
}

/// As the serving connection (the role the server uses), UPDATE, DELETE (and on PostgreSQL
/// TRUNCATE) of the audit tables fail.
pub async fn audit_is_append_only(url: &str) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET body = 'forged'",
        "DELETE FROM audit_events",
        "UPDATE audit_checkpoints SET hash = 'forged'",
        "DELETE FROM audit_checkpoints",
    ] {
        let r = sqlx::query(sql).execute(&mut conn).await;
        assert!(
            r.is_err(),
            "{sql} must fail on the append-only audit tables"
        );
        assert!(
            r.err().unwrap().to_string().contains("append-only"),
            "{sql}: refused for the wrong reason"
        );
    }
    if url.starts_with("postgres") {
        let r = sqlx::query("TRUNCATE audit_events")
            .execute(&mut conn)
            .await;
        assert!(r.is_err(), "TRUNCATE must fail");
    }
}
