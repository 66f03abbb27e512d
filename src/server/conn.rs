//! Serving accepted connections, for the recipient, admin and TLS listeners alike:
//! `TCP_NODELAY` on every socket (responses written in several pieces must not wait for the
//! client's delayed ACK), a cap on open connections, a deadline for request headers (also the
//! keep-alive idle limit of HTTP/1), one for request bodies, an idle timeout for connections
//! with nothing in flight (HTTP/2, and clients that connect and send nothing), and graceful
//! shutdown.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::ConnectionLimits;

/// How long open connections may take to finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Traffic and in-flight requests of one connection.
#[derive(Debug)]
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// The instant after which the connection counts as idle, if nothing happens before.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle)
    }
}

/// Counts one request as in flight until its response body ends or is dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.touch();
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket (plain or TLS) with its traffic noted.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error a request body reports when it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

/// A request body that must end before a deadline.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(self.limit).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it ends.
struct GuardedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A listener ready to serve: plain TCP or TLS.
pub struct Listener {
    tcp: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener {
    /// A plain-TCP listener (must be non-blocking).
    pub fn plain(tcp: std::net::TcpListener) -> Self {
        Self { tcp, tls: None }
    }

    /// A TLS listener (must be non-blocking).
    pub fn tls(tcp: std::net::TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            tcp,
            tls: Some(tokio_rustls::TlsAcceptor::from(config)),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets open connections finish
/// their requests for up to ten seconds.
pub async fn serve(
    listener: Listener,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tcp = tokio::net::TcpListener::from_std(listener.tcp)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tls = listener.tls;
    loop {
        // At the cap, stop accepting: further clients wait in the kernel's queue.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, remote) = tokio::select! {
            a = tcp.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let tls = tls.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, tls, app, limits, stop).await;
            drop(permit);
        });
    }
    drop(tcp);
    // Wait for open connections to drain (each stops by itself within DRAIN).
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    activity.touch();
    let io = match tls {
        None => tokio_util::either::Either::Left(stream),
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => tokio_util::either::Either::Right(s),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %remote, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let io = TokioIo::new(Tracked {
        inner: io,
        activity: activity.clone(),
    });
    let per_request = activity.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(&per_request);
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(remote));
        let body = Body::new(DeadlineBody {
            inner: body,
            limit: limits.body_timeout,
            deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
        });
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(hyper::Request::from_parts(parts, body))
                .await
                .unwrap_or_else(|never| match never {});
            Ok::<_, std::convert::Infallible>(resp.map(|b| {
                Body::new(GuardedBody {
                    inner: b,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX));
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
        }
        () = idle_watch(&activity, limits.idle_timeout) => {
            tracing::debug!(%remote, "idle connection closed");
        }
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
        }
    }
}

/// Resolves once shutdown was asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Largest request head (request line and headers) a client may send.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Resolves when the connection has had nothing in flight and no traffic for `idle`.
async fn idle_watch(activity: &Activity, idle: Duration) {
    loop {
        match activity.idle_deadline(idle) {
            Some(deadline) if deadline <= Instant::now() => return,
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            // A request is in flight: its own deadlines apply; look again later.
            None => tokio::time::sleep(idle.min(Duration::from_secs(1))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
        }
    }

    async fn start() -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let tcp =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| unreachable!("{e}"));
        tcp.set_nonblocking(true)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let addr = tcp.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route("/echo", axum::routing::post(|b: Bytes| async move { b }))
            .route(
                "/peer",
                axum::routing::get(|ConnectInfo(p): ConnectInfo<SocketAddr>| async move {
                    p.ip().to_string()
                }),
            );
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = serve(Listener::plain(tcp), app, limits(), rx).await;
        });
        (addr, tx, task)
    }

    async fn read_all(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn stalled_clients_are_disconnected_and_others_are_served() {
        let (addr, stop, task) = start().await;
        // Connected, sends nothing: closed by the idle timeout.
        let mut silent = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        // Half-sent headers: closed by the header deadline.
        let mut half_head = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        half_head
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let t0 = Instant::now();
        assert_eq!(read_all(&mut silent).await, "");
        let _ = read_all(&mut half_head).await;
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "both were closed by the server"
        );
        // Half-sent body: the request fails (no handler waits forever), the slot is freed.
        let mut half_body = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        half_body
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let answer = read_all(&mut half_body).await;
        assert!(!answer.contains("200 OK"), "{answer}");
        // The cap is 2: after the stalled ones are gone, two clients are served at once.
        let mut a = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut b = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        for s in [&mut a, &mut b] {
            s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        for s in [&mut a, &mut b] {
            let r = read_all(s).await;
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            assert!(r.ends_with("127.0.0.1"), "{r}");
        }
        let _ = stop.send(true);
        let _ = task.await;
    }

    #[tokio::test]
    async fn kept_alive_connections_serve_several_requests() {
        let (addr, stop, task) = start().await;
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        for _ in 0..3 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
            let mut buf = [0u8; 512];
            let n = s
                .read(&mut buf)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
            assert!(String::from_utf8_lossy(&buf[..n]).ends_with("ok"));
        }
        let _ = stop.send(true);
        let _ = task.await;
    }
}
