//! Access control's state: the identity index, the policies, cached decisions and the audit log, and the checks
//! of credentials (bearer tokens, AWS SigV4) on a request as plain values, whatever transport carried it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use riskserve_store::{IdentitySnapshot, Store};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::AuditLog;
use crate::caller::{Principal, Resource};
use crate::config::ServerConfig;
use crate::error::ServiceError;
use crate::identity::{IdentityIndex, bootstrap_admin};
use crate::policy::Policies;
use crate::secrets::{MasterKey, default_master_key_path, token_hash};
use crate::sigv4::{self, ParsedAuthorization, SigV4Error, SignedRequest};

type DecisionKey = (String, String, Resource);

/// Access control's state: the identity index, the policies, cached decisions and the audit log.
pub struct Security {
    pub(crate) disabled: bool,
    master: MasterKey,
    index: ArcSwap<IdentityIndex>,
    pub(crate) policies: ArcSwap<Policies>,
    decisions: RwLock<HashMap<DecisionKey, bool>>,
    pub(crate) generation: AtomicU64,
    pub(crate) audit: AuditLog,
    /// The identities and policies the index was last built from (replicas rebuild only when they differ).
    loaded: std::sync::Mutex<IdentitySnapshot>,
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
            loaded: std::sync::Mutex::new(snapshot),
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
        *self.loaded.lock().unwrap_or_else(|poison| poison.into_inner()) = snapshot.clone();
        self.invalidate();
        Ok(())
    }

    /// [`Security::reload`] when `snapshot` differs from what the index was built from; cached decisions stay
    /// otherwise (a replica's periodic reconciliation changes nothing when nothing changed).
    pub fn reload_if_changed(&self, snapshot: &IdentitySnapshot) -> Result<(), ServiceError> {
        if *self.loaded.lock().unwrap_or_else(|poison| poison.into_inner()) == *snapshot {
            return Ok(());
        }
        self.reload(snapshot)
    }

    /// Forgets cached decisions (after anything that may change tags, identities or policies).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.decisions.write().unwrap_or_else(|poison| poison.into_inner()).clear();
    }

    pub(crate) fn cached(&self, key: &DecisionKey) -> Option<bool> {
        self.decisions.read().unwrap_or_else(|poison| poison.into_inner()).get(key).copied()
    }

    pub(crate) fn remember(&self, key: DecisionKey, allowed: bool, generation: u64) {
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

/// A refused authentication: the error to answer and who the request claimed to be ("" when nobody).
#[derive(Debug)]
pub struct AuthFailure {
    pub error: ServiceError,
    pub claimed: String,
}

fn failure(code: &'static str, message: impl Into<String>, claimed: &str) -> AuthFailure {
    AuthFailure { error: ServiceError::Unauthenticated { code, message: message.into() }, claimed: claimed.to_string() }
}

fn sigv4_failure(error: SigV4Error, claimed: &str) -> AuthFailure {
    match error {
        SigV4Error::Malformed(message) => failure("malformed_authorization", message, claimed),
        SigV4Error::Expired(message) => failure("request_expired", message, claimed),
        SigV4Error::Mismatch(message) => failure("signature_mismatch", message, claimed),
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// What the `Authorization` value of a request proves so far.
pub enum Credentials {
    /// A known bearer token: the caller is known.
    Known(Arc<Principal>),
    /// A SigV4 signature by a known access key: the signature must still be checked over the request.
    Signed(PendingSignature),
}

/// A SigV4 request whose key is known and whose signature is still to be checked.
pub struct PendingSignature {
    parsed: ParsedAuthorization,
    index: Arc<IdentityIndex>,
}

/// The request as SigV4 signs it, in plain values.
pub struct SignedParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Every header, names in lower case as HTTP carries them (the host among them).
    pub headers: &'a [(String, String)],
    /// The `X-Amz-Content-SHA256` header, when the request has one.
    pub declared_payload_hash: Option<&'a str>,
}

impl PendingSignature {
    /// The access key id the request claims (for the audit trail, also when the check fails).
    pub fn claimed(&self) -> &str {
        &self.parsed.access_key_id
    }

    /// Whether the body takes part in the signature (it does unless the client declared `UNSIGNED-PAYLOAD`).
    pub fn signs_payload(declared_payload_hash: Option<&str>) -> bool {
        declared_payload_hash != Some(sigv4::UNSIGNED_PAYLOAD)
    }

    /// Checks the signature over `parts` and the body (`None` when it is not signed).
    pub fn verify(self, parts: &SignedParts<'_>, body: Option<&[u8]>) -> Result<Arc<Principal>, AuthFailure> {
        let claimed = self.parsed.access_key_id.clone();
        let Some(entry) = self.index.keys.get(&self.parsed.access_key_id) else {
            return Err(failure("invalid_credentials", "the access key id is unknown, inactive or deleted", &claimed));
        };
        let payload_hash = match body {
            None => sigv4::UNSIGNED_PAYLOAD.to_string(),
            Some(bytes) => {
                let actual = hex::encode(Sha256::digest(bytes));
                if let Some(declared) = parts.declared_payload_hash
                    && !bool::from(declared.to_ascii_lowercase().as_bytes().ct_eq(actual.as_bytes()))
                {
                    return Err(failure(
                        "payload_hash_mismatch",
                        "the body does not match its X-Amz-Content-SHA256 hash",
                        &claimed,
                    ));
                }
                actual
            }
        };
        let signed = SignedRequest {
            method: parts.method,
            path: parts.path,
            query: parts.query,
            headers: parts.headers,
            payload_hash: &payload_hash,
        };
        sigv4::verify_with(&signed, &self.parsed, now_seconds(), |date, region, service| {
            entry.signing_key(date, region, service)
        })
        .map_err(|error| sigv4_failure(error, &claimed))?;
        Ok(entry.principal.clone())
    }
}

impl Security {
    /// The enabled user `id` (a console session's principal), as the identity index knows it now.
    pub fn user(&self, id: &str) -> Option<Arc<Principal>> {
        self.index.load().users.get(id).cloned()
    }

    /// The principal of a bearer token, or of an access key id with its secret (compared in constant time).
    pub fn principal_of_secret(&self, token: Option<&str>, key: Option<(&str, &str)>) -> Option<Arc<Principal>> {
        let index = self.index.load();
        if let Some(token) = token {
            return index.tokens.get(&token_hash(token)).cloned();
        }
        let (id, secret) = key?;
        let entry = index.keys.get(id)?;
        bool::from(entry.secret.as_bytes().ct_eq(secret.as_bytes())).then(|| entry.principal.clone())
    }

    /// Checks a request's `Authorization` value (`None` when it has none): a bearer token is decided here, a SigV4
    /// signature once its key is known is left to [`PendingSignature::verify`] over the whole request.
    pub fn credentials(&self, authorization: Option<&[u8]>) -> Result<Credentials, AuthFailure> {
        let Some(value) = authorization else {
            return Err(failure(
                "unauthenticated",
                "this route needs credentials: Authorization: Bearer <token>, or an AWS Signature Version 4",
                "",
            ));
        };
        // Readable text as HTTP defines it: visible ASCII, spaces and tabs.
        let readable = value.iter().all(|byte| *byte == b'\t' || (b' '..=b'~').contains(byte));
        let (true, Ok(text)) = (readable, std::str::from_utf8(value)) else {
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
                Some(principal) => Ok(Credentials::Known(principal.clone())),
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
        let index = self.index.load_full();
        if !index.keys.contains_key(&parsed.access_key_id) {
            let claimed = parsed.access_key_id.clone();
            return Err(failure("invalid_credentials", "the access key id is unknown, inactive or deleted", &claimed));
        }
        Ok(Credentials::Signed(PendingSignature { parsed, index }))
    }
}
