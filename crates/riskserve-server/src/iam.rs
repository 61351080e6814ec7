//! Identities: users with roles, access keys in AWS's formats (secrets sealed at rest with the master
//! key), bearer tokens (stored as SHA-256 hashes), custom policies, the first-start administrator, and
//! the `/api/v1/users` and `/api/v1/policies` routes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use riskserve_store::{AccessKeyRecord, IdentitySnapshot, PolicyRecord, Store, TokenRecord, UserRecord, now_rfc3339};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, Principal, Resource};
use crate::error::ServiceError;
use crate::policy::{self, Policies};
use crate::rest::{answer, json_body, no_content};
use crate::service::Service;

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

fn new_id(prefix: &str) -> Result<String, ServiceError> {
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

// ---- API shapes ----

/// A user as the API describes it (never a secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub id: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub access_keys: Vec<AccessKeyDescription>,
    pub tokens: Vec<TokenDescription>,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessKeyDescription {
    pub access_key_id: String,
    pub active: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenDescription {
    pub id: String,
    pub active: bool,
    pub created_at: String,
}

/// A new access key: the secret is shown in this answer only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewAccessKey {
    pub user: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A new bearer token: shown in this answer only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub user: String,
    pub id: String,
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyDocument {
    #[serde(default)]
    pub name: String,
    /// Cedar policy text.
    pub text: String,
    pub description: Option<String>,
    /// True for the built-in roles' policies (read-only).
    #[serde(default)]
    pub builtin: bool,
}

fn user_of(user: &UserRecord, snapshot: &IdentitySnapshot) -> User {
    User {
        name: user.name.clone(),
        id: user.id.clone(),
        roles: user.roles.clone(),
        disabled: user.disabled,
        access_keys: snapshot
            .access_keys
            .iter()
            .filter(|key| key.user_id == user.id)
            .map(|key| AccessKeyDescription {
                access_key_id: key.access_key_id.clone(),
                active: key.active,
                created_at: key.created_at.clone(),
            })
            .collect(),
        tokens: snapshot
            .tokens
            .iter()
            .filter(|token| token.user_id == user.id)
            .map(|token| TokenDescription {
                id: token.id.clone(),
                active: token.active,
                created_at: token.created_at.clone(),
            })
            .collect(),
        created_at: user.created_at.clone(),
    }
}

fn check_roles(roles: &[String]) -> Result<(), ServiceError> {
    for role in roles {
        crate::validate::name("role", role)?;
    }
    Ok(())
}

// ---- use cases ----

impl Service {
    async fn identity_snapshot(&self) -> Result<IdentitySnapshot, ServiceError> {
        Ok(self.store().metadata.identity_snapshot().await?)
    }

    /// Rebuilds the in-memory index and the policy set after a change.
    pub(crate) async fn reload_identities(&self) -> Result<(), ServiceError> {
        let snapshot = self.identity_snapshot().await?;
        self.security().reload(&snapshot)
    }

    pub async fn create_user(&self, request: CreateUser) -> Result<User, ServiceError> {
        crate::validate::name("user", &request.name)?;
        check_roles(&request.roles)?;
        let user = UserRecord {
            id: new_id("u-")?,
            name: request.name,
            roles: request.roles,
            disabled: false,
            created_at: now_rfc3339(),
        };
        self.store().metadata.insert_user(&user, &[], &[]).await?;
        self.reload_identities().await?;
        Ok(user_of(&user, &IdentitySnapshot::default()))
    }

    pub async fn list_users(&self) -> Result<Vec<User>, ServiceError> {
        let snapshot = self.identity_snapshot().await?;
        Ok(snapshot.users.iter().map(|user| user_of(user, &snapshot)).collect())
    }

    pub async fn get_user(&self, name: &str) -> Result<User, ServiceError> {
        let snapshot = self.identity_snapshot().await?;
        let user = snapshot
            .users
            .iter()
            .find(|user| user.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("user {name:?} does not exist")))?;
        Ok(user_of(user, &snapshot))
    }

    pub async fn update_user(&self, name: &str, request: UpdateUser) -> Result<User, ServiceError> {
        if let Some(roles) = &request.roles {
            check_roles(roles)?;
        }
        self.store().metadata.update_user(name, request.roles.as_deref(), request.disabled).await?;
        self.reload_identities().await?;
        self.get_user(name).await
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), ServiceError> {
        self.store().metadata.delete_user(name).await?;
        self.reload_identities().await
    }

    /// A new access key for `user`; with `replacing`, that key is deactivated in the same transaction (a rotation).
    pub async fn create_access_key(&self, name: &str, replacing: Option<&str>) -> Result<NewAccessKey, ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        if let Some(old) = replacing {
            let snapshot = self.identity_snapshot().await?;
            if !snapshot.access_keys.iter().any(|key| key.access_key_id == old && key.user_id == user.id) {
                return Err(ServiceError::NotFound(format!("user {name:?} has no access key {old:?}")));
            }
        }
        let access_key_id = new_access_key_id()?;
        let secret = new_secret()?;
        let key = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            user_id: user.id,
            sealed_secret: self.security().master().seal(secret.as_bytes(), &access_key_id)?,
            active: true,
            created_at: now_rfc3339(),
        };
        self.store().metadata.add_credentials(Some(&key), None, replacing, None).await?;
        self.reload_identities().await?;
        Ok(NewAccessKey { user: name.to_string(), access_key_id, secret_access_key: secret })
    }

    pub async fn set_access_key_active(&self, name: &str, key: &str, active: bool) -> Result<User, ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        self.store().metadata.set_key_active(&user.id, key, active).await?;
        self.reload_identities().await?;
        self.get_user(name).await
    }

    pub async fn delete_access_key(&self, name: &str, key: &str) -> Result<(), ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        self.store().metadata.delete_key(&user.id, key).await?;
        self.reload_identities().await
    }

    /// A new bearer token for `user`; with `replacing`, that token is deactivated in the same transaction.
    pub async fn create_token(&self, name: &str, replacing: Option<&str>) -> Result<NewToken, ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        if let Some(old) = replacing {
            let snapshot = self.identity_snapshot().await?;
            if !snapshot.tokens.iter().any(|token| token.id == old && token.user_id == user.id) {
                return Err(ServiceError::NotFound(format!("user {name:?} has no token {old:?}")));
            }
        }
        let token = new_token()?;
        let record = TokenRecord {
            id: new_id("t-")?,
            user_id: user.id,
            token_hash: hex::encode(token_hash(&token)),
            active: true,
            created_at: now_rfc3339(),
        };
        self.store().metadata.add_credentials(None, Some(&record), None, replacing).await?;
        self.reload_identities().await?;
        Ok(NewToken { user: name.to_string(), id: record.id, token })
    }

    pub async fn set_token_active(&self, name: &str, token: &str, active: bool) -> Result<User, ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        self.store().metadata.set_token_active(&user.id, token, active).await?;
        self.reload_identities().await?;
        self.get_user(name).await
    }

    pub async fn delete_token(&self, name: &str, token: &str) -> Result<(), ServiceError> {
        let user = self.store().metadata.get_user(name).await?;
        self.store().metadata.delete_token(&user.id, token).await?;
        self.reload_identities().await
    }

    pub async fn list_policies(&self) -> Result<Vec<PolicyDocument>, ServiceError> {
        let snapshot = self.identity_snapshot().await?;
        let mut documents = vec![PolicyDocument {
            name: "builtin".to_string(),
            text: policy::BUILTIN_POLICIES.to_string(),
            description: Some("the built-in roles admin, deployer, invoker and auditor".to_string()),
            builtin: true,
        }];
        documents.extend(snapshot.policies.into_iter().map(|policy| PolicyDocument {
            name: policy.name,
            text: policy.text,
            description: policy.description,
            builtin: false,
        }));
        Ok(documents)
    }

    pub async fn get_policy(&self, name: &str) -> Result<PolicyDocument, ServiceError> {
        self.list_policies()
            .await?
            .into_iter()
            .find(|policy| policy.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("policy {name:?} does not exist")))
    }

    /// Creates or replaces a custom policy once it validates against the schema (Cedar's message otherwise).
    pub async fn put_policy(&self, name: &str, document: PolicyDocument) -> Result<PolicyDocument, ServiceError> {
        crate::validate::name("policy", name)?;
        if name == "builtin" {
            return Err(ServiceError::validation("the built-in policy cannot be replaced"));
        }
        let snapshot = self.identity_snapshot().await?;
        let mut custom: Vec<(String, String)> = snapshot
            .policies
            .iter()
            .filter(|policy| policy.name != name)
            .map(|p| (p.name.clone(), p.text.clone()))
            .collect();
        custom.push((name.to_string(), document.text.clone()));
        Policies::new(&custom).map_err(|rejected| ServiceError::validation(rejected.0))?;
        let record = PolicyRecord {
            name: name.to_string(),
            text: document.text.clone(),
            description: document.description.clone(),
            created_at: now_rfc3339(),
        };
        self.store().metadata.put_policy(&record).await?;
        self.reload_identities().await?;
        Ok(PolicyDocument {
            name: name.to_string(),
            text: document.text,
            description: document.description,
            builtin: false,
        })
    }

    pub async fn delete_policy(&self, name: &str) -> Result<(), ServiceError> {
        self.store().metadata.delete_policy(name).await?;
        self.reload_identities().await
    }
}

