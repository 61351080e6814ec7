//! The console's sessions: sign-in with a token or an access key, a session cookie whose hash is stored (shared by
//! replicas), the CSRF token its state-changing requests echo, sign-out. Sessions act for the user as it is now:
//! a disabled or deleted user's session ends with it.

use std::sync::Arc;

use riskserve_store::{ConsoleSessionRecord, now_rfc3339, unix_to_rfc3339};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Service, unix_millis};
use crate::caller::Principal;
use crate::error::ServiceError;
use crate::secrets::random_bytes;

/// How long a console session lasts after sign-in.
const SESSION_HOURS: i64 = 8;

/// What sign-in takes: a token, or an access key id with its secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSignIn {
    pub token: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// A session as the console's script sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleSession {
    pub principal: String,
    pub roles: Vec<String>,
    /// Sent back as `X-CSRF-Token` on every state-changing request.
    pub csrf_token: String,
    pub expires_at: String,
}

impl ConsoleSession {
    /// Whether a request's `X-CSRF-Token` is this session's (constant time).
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.csrf_token.as_bytes())))
    }
}

fn cookie_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

fn unauthenticated(message: &str) -> ServiceError {
    ServiceError::Unauthenticated { code: "invalid_credentials", message: message.to_string() }
}

fn session_of(principal: &Principal, record: &ConsoleSessionRecord) -> ConsoleSession {
    ConsoleSession {
        principal: principal.name.clone(),
        roles: principal.roles.clone(),
        csrf_token: record.csrf_token.clone(),
        expires_at: unix_to_rfc3339(record.expires_at.div_euclid(1000), 0),
    }
}

impl Service {
    /// Signs in: checks the credentials and stores a new session; answers the cookie value (shown once, stored
    /// only as its hash) and the session.
    pub async fn console_sign_in(&self, request: ConsoleSignIn) -> Result<(String, ConsoleSession), ServiceError> {
        let principal = match (&request.token, &request.access_key_id, &request.secret_access_key) {
            (Some(token), None, None) if !token.trim().is_empty() => {
                self.security().principal_of_secret(Some(token.trim()), None)
            }
            (None, Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                self.security().principal_of_secret(None, Some((id.trim(), secret)))
            }
            _ => {
                return Err(ServiceError::validation(
                    "sign in with a token, or with an access key id and its secret access key",
                ));
            }
        }
        .ok_or_else(|| unauthenticated("the token or the access key is unknown, disabled or wrong"))?;
        let cookie = hex::encode(random_bytes::<32>()?);
        let now = unix_millis();
        let record = ConsoleSessionRecord {
            id_hash: cookie_hash(&cookie),
            user_id: principal.id.clone(),
            csrf_token: hex::encode(random_bytes::<32>()?),
            created_at: now_rfc3339(),
            expires_at: now + SESSION_HOURS * 3_600_000,
        };
        let metadata = &self.store().metadata;
        // Sign-ins are rare: the expired sessions go here rather than in a task of their own.
        metadata.delete_expired_console_sessions(now).await?;
        metadata.insert_console_session(&record).await?;
        Ok((cookie, session_of(&principal, &record)))
    }

    /// The principal and session of a session cookie; `Unauthenticated` when it is unknown or expired, or its user
    /// is disabled or deleted.
    pub async fn console_session(&self, cookie: &str) -> Result<(Arc<Principal>, ConsoleSession), ServiceError> {
        let record = self
            .store()
            .metadata
            .console_session(&cookie_hash(cookie), unix_millis())
            .await?
            .ok_or_else(|| unauthenticated("the console session is unknown or has expired; sign in again"))?;
        let principal = self
            .security()
            .user(&record.user_id)
            .ok_or_else(|| unauthenticated("the session's user is disabled or deleted"))?;
        let session = session_of(&principal, &record);
        Ok((principal, session))
    }

    /// Ends a session.
    pub async fn console_sign_out(&self, cookie: &str) -> Result<(), ServiceError> {
        self.store().metadata.delete_console_session(&cookie_hash(cookie)).await?;
        Ok(())
    }
}
