//! One admin client, two transports: the admin API of a running server (`--admin-url`), or
//! the same admin router run in-process on the local state store. Every admin subcommand
//! goes through it, so the CLI and the API cannot drift apart.

use anyhow::{Context as _, bail};
use axum::Router;
use http::{Method, Request, header};
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

use super::{StoreArgs, wiring};
use crate::protocol::admin::AdminError;
use crate::server::admin::{AdminState, build_admin_router};

/// Unity-Catalog-shaped admin routes.
pub const UC: &str = "/api/2.1/unity-catalog";
/// Lakeshare extension routes.
pub const EXT: &str = "/api/2.1/lakeshare";

/// A name as one URL path segment.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A running server's admin API.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Admin API of a running server (e.g. http://127.0.0.1:9090) instead of the local state
    /// store.
    #[arg(long, env = "LAKESHARE_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Admin token for --admin-url (`lakeshare admin-token create`).
    #[arg(long, env = "LAKESHARE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// Where admin subcommands act.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A request body.
pub enum Body {
    /// JSON.
    Json(serde_json::Value),
    /// YAML text (policy files).
    Yaml(String),
}

/// The client.
pub enum AdminClient {
    /// In-process router on the local store.
    Local(Router),
    /// A remote admin API.
    Remote {
        /// HTTP client.
        http: reqwest::Client,
        /// Base URL.
        base: String,
        /// Admin token.
        token: String,
    },
}

impl AdminClient {
    /// Connects as the arguments say.
    pub async fn connect(args: &TargetArgs) -> anyhow::Result<Self> {
        if let Some(url) = &args.remote.admin_url {
            let token = args.remote.admin_token.clone().context(
                "--admin-url needs --admin-token (or LAKESHARE_ADMIN_TOKEN); create one with \
                 `lakeshare admin-token create NAME`",
            )?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            return Ok(Self::Remote {
                http: reqwest::Client::new(),
                base: url.trim_end_matches('/').to_owned(),
                token,
            });
        }
        let state = wiring::state_path(&args.store)?;
        let catalog = wiring::open_catalog(&state).await?;
        let config = match &args.store.config {
            Some(path) => {
                let c = crate::config::load(path).map_err(anyhow::Error::msg)?;
                // What the server would do at start: the config file owns its shares.
                crate::catalog::plan::reconcile_config(
                    catalog.as_ref(),
                    &c.shares,
                    chrono::Utc::now().timestamp_millis(),
                )
                .await?;
                c
            }
            None => crate::config::parse("version: 1\n", std::path::Path::new("."))
                .map_err(anyhow::Error::msg)?,
        };
        let actor = wiring::cli_actor();
        let audit = super::audit::writer_for(&config, catalog.clone(), false)?;
        let wired = wiring::wire(&config, catalog, false, wiring::system_clock()).await?;
        let scheme = if config.ssl.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(Self::Local(build_admin_router(AdminState {
            service: wired.service,
            recipient_origin: format!("{scheme}://{}:{}", config.host, config.port),
            local_actor: Some(actor),
            audit: Some(std::sync::Arc::new(crate::server::audit::AuditConfig {
                writer: audit,
                fail_closed: config.audit_fail_closed,
                routes: crate::server::admin::ADMIN_ROUTES,
                prefix: String::new(),
                anomalies: None,
            })),
        })))
    }

    /// Sends a request; a non-2xx answer becomes an error with the server's message.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> anyhow::Result<T> {
        let (content_type, bytes) = match body {
            None => ("application/json", Vec::new()),
            Some(Body::Json(v)) => ("application/json", serde_json::to_vec(&v)?),
            Some(Body::Yaml(t)) => ("application/yaml", t.into_bytes()),
        };
        let (status, bytes) = match self {
            Self::Local(router) => {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(axum::body::Body::from(bytes))?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .context("admin request failed")?;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 256 << 20).await?;
                (status.as_u16(), bytes.to_vec())
            }
            Self::Remote { http, base, token } => {
                let response = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(bytes)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the admin API at {base}"))?;
                let status = response.status().as_u16();
                (status, response.bytes().await?.to_vec())
            }
        };
        if !(200..300).contains(&status) {
            match serde_json::from_slice::<AdminError>(&bytes) {
                Ok(e) => bail!("{} ({status}): {}", e.error_code, e.message),
                Err(_) => bail!(
                    "admin API answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
        let bytes = if bytes.is_empty() {
            b"{}".to_vec()
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).context("unexpected admin API response")
    }
}

/// Text from the catalog or a server, safe to print on a terminal: control characters
/// (newlines that would forge lines, escape sequences) are shown escaped.
pub fn term_safe(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Prints rows as an aligned table (cells made [`term_safe`]).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| term_safe(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
