//! Identity use cases: users with roles, access keys and bearer tokens (created, rotated, disabled, deleted) and
//! custom policies, each change reloading what the authenticator and the authorizer read.

use riskserve_store::{AccessKeyRecord, IdentitySnapshot, PolicyRecord, TokenRecord, UserRecord, now_rfc3339};
use serde::{Deserialize, Serialize};

use super::Service;
use crate::error::ServiceError;
use crate::policy::{self, Policies};
use crate::secrets::{new_access_key_id, new_id, new_secret, new_token, token_hash};
use crate::validate;

// ---- API shapes ----

/// A user as the API describes it (never a secret).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub id: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub access_keys: Vec<AccessKeyDescription>,
    pub tokens: Vec<TokenDescription>,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessKeyDescription {
    pub access_key_id: String,
    pub active: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenDescription {
    pub id: String,
    pub active: bool,
    pub created_at: String,
}

/// A new access key: the secret is shown in this answer only.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAccessKey {
    pub user: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A new bearer token: shown in this answer only.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    pub user: String,
    pub id: String,
    pub token: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        validate::name("role", role)?;
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

    /// Rebuilds the identity index from the store only if another replica changed identities or policies.
    pub(crate) async fn follow_identities(&self) -> Result<(), ServiceError> {
        let snapshot = self.identity_snapshot().await?;
        self.security().reload_if_changed(&snapshot)
    }

    pub async fn create_user(&self, request: CreateUser) -> Result<User, ServiceError> {
        validate::name("user", &request.name)?;
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
        validate::name("policy", name)?;
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
