//! Content-addressed artifact storage, in a local folder or an S3-compatible bucket: a file is stored once under
//! `sha256/<hex>`; locally it is written under `tmp/` and renamed into place, on S3 a PUT is atomic already, so a
//! crash never leaves a partial file under a digest.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Folder of uploads in progress; everything in it is garbage once the server restarts.
const TEMPORARY_PREFIX: &str = "tmp";
const CONTENT_PREFIX: &str = "sha256";

/// Where model files and pipeline specs live.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    objects: Arc<dyn ObjectStore>,
    /// The folder behind a local store, swept for the object store's own staging files at start.
    local_root: Option<PathBuf>,
    /// The S3 location (`s3://bucket/prefix`) behind an S3 store, for messages and for reading `s3://` URLs.
    s3: Option<S3Location>,
}

/// Where an S3 artifact store lives, and how its client reaches the service.
#[derive(Debug, Clone)]
struct S3Location {
    url: String,
    /// The endpoint of an S3-compatible service (`AWS_ENDPOINT_URL`), or AWS's own when absent.
    endpoint: Option<String>,
}

/// What an upload produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// `sha256:<64 lowercase hex digits>`.
    pub digest: String,
    pub size: u64,
}

/// The hex part of a digest written `sha256:<64 hex digits>`, or `None` when it is not one.
pub fn parse_digest(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))).then_some(hex)
}