// ---- routes ----

/// The IAM routes, merged into the native API's router.
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/api/v1/users", post(create_user).get(list_users))
        .route("/api/v1/users/{name}", get(get_user).patch(update_user).delete(delete_user))
        .route("/api/v1/users/{name}/access-keys", post(create_access_key))
        .route(
            "/api/v1/users/{name}/access-keys/{id}",
            axum::routing::patch(update_access_key).delete(delete_access_key),
        )
        .route("/api/v1/users/{name}/access-keys/{id}/rotate", post(rotate_access_key))
        .route("/api/v1/users/{name}/tokens", post(create_token))
        .route("/api/v1/users/{name}/tokens/{id}", axum::routing::patch(update_token).delete(delete_token))
        .route("/api/v1/users/{name}/tokens/{id}/rotate", post(rotate_token))
        .route("/api/v1/policies", get(list_policies))
        .route("/api/v1/policies/{name}", get(get_policy).put(put_policy).delete(delete_policy))
}

async fn create_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let request: CreateUser = json_body(&headers, body)?;
        service.authorize(&caller, "iam:CreateUser", Resource::User(request.name.clone())).await?;
        service.create_user(request).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn list_users(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    let result = async {
        service.authorize(&caller, "iam:ListUsers", Resource::Account).await?;
        Ok(serde_json::json!({"items": service.list_users().await?, "next_token": null}))
    };
    answer(StatusCode::OK, result.await)
}

