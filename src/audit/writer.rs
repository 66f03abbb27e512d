//! Appends audit events for one serving process: one hash chain per writer, group-committed
//! (concurrent requests' events go to the store in one transaction), with a signed checkpoint
//! every `checkpoint_every` records and on shutdown.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify, oneshot};

use super::chain::{AuditRecord, GENESIS, SigningKey, link_hash};
use super::{AuditError, AuditEvent, AuditStore};

type Pending = Vec<(AuditEvent, oneshot::Sender<Result<(), String>>)>;

struct Head {
    seq: i64,
    hash: String,
    checkpointed: i64,
}

struct Shared {
    writer: String,
    store: Arc<dyn AuditStore>,
    key: Option<SigningKey>,
    checkpoint_every: i64,
    pending: Mutex<Pending>,
    wake: Notify,
    head: Mutex<Head>,
    healthy: std::sync::atomic::AtomicBool,
    sink: Option<JsonlSink>,
}

/// An additional copy of every committed record, as JSON lines, for shipping to a SIEM; the
/// file is rotated (renamed with a timestamp suffix) when it grows past `max_bytes`.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    /// The file.
    pub path: std::path::PathBuf,
    /// Rotation size.
    pub max_bytes: u64,
}

impl JsonlSink {
    fn append(&self, records: &[AuditRecord]) -> std::io::Result<()> {
        use std::io::Write as _;
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes) {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(format!(".{stamp}"));
            std::fs::rename(&self.path, rotated)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut buf = String::new();
        for r in records {
            let line = serde_json::json!({
                "writer": r.writer, "seq": r.seq, "hash": r.hash, "prev_hash": r.prev_hash,
                "event": serde_json::from_str::<serde_json::Value>(&r.body).unwrap_or_default(),
            });
            buf.push_str(&line.to_string());
            buf.push('\n');
        }
        f.write_all(buf.as_bytes())
    }
}

/// The audit writer of this process.
#[derive(Clone)]
pub struct AuditWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("writer", &self.shared.writer)
            .finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Starts a writer with a new chain (id `writer`), committing in the background.
    pub fn start(
        writer: String,
        store: Arc<dyn AuditStore>,
        key: Option<SigningKey>,
        checkpoint_every: i64,
    ) -> Self {
        Self::start_with_sink(writer, store, key, checkpoint_every, None)
    }

    /// [`Self::start`], also appending every committed record to `sink`.
    pub fn start_with_sink(
        writer: String,
        store: Arc<dyn AuditStore>,
        key: Option<SigningKey>,
        checkpoint_every: i64,
        sink: Option<JsonlSink>,
    ) -> Self {
        let shared = Arc::new(Shared {
            writer,
            store,
            key,
            checkpoint_every: checkpoint_every.max(1),
            pending: Mutex::new(Vec::new()),
            wake: Notify::new(),
            head: Mutex::new(Head {
                seq: 0,
                hash: GENESIS.to_owned(),
                checkpointed: 0,
            }),
            healthy: std::sync::atomic::AtomicBool::new(true),
            sink,
        });
        let bg = shared.clone();
        tokio::spawn(async move {
            loop {
                bg.wake.notified().await;
                commit(&bg).await;
            }
        });
        Self { shared }
    }

    /// Checks that the store would take a record now (nothing is written).
    pub async fn probe(&self) -> Result<(), AuditError> {
        let r = self.shared.store.probe_audit().await;
        self.shared
            .healthy
            .store(r.is_ok(), std::sync::atomic::Ordering::Relaxed);
        r
    }

    /// Whether the last commit succeeded.
    pub fn healthy(&self) -> bool {
        self.shared
            .healthy
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This chain's id.
    pub fn writer_id(&self) -> &str {
        &self.shared.writer
    }

    /// Records `event`; returns once it is committed (or the store failed).
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().await.push((event, tx));
        self.shared.wake.notify_one();
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AuditError::Unavailable(
                e.trim_start_matches("audit store unavailable: ").to_owned(),
            )),
            Err(_) => Err(AuditError::Unavailable("audit writer stopped".into())),
        }
    }

    /// Signs the current chain head now (if anything is uncovered and a key is set).
    pub async fn checkpoint(&self) -> Result<(), AuditError> {
        let mut head = self.shared.head.lock().await;
        checkpoint_head(&self.shared, &mut head).await
    }
}

async fn checkpoint_head(s: &Shared, head: &mut Head) -> Result<(), AuditError> {
    let Some(key) = &s.key else { return Ok(()) };
    if head.seq == head.checkpointed {
        return Ok(());
    }
    let cp = key.checkpoint(
        &s.writer,
        head.seq,
        &head.hash,
        chrono::Utc::now().timestamp_millis(),
    );
    s.store.append_checkpoint(&cp).await?;
    head.checkpointed = head.seq;
    Ok(())
}

/// Commits everything pending as one batch (leader: the background task).
async fn commit(s: &Shared) {
    loop {
        let batch: Pending = std::mem::take(&mut *s.pending.lock().await);
        if batch.is_empty() {
            return;
        }
        let mut head = s.head.lock().await;
        let mut records = Vec::with_capacity(batch.len());
        let (mut seq, mut prev) = (head.seq, head.hash.clone());
        for (event, _) in &batch {
            let body = match serde_json::to_string(event) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode an audit event");
                    continue;
                }
            };
            seq += 1;
            let hash = link_hash(&s.writer, seq, &prev, &body);
            records.push(AuditRecord {
                writer: s.writer.clone(),
                seq,
                at_ms: event.at_ms,
                principal: event.principal.clone(),
                share: event.share.clone(),
                table: event.table.clone(),
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        let outcome = s.store.append_audit(&records).await;
        s.healthy
            .store(outcome.is_ok(), std::sync::atomic::Ordering::Relaxed);
        if outcome.is_ok() {
            if let Some(sink) = &s.sink
                && let Err(e) = sink.append(&records)
            {
                tracing::warn!(error = %e, path = %sink.path.display(), "cannot append to the audit JSON-lines file");
            }
            head.seq = seq;
            head.hash = prev;
            if head.seq - head.checkpointed >= s.checkpoint_every
                && let Err(e) = checkpoint_head(s, &mut head).await
            {
                tracing::warn!(error = %e, "cannot write an audit checkpoint");
            }
        }
        drop(head);
        let outcome = outcome.map_err(|e| e.to_string());
        for (_, tx) in batch {
            let _ = tx.send(outcome.clone());
        }
    }
}
