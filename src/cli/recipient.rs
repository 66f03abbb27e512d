//! `lakeshare recipient create|update|rotate|revoke|show|list` and `lakeshare grant add|remove`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::StoreArgs;
use super::admin_client::RemoteArgs;
use super::wiring;
use crate::catalog::{NewActivation, NewRecipient, RecipientUpdate};
use crate::domain::model::RecipientInfo;
use crate::domain::token;
use crate::protocol::profile::ProfileV1;

/// Token or grant expiry options.
#[derive(Debug, Clone, clap::Args)]
pub struct ExpiryArgs {
    /// Expiry as RFC 3339 (e.g. 2027-01-01T00:00:00Z).
    #[arg(long, conflicts_with = "expires_in")]
    pub expires: Option<String>,
    /// Expiry as a duration from now: 90d, 12h, 30m, 45s.
    #[arg(long)]
    pub expires_in: Option<String>,
}

/// Recipient subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum RecipientCommand {
    /// Create a recipient with a new token, grant it shares, and write its profile file.
    Create {
        /// Recipient name (unique).
        name: String,
        /// Share to grant (repeatable).
        #[arg(long = "share", required = true)]
        shares: Vec<String>,
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// Recipient property KEY=VALUE (repeatable), used by templated partition filters.
        #[arg(long = "property", value_parser = parse_kv)]
        properties: Vec<(String, String)>,
        /// Allowed client address or CIDR (repeatable); none = any address.
        #[arg(long = "allow-ip", value_parser = parse_cidr)]
        allow_ip: Vec<String>,
        /// Endpoint URL for the profile (default: from the config's host, port and endpoint).
        #[arg(long)]
        endpoint: Option<String>,
        /// Where to write the profile file (or use --activation).
        #[arg(long, required_unless_present = "activation")]
        profile: Option<PathBuf>,
        /// Issue a one-time activation link instead of writing a profile: the recipient
        /// downloads its profile once; the token is created at that moment.
        #[arg(long, conflicts_with = "profile")]
        activation: bool,
        /// Lifetime of the activation link (default 7d).
        #[arg(long, default_value = "7d")]
        activation_expires_in: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Issue a one-time activation link for an existing recipient (a new token is created when
    /// it is redeemed; existing tokens are unaffected).
    Link {
        /// Recipient name.
        name: String,
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// Lifetime of the activation link.
        #[arg(long, default_value = "7d")]
        activation_expires_in: String,
        /// Server endpoint URL (default: from the config); the link is on its host.
        #[arg(long)]
        endpoint: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Change properties or the IP allow list; takes effect on the next request.
    Update {
        /// Recipient name.
        name: String,
        /// Property KEY=VALUE to set (repeatable).
        #[arg(long = "property", value_parser = parse_kv)]
        properties: Vec<(String, String)>,
        /// Property to remove (repeatable).
        #[arg(long = "remove-property")]
        remove_properties: Vec<String>,
        /// Replace the IP allow list (repeatable).
        #[arg(long = "allow-ip", value_parser = parse_cidr, conflicts_with = "clear_ip_list")]
        allow_ip: Vec<String>,
        /// Remove the IP allow list (any address).
        #[arg(long)]
        clear_ip_list: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Issue a new token (new profile); older tokens stop working after the grace period.
    Rotate {
        /// Recipient name.
        name: String,
        /// Seconds the old token(s) keep working (0 = revoke them now).
        #[arg(long, default_value_t = 0)]
        grace: i64,
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// Endpoint URL for the profile (default: from the config).
        #[arg(long)]
        endpoint: Option<String>,
        /// Where to write the new profile file (not with --admin-url: the server issues an
        /// activation link instead).
        #[arg(long, required_unless_present = "admin_url")]
        profile: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Revoke a recipient and all its tokens (its next request is refused).
    Revoke {
        /// Recipient name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show one recipient (never its token).
    Show {
        /// Recipient name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List recipients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// What the recipient can see now: granted shares, their tables, and the files a query
    /// would return under its partition filters (debug grants before sending a link).
    Preview {
        /// Recipient name.
        name: String,
        /// Files listed per table.
        #[arg(long, default_value_t = 20)]
        max_files: usize,
        #[command(flatten)]
        target: super::admin_client::TargetArgs,
    },
}

/// Grant subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum GrantCommand {
    /// Grant a share to a recipient (or change the grant's expiry).
    Add {
        /// Recipient name.
        recipient: String,
        /// Share name.
        share: String,
        #[command(flatten)]
        expiry: ExpiryArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Remove a grant: the share disappears for the recipient on its next request.
    Remove {
        /// Recipient name.
        recipient: String,
        /// Share name.
        share: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

impl RecipientCommand {
    /// The admin API to act on, if the command targets a running server.
    pub fn remote(&self) -> Option<&RemoteArgs> {
        let remote = match self {
            Self::Create { remote, .. }
            | Self::Link { remote, .. }
            | Self::Update { remote, .. }
            | Self::Rotate { remote, .. }
            | Self::Revoke { remote, .. }
            | Self::Show { remote, .. }
            | Self::List { remote, .. } => remote,
            Self::Preview { target, .. } => &target.remote,
        };
        remote.admin_url.is_some().then_some(remote)
    }
}

impl RecipientCommand {
    /// For the audit log: (action, target, store) of a change made on the local store.
    pub fn local_change(&self) -> Option<(&'static str, String, &StoreArgs)> {
        match self {
            Self::Create { name, store, .. } => Some(("recipient.create", name.clone(), store)),
            Self::Link { name, store, .. } => Some(("recipient.link", name.clone(), store)),
            Self::Update { name, store, .. } => Some(("recipient.update", name.clone(), store)),
            Self::Rotate { name, store, .. } => Some(("recipient.rotate", name.clone(), store)),
            Self::Revoke { name, store, .. } => Some(("recipient.revoke", name.clone(), store)),
            _ => None,
        }
    }
}

impl GrantCommand {
    /// For the audit log: (action, target, store) of a change made on the local store.
    pub fn local_change(&self) -> Option<(&'static str, String, &StoreArgs)> {
        match self {
            Self::Add {
                recipient,
                share,
                store,
                ..
            } => Some(("grant.add", format!("{recipient} -> {share}"), store)),
            Self::Remove {
                recipient,
                share,
                store,
                ..
            } => Some(("grant.remove", format!("{recipient} -> {share}"), store)),
        }
    }
}

impl GrantCommand {
    /// The admin API to act on, if the command targets a running server.
    pub fn remote(&self) -> Option<&RemoteArgs> {
        let (Self::Add { remote, .. } | Self::Remove { remote, .. }) = self;
        remote.admin_url.is_some().then_some(remote)
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))?;
    if k.trim().is_empty() {
        return Err(format!("empty property name in '{s}'"));
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

fn parse_cidr(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.parse::<ipnet::IpNet>().is_ok() || s.parse::<std::net::IpAddr>().is_ok() {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an IP address or CIDR (e.g. 10.0.0.0/8)"
        ))
    }
}

/// Parses `90d`, `12h`, `30m`, `45s` into milliseconds.
pub(crate) fn parse_duration_ms(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .with_context(|| format!("invalid duration '{s}': use e.g. 90d, 12h, 30m, 45s"))?;
    let factor = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => bail!("invalid duration '{s}': use e.g. 90d, 12h, 30m, 45s"),
    };
    if n <= 0 {
        bail!("duration '{s}' must be positive");
    }
    Ok(n.saturating_mul(factor))
}

impl ExpiryArgs {
    /// The expiry in ms since the epoch, if one was given.
    pub(crate) fn resolve(&self, now: i64) -> anyhow::Result<Option<i64>> {
        if let Some(e) = &self.expires {
            let ms = chrono::DateTime::parse_from_rfc3339(e)
                .map(|d| d.timestamp_millis())
                .with_context(|| format!("invalid --expires '{e}': use RFC 3339"))?;
            if ms <= now {
                eprintln!("warning: --expires is in the past; it is expired already");
            }
            return Ok(Some(ms));
        }
        self.expires_in
            .as_deref()
            .map(|d| parse_duration_ms(d).map(|ms| now.saturating_add(ms)))
            .transpose()
    }
}

fn default_endpoint(store: &StoreArgs) -> anyhow::Result<String> {
    let path = store
        .config
        .as_ref()
        .context("pass --endpoint URL (or --config FILE to derive it)")?;
    let c = crate::config::load(path).map_err(anyhow::Error::msg)?;
    if let Some(public) = &c.public_url {
        return Ok(format!("{public}{}", c.endpoint));
    }
    let scheme = if c.ssl.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}:{}{}", c.host, c.port, c.endpoint);
    if let Some(why) = unreachable_for_partners(&c.host, c.port) {
        eprintln!(
            "warning: the profile names {endpoint}, {why}: partners elsewhere cannot reach it; \
             set `publicUrl` in the config (or pass --endpoint URL)"
        );
    }
    Ok(endpoint)
}

/// Why an address in a profile would not reach the server from a partner's machine.
fn unreachable_for_partners(host: &str, port: u16) -> Option<&'static str> {
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    if port == 0 {
        return Some("whose port 0 means 'any free port' (the real one is printed by serve)");
    }
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => Some("a loopback address"),
        Ok(ip) if ip.is_unspecified() => Some("a wildcard address that names no host"),
        _ if bare.eq_ignore_ascii_case("localhost") => Some("a loopback address"),
        _ => None,
    }
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339())
}

fn write_profile(
    path: &std::path::Path,
    endpoint: String,
    new: &token::NewToken,
    expires_at: Option<i64>,
) -> anyhow::Result<()> {
    let doc = ProfileV1 {
        share_credentials_version: 1,
        endpoint,
        bearer_token: new.secret.clone(),
        expiration_time: expires_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    };
    write_private(path, &serde_json::to_vec_pretty(&doc)?)
}

fn recipient_json(r: &RecipientInfo, now: i64) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "id": r.id,
        "comment": r.comment,
        "state": if r.revoked_at_ms.is_some() { "revoked" } else { "active" },
        "createdAt": fmt_ms(Some(r.created_at_ms)),
        "revokedAt": r.revoked_at_ms.map(|m| fmt_ms(Some(m))),
        "properties": r.properties,
        "ipAccessList": r.ip_access_list,
        "grants": r.grant_expiries.iter().map(|(s, e)| serde_json::json!({
            "share": s,
            "expiresAt": e.map(|m| fmt_ms(Some(m))),
            "active": r.revoked_at_ms.is_none() && e.is_none_or(|m| m > now),
        })).collect::<Vec<_>>(),
        "tokens": r.tokens.iter().map(|t| serde_json::json!({
            "prefix": t.prefix,
            "createdAt": fmt_ms(Some(t.created_at_ms)),
            "expiresAt": t.expires_at_ms.map(|m| fmt_ms(Some(m))),
            "state": if t.revoked_at_ms.is_some() { "revoked" }
                else if t.expires_at_ms.is_some_and(|e| e <= now) { "expired" }
                else { "active" },
        })).collect::<Vec<_>>(),
        "pendingLinks": r.pending_links.iter().filter(|l| l.expires_at_ms > now).map(|l| serde_json::json!({
            "createdAt": fmt_ms(Some(l.created_at_ms)),
            "linkExpiresAt": fmt_ms(Some(l.expires_at_ms)),
            "tokenExpiresAt": l.token_expires_at_ms.map(|m| fmt_ms(Some(m))),
        })).collect::<Vec<_>>(),
    })
}

