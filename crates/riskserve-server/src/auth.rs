//! Who is calling and whether they may: the authentication middleware (bearer tokens and AWS SigV4),
//! the `Caller` every handler receives, the resources actions apply to, `Service::authorize` (Cedar,
//! default deny, decisions cached until something changes), and the audit event of every request.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use riskserve_store::{IdentitySnapshot, Store, StoreError, now_rfc3339};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{AuditEvent, AuditLog};
use crate::config::ServerConfig;
use crate::error::{ErrorCode, ServiceError};
use crate::iam::{AdminBootstrap, IdentityIndex, MasterKey, bootstrap_admin, default_master_key_path, token_hash};
use crate::policy::Policies;
use crate::service::Service;
use crate::sigv4::{self, SigV4Error, SignedRequest};

/// Who is calling: inserted as an axum request extension by the authentication middleware for every route.
#[derive(Clone, Debug)]
pub struct Caller {
    pub request_id: String,
    pub principal: Principal,
    pub source: Option<SocketAddr>,
    /// Where `authorize` leaves its decision for the request's audit event.
    pub(crate) decision: Arc<DecisionSlot>,
}

impl Caller {
    /// A caller outside the middleware (tests, background work).
    pub fn new(request_id: String, principal: Principal, source: Option<SocketAddr>) -> Caller {
        Caller { request_id, principal, source, decision: Arc::default() }
    }
}

/// An authenticated identity and the roles it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's id (stable across renames of keys and tokens).
    pub id: String,
    /// The user name, or "anonymous" on the routes that need no credentials.
    pub name: String,
    pub roles: Vec<String>,
}

impl Principal {
    /// The principal of the health routes, which answer without credentials.
    pub fn anonymous() -> Principal {
        Principal { id: "anonymous".to_string(), name: "anonymous".to_string(), roles: Vec::new() }
    }
}

/// What an action applies to. Endpoints, configs and models carry their tags into the decision
/// (looked up by the authorizer), so a policy can say "endpoints tagged team=cards".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The account as a whole: list actions, uploads.
    Account,
    Model(String),
    EndpointConfig(String),
    Endpoint(String),
    /// A user of the IAM API (by name).
    User(String),
    /// A custom policy of the IAM API.
    Policy(String),
    /// The audit trail.
    AuditTrail,
}

impl Resource {
    /// The Cedar entity type and id of the resource.
    pub fn entity(&self) -> (&'static str, &str) {
        match self {
            Resource::Account => ("Account", "account"),
            Resource::Model(name) => ("Model", name),
            Resource::EndpointConfig(name) => ("EndpointConfig", name),
            Resource::Endpoint(name) => ("Endpoint", name),
            Resource::User(name) => ("IamUser", name),
            Resource::Policy(name) => ("Policy", name),
            Resource::AuditTrail => ("AuditTrail", "audit"),
        }
    }

    /// The resource as the audit trail names it (`Endpoint/credit`).
    pub fn audit_name(&self) -> String {
        let (kind, id) = self.entity();
        format!("{kind}/{id}")
    }
}

/// The decision `authorize` made for the request, read back by the middleware for the audit event.
#[derive(Debug, Default)]
pub(crate) struct DecisionSlot(Mutex<Option<(String, String, bool)>>);

impl DecisionSlot {
    fn record(&self, action: &str, resource: &Resource, allowed: bool) {
        let mut slot = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        // The first decision names the request; a later one (a façade checking twice) keeps a denial visible.
        match slot.as_ref() {
            Some((_, _, false)) => {}
            _ => *slot = Some((action.to_string(), resource.audit_name(), allowed)),
        }
    }

    fn take(&self) -> Option<(String, String, bool)> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner()).take()
    }
}

/// The number of records an invocation scored, set by the invocation path for its audit event.
#[derive(Debug, Clone, Copy)]
pub struct InvocationRecords(pub usize);

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

type DecisionKey = (String, String, Resource);

/// Access control's state: the identity index, the policies, cached decisions and the audit log.
pub struct Security {
    disabled: bool,
    master: MasterKey,
    index: ArcSwap<IdentityIndex>,
    policies: ArcSwap<Policies>,
    decisions: RwLock<HashMap<DecisionKey, bool>>,
    generation: AtomicU64,
    audit: AuditLog,
    body_limit: usize,
}

/// Decisions kept before the cache starts over (bounds memory under many distinct resources).
const MAX_CACHED_DECISIONS: usize = 65_536;

