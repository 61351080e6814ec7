//! Use cases that the SageMaker and Open Inference Protocol façades need beyond the native API:
//! changing tags in place, keeping a façade's own description of a resource, reading an
//! uploaded artifact back, and the serving fields of an endpoint.

use std::collections::BTreeMap;

use bytes::Bytes;
use riskserve_store::TaggedKind;

use super::Service;
use crate::error::ServiceError;
use crate::validate;

impl Service {
    /// Adds `add` to a resource's tags (replacing values of keys it has) and removes the keys of
    /// `remove`; the result must pass the same checks as tags given at creation.
    pub async fn change_tags(
        &self,
        kind: TaggedKind,
        name: &str,
        add: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<BTreeMap<String, String>, ServiceError> {
        validate::tags(add)?;
        let current = self.tags_of(kind, name).await?;
        let mut next = current;
        for key in remove {
            next.remove(key);
        }
        next.extend(add.iter().map(|(key, value)| (key.clone(), value.clone())));
        validate::tags(&next)?;
        Ok(self.inner.store.metadata.change_tags(kind, name, add, remove).await?)
    }

    /// A resource's tags.
    pub async fn tags_of(&self, kind: TaggedKind, name: &str) -> Result<BTreeMap<String, String>, ServiceError> {
        Ok(match kind {
            TaggedKind::Model => self.get_model(name).await?.tags,
            TaggedKind::EndpointConfig => self.get_endpoint_config(name).await?.tags,
            TaggedKind::Endpoint => self.get_endpoint(name).await?.tags,
        })
    }

    /// Keeps a façade's document about a resource created at `resource_created_at`.
    pub async fn put_facade_document(
        &self,
        facade: &str,
        kind: TaggedKind,
        name: &str,
        resource_created_at: &str,
        document: &serde_json::Value,
    ) -> Result<(), ServiceError> {
        let text = serde_json::to_string(document)
            .map_err(|error| ServiceError::internal(format!("cannot encode a {facade} document: {error}")))?;
        Ok(self.inner.store.metadata.put_facade_document(facade, kind, name, resource_created_at, &text).await?)
    }

    /// A façade's document about a resource, when one was written for this life of it (created at
    /// `resource_created_at`): a resource deleted and made again does not inherit the old one.
    pub async fn facade_document(
        &self,
        facade: &str,
        kind: TaggedKind,
        name: &str,
        resource_created_at: &str,
    ) -> Result<Option<serde_json::Value>, ServiceError> {
        let Some(stored) = self.inner.store.metadata.get_facade_document(facade, kind, name).await? else {
            return Ok(None);
        };
        if stored.resource_created_at != resource_created_at {
            return Ok(None);
        }
        Ok(serde_json::from_str(&stored.document).ok())
    }

    /// The bytes of an uploaded artifact, by its digest.
    pub async fn artifact(&self, digest: &str, what: &str) -> Result<Bytes, ServiceError> {
        self.artifact_bytes(digest, what).await
    }

    /// The input field names (positional order) and CSV output columns of the model a serving
    /// variant runs, for protocols that describe their tensors (the Open Inference Protocol).
    pub fn serving_signature(&self, endpoint: &str, variant: Option<&str>) -> Option<ServingSignature> {
        let runtime = self.inner.runtimes.get(endpoint)?;
        let variant = match variant {
            Some(name) => runtime.variant(name)?,
            None => runtime.variants.first()?,
        };
        Some(ServingSignature {
            variant: variant.name.clone(),
            model: variant.model().to_string(),
            inputs: variant.scorer().inputs().to_vec(),
            outputs: variant.scorer().outputs().to_vec(),
        })
    }
}

/// What a serving variant takes and gives.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingSignature {
    pub variant: String,
    pub model: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}
