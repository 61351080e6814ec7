//! `riskserve serve`: reads the server's settings in layers (defaults → TOML file → flags →
//! environment `RISKSERVE_*`) and runs the server until SIGTERM or Ctrl-C.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use riskserve_server::ServerConfig;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env RISKSERVE_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Folder for the metadata database and the artifacts [default: ./riskserve-data; env RISKSERVE_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The metadata database shared by replicas, postgres://user:password@host:port/database [default: SQLite in
    /// the data directory; env RISKSERVE_STORE, preferred: a flag's password shows in `ps`].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The artifact store shared by replicas, s3://bucket/prefix, with credentials, region and endpoint from the
    /// usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL)
    /// [default: a folder in the data directory; env RISKSERVE_ARTIFACTS].
    #[arg(long, value_name = "URL")]
    pub artifacts: Option<String>,
    /// A TOML file of settings (keys: listen, data_dir, max_body_bytes, max_artifact_bytes, queue_depth,
    /// max_instances).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Largest request body in bytes [default: 6 MiB; env RISKSERVE_MAX_BODY_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest artifact upload in bytes [default: 256 MiB; env RISKSERVE_MAX_ARTIFACT_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_artifact_bytes: Option<usize>,
    /// Jobs each instance queues before requests get 503 [default: 64; env RISKSERVE_QUEUE_DEPTH].
    #[arg(long, value_name = "N")]
    pub queue_depth: Option<usize>,
    /// Largest instance count of a variant [default: 64; env RISKSERVE_MAX_INSTANCES].
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u32>,
    /// A second address that serves only GET /metrics, without credentials [env RISKSERVE_METRICS_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on stderr: text, or json (one JSON line per request, with its request id)
    /// [default: text; env RISKSERVE_LOG_FORMAT].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<riskserve_server::LogFormat>,
    /// Seconds between two autoscaling decisions [default: 10; env RISKSERVE_AUTOSCALING_INTERVAL].
    #[arg(long, value_name = "SECONDS")]
    pub autoscaling_interval: Option<f64>,
    /// Seconds of invocations the autoscaler measures its rate over [default: 60; env RISKSERVE_AUTOSCALING_WINDOW].
    #[arg(long, value_name = "SECONDS")]
    pub autoscaling_window: Option<f64>,
    /// Seconds between two looks for due monitoring schedules [default: 10; env RISKSERVE_MONITOR_POLL_SECONDS].
    #[arg(long, value_name = "SECONDS")]
    pub monitor_poll_seconds: Option<f64>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let environment: HashMap<String, String> = std::env::vars().collect();
    let config = settings(&args, &environment)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(riskserve_server::serve(config))
}

/// Applies the layers in order; each later layer overrides what it sets.
fn settings(args: &ServeArgs, environment: &HashMap<String, String>) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read the config {}", path.display()))?;
            toml::from_str::<ServerConfig>(&text)
                .with_context(|| format!("the config {} is invalid", path.display()))?
        }
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data_dir) = &args.data_dir {
        config.data_dir = data_dir.clone();
    }
    if let Some(value) = &args.store {
        config.store = Some(riskserve_server::StoreUrl(value.clone()));
    }
    if let Some(value) = &args.artifacts {
        config.artifacts = Some(value.clone());
    }
    if let Some(value) = args.max_body_bytes {
        config.max_body_bytes = value;
    }
    if let Some(value) = args.max_artifact_bytes {
        config.max_artifact_bytes = value;
    }
    if let Some(value) = args.queue_depth {
        config.queue_depth = value;
    }
    if let Some(value) = args.max_instances {
        config.max_instances = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_LISTEN")? {
        config.listen = value;
    }
    if let Some(value) = environment.get("RISKSERVE_DATA_DIR").filter(|value| !value.is_empty()) {
        config.data_dir = PathBuf::from(value);
    }
    if let Some(value) = environment.get("RISKSERVE_STORE").filter(|value| !value.is_empty()) {
        config.store = Some(riskserve_server::StoreUrl(value.clone()));
    }
    if let Some(value) = environment.get("RISKSERVE_ARTIFACTS").filter(|value| !value.is_empty()) {
        config.artifacts = Some(value.clone());
    }
    if let Some(value) = variable(environment, "RISKSERVE_MAX_BODY_BYTES")? {
        config.max_body_bytes = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_MAX_ARTIFACT_BYTES")? {
        config.max_artifact_bytes = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_QUEUE_DEPTH")? {
        config.queue_depth = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_MAX_INSTANCES")? {
        config.max_instances = value;
    }
    if let Some(value) = environment.get("RISKSERVE_REGION").filter(|value| !value.is_empty()) {
        config.region = value.clone();
    }
    if let Some(value) = environment.get("RISKSERVE_ACCOUNT_ID").filter(|value| !value.is_empty()) {
        if value.len() != 12 || !value.bytes().all(|byte| byte.is_ascii_digit()) {
            bail!("RISKSERVE_ACCOUNT_ID must be twelve digits, got {value:?}");
        }
        config.account_id = value.clone();
    }
    operations_settings(&mut config, args, environment)?;
    // Credentials come from the environment only, never from a file or a flag (which `ps` shows).
    let secret = |name: &str| environment.get(name).filter(|value| !value.is_empty()).cloned();
    config.auth.bootstrap.access_key_id = secret("RISKSERVE_ADMIN_ACCESS_KEY_ID");
    config.auth.bootstrap.secret_access_key = secret("RISKSERVE_ADMIN_SECRET_ACCESS_KEY");
    config.auth.bootstrap.token = secret("RISKSERVE_ADMIN_TOKEN");
    config.auth.bootstrap.master_key = secret("RISKSERVE_MASTER_KEY");
    if config.max_body_bytes == 0 || config.queue_depth == 0 || config.max_instances == 0 {
        bail!("max_body_bytes, queue_depth and max_instances must be at least 1");
    }
    Ok(config)
}