impl Security {
    /// Loads the master key, creates the first administrator when the store has no user, builds the
    /// identity index and the policies, and starts the audit writer.
    pub async fn start(store: &Store, config: &ServerConfig) -> Result<Security, ServiceError> {
        let auth = &config.auth;
        if auth.insecure_disable_for_benchmark {
            if !config.listen.ip().is_loopback() {
                return Err(ServiceError::validation(format!(
                    "insecure_disable_for_benchmark turns access control off and is refused unless the server listens \
                     on a loopback address, not {}",
                    config.listen
                )));
            }
            eprintln!(
                "riskserve: WARNING: authentication, authorization and the audit trail are OFF \
                 (insecure_disable_for_benchmark); for benchmarks on loopback only"
            );
        }
        let key_path = auth.master_key_file.clone().unwrap_or_else(|| default_master_key_path(store.data_dir()));
        let master = MasterKey::load(auth.bootstrap.master_key.as_deref(), &key_path)?;
        bootstrap_admin(store, &master, &auth.bootstrap).await?;
        let snapshot = store.metadata.identity_snapshot().await?;
        let index = IdentityIndex::build(&snapshot, &master)?;
        let policies = Policies::new(&custom_policies(&snapshot)).map_err(|rejected| {
            ServiceError::internal(format!("stored policies no longer validate: {}", rejected.0))
        })?;
        let seal_interval = Duration::from_secs(auth.seal_interval_seconds.max(1));
        let audit = AuditLog::start(store.metadata.clone(), store.data_dir(), &master, seal_interval).await?;
        Ok(Security {
            disabled: auth.insecure_disable_for_benchmark,
            master,
            index: ArcSwap::from_pointee(index),
            policies: ArcSwap::from_pointee(policies),
            decisions: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            audit,
            body_limit: config.max_body_bytes.max(config.max_artifact_bytes),
        })
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Swaps in a new identity index and policy set, and forgets every cached decision.
    pub fn reload(&self, snapshot: &IdentitySnapshot) -> Result<(), ServiceError> {
        let index = IdentityIndex::build(snapshot, &self.master)?;
        let policies =
            Policies::new(&custom_policies(snapshot)).map_err(|rejected| ServiceError::validation(rejected.0))?;
        self.index.store(Arc::new(index));
        self.policies.store(Arc::new(policies));
        self.invalidate();
        Ok(())
    }

    /// Forgets cached decisions (after anything that may change tags, identities or policies).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.decisions.write().unwrap_or_else(|poison| poison.into_inner()).clear();
    }

    fn cached(&self, key: &DecisionKey) -> Option<bool> {
        self.decisions.read().unwrap_or_else(|poison| poison.into_inner()).get(key).copied()
    }

    fn remember(&self, key: DecisionKey, allowed: bool, generation: u64) {
        let mut decisions = self.decisions.write().unwrap_or_else(|poison| poison.into_inner());
        // A change that happened while deciding may have made this decision stale: do not keep it.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if decisions.len() >= MAX_CACHED_DECISIONS {
            decisions.clear();
        }
        decisions.insert(key, allowed);
    }
}

fn custom_policies(snapshot: &IdentitySnapshot) -> Vec<(String, String)> {
    snapshot.policies.iter().map(|policy| (policy.name.clone(), policy.text.clone())).collect()
}

impl Service {
    /// Cedar decision for `action` (e.g. "sagemaker:InvokeEndpoint", "sagemaker:CreateEndpoint", "iam:CreateUser",
    /// "audit:Query", "metrics:Read") on `resource` (tags looked up by the authorizer); Err(ServiceError) =
    /// 403 `access_denied` (audited). Every façade handler calls this before the service function.
    pub async fn authorize(&self, caller: &Caller, action: &str, resource: Resource) -> Result<(), ServiceError> {
        let security = self.security();
        let allowed = security.disabled || self.decide(&caller.principal, action, &resource).await?;
        caller.decision.record(action, &resource, allowed);
        if allowed {
            Ok(())
        } else {
            Err(ServiceError::AccessDenied(format!(
                "user {:?} is not allowed to perform {action} on {}",
                caller.principal.name,
                resource.audit_name()
            )))
        }
    }

    /// Records an event in the audit trail without waiting (e.g. scaling activities).
    pub fn audit(&self, event: AuditEvent) {
        if !self.security().disabled {
            self.security().audit.record(event);
        }
    }

    async fn decide(&self, principal: &Principal, action: &str, resource: &Resource) -> Result<bool, ServiceError> {
        let security = self.security();
        let key = (principal.id.clone(), action.to_string(), resource.clone());
        if let Some(allowed) = security.cached(&key) {
            return Ok(allowed);
        }
        let generation = security.generation.load(Ordering::SeqCst);
        let tags = self.resource_tags(resource).await?;
        let allowed = security.policies.load().is_allowed(principal, action, resource, &tags);
        security.remember(key, allowed, generation);
        Ok(allowed)
    }

