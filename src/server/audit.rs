//! One audit event per request, from one place: a middleware around both routers. It
//! identifies the route, lets the authentication extractors note who the caller was, records
//! the outcome once the response head is ready, and commits the event before the response is
//! sent. If the audit store fails and the log is fail-closed, the caller gets 503 instead of
//! an unaudited answer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::error::refusal;
use crate::audit::AuditEvent;
use crate::audit::vended::VENDED;
use crate::audit::writer::AuditWriter;
use crate::service::ServiceError;

/// Where extractors note the authenticated caller for the audit event.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditSlot(Arc<Mutex<(Option<String>, Option<String>)>>);

impl AuditSlot {
    /// Notes the principal and the token display prefix.
    pub(crate) fn set(&self, principal: &str, token_prefix: Option<&str>) {
        if let Ok(mut s) = self.0.lock() {
            *s = (Some(principal.to_owned()), token_prefix.map(str::to_owned));
        }
    }

    fn get(&self) -> (Option<String>, Option<String>) {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The protocol error code of an error response (set by the error mappers).
#[derive(Debug, Clone)]
pub(crate) struct ErrorCodeExt(pub(crate) String);

/// How the log is wired into a router.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The writer.
    pub writer: AuditWriter,
    /// Refuse requests (503) when an event cannot be committed.
    pub fail_closed: bool,
    /// Routes of this router (method, template), to name the route of each request.
    pub routes: &'static [(&'static str, &'static str)],
    /// Prefix stripped before matching (`/delta-sharing`).
    pub prefix: String,
    /// Anomaly rules and where their alerts go.
    pub anomalies: Option<(
        Arc<crate::audit::anomaly::AnomalyDetector>,
        crate::audit::alerts::AlertSink,
    )>,
}

/// Request parameters that shape an answer (others, and any secret, are not recorded).
const SHAPING: &[&str] = &[
    "version",
    "timestamp",
    "startingVersion",
    "endingVersion",
    "startingTimestamp",
    "endingTimestamp",
    "maxResults",
    "maxFiles",
    "limitHint",
    "includeHistoricalProtocol",
    "includeRefreshToken",
    "include_shared_data",
    "max_files",
    "allow_delete",
    "catalog_name",
    "schema_name",
];
/// Parameters recorded only as present (they carry opaque or long values).
const PRESENCE: &[&str] = &[
    "pageToken",
    "refreshToken",
    "jsonPredicateHints",
    "predicateHints",
    "queryId",
];

pub(crate) fn route_of(
    routes: &[(&str, &str)],
    method: &Method,
    path: &str,
) -> Option<(String, Vec<(String, String)>)> {
    // Exact segments: a trailing or doubled slash is another (unmatched) path.
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    'outer: for (m, template) in routes {
        let tsegs: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let method_ok =
            m.eq_ignore_ascii_case(method.as_str()) || (*m == "GET" && method == Method::HEAD);
        if tsegs.len() != segs.len() || !method_ok {
            continue;
        }
        let mut captures = Vec::new();
        for (t, s) in tsegs.iter().zip(&segs) {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                if s.is_empty() {
                    continue 'outer;
                }
                let v = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
                captures.push((name.to_owned(), v.into_owned()));
            } else if t != s {
                continue 'outer;
            }
        }
        return Some(((*template).to_owned(), captures));
    }
    None
}

/// The path below the router's prefix (`None` when the path is outside it).
pub(crate) fn below_prefix<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    path.strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'))
}

fn kind_of(route: &str, admin: bool) -> &'static str {
    if admin {
        return "admin";
    }
    match route {
        r if r.starts_with("/files/") => "file",
        r if r.ends_with("/query") => "query",
        r if r.ends_with("/changes") => "changes",
        r if r.contains("/queries/") => "async_query",
        r if r.ends_with("/metadata") => "metadata",
        r if r.ends_with("/version") || r.ends_with("{table}") => "version",
        r if r.ends_with("/temporary-table-credentials") => "temporary_credentials",
        r if r.contains("data_sharing_activation") => "activation",
        "unmatched" => "unmatched",
        _ => "list",
    }
}

fn shaping_params(
    query: Option<&str>,
    body: &[u8],
    out: &mut std::collections::BTreeMap<String, String>,
) {
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if SHAPING.contains(&k.as_ref()) {
            out.insert(k.into_owned(), v.chars().take(200).collect());
        } else if PRESENCE.contains(&k.as_ref()) {
            out.insert(k.into_owned(), "present".to_owned());
        }
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for (k, v) in map {
            if SHAPING.contains(&k.as_str()) {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(k, text.chars().take(200).collect());
            } else if PRESENCE.contains(&k.as_str()) {
                out.insert(k, "present".to_owned());
            }
        }
    }
}

