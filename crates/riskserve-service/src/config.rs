//! The server's settings (access control's among them), with the defaults every layer (file, flags, environment)
//! starts from.

use std::net::SocketAddr;
use std::path::PathBuf;

use riskserve_store::{StoreLocation, redact_url};
use serde::Deserialize;

use crate::identity::AdminBootstrap;
use crate::logging::LogFormat;
use crate::scaling::AutoscalingSettings;
use crate::usage::PriceTable;

/// A database URL, which may hold a password: never printed whole (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:?}", redact_url(&self.0))
    }
}

impl ServerConfig {
    /// Where the store lives, as the store crate takes it.
    pub fn store_location(&self) -> StoreLocation {
        StoreLocation {
            metadata_url: self.store.as_ref().map(|url| url.0.clone()),
            artifacts_url: self.artifacts.clone(),
        }
    }
}

/// Everything `riskserve serve` can be told. Unknown keys in a file are refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder for the metadata database and the artifacts (when `store` and `artifacts` are unset), the master key
    /// file and the audit signing key.
    pub data_dir: PathBuf,
    /// The metadata database shared by replicas, `postgres://user:password@host:port/database`; unset: SQLite in
    /// `data_dir`.
    pub store: Option<StoreUrl>,
    /// The artifact store shared by replicas, `s3://bucket/prefix` (credentials, region and endpoint from the usual
    /// AWS variables); unset: a folder in `data_dir`.
    pub artifacts: Option<String>,
    /// Largest request body (invocations and JSON requests), in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest artifact upload (`PUT /api/v1/artifacts`), in bytes.
    pub max_artifact_bytes: usize,
    /// Jobs each worker unit queues before it refuses more (then 503 `overloaded`).
    pub queue_depth: usize,
    /// Largest instance count a variant may ask for.
    pub max_instances: u32,
    /// The region SageMaker ARNs name.
    pub region: String,
    /// The twelve-digit account id SageMaker ARNs name.
    pub account_id: String,
    /// A second listener that serves only `GET /metrics`, without credentials (for a Prometheus on
    /// a trusted network); none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds that in-flight requests get to finish after SIGTERM before the server stops anyway.
    pub shutdown_grace_seconds: u64,
    /// Seconds between two looks for due monitoring schedules.
    pub monitor_poll_seconds: f64,
    /// `text` (plain lines) or `json` (JSON lines, one per request with its request id).
    pub log_format: LogFormat,
    /// How the autoscaler runs (`[autoscaling]`).
    pub autoscaling: AutoscalingSettings,
    /// Prices of the cost report (`[prices]`).
    pub prices: PriceTable,
    /// Access control and the audit trail (`[auth]`).
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./riskserve-data"),
            store: None,
            artifacts: None,
            max_body_bytes: 6 * 1024 * 1024,
            max_artifact_bytes: 256 * 1024 * 1024,
            queue_depth: 64,
            max_instances: 64,
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            metrics_listen: None,
            shutdown_grace_seconds: 25,
            monitor_poll_seconds: 10.0,
            log_format: LogFormat::default(),
            autoscaling: AutoscalingSettings::default(),
            prices: PriceTable::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// Settings of access control.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the master key (64 hex digits); default `<data_dir>/master.key`, created when absent.
    pub master_key_file: Option<PathBuf>,
    /// Seconds between audit seals (signed digests of the chain).
    pub seal_interval_seconds: u64,
    /// FOR BENCHMARKS ONLY: no authentication, authorization or audit. Refused unless the server listens
    /// on a loopback address; a warning is printed at start.
    pub insecure_disable_for_benchmark: bool,
    /// First-start administrator and master key from the environment (never from a file).
    #[serde(skip)]
    pub bootstrap: AdminBootstrap,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            master_key_file: None,
            seal_interval_seconds: 60,
            insecure_disable_for_benchmark: false,
            bootstrap: AdminBootstrap::default(),
        }
    }
}
