//! riskserve's service layer, free of any transport: the use cases on [`Service`] (models, endpoint configs,
//! endpoints, invocations, identities, the audit trail, metrics, scaling and cost), the endpoint runtime that
//! serves invocations from memory, scoring, access control (credentials, Cedar policies, the hash-chained audit
//! trail) and the operations side (metrics, history, autoscaling, metering). Façades (riskserve-server) decode a
//! request, authorize it, call one function here and encode its answer.
//!
//! Modules depend on each other one way only (`scripts/check_layers.py` checks it): `service` (the use cases,
//! with `service/*` for each area) sits on `security`, `operations`, `runtime` and `scoring`, which sit on the
//! leaves (`error`, `caller`, `secrets`, `codec`, `metrics`, ...).

mod audit;
mod caller;
pub mod capture;
mod codec;
mod config;
mod error;
mod history;
mod identity;
mod logging;
mod metrics;
pub mod model_archive;
mod monitoring;
mod operations;
mod policy;
mod resources;
mod runtime;
mod scaling;
mod scoring;
mod secrets;
mod security;
mod service;
pub mod sigv4;
mod usage;
mod validate;

pub use audit::{AuditEvent, VerifyReport, redact_query, verify_data_dir};
pub use caller::{Caller, DecisionSlot, Principal, Resource, request_id};
pub use codec::{BodyFormat, decode_csv};
pub use config::{AuthConfig, ServerConfig, StoreUrl};
pub use error::{ErrorClass, ServiceError};
pub use history::{Datapoint, MetricQuery, MetricSeries};
pub use identity::AdminBootstrap;
pub use logging::{LogFormat, event as log_event, init as init_logging, logs_requests};
pub use metrics::{EXPOSITION_CONTENT_TYPE, InvocationContext, Metrics, VariantMetrics};
pub use monitoring::{Breach, FairnessSettings, MonitorSettings, Skipped};
pub use resources::{
    ArtifactDescription, ArtifactInput, ArtifactUploaded, CreateEndpoint, CreateEndpointConfig, CreateModel,
    DataCapture, Endpoint, EndpointConfig, List, Model, UpdateEndpoint, Variant, VariantChange,
    default_capture_destination,
};
pub use scaling::{AutoscalingSettings, PutScalingPolicy, ScalingActivity, ScalingPolicy};
pub use scoring::Cell;
pub use secrets::new_token;
pub use security::{AuthFailure, Credentials, PendingSignature, SignedParts};
pub use service::audit_trail::{AuditEventView, AuditQuery};
pub use service::console::{ConsoleSession, ConsoleSignIn};
pub use service::facade::{ContainerArchive, ServingSignature};
pub use service::identities::{
    AccessKeyDescription, CreateUser, NewAccessKey, NewToken, PolicyDocument, TokenDescription, UpdateCredential,
    UpdateUser, User,
};
pub use service::monitoring::{
    BaselineDescription, BaselineQuery, MonitorReport, MonitorReportSummary, MonitorSchedule, OutcomesAccepted,
    ReportWindow,
};
pub use service::{InvocationAnswer, InvocationRequest, Service};
pub use usage::{CostLine, CostQuery, CostReport, PriceTable};
pub use validate::inference_id as check_inference_id;