/// Largest request body (as `router::read_body_first`).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The middleware.
pub(crate) async fn audit_requests(
    State(cfg): State<Option<Arc<AuditConfig>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(cfg) = cfg else {
        return next.run(request).await;
    };
    // Probes and scrapes are not data access (not audited; they still carry a request id).
    if matches!(
        request.uri().path(),
        "/healthz" | "/readyz" | "/_lakeshare/metrics" | "/metrics"
    ) {
        let mut r = next.run(request).await;
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            r.headers_mut().insert("x-request-id", v);
        }
        return r;
    }
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (mut parts, body) = request.into_parts();
    let admin = cfg.prefix.is_empty()
        && cfg
            .routes
            .first()
            .is_some_and(|(_, r)| r.starts_with("/api/"));
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| super::error::body_refusal(&e, MAX_BODY_BYTES, admin));
    let path = parts.uri.path().to_owned();
    let (route, captures) = below_prefix(&cfg.prefix, &path)
        .and_then(|inner| route_of(cfg.routes, &parts.method, inner))
        .or_else(|| route_of(crate::server::PUBLIC_ROUTES, &parts.method, &path))
        .unwrap_or_else(|| ("unmatched".to_owned(), Vec::new()));
    let slot = AuditSlot::default();
    let vended = Arc::new(crate::audit::vended::Vended::default());
    parts.extensions.insert(slot.clone());
    let client_ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect());
    let mut params = std::collections::BTreeMap::new();
    let body_for_params = bytes.as_ref().ok().cloned().unwrap_or_default();
    if body_for_params.len() > 64 * 1024 {
        // Large bodies (up to 2 MiB of JSON) are parsed off the async threads.
        let query = parts.uri.query().map(str::to_owned);
        params = tokio::task::spawn_blocking(move || {
            let mut p = std::collections::BTreeMap::new();
            shaping_params(query.as_deref(), &body_for_params, &mut p);
            p
        })
        .await
        .unwrap_or_default();
    } else {
        shaping_params(parts.uri.query(), &body_for_params, &mut params);
    }
    let method = parts.method.to_string();
    let file_recipient =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "r")
            .map(|(_, v)| v.into_owned());
    // A change (anything but GET/HEAD, and redeeming an activation link) is only carried out
    // when its event can be written; after a failed write, every request first checks that
    // the log works again.
    let mutating = !matches!(parts.method, Method::GET | Method::HEAD)
        || route.ends_with("/data_sharing_activation/{code}");
    let refuse =
        cfg.fail_closed && (mutating || !cfg.writer.healthy()) && cfg.writer.probe().await.is_err();
    let mut response = if refuse {
        // The last write failed: refuse before doing anything; recording this refusal is the
        // probe that brings the log back.
        refusal(
            ServiceError::Unavailable(
                "the audit log is unavailable; the request was not served".to_owned(),
            ),
            admin,
        )
    } else {
        match bytes {
            Ok(bytes) => {
                use tracing::Instrument as _;
                let span = tracing::info_span!("request", request_id = %request_id, route = %route);
                VENDED
                    .scope(
                        vended.clone(),
                        next.run(Request::from_parts(parts, Body::from(bytes)))
                            .instrument(span),
                    )
                    .await
            }
            Err(refusal) => refusal,
        }
    };
    let status = response.status().as_u16();
    let (mut principal, token_prefix) = slot.get();
    let kind = kind_of(&route, admin);
    if principal.is_none() && kind == "file" && status < 300 {
        principal = file_recipient.map(|r| format!("recipient-id:{r}"));
    }
    let capture = |name: &str| {
        captures
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let event = AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: request_id.clone(),
        kind: kind.to_owned(),
        method,
        route: route.clone(),
        principal,
        token_prefix,
        client_ip,
        user_agent,
        share: capture("share").or_else(|| capture("name").filter(|_| route.contains("/shares/"))),
        schema: capture("schema"),
        table: capture("table").or_else(|| capture("full_name")),
        table_version: response
            .headers()
            .get("delta-table-version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        params,
        status,
        error_code: response
            .extensions()
            .get::<ErrorCodeExt>()
            .map(|e| e.0.clone()),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        files: None,
        bytes: None,
        incomplete: false,
    };
    // The access log line (no token, signature or URL: the route template, not the path).
    tracing::info!(
        target: "lakeshare::access",
        method = %event.method,
        route = %event.route,
        status = event.status,
        duration_ms = event.duration_ms,
        request_id = %event.request_id,
        principal = event.principal.as_deref().unwrap_or("-"),
        client_ip = event.client_ip.as_deref().unwrap_or("-"),
        "request"
    );
    let who = event
        .principal
        .clone()
        .or_else(|| event.client_ip.as_ref().map(|ip| format!("ip:{ip}")));
    let (at_ms, status) = (event.at_ms, event.status);
    if let (Some((detector, sink)), Some(who)) = (&cfg.anomalies, who) {
        for hit in detector.observe(&who, status, at_ms) {
            sink.raise(&hit).await;
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    // A streamed answer (query, changes) is recorded when its body ends, with the files and
    // bytes it handed out; its last chunk goes out only after the event is committed.
    let streamed = status == 200
        && response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-ndjson"));
    if streamed {
        return deferred(response, event, cfg.writer.clone(), vended, started);
    }
    if let Err(e) = cfg.writer.record(event).await {
        tracing::error!(error = %e, request_id = %request_id, "cannot write the audit event");
        if cfg.fail_closed {
            response = refusal(
                ServiceError::Unavailable(
                    "the audit log is unavailable: the answer is withheld (the request may \
                     have taken effect; check before retrying a change)"
                        .to_owned(),
                ),
                admin,
            );
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Records a streamed response's event when its body ends (or is dropped early: then marked
/// incomplete). If the event cannot be committed, the body fails instead of completing.
struct Pending {
    event: Option<AuditEvent>,
    writer: AuditWriter,
    vended: Arc<crate::audit::vended::Vended>,
    started: Instant,
}

impl Pending {
    fn finish(&mut self, incomplete: bool) -> Option<AuditEvent> {
        let mut e = self.event.take()?;
        let (files, bytes) = self.vended.totals();
        e.files = Some(files);
        e.bytes = Some(bytes);
        e.incomplete = incomplete;
        e.duration_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Some(e)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(e) = self.finish(true) {
            let writer = self.writer.clone();
            tokio::spawn(async move {
                if let Err(err) = writer.record(e).await {
                    tracing::error!(error = %err, "cannot write the audit event of an interrupted stream");
                }
            });
        }
    }
}

fn deferred(
    response: Response,
    event: AuditEvent,
    writer: AuditWriter,
    vended: Arc<crate::audit::vended::Vended>,
    started: Instant,
) -> Response {
    use futures::StreamExt as _;
    let (parts, body) = response.into_parts();
    let pending = Pending {
        event: Some(event),
        writer,
        vended,
        started,
    };
    let stream = futures::stream::unfold(
        (body.into_data_stream(), Some(pending)),
        |(mut inner, mut pending)| async move {
            match inner.next().await {
                Some(Ok(chunk)) => Some((Ok(chunk), (inner, pending))),
                Some(Err(e)) => {
                    // The body failed: the event is written as incomplete (on drop).
                    Some((Err(e), (inner, pending)))
                }
                None => {
                    let p = pending.as_mut()?;
                    let event = p.finish(false)?;
                    let writer = p.writer.clone();
                    match writer.record(event).await {
                        Ok(()) => None,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot write the audit event; failing the body");
                            Some((
                                Err(axum::Error::new(std::io::Error::other(
                                    "the audit log is unavailable",
                                ))),
                                (inner, None),
                            ))
                        }
                    }
                }
            }
        },
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_and_their_parts_captured() {
        let routes = crate::server::ROUTES;
        let (r, caps) = route_of(
            routes,
            &Method::POST,
            "/shares/s%201/schemas/d/tables/t/query",
        )
        .unwrap_or_else(|| unreachable!());
        assert_eq!(r, "/shares/{share}/schemas/{schema}/tables/{table}/query");
        assert_eq!(caps[0], ("share".to_owned(), "s 1".to_owned()));
        assert_eq!(kind_of(&r, false), "query");
        assert!(route_of(routes, &Method::GET, "/nope").is_none());
        let mut p = std::collections::BTreeMap::new();
        shaping_params(
            Some("maxResults=5&pageToken=SECRET"),
            br#"{"version": 3, "refreshToken": "SECRET2", "predicateHints": ["a"]}"#,
            &mut p,
        );
        assert_eq!(p["maxResults"], "5");
        assert_eq!(p["version"], "3");
        assert_eq!(p["pageToken"], "present");
        assert!(!format!("{p:?}").contains("SECRET"));
    }
}