async fn get_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:GetUser", Resource::User(name.clone())).await?;
        service.get_user(&name).await
    };
    answer(StatusCode::OK, result.await)
}

async fn update_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateUser", Resource::User(name.clone())).await?;
        service.update_user(&name, json_body(&headers, body)?).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteUser", Resource::User(name.clone())).await?;
        service.delete_user(&name).await
    };
    no_content(result.await)
}

async fn create_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:CreateAccessKey", Resource::User(name.clone())).await?;
        service.create_access_key(&name, None).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn rotate_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:RotateAccessKey", Resource::User(name.clone())).await?;
        service.create_access_key(&name, Some(&id)).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn update_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateAccessKey", Resource::User(name.clone())).await?;
        let change: UpdateCredential = json_body(&headers, body)?;
        service.set_access_key_active(&name, &id, change.active).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteAccessKey", Resource::User(name.clone())).await?;
        service.delete_access_key(&name, &id).await
    };
    no_content(result.await)
}

async fn create_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:CreateToken", Resource::User(name.clone())).await?;
        service.create_token(&name, None).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn rotate_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:RotateToken", Resource::User(name.clone())).await?;
        service.create_token(&name, Some(&id)).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn update_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateToken", Resource::User(name.clone())).await?;
        let change: UpdateCredential = json_body(&headers, body)?;
        service.set_token_active(&name, &id, change.active).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteToken", Resource::User(name.clone())).await?;
        service.delete_token(&name, &id).await
    };
    no_content(result.await)
}

async fn list_policies(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    let result = async {
        service.authorize(&caller, "iam:ListPolicies", Resource::Account).await?;
        Ok(serde_json::json!({"items": service.list_policies().await?, "next_token": null}))
    };
    answer(StatusCode::OK, result.await)
}

async fn get_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:GetPolicy", Resource::Policy(name.clone())).await?;
        service.get_policy(&name).await
    };
    answer(StatusCode::OK, result.await)
}

async fn put_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:PutPolicy", Resource::Policy(name.clone())).await?;
        service.put_policy(&name, json_body(&headers, body)?).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeletePolicy", Resource::Policy(name.clone())).await?;
        service.delete_policy(&name).await
    };
    no_content(result.await)
}

/// Where the master key lives by default.
pub fn default_master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}
