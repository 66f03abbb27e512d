//! `lakeshare recipient ...` and `lakeshare grant ...` against a running server's admin API
//! (`--admin-url`): the server issues tokens through one-time activation links, so no profile
//! file is written here.

use anyhow::bail;
use http::Method;
use serde_json::json;

use super::StoreArgs;
use super::admin_client::{AdminClient, Body, RemoteArgs, TargetArgs, UC, encode, print_table};
use super::recipient::{GrantCommand, RecipientCommand};
use crate::protocol::admin as wire;

async fn client(remote: RemoteArgs) -> anyhow::Result<AdminClient> {
    AdminClient::connect(&TargetArgs {
        store: StoreArgs {
            config: None,
            state: None,
        },
        remote,
        json: false,
    })
    .await
}

fn link_of(info: &wire::RecipientInfo) -> Option<&str> {
    info.tokens
        .iter()
        .rev()
        .find_map(|t| t.activation_url.as_deref())
}

async fn set_permission(
    c: &AdminClient,
    recipient: &str,
    share: &str,
    add: bool,
) -> anyhow::Result<()> {
    let change = if add {
        json!({"principal": recipient, "add": ["SELECT"]})
    } else {
        json!({"principal": recipient, "remove": ["SELECT"]})
    };
    let _: wire::PermissionsList = c
        .call(
            Method::PATCH,
            &format!("{UC}/shares/{}/permissions", encode(share)),
            Some(Body::Json(json!({ "changes": [change] }))),
        )
        .await?;
    Ok(())
}

fn print_recipients(list: &[wire::RecipientInfo]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.activated.to_string(),
                r.properties_kvpairs
                    .properties
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                r.ip_access_list.allowed_ip_addresses.join(","),
                r.tokens
                    .iter()
                    .filter(|t| t.activation_url.is_none())
                    .map(|t| t.id.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    print_table(
        &[
            "RECIPIENT",
            "ACTIVATED",
            "PROPERTIES",
            "ALLOWED IPS",
            "TOKENS",
        ],
        &rows,
    );
}

/// Runs a recipient subcommand remotely.
pub async fn run(cmd: RecipientCommand, remote: RemoteArgs) -> anyhow::Result<()> {
    let c = client(remote).await?;
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        RecipientCommand::Create {
            name,
            shares,
            expiry,
            properties,
            allow_ip,
            activation,
            ..
        } => {
            if !activation {
                bail!(
                    "with --admin-url the server issues the token through a one-time activation \
                     link: add --activation (no profile file is written)"
                );
            }
            let info: wire::RecipientInfo = c
                .call(
                    Method::POST,
                    &format!("{UC}/recipients"),
                    Some(Body::Json(json!({
                        "name": name,
                        "authentication_type": "TOKEN",
                        "properties_kvpairs": {"properties": properties.into_iter().collect::<std::collections::BTreeMap<_, _>>()},
                        "ip_access_list": {"allowed_ip_addresses": allow_ip},
                        "expiration_time": expiry.resolve(now)?,
                    }))),
                )
                .await?;
            for share in &shares {
                set_permission(&c, &name, share, true).await?;
            }
            println!(
                "created recipient '{name}' granted {shares:?}; activation link (one use): {}",
                link_of(&info).unwrap_or("-")
            );
        }
        RecipientCommand::Link { .. } => bail!(
            "`recipient link` needs the local store; remotely, `recipient rotate NAME --grace \
             SECONDS --admin-url ...` issues a new activation link"
        ),
        RecipientCommand::Update {
            name,
            properties,
            remove_properties,
            allow_ip,
            clear_ip_list,
            ..
        } => {
            let current: wire::RecipientInfo = c
                .call(
                    Method::GET,
                    &format!("{UC}/recipients/{}", encode(&name)),
                    None,
                )
                .await?;
            let mut props = current.properties_kvpairs.properties.clone();
            for k in &remove_properties {
                props.remove(k);
            }
            props.extend(properties);
            let mut body = json!({ "properties_kvpairs": { "properties": props } });
            if clear_ip_list || !allow_ip.is_empty() {
                body["ip_access_list"] = json!({ "allowed_ip_addresses": allow_ip });
            }
            let _: wire::RecipientInfo = c
                .call(
                    Method::PATCH,
                    &format!("{UC}/recipients/{}", encode(&name)),
                    Some(Body::Json(body)),
                )
                .await?;
            println!("updated recipient '{name}'");
        }
        RecipientCommand::Rotate { name, grace, .. } => {
            if grace < 0 {
                bail!("--grace must be 0 or more seconds");
            }
            let info: wire::RecipientInfo = c
                .call(
                    Method::POST,
                    &format!("{UC}/recipients/{}/rotate-token", encode(&name)),
                    Some(Body::Json(
                        json!({ "existing_token_expire_in_seconds": grace }),
                    )),
                )
                .await?;
            println!(
                "rotated '{name}' (old tokens valid for {grace} s); activation link (one use): {}",
                link_of(&info).unwrap_or("-")
            );
        }
        RecipientCommand::Revoke { name, .. } => {
            let _: serde_json::Value = c
                .call(
                    Method::DELETE,
                    &format!("{UC}/recipients/{}", encode(&name)),
                    None,
                )
                .await?;
            println!("revoked recipient '{name}' and all its tokens");
        }
        RecipientCommand::Show { name, json, .. } => {
            let info: wire::RecipientInfo = c
                .call(
                    Method::GET,
                    &format!("{UC}/recipients/{}", encode(&name)),
                    None,
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_recipients(std::slice::from_ref(&info));
            }
        }
        RecipientCommand::List { json, .. } => {
            let list: wire::ListRecipients = c
                .call(Method::GET, &format!("{UC}/recipients"), None)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_recipients(&list.recipients);
            }
        }
        RecipientCommand::Preview {
            name,
            max_files,
            target,
        } => super::admin_cmds::run_preview(&name, max_files, &target).await?,
    }
    Ok(())
}

/// Runs a grant subcommand remotely.
pub async fn run_grant(cmd: GrantCommand, remote: RemoteArgs) -> anyhow::Result<()> {
    let c = client(remote).await?;
    match cmd {
        GrantCommand::Add {
            recipient,
            share,
            expiry,
            ..
        } => {
            if expiry.expires.is_some() || expiry.expires_in.is_some() {
                bail!(
                    "grant expiry is not part of the admin API's permissions call: declare \
                     `expiresAt` in a policy file (`lakeshare apply`) or use the local store"
                );
            }
            set_permission(&c, &recipient, &share, true).await?;
            println!("granted '{share}' to '{recipient}'");
        }
        GrantCommand::Remove {
            recipient, share, ..
        } => {
            set_permission(&c, &recipient, &share, false).await?;
            println!("removed the grant of '{share}' to '{recipient}'");
        }
    }
    Ok(())
}
