//! `lakeshare serve`.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;

use super::wiring::{self, Wired};
use crate::catalog::DynCatalog;
use crate::config::{self, Config, SslConfig};
use crate::server::{AppState, build_router};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (the reference Delta Sharing server's YAML format).
    #[arg(long)]
    pub config: PathBuf,
    /// Override the config's `host`.
    #[arg(long)]
    pub host: Option<String>,
    /// Override the config's `port` (0 = any free port; the bound address is printed).
    #[arg(long)]
    pub port: Option<u16>,
    /// State store: a SQLite file path or a `postgres://` URL (env `LAKESHARE_STATE`; default:
    /// `lakeshare.db` next to the config). It must exist: `serve` never creates an empty one.
    #[arg(long, env = "LAKESHARE_STATE")]
    pub state: Option<PathBuf>,
    /// The external URL recipients reach this server at (overrides the config's `publicUrl`),
    /// e.g. `https://sharing.example.com` behind a TLS-terminating proxy.
    #[arg(long, env = "LAKESHARE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accept requests without a token. Development only: refused on non-loopback hosts.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// Also serve the admin API on 127.0.0.1 at this port (0 = any free port; printed).
    #[arg(long)]
    pub admin_port: Option<u16>,
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    /// The endpoint URL clients use (goes into profiles).
    pub url: String,
    /// Wired components.
    pub wired: Wired,
    admin: Option<(TcpListener, Router)>,
    /// The admin API URL, when enabled.
    pub admin_url: Option<String>,
    /// The audit writer (checkpointed periodically and at shutdown).
    pub audit: crate::audit::writer::AuditWriter,
    /// Connection limits of every listener.
    connections: config::ConnectionLimits,
    /// `/metrics` for other hosts (config `metricsListener`).
    metrics: Option<(TcpListener, Router)>,
    /// Its URL, when enabled.
    pub metrics_url: Option<String>,
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve host '{host}'"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .with_context(|| format!("host '{host}' resolves to no address"))
}

async fn tls_config(ssl: &SslConfig, host: &str) -> anyhow::Result<RustlsConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match ssl {
        SslConfig::SelfSigned => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            if !names.iter().any(|n| n == host) {
                names.push(host.to_owned());
            }
            let cert = rcgen::generate_simple_self_signed(names)
                .context("cannot generate a self-signed certificate")?;
            RustlsConfig::from_pem(
                cert.cert.pem().into_bytes(),
                cert.key_pair.serialize_pem().into_bytes(),
            )
            .await
            .context("invalid generated certificate")
        }
        SslConfig::Files { certificate, key } => RustlsConfig::from_pem_file(certificate, key)
            .await
            .with_context(|| {
                format!(
                    "cannot load TLS certificate {} / key {}",
                    certificate.display(),
                    key.display()
                )
            }),
    }
}

