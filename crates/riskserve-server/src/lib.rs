//! riskserve's server: the service layer, the native REST façade with its OpenAPI document, the
//! SageMaker runtime invocation path, and the endpoint runtime that serves invocations from
//! memory. Layers: `rest` (façade) → `service` (use cases) → `runtime` (serving) and
//! `riskserve-store` (persistence); `scoring` is the one module that knows how rows are scored.

mod audit;
mod auth;
mod codec;
mod config;
mod error;
mod history;
mod iam;
mod logging;
mod metrics;
mod model_archive;
mod oip;
mod operations;
mod policy;
mod resources;
mod rest;
mod runtime;
mod sagemaker;
mod sagemaker_runtime;
mod scaling;
mod scoring;
mod service;
pub mod sigv4;
mod usage;
mod validate;

pub use audit::{AuditEvent, VerifyReport, verify_data_dir};
pub use auth::{AuthConfig, Caller, InvocationRecords, Principal, Resource};
pub use codec::BodyFormat;
pub use config::ServerConfig;
pub use error::ServiceError;
pub use history::{Datapoint, MetricQuery, MetricSeries};
pub use iam::{AdminBootstrap, new_token};
pub use logging::LogFormat;
pub use metrics::{InvocationContext, Metrics, VariantMetrics};
pub use resources::{
    ArtifactInput, ArtifactUploaded, CreateEndpoint, CreateEndpointConfig, CreateModel, Endpoint, EndpointConfig, List,
    Model, UpdateEndpoint, Variant,
};
pub use rest::{openapi_json, router};
pub use scaling::{AutoscalingSettings, PutScalingPolicy, ScalingActivity, ScalingPolicy};
pub use service::{InvocationAnswer, InvocationRequest, Service};
pub use usage::{CostLine, CostQuery, CostReport, PriceTable};

/// Runs the server until SIGTERM or Ctrl-C: recovers the stored endpoints, listens, prints
/// `riskserve listening on http://ADDR` on stderr, and on a signal stops accepting, lets
/// in-flight requests finish and drains every endpoint.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    logging::init(config.log_format);
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
    axum::serve(listener, router(service.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
