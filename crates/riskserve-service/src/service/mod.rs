//! The service layer: every use case as a plain async function on [`Service`]. Façades (native REST, SageMaker
//! JSON 1.1 and runtime, the Open Inference Protocol) translate requests into these calls and hold no logic of
//! their own; the use cases of access control, identities, the audit trail and operations are in submodules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use riskserve_model::Format;
use riskserve_store::{
    ArtifactRef, ConfigRecord, EndpointRecord, EndpointStatus, ModelRecord, PageRequest, Store, StoreError,
    VariantRecord, now_rfc3339, parse_digest,
};
use tokio::sync::oneshot;

use crate::capture::{Capture, CaptureRecord};
use crate::codec::BodyFormat;
use crate::config::ServerConfig;
use crate::error::ServiceError;
use crate::metrics::InvocationContext;
use crate::operations::Operations;
use crate::resources::{
    ArtifactDescription, ArtifactUploaded, CreateEndpoint, CreateEndpointConfig, CreateModel, DataCapture, Endpoint,
    EndpointConfig, List, Model, UpdateEndpoint, Variant, VariantChange,
};
use crate::runtime::{EndpointRuntime, Job, Runtimes, VariantRuntime};
use crate::scoring::{ArtifactBytes, ScoreOptions, Scorer};
use crate::security::Security;
use crate::validate;

mod access;
pub(crate) mod audit_trail;
pub(crate) mod console;
/// Use cases the façades need beyond the native API: tag changes, façade documents, artifacts by digest.
pub(crate) mod facade;
pub(crate) mod identities;
pub(crate) mod monitoring;
mod operations;
mod replicas;

/// One invocation as a façade hands it over.
#[derive(Debug, Clone)]
pub struct InvocationRequest {
    pub body: Bytes,
    pub format: BodyFormat,
    /// The variant the caller asks for (`X-Amzn-SageMaker-Target-Variant`).
    pub target_variant: Option<String>,
    pub explain: bool,
    /// The caller's id of the inference (`X-Amzn-SageMaker-Inference-Id`), kept with captured data so that outcomes
    /// can be joined to it later.
    pub inference_id: Option<String>,
    /// The body and its content type as the client sent them, when a façade converted them into `body`: data
    /// capture keeps these.
    pub original_body: Option<(Bytes, String)>,
}

/// The answer to an invocation.
#[derive(Debug, Clone)]
pub struct InvocationAnswer {
    /// The variant that answered (`x-Amzn-Invoked-Production-Variant`).
    pub variant: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// The server's state and use cases; cheap to clone (one shared inner state).
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ServerConfig,
    runtimes: Runtimes,
    /// Loaded models by the digests they were built from: each is loaded once and shared by
    /// every variant (of every endpoint) that serves it.
    scorers: Mutex<HashMap<String, Arc<Scorer>>>,
    /// Serialises the moments where a deployment or a delete changes both the stored status and
    /// the serving runtime, so the two always agree.
    switch: tokio::sync::Mutex<()>,
    /// Metrics, history, usage meter and autoscaler (`operations.rs`).
    operations: Operations,
    /// Whether this replica leads the others (always, on an embedded store): it runs the autoscaler, periodic
    /// audit seals and history upkeep (`service/replicas.rs`).
    leader: std::sync::atomic::AtomicBool,
    /// False until recovery ends, and again once shutdown begins: `/ping` answers ready only in between.
    ready: std::sync::atomic::AtomicBool,
    /// Identities, policies, cached decisions and the audit log (`security.rs`).
    security: Security,
}

fn scorer_key(model: &ModelRecord) -> String {
    let digests: Vec<&str> = model.artifacts.iter().map(|artifact| artifact.digest.as_str()).collect();
    format!("{}|{}|{}", model.format, model.pipeline.as_deref().unwrap_or("-"), digests.join(","))
}

fn model_of(record: ModelRecord) -> Model {
    Model {
        name: record.name,
        artifacts: record
            .artifacts
            .into_iter()
            .map(|artifact| ArtifactDescription { name: artifact.name, digest: artifact.digest, size: artifact.size })
            .collect(),
        format: record.format,
        pipeline: record.pipeline,
        inputs: record.inputs,
        outputs: record.outputs,
        tags: record.tags,
        description: record.description,
        created_at: record.created_at,
    }
}

fn variant_of(record: &VariantRecord) -> Variant {
    Variant {
        name: record.name.clone(),
        model: record.model.clone(),
        weight: record.weight,
        instances: record.instances,
    }
}

