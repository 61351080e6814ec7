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
mod console;
mod coordination;
mod error;
mod iam;
mod metadata;
mod metrics;
mod monitoring;
mod records;
mod scaling;
mod time;
mod usage;

use std::path::{Path, PathBuf};

pub use artifacts::{ArtifactInfo, ArtifactStore, invalid_object_key, parse_digest};
pub use audit::{AuditFilter, AuditHead, AuditRecord, AuditSeal};
pub use console::ConsoleSessionRecord;
pub use coordination::{Change, ChangeFeed, Leadership};
pub use error::StoreError;
pub use iam::{AccessKeyRecord, IdentitySnapshot, PolicyRecord, TokenRecord, UserRecord};
pub use metadata::{FacadeDocument, Metadata, TaggedKind};
pub use metrics::{MetricMinute, ReplicaLoad};
pub use monitoring::{MonitorBaselineRecord, MonitorReportRecord, MonitorScheduleRecord, OutcomeRecord};
pub use records::{
    ArtifactRef, ConfigRecord, EndpointRecord, EndpointStatus, ModelRecord, Page, PageRequest, VariantRecord,
};
pub use scaling::{ScalingActivityRecord, ScalingPolicyRecord};
pub use time::{now_rfc3339, unix_to_rfc3339};
pub use usage::UsageRecord;

/// Where a server keeps its state: by default an embedded database file and an artifact folder in the data directory; for
/// replicas that share state, a PostgreSQL database and an S3-compatible bucket.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreLocation {
    /// `postgres://user:password@host:port/database`, or `None` for `<data_dir>/riskserve.db`.
    pub metadata_url: Option<String>,
    /// `s3://bucket/prefix`, or `None` for `<data_dir>/artifacts`.
    pub artifacts_url: Option<String>,
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoreLocation")
            .field("metadata_url", &self.metadata_url.as_deref().map(redact_url))
            .field("artifacts_url", &self.artifacts_url)
            .finish()
    }
}

/// A URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(authority, tail)| (authority, Some(tail)));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:<redacted>@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_string(),
    };
    match tail {
        Some(tail) => format!("{scheme}://{authority}/{tail}"),
        None => format!("{scheme}://{authority}"),
    }
}

/// The metadata database and the artifact store of a server.
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
        Store::open_at(data_dir, &StoreLocation::default()).await
    }

    /// Opens the store `location` names (each part defaulting to the data directory), brings the schema up to date,
    /// and reaches both parts once, so that an unreachable database or bucket fails here with a message naming it.
    pub async fn open_at(data_dir: &Path, location: &StoreLocation) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Io(format!("cannot create the data directory {}: {error}", data_dir.display()))
        })?;
        let metadata = match location.metadata_url.as_deref() {
            None => Metadata::open(&data_dir.join("riskserve.db")).await?,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Metadata::open_url(url).await?
            }
            Some(url) => {
                return Err(StoreError::Invalid(format!(
                    "the store {:?} is not a postgres:// URL (leave it unset for the embedded database in the data directory)",
                    redact_url(url)
                )));
            }
        };
        let artifacts = match location.artifacts_url.as_deref() {
            None => ArtifactStore::open_local(&data_dir.join("artifacts"))?,
            Some(url) => ArtifactStore::open_s3(url).await?,
        };
        Ok(Store { metadata, artifacts, data_dir: data_dir.to_path_buf() })
    }

    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/riskserve"),
            "postgres://app:<redacted>@db:5432/riskserve"
        );
        assert_eq!(redact_url("postgres://app@db/riskserve"), "postgres://app@db/riskserve");
        assert_eq!(redact_url("postgres://db:5432"), "postgres://db:5432");
        assert_eq!(redact_url("postgres://a:b:c@d/e"), "postgres://a:<redacted>@d/e");
        assert!(!redact_url("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }
}
