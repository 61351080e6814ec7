//! Secrets: random identifiers and credentials in AWS's formats, bearer-token hashes, the master key that seals
//! recoverable secrets at rest (ChaCha20-Poly1305), and files only their owner may read.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// Fills `buffer` from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    let mut buffer = [0u8; N];
    getrandom::fill(&mut buffer).map_err(|error| ServiceError::internal(format!("no randomness: {error}")))?;
    Ok(buffer)
}

/// `count` characters drawn uniformly from a 32- or 64-symbol alphabet.
fn random_text(alphabet: &[u8], count: usize) -> Result<String, ServiceError> {
    let mask = alphabet.len() - 1;
    let bytes = random_bytes::<64>()?;
    Ok(bytes
        .iter()
        .take(count)
        .map(|byte| alphabet.get(usize::from(*byte) & mask).copied().unwrap_or(b'A') as char)
        .collect())
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new access key id in AWS's format: `AKIA` and 16 base32 characters.
pub fn new_access_key_id() -> Result<String, ServiceError> {
    Ok(format!("AKIA{}", random_text(BASE32, 16)?))
}

/// A new secret access key in AWS's format: 40 base64 characters.
pub fn new_secret() -> Result<String, ServiceError> {
    random_text(BASE64, 40)
}

/// A new bearer token: `rsk_` and 43 URL-safe characters (256 bits).
pub fn new_token() -> Result<String, ServiceError> {
    Ok(format!("rsk_{}", random_text(BASE64_URL, 43)?))
}

pub(crate) fn new_id(prefix: &str) -> Result<String, ServiceError> {
    Ok(format!("{prefix}{}", hex::encode(random_bytes::<8>()?)))
}

/// Tokens carry 256 random bits, so one SHA-256 is as strong as a slow hash and costs nothing per request.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The master key that seals recoverable secrets (SigV4 secrets, the audit signing key).
#[derive(Clone)]
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// From 64 hex digits (`RISKSERVE_MASTER_KEY`), else the file `path`, created with a fresh key when absent.
    pub fn load(hex_value: Option<&str>, path: &Path) -> Result<MasterKey, ServiceError> {
        let text = match hex_value {
            Some(text) => text.trim().to_string(),
            None if path.exists() => std::fs::read_to_string(path)
                .map_err(|error| {
                    ServiceError::internal(format!("cannot read the master key {}: {error}", path.display()))
                })?
                .trim()
                .to_string(),
            None => {
                let text = hex::encode(random_bytes::<32>()?);
                write_private(path, text.as_bytes())?;
                text
            }
        };
        let bytes: [u8; 32] = hex::decode(&text).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
            ServiceError::validation("the master key must be 64 hexadecimal digits (32 bytes)".to_string())
        })?;
        Ok(MasterKey(Key::from(bytes)))
    }

    /// A 32-byte key for `context`, derived from the master key (HMAC-SHA256): every holder of the master key
    /// derives the same one, and it reveals nothing of the master key or of keys for other contexts.
    pub fn derive(&self, context: &str) -> [u8; 32] {
        use hmac::{Hmac, KeyInit as _, Mac};
        let key: [u8; 32] = self.0.into();
        match Hmac::<Sha256>::new_from_slice(&key) {
            Ok(mut mac) => {
                mac.update(context.as_bytes());
                mac.finalize().into_bytes().into()
            }
            // HMAC takes keys of any length; this arm cannot run.
            Err(_) => Sha256::digest([key.as_slice(), context.as_bytes()].concat()).into(),
        }
    }

    /// hex(nonce || ciphertext), bound to `context` (e.g. the access key id) as associated data.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, ServiceError> {
        let nonce = random_bytes::<12>()?;
        let cipher = ChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| ServiceError::internal("cannot seal a secret"))?;
        Ok(format!("{}{}", hex::encode(nonce), hex::encode(sealed)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, ServiceError> {
        let bytes = hex::decode(sealed)
            .map_err(|_| ServiceError::internal(format!("the sealed secret of {context} is not hex")))?;
        let (nonce, ciphertext) = bytes
            .split_at_checked(12)
            .ok_or_else(|| ServiceError::internal(format!("the sealed secret of {context} is too short")))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| ServiceError::internal(format!("the sealed secret of {context} is too short")))?;
        ChaCha20Poly1305::new(&self.0)
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| ServiceError::internal(format!("the secret of {context} does not open with this master key")))
    }
}

/// Writes a file only its owner may read (0600 on Unix), durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServiceError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|error| ServiceError::internal(format!("cannot create {}: {error}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| ServiceError::internal(format!("cannot write {}: {error}", path.display())))
}

/// Where the master key lives by default.
pub fn default_master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}
