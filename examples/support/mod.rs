//! What every example does the same way: logging, settings from the
//! environment, binding to loopback, stopping on Ctrl-C or SIGTERM.
#![allow(dead_code)] // each example uses part of it

use std::{env, str::FromStr, time::Duration};

use axum::Router;
use axum_sse::SseShutdown;
use tokio::net::TcpListener;

/// Logs to stderr; `RUST_LOG` overrides the default filter.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,axum_sse=debug".into()),
        )
        .init();
}

/// The environment variable `name` parsed, or `default`.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Binds `127.0.0.1:$PORT` (default 3000).
pub async fn bind() -> TcpListener {
    let port: u16 = env_or("PORT", 3000);
    TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:{port}: {err}"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async { tokio::signal::ctrl_c().await.expect("Ctrl-C handler") };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}

/// How long a graceful shutdown may wait for connections after every event
/// stream ended: a client that reads nothing at all can hold its connection
/// until its socket gives up.
const GRACE: Duration = Duration::from_secs(5);

/// Serves `app` with [`axum_sse::serve`] until Ctrl-C or SIGTERM. Then
/// `shutdown` ends every open event stream (each client gets the farewell
/// event, and new requests a `503`), so the graceful shutdown completes at
/// once; connections still open after [`GRACE`] are closed.
pub async fn serve_until_signal(listener: TcpListener, app: Router, shutdown: SseShutdown) {
    axum_sse::serve(listener, app)
        .shutdown(shutdown)
        .with_graceful_shutdown(shutdown_signal())
        .shutdown_timeout(GRACE)
        .await
        .expect("server error");
    tracing::info!("stopped");
}
