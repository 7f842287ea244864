//! The HTTP server: accepts connections under a global and a per-peer cap, serves each with
//! hyper's HTTP/1.1 under a header-read timeout (which also closes idle keep-alive and silent
//! connections), and drains connections on shutdown.
//!
//! `axum::serve` sets no timer, so a client that opens sockets and sends nothing (or half a
//! request line) would hold them, and a file descriptor each, forever.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::peer::{PeerKey, TrustedProxies};
use crate::http::slots::CountedSlots;

/// Connection limits of the server (README, "Security").
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS`, default 10: a connection must deliver a request's
    /// complete header within this time of being opened or of its previous response; an idle or
    /// slow one is closed.
    pub header_read_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS`, default 8,192 (lowered to fit the file-descriptor limit): open
    /// connections of the process; beyond it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// `HTTP_MAX_CONNECTIONS_PER_PEER`, default 128: open connections of one client address
    /// (IPv6 by /64; trusted proxies are exempt); beyond it, new ones are closed at once.
    pub max_connections_per_peer: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 8192,
            max_connections_per_peer: 128,
        }
    }
}

/// File descriptors kept free of connections, for the database pool, NATS, files and outbound
/// calls.
const RESERVED_DESCRIPTORS: u64 = 512;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in force.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

impl ServerLimits {
    /// These limits with the global cap lowered to fit `file_limit` descriptors.
    pub fn fitted_to(mut self, file_limit: u64) -> Self {
        let room = file_limit.saturating_sub(RESERVED_DESCRIPTORS).max(64);
        self.max_connections = self
            .max_connections
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        self
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets open requests finish
/// (for up to 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    trusted_proxies: TrustedProxies,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let peers: CountedSlots<PeerKey> = CountedSlots::default();
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let permit: OwnedSemaphorePermit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = if trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match peers.try_take(PeerKey::of(peer.ip()), limits.max_connections_per_peer) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(peer = %peer.ip(), "per-peer connection cap reached");
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s of shutdown; closing them");
        }
    }
    Ok(())
}

/// Middleware: a request must produce its response head within `HTTP_REQUEST_TIMEOUT_SECONDS`
/// (`HTTP_UPLOAD_TIMEOUT_SECONDS` for media and inbound email), else 503; reading a slow body
/// counts. The realtime stream is exempt: its response starts at once and stays open.
pub async fn request_deadline(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let limit = if path == "/api/stream" {
        return next.run(request).await;
    } else if path.starts_with("/api/media") || path == "/webhooks/email" {
        state.config.upload_timeout
    } else {
        state.config.request_timeout
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "service_unavailable",
            message: "the request took too long and was abandoned".into(),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_cap_fits_the_descriptor_limit() {
        let limits = ServerLimits::default().fitted_to(1024);
        assert_eq!(limits.max_connections, 512);
        let roomy = ServerLimits::default().fitted_to(1 << 20);
        assert_eq!(roomy.max_connections, 8192);
    }
}