async fn open(store: &StoreArgs) -> anyhow::Result<crate::catalog::DynCatalog> {
    let catalog = wiring::open_catalog(&wiring::state_path(store)?).await?;
    if let Some(cfg) = &store.config {
        let config = crate::config::load(cfg).map_err(anyhow::Error::msg)?;
        crate::catalog::plan::reconcile_config(
            catalog.as_ref(),
            &config.shares,
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
    }
    Ok(catalog)
}

/// Runs a recipient subcommand.
pub async fn run(cmd: RecipientCommand) -> anyhow::Result<()> {
    if let Some(remote) = cmd.remote() {
        return super::recipient_remote::run(cmd.clone(), remote.clone()).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        RecipientCommand::Create {
            name,
            shares,
            expiry,
            properties,
            allow_ip,
            endpoint,
            profile,
            activation,
            activation_expires_in,
            store,
            ..
        } => {
            let expires_at = expiry.resolve(now)?;
            let endpoint = match endpoint {
                Some(e) => e,
                None => default_endpoint(&store)?,
            };
            let catalog = open(&store).await?;
            let new = token::generate();
            // With --activation the link is stored with the recipient, in one transaction.
            let link = if activation {
                Some(new_link(
                    &endpoint,
                    &activation_expires_in,
                    expires_at,
                    now,
                )?)
            } else {
                None
            };
            let recipient = NewRecipient {
                name: name.clone(),
                shares: shares.clone(),
                token_expires_at_ms: expires_at,
                properties: properties.into_iter().collect(),
                ip_access_list: allow_ip,
                comment: None,
                activation: link.as_ref().map(|(_, a)| a.clone()),
            };
            catalog
                .create_recipient(&recipient, (!activation).then_some(&new), now)
                .await
                .with_context(|| format!("cannot create recipient '{name}'"))?;
            match profile {
                Some(profile) => {
                    write_profile(&profile, endpoint, &new, expires_at)?;
                    println!(
                        "created recipient '{name}' (token {}…) granted {:?}; profile written \
                         to {}",
                        new.display_prefix,
                        shares,
                        profile.display()
                    );
                }
                None => {
                    let link = link.map(|(l, _)| l).unwrap_or_default();
                    println!("created recipient '{name}' granted {shares:?}; activation link:");
                    println!("{link}");
                }
            }
        }
        RecipientCommand::Link {
            name,
            expiry,
            activation_expires_in,
            endpoint,
            store,
            ..
        } => {
            let expires_at = expiry.resolve(now)?;
            let endpoint = match endpoint {
                Some(e) => e,
                None => default_endpoint(&store)?,
            };
            let catalog = open(&store).await?;
            let link = issue_link(
                catalog.as_ref(),
                &name,
                &endpoint,
                &activation_expires_in,
                expires_at,
                now,
            )
            .await?;
            println!("{link}");
        }
        RecipientCommand::Update {
            name,
            properties,
            remove_properties,
            allow_ip,
            clear_ip_list,
            store,
            ..
        } => {
            let catalog = open(&store).await?;
            let update = RecipientUpdate {
                set_properties: properties.into_iter().collect::<BTreeMap<_, _>>(),
                remove_properties,
                comment: None,
                ip_access_list: if clear_ip_list {
                    Some(Vec::new())
                } else if allow_ip.is_empty() {
                    None
                } else {
                    Some(allow_ip)
                },
            };
            if !catalog.update_recipient(&name, &update).await? {
                bail!("no active recipient named '{name}'");
            }
            println!("updated recipient '{name}'");
        }
        RecipientCommand::Rotate {
            name,
            grace,
            expiry,
            endpoint,
            profile,
            store,
            ..
        } => {
            if grace < 0 {
                bail!("--grace must be 0 or more seconds");
            }
            let profile = profile.context("--profile is required")?;
            let expires_at = expiry.resolve(now)?;
            let endpoint = match endpoint {
                Some(e) => e,
                None => default_endpoint(&store)?,
            };
            let catalog = open(&store).await?;
            let new = token::generate();
            if !catalog
                .rotate_token(
                    &name,
                    Some(&new),
                    None,
                    expires_at,
                    grace.saturating_mul(1000),
                    now,
                )
                .await?
            {
                bail!("no active recipient named '{name}'");
            }
            write_profile(&profile, endpoint, &new, expires_at)?;
            println!(
                "rotated the token of '{name}' (new token {}…, old tokens valid for {grace} s); \
                 profile written to {}",
                new.display_prefix,
                profile.display()
            );
        }
        RecipientCommand::Revoke { name, store, .. } => {
            let catalog = open(&store).await?;
            if !catalog.revoke_recipient(&name, now).await? {
                bail!("no active recipient named '{name}'");
            }
            println!("revoked recipient '{name}' and all its tokens");
        }
        RecipientCommand::Show {
            name, json, store, ..
        } => {
            let catalog = open(&store).await?;
            let r = catalog
                .get_recipient(&name)
                .await?
                .with_context(|| format!("no recipient named '{name}'"))?;
            let v = recipient_json(&r, now);
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", serde_yaml::to_string(&v)?);
            }
        }
        RecipientCommand::Preview {
            name,
            max_files,
            target,
        } => super::admin_cmds::run_preview(&name, max_files, &target).await?,
        RecipientCommand::List { json, store, .. } => {
            let catalog = open(&store).await?;
            let list = catalog.list_recipients().await?;
            if json {
                let v: Vec<_> = list.iter().map(|r| recipient_json(r, now)).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{:<24} {:<8} {:<40} {:<26} TOKENS / PENDING LINKS",
                    "NAME", "STATE", "SHARES (GRANT EXPIRY)", "CREATED"
                );
                for r in list {
                    let state = if r.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let mut tokens: Vec<String> = r
                        .tokens
                        .iter()
                        .filter(|t| t.revoked_at_ms.is_none())
                        .map(|t| format!("{}… (expires {})", t.prefix, fmt_ms(t.expires_at_ms)))
                        .collect();
                    tokens.extend(
                        r.pending_links
                            .iter()
                            .filter(|l| l.expires_at_ms > now)
                            .map(|l| {
                                format!(
                                    "link (until {}, token expires {})",
                                    fmt_ms(Some(l.expires_at_ms)),
                                    fmt_ms(l.token_expires_at_ms)
                                )
                            }),
                    );
                    let shares: Vec<String> = r
                        .grant_expiries
                        .iter()
                        .map(|(s, e)| match e {
                            Some(m) => format!("{s} (until {})", fmt_ms(Some(*m))),
                            None => s.clone(),
                        })
                        .collect();
                    println!(
                        "{:<24} {:<8} {:<40} {:<26} {}",
                        super::admin_client::term_safe(&r.name),
                        state,
                        shares.join(","),
                        fmt_ms(Some(r.created_at_ms)),
                        tokens.join("; ")
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs a grant subcommand.
pub async fn run_grant(cmd: GrantCommand) -> anyhow::Result<()> {
    if let Some(remote) = cmd.remote() {
        return super::recipient_remote::run_grant(cmd.clone(), remote.clone()).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        GrantCommand::Add {
            recipient,
            share,
            expiry,
            store,
            ..
        } => {
            let expires_at = expiry.resolve(now)?;
            let catalog = open(&store).await?;
            catalog
                .add_grant(&recipient, &share, expires_at, now)
                .await
                .with_context(|| format!("cannot grant '{share}' to '{recipient}'"))?;
            println!(
                "granted '{share}' to '{recipient}' (expires {})",
                fmt_ms(expires_at)
            );
        }
        GrantCommand::Remove {
            recipient,
            share,
            store,
            ..
        } => {
            let catalog = open(&store).await?;
            if !catalog.remove_grant(&recipient, &share).await? {
                bail!("'{recipient}' has no grant on '{share}'");
            }
            println!("removed the grant of '{share}' to '{recipient}'");
        }
    }
    Ok(())
}

/// A new activation link (on the host of `endpoint`) and the code to store for it.
fn new_link(
    endpoint: &str,
    lifetime: &str,
    token_expires_at: Option<i64>,
    now: i64,
) -> anyhow::Result<(String, NewActivation)> {
    let url =
        url::Url::parse(endpoint).with_context(|| format!("invalid endpoint URL '{endpoint}'"))?;
    let origin = url.origin().ascii_serialization();
    let code = token::generate()
        .secret
        .trim_start_matches(token::TOKEN_PREFIX)
        .to_owned();
    let activation = NewActivation {
        code_hash: token::hash(&code),
        expires_at_ms: now.saturating_add(parse_duration_ms(lifetime)?),
        token_expires_at_ms: token_expires_at,
    };
    Ok((
        format!("{origin}/api/2.1/unity-catalog/public/data_sharing_activation/{code}"),
        activation,
    ))
}

/// Stores a new activation code for `name` and returns the link (on the host of `endpoint`).
async fn issue_link(
    catalog: &dyn crate::catalog::CatalogStore,
    name: &str,
    endpoint: &str,
    lifetime: &str,
    token_expires_at: Option<i64>,
    now: i64,
) -> anyhow::Result<String> {
    let (link, activation) = new_link(endpoint, lifetime, token_expires_at, now)?;
    catalog
        .create_activation(name, &activation, now)
        .await
        .with_context(|| format!("cannot create an activation link for '{name}'"))?;
    Ok(link)
}

/// Writes a file readable by its owner only (profiles hold a secret).
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write as _;
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90d").ok(), Some(90 * 86_400_000));
        assert_eq!(parse_duration_ms("2s").ok(), Some(2000));
        assert!(parse_duration_ms("2w").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("").is_err());
    }
}
