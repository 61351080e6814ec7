//! The stored resources, as plain data the service layer turns into API shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One model file a model references, by the digest it is stored under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub name: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub name: String,
    pub format: String,
    /// Digest of the pipeline spec, when the model has one.
    pub pipeline: Option<String>,
    pub artifacts: Vec<ArtifactRef>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub description: Option<String>,
    pub created_at: String,
}

/// A production variant: which model serves, with what share of traffic and how many instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRecord {
    pub name: String,
    pub model: String,
    pub weight: f64,
    pub instances: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub name: String,
    pub variants: Vec<VariantRecord>,
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    /// What the config captures of its invocations, as the service encodes it (JSON); empty for nothing.
    pub data_capture: String,
}

/// The endpoint status machine: Creating → InService | Failed; Updating → InService |
/// RollingBack → InService; Deleting → gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Creating,
    InService,
    Updating,
    RollingBack,
    Failed,
    Deleting,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Creating => "Creating",
            EndpointStatus::InService => "InService",
            EndpointStatus::Updating => "Updating",
            EndpointStatus::RollingBack => "RollingBack",
            EndpointStatus::Failed => "Failed",
            EndpointStatus::Deleting => "Deleting",
        }
    }

    pub fn parse(text: &str) -> Option<EndpointStatus> {
        Some(match text {
            "Creating" => EndpointStatus::Creating,
            "InService" => EndpointStatus::InService,
            "Updating" => EndpointStatus::Updating,
            "RollingBack" => EndpointStatus::RollingBack,
            "Failed" => EndpointStatus::Failed,
            "Deleting" => EndpointStatus::Deleting,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    pub name: String,
    pub status: EndpointStatus,
    /// The config the endpoint serves or is moving to.
    pub config: String,
    /// The config that serves traffic now; `None` until the first deployment succeeds.
    pub live_config: Option<String>,
    /// The serving variants with their current weights and instance counts.
    pub live_variants: Option<Vec<VariantRecord>>,
    pub failure_reason: Option<String>,
    /// Grows with every accepted request on the endpoint; a deployment finishes only the request
    /// whose generation it carries.
    pub generation: i64,
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A page of a list, in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The name to continue after, when more items follow.
    pub next_token: Option<String>,
}

/// Which page of a list to return.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

impl PageRequest {
    /// Largest page a caller may ask for, and the default.
    pub const MAX: u32 = 100;

    pub(crate) fn limit(&self) -> u32 {
        self.max_results.unwrap_or(Self::MAX).clamp(1, Self::MAX)
    }
}
