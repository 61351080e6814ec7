//! The identity index the authenticator reads (tokens by hash, access keys with their opened secrets) and the
//! first-start administrator.

use std::collections::HashMap;
use std::sync::Arc;

use riskserve_store::{AccessKeyRecord, IdentitySnapshot, Store, TokenRecord, UserRecord, now_rfc3339};

use crate::caller::Principal;
use crate::error::ServiceError;
use crate::secrets::{MasterKey, new_access_key_id, new_id, new_secret, new_token, token_hash};

/// An active access key as the authenticator holds it.
pub struct KeyEntry {
    pub secret: String,
    pub principal: Arc<Principal>,
    /// The last derived signing key and its (date, region, service): a client signs all day with one.
    pub signing_key: std::sync::Mutex<Option<(String, Vec<u8>)>>,
}

impl KeyEntry {
    /// The signing key of a scope, derived once per scope (four HMACs saved on every other request).
    pub fn signing_key(&self, date: &str, region: &str, service: &str) -> Vec<u8> {
        let scope = format!("{date}/{region}/{service}");
        let mut cached = self.signing_key.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((known, key)) = cached.as_ref()
            && *known == scope
        {
            return key.clone();
        }
        let key = crate::sigv4::signing_key(&self.secret, date, region, service);
        *cached = Some((scope, key.clone()));
        key
    }
}

/// Every active credential of every enabled user, and the policies: swapped as a whole on each change.
#[derive(Default)]
pub struct IdentityIndex {
    /// Every enabled user by id (console sessions act for a user).
    pub users: HashMap<String, Arc<Principal>>,
    pub tokens: HashMap<[u8; 32], Arc<Principal>>,
    pub keys: HashMap<String, KeyEntry>,
}

impl IdentityIndex {
    /// Builds the index; access key secrets are opened with the master key.
    pub fn build(snapshot: &IdentitySnapshot, master: &MasterKey) -> Result<IdentityIndex, ServiceError> {
        let mut principals: HashMap<&str, Arc<Principal>> = HashMap::new();
        for user in snapshot.users.iter().filter(|user| !user.disabled) {
            let principal = Principal { id: user.id.clone(), name: user.name.clone(), roles: user.roles.clone() };
            principals.insert(user.id.as_str(), Arc::new(principal));
        }
        let mut index = IdentityIndex::default();
        for token in snapshot.tokens.iter().filter(|token| token.active) {
            let (Some(principal), Ok(hash)) = (principals.get(token.user_id.as_str()), hex::decode(&token.token_hash))
            else {
                continue;
            };
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                index.tokens.insert(hash, principal.clone());
            }
        }
        for key in snapshot.access_keys.iter().filter(|key| key.active) {
            let Some(principal) = principals.get(key.user_id.as_str()) else { continue };
            let secret = master.open(&key.sealed_secret, &key.access_key_id)?;
            let secret = String::from_utf8(secret)
                .map_err(|_| ServiceError::internal(format!("the secret of {} is not text", key.access_key_id)))?;
            index.keys.insert(
                key.access_key_id.clone(),
                KeyEntry { secret, principal: principal.clone(), signing_key: std::sync::Mutex::new(None) },
            );
        }
        index.users = principals.into_iter().map(|(id, principal)| (id.to_string(), principal)).collect();
        Ok(index)
    }
}

/// The administrator's credentials at first start: from the environment or generated.
#[derive(Clone, Default, PartialEq)]
pub struct AdminBootstrap {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub token: Option<String>,
    /// The master key itself (64 hex digits, `RISKSERVE_MASTER_KEY`), instead of the key file.
    pub master_key: Option<String>,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AdminBootstrap")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("master_key", &self.master_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn check_credential(what: &str, value: &str, minimum: usize) -> Result<(), ServiceError> {
    if value.len() < minimum || value.len() > 256 || !value.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(ServiceError::validation(format!(
            "{what} must be {minimum} to 256 printable characters without spaces"
        )));
    }
    Ok(())
}

/// Creates the administrator when the store has no user yet; prints generated credentials once.
pub async fn bootstrap_admin(store: &Store, master: &MasterKey, admin: &AdminBootstrap) -> Result<(), ServiceError> {
    if store.metadata.has_users().await? {
        return Ok(());
    }
    let given_key = admin.access_key_id.is_some() || admin.secret_access_key.is_some();
    if given_key && (admin.access_key_id.is_none() || admin.secret_access_key.is_none()) {
        return Err(ServiceError::validation(
            "set both RISKSERVE_ADMIN_ACCESS_KEY_ID and RISKSERVE_ADMIN_SECRET_ACCESS_KEY, or neither",
        ));
    }
    let access_key_id = match &admin.access_key_id {
        Some(id) => {
            check_credential("RISKSERVE_ADMIN_ACCESS_KEY_ID", id, 16)?;
            id.clone()
        }
        None => new_access_key_id()?,
    };
    let secret = match &admin.secret_access_key {
        Some(secret) => {
            check_credential("RISKSERVE_ADMIN_SECRET_ACCESS_KEY", secret, 16)?;
            secret.clone()
        }
        None => new_secret()?,
    };
    let token = match &admin.token {
        Some(token) => {
            check_credential("RISKSERVE_ADMIN_TOKEN", token, 16)?;
            token.clone()
        }
        None => new_token()?,
    };
    let now = now_rfc3339();
    let user = UserRecord {
        id: new_id("u-")?,
        name: "admin".to_string(),
        roles: vec!["admin".to_string()],
        disabled: false,
        created_at: now.clone(),
    };
    let key = AccessKeyRecord {
        access_key_id: access_key_id.clone(),
        user_id: user.id.clone(),
        sealed_secret: master.seal(secret.as_bytes(), &access_key_id)?,
        active: true,
        created_at: now.clone(),
    };
    let token_record = TokenRecord {
        id: new_id("t-")?,
        user_id: user.id.clone(),
        token_hash: hex::encode(token_hash(&token)),
        active: true,
        created_at: now,
    };
    store.metadata.insert_user(&user, &[key], &[token_record]).await?;
    let mut printed = Vec::new();
    if admin.access_key_id.is_none() {
        printed.push(format!("  access key id:     {access_key_id}\n  secret access key: {secret}"));
    }
    if admin.token.is_none() {
        printed.push(format!("  bearer token:      {token}"));
    }
    if !printed.is_empty() {
        eprintln!(
            "riskserve: created the administrator \"admin\"; these credentials are shown once, keep them:\n{}",
            printed.join("\n")
        );
    } else {
        eprintln!("riskserve: created the administrator \"admin\" from the RISKSERVE_ADMIN_* credentials");
    }
    Ok(())
}
