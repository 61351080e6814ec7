//! Use cases that the SageMaker and Open Inference Protocol façades need beyond the native API:
//! a model from SageMaker container archives (`model.tar.gz` by `ModelDataUrl`), changing tags in place,
//! keeping a façade's own description of a resource, reading an uploaded artifact back, and the serving
//! fields of an endpoint.

use std::collections::BTreeMap;

use bytes::Bytes;
use riskserve_store::TaggedKind;

use super::Service;
use crate::error::ServiceError;
use crate::model_archive::{self, Framework};
use crate::resources::{ArtifactInput, CreateModel, Model};
use crate::validate;

/// One container of a SageMaker model: where its archive is and which framework its image names.
#[derive(Debug, Clone)]
pub struct ContainerArchive {
    /// How the request named the container (`PrimaryContainer`, `Containers.2`), for error messages.
    pub place: String,
    pub framework: Framework,
    /// `file:///absolute/path`, `sha256:<hex>` (an uploaded artifact; also `riskserve://artifacts/sha256:<hex>`).
    pub model_data_url: String,
}

impl Service {
    /// Creates a model from container archives: each is read, unpacked (within `max_artifact_bytes`) and its model
    /// files chosen by framework; several containers merge into one pipeline; the files are uploaded and the model
    /// created as [`Service::create_model`] does (so nothing is left behind when it is refused).
    pub async fn create_model_from_archives(
        &self,
        name: &str,
        containers: Vec<ContainerArchive>,
        tags: BTreeMap<String, String>,
    ) -> Result<Model, ServiceError> {
        let mut files = Vec::with_capacity(containers.len());
        for container in containers {
            let ContainerArchive { place, framework, model_data_url: url } = container;
            let archive = self.read_model_data(&url, &place).await?;
            let limit = self.config().max_artifact_bytes;
            let unpacked = tokio::task::spawn_blocking(move || {
                model_archive::unpack(&archive, limit).and_then(|files| model_archive::select(files, framework))
            })
            .await
            .map_err(|error| ServiceError::internal(format!("the archive reader stopped: {error}")))?
            .map_err(|message| ServiceError::validation(format!("{place}.ModelDataUrl {url:?}: {message}")))?;
            files.push((place, unpacked));
        }
        let merged = model_archive::merge(files).map_err(ServiceError::Validation)?;
        let mut artifacts = Vec::with_capacity(merged.artifacts.len());
        for file in merged.artifacts {
            let uploaded = self.upload_artifact(Bytes::from(file.bytes)).await?;
            artifacts.push(ArtifactInput { name: file.name, digest: uploaded.digest });
        }
        let pipeline = match merged.pipeline {
            Some(spec) => Some(self.upload_artifact(Bytes::from(spec)).await?.digest),
            None => None,
        };
        self.create_model(CreateModel {
            name: name.to_string(),
            artifacts,
            artifact_url: None,
            format: merged.format.map(str::to_string),
            pipeline,
            tags,
            description: None,
        })
        .await
    }

    /// The bytes behind a `ModelDataUrl`: `file:///absolute/path`, or an uploaded artifact by
    /// digest (`sha256:<hex>`, also as `riskserve://artifacts/sha256:<hex>`).
    async fn read_model_data(&self, url: &str, place: &str) -> Result<Vec<u8>, ServiceError> {
        if let Some(digest) = url.strip_prefix("riskserve://artifacts/").or(url.starts_with("sha256:").then_some(url)) {
            return Ok(self.artifact(digest, &format!("{place}.ModelDataUrl")).await?.to_vec());
        }
        if url.starts_with("s3://") {
            if !self.store().artifacts.reads_s3() {
                return Err(ServiceError::validation(format!(
                    "{place}.ModelDataUrl {url:?}: S3 is not configured on this server; use file:///absolute/path or \
                     upload the archive (PUT /api/v1/artifacts) and give its sha256:<hex> digest"
                )));
            }
            let limit = self.config().max_artifact_bytes as u64;
            return Ok(self.store().artifacts.read_s3_url(url, limit).await?.to_vec());
        }
        let Some(path) = url.strip_prefix("file://").filter(|path| path.starts_with('/')) else {
            return Err(ServiceError::validation(format!(
                "{place}.ModelDataUrl {url:?} is not file:///absolute/path, sha256:<hex> or s3://"
            )));
        };
        let limit = self.config().max_artifact_bytes as u64;
        let path = std::path::PathBuf::from(path);
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&path)?.len();
            if size > limit {
                return Err(std::io::Error::other(format!("it has {size} bytes, more than the {limit} accepted")));
            }
            std::fs::read(&path)
        })
        .await
        .map_err(|error| ServiceError::internal(format!("the file reader stopped: {error}")))?
        .map_err(|error| ServiceError::validation(format!("{place}.ModelDataUrl: cannot read {shown}: {error}")))
    }
}

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