/// The operations settings (metrics listener, logs, autoscaler): flags, then the environment.
fn operations_settings(
    config: &mut ServerConfig,
    args: &ServeArgs,
    environment: &HashMap<String, String>,
) -> anyhow::Result<()> {
    if let Some(value) = args.metrics_listen {
        config.metrics_listen = Some(value);
    }
    if let Some(value) = args.log_format {
        config.log_format = value;
    }
    if let Some(value) = args.autoscaling_interval {
        config.autoscaling.interval_seconds = value;
    }
    if let Some(value) = args.autoscaling_window {
        config.autoscaling.window_seconds = value;
    }
    if let Some(value) = args.monitor_poll_seconds {
        config.monitor_poll_seconds = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_MONITOR_POLL_SECONDS")? {
        config.monitor_poll_seconds = value;
    }
    if !(config.monitor_poll_seconds.is_finite() && (0.1..=3600.0).contains(&config.monitor_poll_seconds)) {
        bail!("the monitoring poll must be 0.1 to 3600 seconds, got {}", config.monitor_poll_seconds);
    }
    if let Some(value) = variable(environment, "RISKSERVE_METRICS_LISTEN")? {
        config.metrics_listen = Some(value);
    }
    if let Some(value) = variable(environment, "RISKSERVE_LOG_FORMAT")? {
        config.log_format = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_AUTOSCALING_INTERVAL")? {
        config.autoscaling.interval_seconds = value;
    }
    if let Some(value) = variable(environment, "RISKSERVE_AUTOSCALING_WINDOW")? {
        config.autoscaling.window_seconds = value;
    }
    config.autoscaling.check().map_err(anyhow::Error::msg)?;
    config.prices.check().map_err(anyhow::Error::msg)?;
    Ok(())
}

fn variable<T: std::str::FromStr>(environment: &HashMap<String, String>, name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match environment.get(name).map(|value| value.trim()).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|error| anyhow::anyhow!("{name}={text:?} is invalid: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_flags() -> ServeArgs {
        ServeArgs {
            listen: None,
            store: None,
            artifacts: None,
            data_dir: None,
            config: None,
            max_body_bytes: None,
            max_artifact_bytes: None,
            queue_depth: None,
            max_instances: None,
            metrics_listen: None,
            log_format: None,
            autoscaling_interval: None,
            monitor_poll_seconds: None,
            autoscaling_window: None,
        }
    }

    #[test]
    fn layers_apply_in_order_defaults_file_flags_environment() {
        let file = std::env::temp_dir().join(format!("riskserve-serve-layers-{}.toml", std::process::id()));
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\nqueue_depth = 7\n")
            .expect("write");
        let mut args = no_flags();
        args.config = Some(file.clone());
        args.data_dir = Some(PathBuf::from("/from/flag"));
        args.max_body_bytes = Some(1000);
        let environment = HashMap::from([("RISKSERVE_MAX_BODY_BYTES".to_string(), "2000".to_string())]);
        let config = settings(&args, &environment).expect("settings");
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(config.listen, "127.0.0.1:9000".parse().expect("address"));
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.queue_depth, 7);
        assert_eq!(config.max_body_bytes, 2000);
        assert_eq!(config.max_instances, ServerConfig::default().max_instances);
    }

    #[test]
    fn bad_values_are_named() {
        let environment = HashMap::from([("RISKSERVE_LISTEN".to_string(), "nowhere".to_string())]);
        let error = settings(&no_flags(), &environment).expect_err("bad listen");
        assert!(error.to_string().contains("RISKSERVE_LISTEN"), "{error}");
    }
}
