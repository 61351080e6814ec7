//! Authorization use cases: Cedar decisions for a caller (default deny, cached until something changes), the
//! authentication of a request's credentials, and events recorded in the audit trail.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use riskserve_store::StoreError;

use super::Service;
use crate::audit::AuditEvent;
use crate::caller::{Caller, Principal, Resource};
use crate::error::ServiceError;
use crate::security::{AuthFailure, Credentials};

impl Service {
    /// Cedar decision for `action` (e.g. "sagemaker:InvokeEndpoint", "sagemaker:CreateEndpoint", "iam:CreateUser",
    /// "audit:Query", "metrics:Read") on `resource` (tags looked up by the authorizer); Err(ServiceError) =
    /// 403 `access_denied` (audited). Every façade handler calls this before the service function.
    pub async fn authorize(&self, caller: &Caller, action: &str, resource: Resource) -> Result<(), ServiceError> {
        let security = self.security();
        let allowed = security.disabled || self.decide(&caller.principal, action, &resource).await?;
        caller.decision().record(action, &resource, allowed);
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
            self.security().audit().record(event);
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

impl Service {
    /// Whether access control is off (the benchmark setting): every request then acts as an administrator.
    pub fn access_control_disabled(&self) -> bool {
        self.security().disabled
    }

    /// The principal every request acts as while access control is off.
    pub fn benchmark_principal() -> Principal {
        Principal { id: "benchmark".into(), name: "benchmark".into(), roles: vec!["admin".into()] }
    }

    /// Checks a request's `Authorization` value (see [`crate::security::Security::credentials`]).
    pub fn credentials(&self, authorization: Option<&[u8]>) -> Result<Credentials, AuthFailure> {
        self.security().credentials(authorization)
    }

    /// Forgets cached decisions: a request that may have changed tags, identities or policies succeeded.
    pub fn invalidate_decisions(&self) {
        self.security().invalidate();
    }
}