fn hex_of(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

fn content_path(hex: &str) -> Path {
    Path::from(format!("{CONTENT_PREFIX}/{hex}"))
}

impl ArtifactStore {
    /// A store in a local folder, created when absent.
    pub fn open_local(root: &FsPath) -> Result<ArtifactStore, StoreError> {
        std::fs::create_dir_all(root).map_err(|error| {
            StoreError::Io(format!("cannot create the artifact folder {}: {error}", root.display()))
        })?;
        // Uploads are rare and acknowledged ones must survive a power loss too: fsync files and folders.
        let objects = LocalFileSystem::new_with_prefix(root)?.with_fsync(true);
        Ok(ArtifactStore { objects: Arc::new(objects), local_root: Some(root.to_path_buf()), s3: None })
    }

    /// A store in an S3-compatible bucket, `s3://bucket/prefix`, with credentials, region and endpoint from the usual
    /// AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`). The bucket is
    /// reached once here, so an unreachable service or a missing bucket fails at start with a message naming it.
    pub async fn open_s3(url: &str) -> Result<ArtifactStore, StoreError> {
        let (bucket, prefix) = parse_s3_url(url)?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().or_else(|| std::env::var("AWS_ENDPOINT").ok());
        let bucket_store = s3_client(bucket, endpoint.as_deref())?;
        let objects: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(bucket_store) } else { Arc::new(PrefixStore::new(bucket_store, prefix)) };
        let s3 = S3Location { url: url.to_string(), endpoint };
        let store = ArtifactStore { objects, local_root: None, s3: Some(s3) };
        store.probe().await?;
        Ok(store)
    }

    /// Lists the store's root once: fails with a message naming the bucket and the endpoint when they cannot be
    /// reached.
    async fn probe(&self) -> Result<(), StoreError> {
        match self.objects.list_with_delimiter(None).await {
            Ok(_) => Ok(()),
            Err(error) => Err(StoreError::Unavailable(format!("{} is unreachable: {error}", self.describe()))),
        }
    }

    /// The store as messages name it: its folder, or its S3 URL and endpoint.
    pub fn describe(&self) -> String {
        match (&self.s3, &self.local_root) {
            (Some(s3), _) => match &s3.endpoint {
                Some(endpoint) => format!("the S3 artifact store {} at {endpoint}", s3.url),
                None => format!("the S3 artifact store {}", s3.url),
            },
            (None, Some(root)) => format!("the artifact folder {}", root.display()),
            (None, None) => "the artifact store".to_string(),
        }
    }

    /// Whether `s3://` URLs can be read (an S3 artifact store is configured, and with it credentials and endpoint).
    pub fn reads_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// The object at `s3://bucket/key`, read with the artifact store's credentials and endpoint, if it holds at most
    /// `limit` bytes.
    pub async fn read_s3_url(&self, url: &str, limit: u64) -> Result<Bytes, StoreError> {
        let Some(location) = &self.s3 else {
            return Err(StoreError::Invalid(format!(
                "{url:?}: S3 is not configured on this server (start it with --artifacts s3://bucket/prefix)"
            )));
        };
        let (bucket, key) = parse_s3_url(url)?;
        if key.is_empty() {
            return Err(StoreError::Invalid(format!("{url:?} names a bucket, not an object")));
        }
        let client = s3_client(bucket, location.endpoint.as_deref())?;
        let path = Path::from(key);
        let meta = match client.head(&path).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(format!("{url:?} does not exist")));
            }
            Err(error) => return Err(StoreError::Unavailable(format!("cannot read {url:?}: {error}"))),
        };
        if meta.size > limit {
            return Err(StoreError::Invalid(format!(
                "{url:?} has {} bytes, more than the {limit} accepted",
                meta.size
            )));
        }
        match client.get(&path).await {
            Ok(result) => Ok(result.bytes().await?),
            Err(error) => Err(StoreError::Unavailable(format!("cannot read {url:?}: {error}"))),
        }
    }

    /// Stores `bytes` under their digest. Idempotent: storing the same bytes again returns the
    /// same digest and writes nothing.
    pub async fn put(&self, bytes: Bytes) -> Result<ArtifactInfo, StoreError> {
        let hex = hex_of(&Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let info = ArtifactInfo { digest: format!("sha256:{hex}"), size };
        let destination = content_path(&hex);
        if let Ok(meta) = self.objects.head(&destination).await
            && meta.size == size
        {
            return Ok(info);
        }
        if self.s3.is_some() {
            // A PUT is atomic on S3: the object appears whole or not at all (and a rename would be a copy).
            self.objects.put(&destination, bytes.into()).await?;
            return Ok(info);
        }
        static UPLOADS: AtomicU64 = AtomicU64::new(0);
        let temporary = Path::from(format!(
            "{TEMPORARY_PREFIX}/{hex}-{}-{}",
            std::process::id(),
            UPLOADS.fetch_add(1, Ordering::Relaxed)
        ));
        self.objects.put(&temporary, bytes.into()).await?;
        if let Err(error) = self.objects.rename(&temporary, &destination).await {
            let _ = self.objects.delete(&temporary).await;
            return Err(error.into());
        }
        Ok(info)
    }

    /// The bytes stored under `digest`, checked against it.
    pub async fn get(&self, digest: &str) -> Result<Bytes, StoreError> {
        let hex =
            parse_digest(digest).ok_or_else(|| StoreError::NotFound(format!("{digest:?} is not a sha256 digest")))?;
        let bytes = match self.objects.get(&content_path(hex)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(format!("artifact {digest} was never uploaded")));
            }
            Err(error) => return Err(error.into()),
        };
        if hex_of(&Sha256::digest(&bytes)) != hex {
            return Err(StoreError::Corrupt(format!("artifact {digest} does not match its digest")));
        }
        Ok(bytes)
    }

    /// The size of the artifact stored under `digest`, or `None` when there is none.
    pub async fn size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        let Some(hex) = parse_digest(digest) else { return Ok(None) };
        match self.objects.head(&content_path(hex)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The digests of every stored artifact.
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        let listing = self.objects.list_with_delimiter(Some(&Path::from(CONTENT_PREFIX))).await?;
        let mut digests: Vec<String> = listing
            .objects
            .iter()
            .filter_map(|meta| meta.location.filename().map(|hex| format!("sha256:{hex}")))
            .filter(|digest| parse_digest(digest).is_some())
            .collect();
        digests.sort();
        Ok(digests)
    }

    /// Removes every upload left unfinished by an earlier process; call once at start, before
    /// any upload. Returns how many files were removed.
    pub async fn collect_temporary(&self) -> Result<usize, StoreError> {
        // An S3 store stages nothing, and other replicas share it: there is nothing of this process's to sweep.
        if self.s3.is_some() {
            return Ok(0);
        }
        let mut removed = 0;
        let listing = self.objects.list_with_delimiter(Some(&Path::from(TEMPORARY_PREFIX))).await?;
        for meta in listing.objects {
            match self.objects.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(error) => return Err(error.into()),
            }
        }
        // The local object store stages each write as `<name>#<n>` and never lists such files.
        if let Some(root) = &self.local_root {
            for folder in [TEMPORARY_PREFIX, CONTENT_PREFIX] {
                let Ok(entries) = std::fs::read_dir(root.join(folder)) else { continue };
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().contains('#') && std::fs::remove_file(entry.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// Why `key` cannot name a plain object (see [`ArtifactStore::put_object`]), or `None` when it can.
pub fn invalid_object_key(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > 1024 {
        return Some(format!("an object key has 1 to 1024 characters, {key:?} has {}", key.len()));
    }
    let first = key.split('/').next().unwrap_or("");
    if first == CONTENT_PREFIX || first == TEMPORARY_PREFIX {
        return Some(format!("{key:?} is under {first}/, which the artifact store keeps for itself"));
    }
    for segment in key.split('/') {
        let allowed = segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if segment.is_empty() || segment == "." || segment == ".." || !allowed || segment.contains('#') {
            return Some(format!(
                "{key:?}: every part between slashes must be non-empty letters, digits, '-', '_' or '.' (not . or ..)"
            ));
        }
    }
    None
}

impl ArtifactStore {
    /// Stores `bytes` under `key` (outside the content-addressed `sha256/` and `tmp/`), replacing what was there:
    /// whole or not at all (a local file is written aside and renamed into place; an S3 PUT is atomic).
    pub async fn put_object(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        if let Some(reason) = invalid_object_key(key) {
            return Err(StoreError::Invalid(reason));
        }
        let destination = Path::from(key);
        if self.s3.is_some() {
            self.objects.put(&destination, bytes.into()).await?;
            return Ok(());
        }
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let temporary = Path::from(format!(
            "{TEMPORARY_PREFIX}/object-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        self.objects.put(&temporary, bytes.into()).await?;
        if let Err(error) = self.objects.rename(&temporary, &destination).await {
            let _ = self.objects.delete(&temporary).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// The object stored under `key`.
    pub async fn get_object(&self, key: &str) -> Result<Bytes, StoreError> {
        if let Some(reason) = invalid_object_key(key) {
            return Err(StoreError::Invalid(reason));
        }
        match self.objects.get(&Path::from(key)).await {
            Ok(result) => Ok(result.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::NotFound(format!("object {key:?} does not exist")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Every object under the folder `prefix` (at any depth) with its size, ordered by key.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        if let Some(reason) = invalid_object_key(prefix) {
            return Err(StoreError::Invalid(reason));
        }
        let mut found = Vec::new();
        let mut folders = vec![Path::from(prefix)];
        while let Some(folder) = folders.pop() {
            let listing = match self.objects.list_with_delimiter(Some(&folder)).await {
                Ok(listing) => listing,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            found.extend(listing.objects.into_iter().map(|meta| (meta.location.to_string(), meta.size)));
            folders.extend(listing.common_prefixes);
        }
        found.retain(|(key, _)| !key.contains('#'));
        found.sort();
        Ok(found)
    }
}

/// `s3://bucket/prefix` → (bucket, prefix without surrounding slashes).
fn parse_s3_url(url: &str) -> Result<(&str, &str), StoreError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| StoreError::Invalid(format!("{url:?} is not an s3://bucket/prefix URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.');
    if !valid_bucket {
        return Err(StoreError::Invalid(format!(
            "{url:?}: {bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
        )));
    }
    Ok((bucket, prefix.trim_matches('/')))
}

/// An S3 client for `bucket`: credentials and region from the environment, the given endpoint (plain HTTP allowed
/// only when the endpoint itself says http://), and short timeouts and few retries so that an unreachable service is
/// reported in seconds rather than minutes.
fn s3_client(bucket: &str, endpoint: Option<&str>) -> Result<object_store::aws::AmazonS3, StoreError> {
    static CRYPTO: std::sync::Once = std::sync::Once::new();
    CRYPTO.call_once(|| {
        // TLS (rustls) with ring, the crypto stack of the rest of riskserve; another provider installed first wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let plain_http = endpoint.is_some_and(|endpoint| endpoint.starts_with("http://"));
    // Client options first: setting them replaces every client option set before (allow_http among them).
    let options = ClientOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(3))
        .with_timeout(std::time::Duration::from_secs(30))
        .with_allow_http(plain_http);
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_client_options(options);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
        // S3-compatible services address buckets by path (`endpoint/bucket/key`), not by host name.
        builder = builder.with_virtual_hosted_style_request(false);
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
        builder = builder.with_region("us-east-1");
    }
    let retry =
        RetryConfig { max_retries: 2, retry_timeout: std::time::Duration::from_secs(10), ..RetryConfig::default() };
    builder
        .with_retry(retry)
        .build()
        .map_err(|error| StoreError::Invalid(format!("cannot configure S3 for bucket {bucket:?}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_s3_url("s3://models/riskserve/").ok(), Some(("models", "riskserve")));
        assert_eq!(parse_s3_url("s3://models").ok(), Some(("models", "")));
        assert!(parse_s3_url("http://models/x").is_err());
        assert!(parse_s3_url("s3://Models/x").is_err());
        assert!(parse_s3_url("s3:///x").is_err());
    }
}
