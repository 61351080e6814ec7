//! Content-addressed artifact storage: a file is stored once under `sha256/<hex>`, written first
//! under `tmp/` and renamed into place, so a crash never leaves a partial file under a digest.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
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
        Ok(ArtifactStore { objects: Arc::new(objects), local_root: Some(root.to_path_buf()) })
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