fn config_of(record: ConfigRecord) -> EndpointConfig {
    EndpointConfig {
        data_capture: capture_of(&record),
        name: record.name,
        variants: record.variants.iter().map(variant_of).collect(),
        tags: record.tags,
        created_at: record.created_at,
    }
}

/// A stored config's data capture (a row that no longer decodes captures nothing, and says so).
fn capture_of(record: &ConfigRecord) -> Option<DataCapture> {
    if record.data_capture.is_empty() {
        return None;
    }
    match serde_json::from_str(&record.data_capture) {
        Ok(capture) => Some(capture),
        Err(error) => {
            log(&format!("endpoint config {:?}: its data capture does not decode, none runs: {error}", record.name));
            None
        }
    }
}

/// Milliseconds since the Unix epoch, now (0 before it).
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

fn log(message: &str) {
    crate::logging::event(message);
}

impl Service {
    /// Opens the store under `config.data_dir`, removes unfinished uploads, and recovers every
    /// endpoint (see [`Service::recover`]) before returning.
    pub async fn start(config: ServerConfig) -> Result<Service, ServiceError> {
        let store = Store::open_at(&config.data_dir, &config.store_location()).await?;
        let removed = store.artifacts.collect_temporary().await?;
        if removed > 0 {
            log(&format!("removed {removed} unfinished artifact uploads"));
        }
        let security = Security::start(&store, &config).await?;
        let service = Service {
            inner: Arc::new(Inner {
                store,
                runtimes: Runtimes::default(),
                scorers: Mutex::new(HashMap::new()),
                switch: tokio::sync::Mutex::new(()),
                operations: Operations::new(&config),
                leader: std::sync::atomic::AtomicBool::new(true),
                ready: std::sync::atomic::AtomicBool::new(false),
                security,
                config,
            }),
        };
        service.recover().await?;
        service.start_operations().await?;
        service.start_monitoring();
        service.start_replication();
        service.inner.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(service)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn runtimes(&self) -> &Runtimes {
        &self.inner.runtimes
    }

    pub(crate) fn operations(&self) -> &Operations {
        &self.inner.operations
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Access control's state (`auth.rs`).
    pub(crate) fn security(&self) -> &Security {
        &self.inner.security
    }

    /// The name of the only endpoint in service, when exactly one serves (`POST /invocations`).
    pub fn only_serving_endpoint(&self) -> Option<String> {
        self.inner.runtimes.only().map(|runtime| runtime.name.clone())
    }

    /// Whether this replica should get traffic: it has recovered and serves the stored state, and is not shutting
    /// down (a load balancer's readiness check, `/ping`).
    pub fn ready(&self) -> bool {
        self.inner.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Answers not ready from now on (the first step of a graceful shutdown: the balancer stops sending).
    pub fn stop_accepting(&self) {
        self.inner.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops serving: every endpoint's variants drain (queued jobs finish) and their threads end.
    pub async fn shutdown(&self) {
        self.stop_accepting();
        self.stop_operations().await;
        let _switch = self.inner.switch.lock().await;
        self.inner.runtimes.clear();
        drop(_switch);
        // Captured records still queued are written (their runtimes are gone, so their queues are closed).
        self.inner.operations.finish_capture_writers(std::time::Duration::from_secs(10)).await;
        // Every queued audit event is written and sealed before the database closes.
        self.inner.security.audit().close().await;
        self.inner.store.metadata.close().await;
    }

    // ---- artifacts ----

    pub async fn upload_artifact(&self, bytes: Bytes) -> Result<ArtifactUploaded, ServiceError> {
        if bytes.is_empty() {
            return Err(ServiceError::validation("the artifact is empty"));
        }
        let info = self.inner.store.artifacts.put(bytes).await?;
        Ok(ArtifactUploaded { digest: info.digest, size: info.size })
    }

    async fn artifact_bytes(&self, digest: &str, what: &str) -> Result<Bytes, ServiceError> {
        if parse_digest(digest).is_none() {
            return Err(ServiceError::validation(format!(
                "{what}: {digest:?} is not a digest of the form sha256:<64 lowercase hex digits>"
            )));
        }
        match self.inner.store.artifacts.get(digest).await {
            Ok(bytes) => Ok(bytes),
            Err(StoreError::NotFound(_)) => Err(ServiceError::NotFound(format!(
                "{what}: artifact {digest} was never uploaded; upload it with PUT /api/v1/artifacts"
            ))),
            Err(error) => Err(error.into()),
        }
    }

    // ---- models ----

    /// Creates a model once its artifact loads and scores a row.
    pub async fn create_model(&self, request: CreateModel) -> Result<Model, ServiceError> {
        validate::name("model", &request.name)?;
        validate::tags(&request.tags)?;
        validate::description(request.description.as_deref())?;
        let format = match request.format.as_deref() {
            None => None,
            Some(name) => Some(Format::from_name(name).ok_or_else(|| {
                ServiceError::validation(format!(
                    "format {name:?} is unknown; use xgboost-json, xgboost-ubj, lightgbm, onnx or pmml"
                ))
            })?),
        };
        match self.inner.store.metadata.get_model(&request.name).await {
            Ok(_) => return Err(ServiceError::AlreadyExists(format!("model {:?} already exists", request.name))),
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let mut files: Vec<(String, String, Bytes)> = Vec::new();
        match (&request.artifact_url, request.artifacts.is_empty()) {
            (Some(url), true) => {
                let (name, bytes) = self.read_artifact_url(url).await?;
                let info = self.inner.store.artifacts.put(bytes.clone()).await?;
                files.push((name, info.digest, bytes));
            }
            (None, false) => {
                for (index, artifact) in request.artifacts.iter().enumerate() {
                    if artifact.name.trim().is_empty() || artifact.name.len() > 255 {
                        return Err(ServiceError::validation(format!(
                            "artifact {index}: the name must hold 1 to 255 characters"
                        )));
                    }
                    if files.iter().any(|(name, _, _)| *name == artifact.name) {
                        return Err(ServiceError::validation(format!(
                            "artifact name {:?} appears twice",
                            artifact.name
                        )));
                    }
                    let bytes = self.artifact_bytes(&artifact.digest, &format!("artifact {:?}", artifact.name)).await?;
                    files.push((artifact.name.clone(), artifact.digest.clone(), bytes));
                }
            }
            (Some(_), false) => {
                return Err(ServiceError::validation("give either artifacts or artifact_url, not both"));
            }
            (None, true) => return Err(ServiceError::validation("a model needs artifacts or an artifact_url")),
        }
        let pipeline = match &request.pipeline {
            Some(digest) => Some(self.artifact_bytes(digest, "pipeline").await?),
            None => None,
        };
        let loading_files = files.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let artifacts: Vec<ArtifactBytes<'_>> = loading_files
                .iter()
                .map(|(name, _, bytes)| ArtifactBytes { name: name.as_str(), bytes: bytes.as_ref() })
                .collect();
            let scorer = Scorer::load(&artifacts, pipeline.as_deref(), format)?;
            scorer.smoke_test()?;
            Ok::<Scorer, String>(scorer)
        })
        .await
        .map_err(|error| ServiceError::internal(format!("the model loader stopped: {error}")))?
        .map_err(ServiceError::InvalidArtifact)?;
        let record = ModelRecord {
            name: request.name,
            format: loaded.format_name().to_string(),
            pipeline: request.pipeline,
            artifacts: files
                .iter()
                .map(|(name, digest, bytes)| ArtifactRef {
                    name: name.clone(),
                    digest: digest.clone(),
                    size: bytes.len() as u64,
                })
                .collect(),
            inputs: loaded.inputs().to_vec(),
            outputs: loaded.outputs().to_vec(),
            tags: request.tags,
            description: request.description,
            created_at: now_rfc3339(),
        };
        self.inner.store.metadata.insert_model(&record).await?;
        // Deploying this model later needs no load: the one built here is kept.
        self.lock_scorers().insert(scorer_key(&record), Arc::new(loaded));
        Ok(model_of(record))
    }

    async fn read_artifact_url(&self, url: &str) -> Result<(String, Bytes), ServiceError> {
        if url.starts_with("s3://") {
            let limit = self.inner.config.max_artifact_bytes as u64;
            let bytes = self.inner.store.artifacts.read_s3_url(url, limit).await?;
            let name = url.rsplit('/').next().filter(|name| !name.is_empty()).unwrap_or("model").to_string();
            return Ok((name, bytes));
        }
        let Some(path) = url.strip_prefix("file://") else {
            return Err(ServiceError::validation(format!(
                "artifact_url {url:?} is not supported; use file:///absolute/path, s3://bucket/key (with an S3 artifact \
                 store) or upload the file"
            )));
        };
        let path = std::path::PathBuf::from(path);
        if !path.is_absolute() {
            return Err(ServiceError::validation(format!("artifact_url {url:?} must name an absolute path")));
        }
        let limit = self.inner.config.max_artifact_bytes;
        let shown = path.display().to_string();
        let read_path = path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&read_path)?.len();
            if size > limit as u64 {
                return Err(std::io::Error::other(format!("it has {size} bytes, more than the {limit} accepted")));
            }
            std::fs::read(&read_path)
        })
        .await
        .map_err(|error| ServiceError::internal(format!("the file reader stopped: {error}")))?
        .map_err(|error| ServiceError::InvalidArtifact(format!("cannot read {shown}: {error}")))?;
        let name = path.file_name().map_or_else(|| "model".to_string(), |name| name.to_string_lossy().into_owned());
        Ok((name, Bytes::from(bytes)))
    }