    /// The tags of a model, endpoint config or endpoint; none for a resource that does not exist (yet).
    async fn resource_tags(&self, resource: &Resource) -> Result<BTreeMap<String, String>, ServiceError> {
        let metadata = &self.store().metadata;
        let found = match resource {
            Resource::Model(name) => metadata.get_model(name).await.map(|model| model.tags),
            Resource::EndpointConfig(name) => metadata.get_config(name).await.map(|config| config.tags),
            Resource::Endpoint(name) => metadata.get_endpoint(name).await.map(|endpoint| endpoint.tags),
            _ => return Ok(BTreeMap::new()),
        };
        match found {
            Ok(tags) => Ok(tags),
            Err(StoreError::NotFound(_)) => Ok(BTreeMap::new()),
            Err(error) => Err(error.into()),
        }
    }
}

/// A request id: 16 hex digits, unique within a process and unlikely to repeat across restarts.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:016x}", nanos.rotate_left(17) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The routes that answer without credentials.
fn is_public(path: &str) -> bool {
    matches!(path, "/ping" | "/healthz" | "/v2/health/live" | "/v2/health/ready")
}

/// The invocation paths: SageMaker's (`/invocations`, `/endpoints/{name}/invocations`) and the Open Inference
/// Protocol's (`/v2/models/{name}[/versions/{version}]/infer`). Their events are batched, and they change nothing
/// that cached decisions depend on.
fn is_invocation(path: &str) -> bool {
    path.ends_with("/invocations") || (path.starts_with("/v2/models/") && path.ends_with("/infer"))
}

/// A refused authentication: the error to answer and who the request claimed to be.
struct AuthFailure {
    error: ServiceError,
    claimed: String,
}

fn failure(code: &'static str, message: impl Into<String>, claimed: &str) -> AuthFailure {
    AuthFailure { error: ServiceError::Unauthenticated { code, message: message.into() }, claimed: claimed.to_string() }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

impl Security {
    /// Checks the request's credentials; a SigV4 request's body is read (to hash it) and put back.
    async fn authenticate(&self, request: Request) -> Result<(Arc<Principal>, Request), AuthFailure> {
        let Some(value) = request.headers().get(header::AUTHORIZATION) else {
            return Err(failure(
                "unauthenticated",
                "this route needs credentials: Authorization: Bearer <token>, or an AWS Signature Version 4",
                "",
            ));
        };
        let Ok(text) = value.to_str() else {
            return Err(failure("malformed_authorization", "the Authorization header is not readable text", ""));
        };
        let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            if token.is_empty() {
                return Err(failure("malformed_authorization", "the bearer token is empty", ""));
            }
            let index = self.index.load();
            return match index.tokens.get(&token_hash(token)) {
                Some(principal) => Ok((principal.clone(), request)),
                None => Err(failure("invalid_credentials", "the bearer token is unknown, disabled or deleted", "")),
            };
        }
        if !sigv4::is_sigv4(text) {
            return Err(failure(
                "malformed_authorization",
                format!("the Authorization scheme {scheme:?} is not supported; use Bearer or AWS4-HMAC-SHA256"),
                "",
            ));
        }
        let parsed = sigv4::parse_authorization(text).map_err(|error| sigv4_failure(error, ""))?;
        let claimed = parsed.access_key_id.clone();
        let index = self.index.load();
        let Some(entry) = index.keys.get(&parsed.access_key_id) else {
            return Err(failure("invalid_credentials", "the access key id is unknown, inactive or deleted", &claimed));
        };
        let declared =
            request.headers().get("x-amz-content-sha256").map(|value| value.to_str().unwrap_or("").to_string());
        let (parts, body) = request.into_parts();
        let (payload_hash, body) = match declared.as_deref() {
            Some(sigv4::UNSIGNED_PAYLOAD) => (sigv4::UNSIGNED_PAYLOAD.to_string(), body),
            declared => {
                let bytes = axum::body::to_bytes(body, self.body_limit).await.map_err(|_| AuthFailure {
                    error: ServiceError::PayloadTooLarge("the request body exceeds the server's limit".to_string()),
                    claimed: claimed.clone(),
                })?;
                let actual = hex::encode(Sha256::digest(&bytes));
                if let Some(declared) = declared
                    && !bool::from(declared.to_ascii_lowercase().as_bytes().ct_eq(actual.as_bytes()))
                {
                    return Err(failure(
                        "payload_hash_mismatch",
                        "the body does not match its X-Amz-Content-SHA256 hash",
                        &claimed,
                    ));
                }
                (actual, Body::from(bytes))
            }
        };
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .chain(
                // HTTP/2 and some clients carry the host in the URI rather than a header.
                parts
                    .headers
                    .get(header::HOST)
                    .is_none()
                    .then(|| parts.uri.authority().map(|a| ("host".to_string(), a.to_string())))
                    .flatten(),
            )
            .collect();
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &headers,
            payload_hash: &payload_hash,
        };
        sigv4::verify_with(&signed, &parsed, now_seconds(), |date, region, service| {
            entry.signing_key(date, region, service)
        })
        .map_err(|error| sigv4_failure(error, &claimed))?;
        Ok((entry.principal.clone(), Request::from_parts(parts, body)))
    }
}

