//! Who is calling (`Caller`, `Principal`), what an action applies to (`Resource`), and where the authorization
//! decision of a request waits for its audit event.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Who is calling: made by the authentication of every request (the HTTP façade keeps it with the request).
#[derive(Clone, Debug)]
pub struct Caller {
    pub request_id: String,
    pub principal: Principal,
    pub source: Option<SocketAddr>,
    /// Where `authorize` leaves its decision for the request's audit event.
    decision: Arc<DecisionSlot>,
}

impl Caller {
    /// A caller outside the middleware (tests, background work).
    pub fn new(request_id: String, principal: Principal, source: Option<SocketAddr>) -> Caller {
        Caller { request_id, principal, source, decision: Arc::default() }
    }

    /// The decision `Service::authorize` made for this request (action, resource, allowed), taken once for its
    /// audit event; a handle that stays readable after the caller moved into the request.
    pub fn decision(&self) -> Arc<DecisionSlot> {
        self.decision.clone()
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
pub struct DecisionSlot(Mutex<Option<(String, String, bool)>>);

impl DecisionSlot {
    pub(crate) fn record(&self, action: &str, resource: &Resource, allowed: bool) {
        let mut slot = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        // The first decision names the request; a later one (a façade checking twice) keeps a denial visible.
        match slot.as_ref() {
            Some((_, _, false)) => {}
            _ => *slot = Some((action.to_string(), resource.audit_name(), allowed)),
        }
    }

    /// The decision, once: (action, resource as the audit trail names it, allowed).
    pub fn take(&self) -> Option<(String, String, bool)> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner()).take()
    }
}

/// A request id: 16 hex digits, unique within a process and unlikely to repeat across restarts.
pub fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:016x}", nanos.rotate_left(17) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
