//! riskserve's HTTP façades over the service layer (riskserve-service): the native REST API with its OpenAPI
//! document, the SageMaker control plane (JSON 1.1) and runtime, the Open Inference Protocol v2, the
//! authentication and request-log middleware, and the route table. Every handler decodes, authorizes, makes one
//! service call and encodes; the logic lives in the service crate, which knows no HTTP.

mod audit;
mod authenticate;
mod console;
mod iam;
mod monitoring;
mod oip;
mod operations;
mod request_log;
mod respond;
mod rest;
mod router;
mod sagemaker;
mod sagemaker_runtime;

use std::future::IntoFuture;

pub use riskserve_service::*;
pub use router::{openapi_json, router};

/// Runs the server until SIGTERM or Ctrl-C: recovers the stored endpoints, listens, prints
/// `riskserve listening on http://ADDR` on stderr, and on a signal stops accepting, lets
/// in-flight requests finish and drains every endpoint.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    riskserve_service::init_logging(config.log_format);
    let service = Service::start(config.clone()).await.map_err(|error| anyhow::anyhow!("cannot start: {error}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", config.listen))?;
    let address = listener.local_addr()?;
    if let Some(metrics_address) = config.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_address)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen for metrics on {metrics_address}: {error}"))?;
        eprintln!("riskserve metrics on http://{}/metrics", metrics_listener.local_addr()?);
        let metrics_router = operations::open_metrics_router(service.clone());
        // It ends with the process; scrapes need no graceful end.
        tokio::spawn(async move { axum::serve(metrics_listener, metrics_router).await });
    }
    eprintln!("riskserve listening on http://{address}");
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let draining = service.clone();
    let server =
        axum::serve(listener, router(service.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Readiness goes first, so a balancer stops sending while in-flight requests finish.
                draining.stop_accepting();
                let _ = signalled.send(());
            });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => result?,
        _ = on_signal => {
            let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                eprintln!("riskserve: requests still in flight after {grace:?} are cut off");
            }
        }
    }
    service.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("riskserve: shutting down; in-flight requests finish first");
}
