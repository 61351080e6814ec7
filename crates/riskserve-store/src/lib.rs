//! riskserve's persistence: metadata in a SQL database (the only crate that knows SQL) and model
//! artifacts in a content-addressed object store (a local folder now; the same interface points at S3 later).
//!
//! The metadata's SQL is written once, for every database engine; what the engines do differently
//! sits behind one backend interface (`backend`), whose embedded file in the data directory is the
//! default.
//!
//! Every state change is one transaction, so a crash (kill -9) at any moment leaves either the old
//! state or the new one. Artifacts are written under a temporary name and renamed into place, so a
//! half-written artifact is never visible under its digest.

mod artifacts;
mod audit;
mod backend;
mod error;
mod iam;
mod metadata;
mod metrics;
mod records;
mod scaling;
mod time;
mod usage;

use std::path::{Path, PathBuf};

pub use artifacts::{ArtifactInfo, ArtifactStore, parse_digest};
pub use audit::{AuditFilter, AuditRecord, AuditSeal};
pub use error::StoreError;
pub use iam::{AccessKeyRecord, IdentitySnapshot, PolicyRecord, TokenRecord, UserRecord};
pub use metadata::{FacadeDocument, Metadata, TaggedKind};
pub use metrics::MetricMinute;
pub use records::{
    ArtifactRef, ConfigRecord, EndpointRecord, EndpointStatus, ModelRecord, Page, PageRequest, VariantRecord,
};
pub use scaling::{ScalingActivityRecord, ScalingPolicyRecord};
pub use time::{now_rfc3339, unix_to_rfc3339};
pub use usage::UsageRecord;

/// The metadata database and the artifact store of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub metadata: Metadata,
    pub artifacts: ArtifactStore,
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating when absent) `<data_dir>/riskserve.db` and `<data_dir>/artifacts`, and
    /// brings the schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Io(format!("cannot create the data directory {}: {error}", data_dir.display()))
        })?;
        let metadata = Metadata::open(&data_dir.join("riskserve.db")).await?;
        let artifacts = ArtifactStore::open_local(&data_dir.join("artifacts"))?;
        Ok(Store { metadata, artifacts, data_dir: data_dir.to_path_buf() })
    }

    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
