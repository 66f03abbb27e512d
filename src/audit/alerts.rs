//! Delivery of anomaly alerts to a webhook (JSON POST), in order, retried with back-off until
//! the receiver accepts them; the audit log records each alert, its first failed delivery and
//! its late delivery, so no alert is lost silently.

use std::time::Duration;

use tokio::sync::mpsc;

use super::AuditEvent;
use super::anomaly::Anomaly;
use super::writer::AuditWriter;

/// Alerts waiting for delivery beyond this are dropped (and audited as dropped).
const QUEUE: usize = 10_000;

/// The sink.
#[derive(Debug, Clone)]
pub struct AlertSink {
    tx: mpsc::Sender<serde_json::Value>,
    audit: AuditWriter,
}

fn event(kind: &str, alert: &serde_json::Value) -> AuditEvent {
    let mut params = std::collections::BTreeMap::new();
    for key in ["rule", "detail", "alert_id"] {
        if let Some(v) = alert[key].as_str() {
            params.insert(key.to_owned(), v.to_owned());
        }
    }
    AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: String::new(),
        kind: kind.to_owned(),
        method: String::new(),
        route: String::new(),
        principal: alert["principal"].as_str().map(str::to_owned),
        params,
        ..AuditEvent::default()
    }
}

impl AlertSink {
    /// Starts delivering to `url`.
    pub fn start(url: String, audit: AuditWriter) -> Self {
        let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE);
        let log = audit.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            while let Some(alert) = rx.recv().await {
                let mut backoff = Duration::from_millis(250);
                let mut failed = false;
                loop {
                    let sent = http.post(&url).json(&alert).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => break,
                        outcome => {
                            let why = match outcome {
                                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                                Err(e) => e.to_string(),
                            };
                            if !failed {
                                failed = true;
                                tracing::warn!(error = %why, "alert webhook unavailable; retrying");
                                let _ = log.record(event("alert_delivery_failed", &alert)).await;
                            }
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                if failed {
                    let _ = log.record(event("alert_delivered_late", &alert)).await;
                }
            }
        });
        Self { tx, audit }
    }

    /// Records the alert in the audit log and queues it for the webhook.
    pub async fn raise(&self, a: &Anomaly) {
        let alert = serde_json::json!({
            "alert_id": uuid::Uuid::new_v4().to_string(),
            "rule": a.rule,
            "principal": a.principal,
            "detail": a.detail,
            "at": chrono::DateTime::from_timestamp_millis(a.at_ms).map(|d| d.to_rfc3339()),
            "source": "lakeshare",
        });
        if let Err(e) = self.audit.record(event("anomaly", &alert)).await {
            tracing::error!(error = %e, "cannot audit an anomaly");
        }
        if self.tx.try_send(alert.clone()).is_err() {
            tracing::error!("alert queue full; alert dropped");
            let _ = self.audit.record(event("alert_dropped", &alert)).await;
        }
    }
}