fn sigv4_failure(error: SigV4Error, claimed: &str) -> AuthFailure {
    match error {
        SigV4Error::Malformed(message) => failure("malformed_authorization", message, claimed),
        SigV4Error::Expired(message) => failure("request_expired", message, claimed),
        SigV4Error::Mismatch(message) => failure("signature_mismatch", message, claimed),
    }
}

/// The authentication middleware: every request but the health routes must carry valid credentials;
/// each gets a `Caller` extension, and each (but the health routes) becomes an audit event.
pub async fn authenticate(State(service): State<Service>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let path = request.uri().path().to_string();
    let security = service.security();
    if is_public(&path) || security.disabled {
        let principal = if security.disabled {
            Principal { id: "benchmark".into(), name: "benchmark".into(), roles: vec!["admin".into()] }
        } else {
            Principal::anonymous()
        };
        request.extensions_mut().insert(Caller::new(request_id(), principal, source));
        return next.run(request).await;
    }
    let request_id = request_id();
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    let (principal, mut request) = match security.authenticate(request).await {
        Ok(found) => found,
        Err(AuthFailure { error, claimed }) => {
            let response = error.clone().into_response();
            security.audit.record(AuditEvent {
                time: now_rfc3339(),
                request_id,
                principal: if claimed.is_empty() { "unknown".to_string() } else { claimed },
                source: source.map(|address| address.to_string()),
                action: "auth:Authenticate".to_string(),
                resource: path.clone(),
                parameters: serde_json::json!({"method": method.as_str(), "path": path}),
                outcome: "unauthenticated",
                status: response.status().as_u16(),
                error_code: Some(error.code().to_string()),
                latency_us: started.elapsed().as_micros() as u64,
                urgent: true,
            });
            return response;
        }
    };
    let caller = Caller::new(request_id.clone(), (*principal).clone(), source);
    let decision = caller.decision.clone();
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    let (action, resource, allowed) =
        decision.take().unwrap_or_else(|| (format!("http:{}", method.as_str()), path.clone(), true));
    let status = response.status();
    let invocation = is_invocation(&path);
    let mut parameters = serde_json::Map::new();
    parameters.insert("method".into(), method.as_str().into());
    parameters.insert("path".into(), path.clone().into());
    if let Some(query) = &query {
        parameters.insert("query".into(), redact_query(query).into());
    }
    if let Some(variant) = response.headers().get("x-amzn-invoked-production-variant").and_then(|v| v.to_str().ok()) {
        parameters.insert("variant".into(), variant.into());
    }
    if let Some(records) = response.extensions().get::<InvocationRecords>() {
        parameters.insert("records".into(), records.0.into());
    }
    let outcome = if !allowed {
        "denied"
    } else if status.is_client_error() || status.is_server_error() {
        "failed"
    } else {
        "allowed"
    };
    if allowed && !invocation && method != Method::GET && method != Method::HEAD {
        // Tags, identities or policies may have changed: decisions are made afresh.
        security.invalidate();
    }
    security.audit.record(AuditEvent {
        time: now_rfc3339(),
        request_id,
        principal: principal.name.clone(),
        source: source.map(|address| address.to_string()),
        action,
        resource,
        parameters: serde_json::Value::Object(parameters),
        outcome,
        status: status.as_u16(),
        error_code: response.extensions().get::<ErrorCode>().map(|code| code.0.to_string()),
        latency_us: started.elapsed().as_micros() as u64,
        urgent: !invocation,
    });
    response
}

/// Query values whose names suggest a secret are replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if ["secret", "token", "password", "signature", "credential"]
                    .iter()
                    .any(|word| name.to_ascii_lowercase().contains(word)) =>
            {
                format!("{name}=<redacted>")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