    fn lock_scorers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Scorer>>> {
        self.inner.scorers.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    pub async fn get_model(&self, name: &str) -> Result<Model, ServiceError> {
        Ok(model_of(self.inner.store.metadata.get_model(name).await?))
    }

    /// The pipeline file of a model, as uploaded; `NotFound` for a bare model.
    pub async fn get_model_pipeline(&self, name: &str) -> Result<Bytes, ServiceError> {
        let record = self.inner.store.metadata.get_model(name).await?;
        let digest = record
            .pipeline
            .ok_or_else(|| ServiceError::NotFound(format!("model {name:?} is a bare model: it has no pipeline")))?;
        self.artifact_bytes(&digest, "the model's pipeline").await
    }

    pub async fn list_models(&self, page: &PageRequest) -> Result<List<Model>, ServiceError> {
        let page = self.inner.store.metadata.list_models(page).await?;
        Ok(List { items: page.items.into_iter().map(model_of).collect(), next_token: page.next_token })
    }

    pub async fn delete_model(&self, name: &str) -> Result<(), ServiceError> {
        let record = self.inner.store.metadata.get_model(name).await?;
        self.inner.store.metadata.delete_model(name).await?;
        // Runtimes that serve it keep their own handle; only the cache lets go.
        self.lock_scorers().remove(&scorer_key(&record));
        Ok(())
    }

    // ---- endpoint configs ----

    pub async fn create_endpoint_config(&self, request: CreateEndpointConfig) -> Result<EndpointConfig, ServiceError> {
        validate::name("endpoint config", &request.name)?;
        validate::tags(&request.tags)?;
        validate::variants(&request.variants, self.inner.config.max_instances)?;
        if let Some(capture) = &request.data_capture {
            validate::data_capture(capture)?;
        }
        let record = ConfigRecord {
            name: request.name,
            variants: request
                .variants
                .iter()
                .map(|variant| VariantRecord {
                    name: variant.name.clone(),
                    model: variant.model.clone(),
                    weight: variant.weight,
                    instances: variant.instances,
                })
                .collect(),
            tags: request.tags,
            created_at: now_rfc3339(),
            data_capture: request
                .data_capture
                .as_ref()
                .map(|capture| serde_json::to_string(capture).unwrap_or_default())
                .unwrap_or_default(),
        };
        self.inner.store.metadata.insert_config(&record).await?;
        Ok(config_of(record))
    }

    pub async fn get_endpoint_config(&self, name: &str) -> Result<EndpointConfig, ServiceError> {
        Ok(config_of(self.inner.store.metadata.get_config(name).await?))
    }

    pub async fn list_endpoint_configs(&self, page: &PageRequest) -> Result<List<EndpointConfig>, ServiceError> {
        let page = self.inner.store.metadata.list_configs(page).await?;
        Ok(List { items: page.items.into_iter().map(config_of).collect(), next_token: page.next_token })
    }

    pub async fn delete_endpoint_config(&self, name: &str) -> Result<(), ServiceError> {
        Ok(self.inner.store.metadata.delete_config(name).await?)
    }

    // ---- endpoints ----

    async fn endpoint_of(&self, record: EndpointRecord) -> Result<Endpoint, ServiceError> {
        let variants = match &record.live_variants {
            Some(variants) if record.status != EndpointStatus::Creating => variants.iter().map(variant_of).collect(),
            _ => match self.inner.store.metadata.get_config(&record.config).await {
                Ok(config) => config.variants.iter().map(variant_of).collect(),
                Err(StoreError::NotFound(_)) => Vec::new(),
                Err(error) => return Err(error.into()),
            },
        };
        let scaling_activities = self.scaling_activities(&record.name).await?;
        Ok(Endpoint {
            name: record.name,
            status: record.status.as_str().to_string(),
            config: record.config,
            variants,
            failure_reason: record.failure_reason,
            scaling_activities,
            tags: record.tags,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    /// Records the endpoint (`Creating`) and deploys it in the background.
    pub async fn create_endpoint(&self, request: CreateEndpoint) -> Result<Endpoint, ServiceError> {
        validate::name("endpoint", &request.name)?;
        validate::name("endpoint config", &request.config)?;
        validate::tags(&request.tags)?;
        let record = self.inner.store.metadata.insert_endpoint(&request.name, &request.config, &request.tags).await?;
        self.spawn_deploy(record.clone());
        self.endpoint_of(record).await
    }

    /// Moves an endpoint to another config (`Updating`) in the background: the new variants
    /// start, traffic switches once they are ready, the old ones drain. A failure rolls back.
    pub async fn update_endpoint(&self, name: &str, request: UpdateEndpoint) -> Result<Endpoint, ServiceError> {
        validate::name("endpoint config", &request.config)?;
        let record = self.inner.store.metadata.begin_update(name, &request.config).await?;
        self.spawn_deploy(record.clone());
        self.endpoint_of(record).await
    }

    /// Marks the endpoint `Deleting`, then stops it and removes it in the background.
    pub async fn delete_endpoint(&self, name: &str) -> Result<Endpoint, ServiceError> {
        let record = self.inner.store.metadata.begin_delete(name).await?;
        let endpoint = self.endpoint_of(record).await?;
        let service = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            if let Err(error) = service.finish_delete(&name).await {
                log(&format!("cannot finish deleting endpoint {name:?}: {error}"));
            }
        });
        Ok(endpoint)
    }

    async fn finish_delete(&self, name: &str) -> Result<(), ServiceError> {
        let _switch = self.inner.switch.lock().await;
        self.inner.runtimes.remove(name);
        self.inner.store.metadata.finish_delete(name).await?;
        self.endpoint_deleted(name).await;
        Ok(())
    }

    pub async fn get_endpoint(&self, name: &str) -> Result<Endpoint, ServiceError> {
        let record = self.inner.store.metadata.get_endpoint(name).await?;
        self.endpoint_of(record).await
    }

    pub async fn list_endpoints(&self, page: &PageRequest) -> Result<List<Endpoint>, ServiceError> {
        let page = self.inner.store.metadata.list_endpoints(page).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for record in page.items {
            items.push(self.endpoint_of(record).await?);
        }
        Ok(List { items, next_token: page.next_token })
    }

    /// Changes a serving variant's instance count at run time (the autoscaler's call).
    pub async fn set_instances(&self, endpoint: &str, variant: &str, instances: u32) -> Result<(), ServiceError> {
        self.update_variant(endpoint, variant, VariantChange { weight: None, instances: Some(instances) }).await?;
        Ok(())
    }

    /// Changes a serving variant's weight and instance count in place, without a deployment
    /// (SageMaker's UpdateEndpointWeightsAndCapacities): new units start, removed ones drain, and
    /// traffic follows the new weights from the next request.
    pub async fn update_variant(
        &self,
        endpoint: &str,
        variant: &str,
        change: VariantChange,
    ) -> Result<Endpoint, ServiceError> {
        if change.weight.is_none() && change.instances.is_none() {
            return Err(ServiceError::validation("give a weight, instances or both"));
        }
        let max_instances = self.inner.config.max_instances;
        if let Some(instances) = change.instances
            && (instances == 0 || instances > max_instances)
        {
            return Err(ServiceError::validation(format!(
                "instances must be between 1 and {max_instances}, got {instances}"
            )));
        }
        if let Some(weight) = change.weight
            && (!weight.is_finite() || weight < 0.0)
        {
            return Err(ServiceError::validation(format!(
                "the weight must be a finite number not below 0, got {weight}"
            )));
        }
        let _switch = self.inner.switch.lock().await;
        let record = self.inner.store.metadata.get_endpoint(endpoint).await?;
        let runtime = self.inner.runtimes.get(endpoint).filter(|_| record.status == EndpointStatus::InService);
        let (Some(runtime), Some(live)) = (runtime, record.live_variants.as_ref()) else {
            return Err(ServiceError::InvalidState(format!(
                "endpoint {endpoint:?} is {}; variants change once it is InService",
                record.status.as_str()
            )));
        };
        let Some(position) = live.iter().position(|candidate| candidate.name == variant) else {
            return Err(ServiceError::NotFound(format!("endpoint {endpoint:?} has no variant {variant:?}")));
        };
        let mut weights = runtime.weights().to_vec();
        if let Some(weight) = change.weight {
            if let Some(slot) = weights.get_mut(position) {
                *slot = weight;
            }
            if weights.iter().sum::<f64>() <= 0.0 {
                return Err(ServiceError::validation("the variants' weights would sum to 0; one must stay positive"));
            }
        }
        let serving = runtime
            .variant(variant)
            .ok_or_else(|| ServiceError::internal(format!("variant {variant:?} of {endpoint:?} does not serve")))?;
        self.inner.store.metadata.set_live_variant(endpoint, variant, change.weight, change.instances).await?;
        if let Some(instances) = change.instances {
            serving.set_instances(instances).map_err(ServiceError::Internal)?;
        }
        if change.weight.is_some() {
            self.inner.runtimes.install(Arc::new(runtime.with_weights(weights)));
        }
        let record = self.inner.store.metadata.get_endpoint(endpoint).await?;
        self.endpoint_of(record).await
    }

    /// The number of worker units a serving variant runs now, or `None` when it does not serve.
    pub fn serving_instances(&self, endpoint: &str, variant: &str) -> Option<usize> {
        self.inner
            .runtimes
            .get(endpoint)
            .as_deref()
            .and_then(|runtime| runtime.variant(variant))
            .map(|variant| variant.instances())
    }

    /// Holds (or releases) the worker threads of a serving variant before their next job, so
    /// that tests can fill its queues. Not for production use.
    #[doc(hidden)]
    pub fn hold_workers(&self, endpoint: &str, variant: &str, hold: bool) -> bool {
        match self.inner.runtimes.get(endpoint).as_deref().and_then(|runtime| runtime.variant(variant)) {
            Some(variant) => {
                variant.hold_workers(hold);
                true
            }
            None => false,
        }
    }

    // ---- deployment ----

    fn spawn_deploy(&self, record: EndpointRecord) {
        let service = self.clone();
        tokio::spawn(async move {
            let name = record.name.clone();
            if let Err(error) = service.deploy(record).await {
                log(&format!("deployment of endpoint {name:?} stopped: {error}"));
            }
        });
    }

    /// Deploys the endpoint's target config for the request of `record.generation`, and records
    /// the outcome: InService on the new config, else Failed (nothing served before) or a
    /// rollback to the live config.
    async fn deploy(&self, record: EndpointRecord) -> Result<(), ServiceError> {
        let metadata = &self.inner.store.metadata;
        let built = match metadata.get_config(&record.config).await {
            Ok(config) => {
                let capture = capture_of(&config);
                self.build_runtime(&record.name, &config.variants, Some(&config.name), capture)
                    .await
                    .map(|runtime| (runtime, config.variants))
            }
            Err(StoreError::NotFound(message)) => Err(message),
            Err(error) => return Err(error.into()),
        };
        let _switch = self.inner.switch.lock().await;
        match built {
            Ok((runtime, variants)) => {
                // The runtime serves before the record says InService, so that a client that reads InService
                // always finds it; if the record cannot be written, or a later request superseded this deployment,
                // what served before (nothing, or the live config) serves again and the new runtime drops.
                let previous = self.inner.runtimes.get(&record.name);
                self.inner.runtimes.install(runtime);
                let finished = metadata.finish_deploy(&record.name, record.generation, &variants).await;
                if !matches!(finished, Ok(true)) {
                    match previous {
                        Some(previous) => self.inner.runtimes.install(previous),
                        None => self.inner.runtimes.remove(&record.name),
                    }
                }
                finished?;
            }
            Err(reason) => {
                if metadata.fail_deploy(&record.name, record.generation, &reason).await?
                    == Some(EndpointStatus::RollingBack)
                {
                    // The live config never stopped serving; the rollback only has to be recorded.
                    metadata.finish_rollback(&record.name, record.generation).await?;
                }
            }
        }
        Ok(())
    }

    /// The data capture of the config named `config` (none when there is no such config or it cannot be read).
    pub(crate) async fn capture_of_config(&self, config: Option<&str>) -> Option<DataCapture> {
        match self.inner.store.metadata.get_config(config?).await {
            Ok(record) => capture_of(&record),
            Err(error) => {
                log(&format!("cannot read the data capture of endpoint config {config:?}: {error}"));
                None
            }
        }
    }

    /// Loads each variant's model (once per model), starts its worker units and the data capture of `config`.
    async fn build_runtime(
        &self,
        endpoint: &str,
        variants: &[VariantRecord],
        config: Option<&str>,
        capture: Option<DataCapture>,
    ) -> Result<Arc<EndpointRuntime>, String> {
        let mut runtimes = Vec::with_capacity(variants.len());
        for variant in variants {
            let setup_started = std::time::Instant::now();
            let scorer = self
                .scorer_for(&variant.model)
                .await
                .map_err(|error| format!("variant {:?}: {error}", variant.name))?;
            let runtime = VariantRuntime::start(
                endpoint,
                &variant.name,
                variant.instances,
                scorer,
                self.inner.config.queue_depth,
            )?
            .for_model(&variant.model);
            runtimes.push(Arc::new(runtime));
            self.inner.operations.metrics.variant(endpoint, &variant.name).set_setup_time(setup_started.elapsed());
        }
        let capture = capture.map(|settings| {
            let operations = &self.inner.operations;
            let (capture, writer) = Capture::start(
                endpoint,
                settings,
                self.inner.store.artifacts.clone(),
                operations.capture_counters(endpoint),
                &operations.replica,
            );
            operations.keep_capture_writer(writer);
            Arc::new(capture)
        });
        let weights = variants.iter().map(|variant| variant.weight).collect();
        Ok(Arc::new(EndpointRuntime::new(endpoint, runtimes, weights).of_config(config, capture)))
    }

    async fn scorer_for(&self, model_name: &str) -> Result<Arc<Scorer>, String> {
        let model = self.inner.store.metadata.get_model(model_name).await.map_err(|error| error.to_string())?;
        let key = scorer_key(&model);
        if let Some(scorer) = self.lock_scorers().get(&key) {
            return Ok(Arc::clone(scorer));
        }
        let mut files = Vec::with_capacity(model.artifacts.len());
        for artifact in &model.artifacts {
            let bytes =
                self.inner.store.artifacts.get(&artifact.digest).await.map_err(|error| {
                    format!("model {model_name:?}: cannot read artifact {:?}: {error}", artifact.name)
                })?;
            files.push((artifact.name.clone(), bytes));
        }
        let pipeline = match &model.pipeline {
            Some(digest) => Some(
                self.inner
                    .store
                    .artifacts
                    .get(digest)
                    .await
                    .map_err(|error| format!("model {model_name:?}: cannot read its pipeline: {error}"))?,
            ),
            None => None,
        };
        let format = Format::from_name(&model.format);
        let name = model_name.to_string();
        let scorer = tokio::task::spawn_blocking(move || {
            let artifacts: Vec<ArtifactBytes<'_>> = files
                .iter()
                .map(|(name, bytes)| ArtifactBytes { name: name.as_str(), bytes: bytes.as_ref() })
                .collect();
            Scorer::load(&artifacts, pipeline.as_deref(), format).map_err(|error| format!("model {name:?}: {error}"))
        })
        .await
        .map_err(|error| format!("the model loader stopped: {error}"))??;
        let scorer = Arc::new(scorer);
        Ok(Arc::clone(self.lock_scorers().entry(key).or_insert(scorer)))
    }

    // ---- recovery ----

    /// Brings every stored endpoint back after a start, before the server listens:
    /// - `InService`: serves its live config again (live variants and instance counts), from
    ///   stored artifacts; if that fails the endpoint becomes `Failed` with the reason.
    /// - `Creating`: the accepted create completes: its config deploys again (in the background).
    /// - `Updating`: the live config serves again at once, then the accepted update runs again
    ///   (in the background); if it fails, it rolls back to the live config as any update does.
    /// - `RollingBack`: the live config serves again and the rollback is recorded (`InService`).
    /// - `Deleting`: the accepted delete completes; the row goes.
    /// - `Failed`: stays as it is.
    pub async fn recover(&self) -> Result<(), ServiceError> {
        for record in self.inner.store.metadata.all_endpoints().await? {
            self.recover_one(record).await?;
        }
        Ok(())
    }

    /// Recovery of one endpoint (see [`Service::recover`]); the leader also runs it for deployments a crashed
    /// replica left in progress.
    pub(crate) async fn recover_one(&self, record: EndpointRecord) -> Result<(), ServiceError> {
        let metadata = &self.inner.store.metadata;
        match record.status {
            EndpointStatus::InService => {
                self.restore_live(&record).await?;
            }
            EndpointStatus::Creating => self.spawn_deploy(record),
            EndpointStatus::Updating => {
                if self.restore_live(&record).await? {
                    self.spawn_deploy(record);
                }
            }
            EndpointStatus::RollingBack => {
                if self.restore_live(&record).await? {
                    metadata.finish_rollback(&record.name, record.generation).await?;
                }
            }
            EndpointStatus::Deleting => {
                metadata.finish_delete(&record.name).await?;
            }
            EndpointStatus::Failed => {}
        }
        Ok(())
    }

    /// Serves an endpoint's live config again; false (and the endpoint `Failed`) when it cannot.
    async fn restore_live(&self, record: &EndpointRecord) -> Result<bool, ServiceError> {
        let metadata = &self.inner.store.metadata;
        let (Some(_), Some(variants)) = (&record.live_config, &record.live_variants) else {
            metadata.mark_failed(&record.name, "the endpoint has no live config to restore").await?;
            return Ok(false);
        };
        let capture = self.capture_of_config(record.live_config.as_deref()).await;
        match self.build_runtime(&record.name, variants, record.live_config.as_deref(), capture).await {
            Ok(runtime) => {
                self.inner.runtimes.install(runtime);
                Ok(true)
            }
            Err(reason) => {
                log(&format!("endpoint {:?} cannot serve again after the restart: {reason}", record.name));
                metadata.mark_failed(&record.name, &format!("cannot serve again after a restart: {reason}")).await?;
                Ok(false)
            }
        }
    }

    // ---- invocations ----

    /// Scores a request on a serving endpoint (`None`: the only one, for the container
    /// contract). Reads only in-memory state unless the endpoint does not serve.
    pub async fn invoke(
        &self,
        endpoint: Option<&str>,
        request: InvocationRequest,
    ) -> Result<InvocationAnswer, ServiceError> {
        self.invoke_with(endpoint, request, InvocationContext::now("anonymous")).await
    }

    /// [`Service::invoke`] with what the façade knows beyond the request (when it arrived, who
    /// sent it): every invocation that reaches a variant is recorded once here, in the metrics
    /// (latencies, errors) and the usage meter (invocations per principal).
    pub async fn invoke_with(
        &self,
        endpoint: Option<&str>,
        request: InvocationRequest,
        context: InvocationContext,
    ) -> Result<InvocationAnswer, ServiceError> {
        let runtime = self.serving(endpoint).await?;
        let variant = runtime.pick(request.target_variant.as_deref())?;
        let measures = self.inner.operations.metrics.variant(&runtime.name, &variant.name);
        measures.record_principal(&context.principal);
        let (reply, answer) = oneshot::channel();
        let options = ScoreOptions { explain: request.explain, ..ScoreOptions::default() };
        // Decided before scoring, so the request body is kept only when it is captured.
        let capture = runtime.capture.as_ref().filter(|capture| capture.samples()).map(Arc::clone);
        let captured_input =
            capture.as_ref().filter(|capture| capture.settings.capture_input).map(|_| match &request.original_body {
                Some((body, content_type)) => (body.clone(), content_type.clone()),
                None => (request.body.clone(), request.format.content_type().to_string()),
            });
        let queued = std::time::Instant::now();
        if let Err(error) = variant.submit(Job { body: request.body, format: request.format, options, reply }) {
            measures.record(std::time::Duration::ZERO, context.received.elapsed(), Some(error.class()));
            return Err(error);
        }
        let variant_name = variant.name.clone();
        // Let go of the runtime before waiting, so that a replaced one drains without us.
        drop(runtime);
        let answered = answer
            .await
            .map_err(|_| ServiceError::internal(format!("variant {variant_name:?} stopped before answering")))
            .and_then(|answer| answer);
        let failure = answered.as_ref().err().map(ServiceError::class);
        measures.record(queued.elapsed(), context.received.elapsed(), failure);
        let body = answered?;
        let content_type = request.format.content_type();
        // Answered invocations only: a refused request has no answer to monitor.
        if let Some(capture) = capture {
            capture.offer(CaptureRecord {
                variant: Arc::from(variant_name.as_str()),
                input: captured_input,
                output: capture
                    .settings
                    .capture_output
                    .then(|| (Bytes::copy_from_slice(&body), content_type.to_string())),
                inference_id: request.inference_id,
                time: std::time::SystemTime::now(),
            });
        }
        Ok(InvocationAnswer { variant: variant_name, body, content_type })
    }

    /// The serving runtime of an endpoint, or the error that says why there is none.
    async fn serving(&self, endpoint: Option<&str>) -> Result<Arc<EndpointRuntime>, ServiceError> {
        let found = match endpoint {
            Some(name) => self.inner.runtimes.get(name),
            None => self.inner.runtimes.only(),
        };
        if let Some(runtime) = found {
            return Ok(runtime);
        }
        let Some(name) = endpoint else {
            return Err(ServiceError::validation(
                "POST /invocations needs exactly one endpoint in service; use POST /endpoints/{name}/invocations",
            ));
        };
        let record = self.inner.store.metadata.get_endpoint(name).await?;
        if record.status == EndpointStatus::InService {
            // Another replica deployed it: this one serves it once it follows the change (at once, at most 5 s).
            return Err(ServiceError::InvalidState(format!(
                "endpoint {name:?} is InService but this replica does not serve it yet (replicas follow a change \
                 within {} s); retry",
                crate::service::replicas::RECONCILE_SECONDS
            )));
        }
        Err(ServiceError::InvalidState(format!(
            "endpoint {name:?} is {}; it answers invocations once it is InService",
            record.status.as_str()
        )))
    }
}