/// Prepares a server: imports the shared objects, checks that access is controlled, binds.
pub async fn start(
    config: &Config,
    catalog: DynCatalog,
    allow_anonymous: bool,
    admin_port: Option<u16>,
) -> anyhow::Result<Server> {
    if allow_anonymous && !is_loopback_host(&config.host) {
        bail!(
            "refusing to start: --allow-anonymous is only allowed on a loopback host, not '{}'",
            config.host
        );
    }
    wiring::validate_partition_filters(config).await?;
    crate::catalog::plan::reconcile_config(
        catalog.as_ref(),
        &config.shares,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .context("cannot import the shared objects into the state store")?;
    if config.bearer_token.is_some() {
        tracing::warn!(
            "authorization.bearerToken grants every share to one shared token; prefer \
             per-recipient tokens (`lakeshare recipient create`)"
        );
    }
    if !allow_anonymous
        && config.bearer_token.is_none()
        && catalog.active_recipient_count().await? == 0
    {
        bail!(
            "refusing to start: no recipient exists and no authorization.bearerToken is \
             configured, so nobody could be authenticated. Create one with `lakeshare recipient \
             create NAME --share SHARE --config FILE --profile OUT.share`, or pass \
             --allow-anonymous for loopback development"
        );
    }
    let wired = wiring::wire(config, catalog, allow_anonymous, wiring::system_clock()).await?;
    if config.storage_self_test {
        let state = wired.catalog.catalog_state().await?;
        let tables: Vec<super::storage_check::TableToCheck> = state
            .shares
            .iter()
            .flat_map(|s| {
                s.schemas.iter().flat_map(move |c| {
                    c.tables
                        .iter()
                        .map(move |t| super::storage_check::TableToCheck {
                            name: format!("{}.{}.{}", s.name, c.name, t.name),
                            location: t.location.clone(),
                        })
                })
            })
            .collect();
        let problems = super::storage_check::check_cloud_tables(
            &tables,
            wired.stores.clone(),
            wired.reader.clone(),
        )
        .await;
        if !problems.is_empty() {
            bail!(
                "refusing to start: the storage self-test failed (set `storageSelfTest: false` to \
                 start anyway):\n  {}",
                problems.join("\n  ")
            );
        }
    }
    if config.url_signing_key_file.is_none() {
        wiring::spawn_keyring_refresh(
            wired.catalog.clone(),
            wired.keyring.clone(),
            Duration::from_secs(30),
        );
    }
    if config.ssl.is_none() && !is_loopback_host(&config.host) {
        tracing::warn!(
            host = %config.host,
            "serving plain HTTP on a non-loopback address: bearer tokens and signed URLs travel \
             in clear text; configure `ssl` or terminate TLS in a proxy"
        );
    }
    let addr = resolve(&config.host, config.port)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let tls = match &config.ssl {
        Some(ssl) => Some(tls_config(ssl, &config.host).await?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown_host = if local.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if is_loopback_host(&config.host) && !config.host.contains(':') {
        config.host.clone()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let url = format!(
        "{scheme}://{shown_host}:{}{}",
        local.port(),
        config.endpoint
    );
    let audit = super::audit::start_writer(config, wired.catalog.clone())?;
    let anomalies = config.anomalies.as_ref().map(|(rules, webhook)| {
        let sink = crate::audit::alerts::AlertSink::start(
            webhook.clone().unwrap_or_default(),
            audit.clone(),
        );
        (
            std::sync::Arc::new(crate::audit::anomaly::AnomalyDetector::new(rules.clone())),
            sink,
        )
    });
    let audit_for = |routes: &'static [(&'static str, &'static str)], prefix: &str| {
        Some(std::sync::Arc::new(crate::server::audit::AuditConfig {
            writer: audit.clone(),
            fail_closed: config.audit_fail_closed,
            routes,
            prefix: prefix.to_owned(),
            anomalies: anomalies.clone(),
        }))
    };
    let app = build_router(AppState {
        service: wired.service.clone(),
        prefix: config.endpoint.clone(),
        scheme,
        bound_base: url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        public_url: config.public_url.clone(),
        audit: audit_for(crate::server::ROUTES, &config.endpoint),
    });
    let admin = match admin_port {
        None => None,
        Some(port) => {
            let admin_listener = TcpListener::bind(("127.0.0.1", port))
                .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the admin API"))?;
            admin_listener.set_nonblocking(true)?;
            // Activation links live at the server root: on the public URL when there is one.
            let origin = match &config.public_url {
                Some(public) => public.clone(),
                None => url::Url::parse(&url)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default(),
            };
            let router =
                crate::server::admin::build_admin_router(crate::server::admin::AdminState {
                    service: wired.service.clone(),
                    recipient_origin: origin,
                    local_actor: None,
                    audit: audit_for(crate::server::admin::ADMIN_ROUTES, ""),
                });
            Some((admin_listener, router))
        }
    };
    let admin_url = match &admin {
        Some((l, _)) => Some(format!("http://127.0.0.1:{}", l.local_addr()?.port())),
        None => None,
    };
    let metrics = match &config.metrics_listener {
        None => None,
        Some(m) => {
            let addr = resolve(&m.host, m.port)?;
            let l = TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} for metricsListener"))?;
            l.set_nonblocking(true)?;
            let router = crate::server::metrics::build_metrics_router(
                crate::server::metrics::MetricsState {
                    service: wired.service.clone(),
                    token_hash: m.token_hash,
                },
            );
            Some((l, router))
        }
    };
    let metrics_url = match &metrics {
        Some((l, _)) => Some(format!("http://{}/metrics", l.local_addr()?)),
        None => None,
    };
    Ok(Server {
        listener,
        app,
        tls,
        url,
        wired,
        admin,
        admin_url,
        audit,
        connections: config.connections,
        metrics,
        metrics_url,
    })
}

impl Server {
    /// Serves until Ctrl-C / SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        use crate::server::conn::{Listener, serve};
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let periodic = self.audit.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Err(e) = periodic.checkpoint().await {
                    tracing::warn!(error = %e, "cannot write an audit checkpoint");
                }
            }
        });
        let audit = self.audit.clone();
        let admin = self.admin.map(|(listener, router)| {
            let (limits, stopped) = (self.connections, stopped.clone());
            tokio::spawn(async move {
                if let Err(e) = serve(Listener::plain(listener), router, limits, stopped).await {
                    tracing::error!(error = %e, "admin API listener failed");
                }
            })
        });
        let metrics = self.metrics.map(|(listener, router)| {
            let (limits, stopped) = (self.connections, stopped.clone());
            tokio::spawn(async move {
                if let Err(e) = serve(Listener::plain(listener), router, limits, stopped).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            })
        });
        let listener = match self.tls {
            Some(tls) => Listener::tls(self.listener, tls.get_inner()),
            None => Listener::plain(self.listener),
        };
        serve(listener, self.app, self.connections, stopped).await?;
        for task in [admin, metrics].into_iter().flatten() {
            let _ = task.await;
        }
        audit.checkpoint().await?;
        Ok(())
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Loads a config and prints its warnings.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = config::load(path).map_err(anyhow::Error::msg)?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    Ok(config)
}

/// `lakeshare serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(&args.config)?;
    if let Some(h) = args.host {
        config.host = h;
    }
    if let Some(p) = args.port {
        config.port = p;
    }
    if let Some(u) = &args.public_url {
        config.public_url = Some(config::check_public_url(u).map_err(anyhow::Error::msg)?);
    }
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| wiring::default_state_path(&args.config));
    wiring::check_serving_state(
        &state,
        config.bearer_token.is_some() || args.allow_anonymous,
    )?;
    let catalog: DynCatalog = wiring::open_catalog_as(&state, "server").await?;
    let server = start(&config, catalog, args.allow_anonymous, args.admin_port).await?;
    println!("lakeshare listening on {}", server.url);
    if let Some(admin) = &server.admin_url {
        println!("lakeshare admin API listening on {admin}");
    }
    if let Some(m) = &server.metrics_url {
        eprintln!("metrics (bearer token required) on {m}");
    }
    match &config.public_url {
        Some(public) => eprintln!(
            "public URL (profiles, links, file URLs): {public}{}",
            config.endpoint
        ),
        None if !is_loopback_host(&config.host) => eprintln!(
            "note: no publicUrl is set: profiles, activation links and file URLs use the Host \
             each request names (and, from trustedProxies, the forwarded scheme and host)"
        ),
        None => {}
    }
    std::io::stdout().flush()?;
    server.run().await
}
