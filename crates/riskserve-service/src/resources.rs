//! The resources as every façade sees them: request and answer shapes of the service layer (the
//! native REST API serialises them as they are; other façades translate).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The answer to an artifact upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtifactUploaded {
    /// `sha256:<64 hex digits>`.
    pub digest: String,
    pub size: u64,
}

/// An artifact a new model names: a file uploaded earlier, by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArtifactInput {
    pub name: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    pub name: String,
    /// Uploaded artifacts; or give `artifact_url` instead.
    #[serde(default)]
    pub artifacts: Vec<ArtifactInput>,
    /// `file:///absolute/path`: the server reads and stores the file itself.
    #[serde(default)]
    pub artifact_url: Option<String>,
    /// xgboost-json, xgboost-ubj, lightgbm, onnx or pmml; detected from the content when absent.
    #[serde(default)]
    pub format: Option<String>,
    /// Digest of an uploaded pipeline spec.
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtifactDescription {
    pub name: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Model {
    pub name: String,
    pub artifacts: Vec<ArtifactDescription>,
    pub format: String,
    pub pipeline: Option<String>,
    /// Input field names, in positional (CSV) order.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A production variant of a config, or of an endpoint (with its current weight and count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default = "default_instances")]
    pub instances: u32,
}

fn default_weight() -> f64 {
    1.0
}

fn default_instances() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointConfig {
    pub name: String,
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What to capture of the invocations of endpoints serving this config (none by default).
    #[serde(default)]
    pub data_capture: Option<DataCapture>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointConfig {
    pub name: String,
    pub variants: Vec<Variant>,
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_capture: Option<DataCapture>,
}

/// Data capture (SageMaker's `DataCaptureConfig`): a share of the invocations, their requests and/or answers,
/// written as SageMaker's JSON Lines records to the artifact store under
/// `{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DataCapture {
    /// The share of invocations captured, 0 to 100 (exactly: every invocation counts towards it).
    pub sampling_percentage: u32,
    /// Capture the request body (default true).
    #[serde(default = "yes")]
    pub capture_input: bool,
    /// Capture the answer body (default true).
    #[serde(default = "yes")]
    pub capture_output: bool,
    /// The folder in the artifact store (default `data-capture`): parts of letters, digits, '-', '_' and '.'.
    #[serde(default = "default_capture_destination")]
    pub destination: String,
}

fn yes() -> bool {
    true
}

pub fn default_capture_destination() -> String {
    "data-capture".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub name: String,
    pub config: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub name: String,
    /// Creating, InService, Updating, RollingBack, Failed or Deleting.
    pub status: String,
    /// The config the endpoint serves, or is moving to while Creating or Updating.
    pub config: String,
    /// The serving variants with their current weights and counts (the config's before the
    /// first deployment succeeds).
    pub variants: Vec<Variant>,
    pub failure_reason: Option<String>,
    /// The latest changes the autoscaler made (time, variant, from, to, cause), oldest first.
    #[serde(default)]
    pub scaling_activities: Vec<crate::scaling::ScalingActivity>,
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A change to a serving variant, applied in place: its weight, its instance count, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantChange {
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub instances: Option<u32>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `next_token` to get the next page; null on the last page.
    pub next_token: Option<String>,
}
