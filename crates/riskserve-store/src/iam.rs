//! Identities in the metadata database: users and their roles, access keys (secrets arrive sealed),
//! bearer tokens (hashes only) and custom Cedar policies. Every change is one write transaction that announces the
//! rows it touched (`users:<name>`, `access_keys:<id>`, `tokens:<id>`, `policies:<name>`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Metadata, StoreError};

/// A user and the roles it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
}

/// An access key; the secret is sealed by the caller (the store never sees it in the clear).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub user_id: String,
    pub sealed_secret: String,
    pub active: bool,
    pub created_at: String,
}

/// A bearer token, known only by the hex SHA-256 of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub token_hash: String,
    pub active: bool,
    pub created_at: String,
}

/// A custom Cedar policy (validated by the server before it is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRecord {
    pub name: String,
    pub text: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// Everything the authenticator keeps in memory, read in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentitySnapshot {
    pub users: Vec<UserRecord>,
    pub access_keys: Vec<AccessKeyRecord>,
    pub tokens: Vec<TokenRecord>,
    pub policies: Vec<PolicyRecord>,
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        roles: serde_json::from_str(&roles).map_err(|error| StoreError::Corrupt(format!("user roles: {error}")))?,
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<AccessKeyRecord, StoreError> {
    let active: i64 = row.try_get("active")?;
    Ok(AccessKeyRecord {
        access_key_id: row.try_get("access_key_id")?,
        user_id: row.try_get("user_id")?,
        sealed_secret: row.try_get("sealed_secret")?,
        active: active != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let active: i64 = row.try_get("active")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        token_hash: row.try_get("token_hash")?,
        active: active != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn policy_from_row(row: &AnyRow) -> Result<PolicyRecord, StoreError> {
    Ok(PolicyRecord {
        name: row.try_get("name")?,
        text: row.try_get("text")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

fn roles_text(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_string())
}

impl Metadata {
    /// Every identity and policy, for the server's in-memory index.
    pub async fn identity_snapshot(&self) -> Result<IdentitySnapshot, StoreError> {
        let pool = self.pool();
        let users = sqlx::query("SELECT * FROM users ORDER BY name").fetch_all(pool).await?;
        let keys = sqlx::query("SELECT * FROM access_keys ORDER BY created_at, access_key_id").fetch_all(pool).await?;
        let tokens = sqlx::query("SELECT * FROM tokens ORDER BY created_at, id").fetch_all(pool).await?;
        let policies = sqlx::query("SELECT * FROM policies ORDER BY name").fetch_all(pool).await?;
        Ok(IdentitySnapshot {
            users: users.iter().map(user_from_row).collect::<Result<_, _>>()?,
            access_keys: keys.iter().map(key_from_row).collect::<Result<_, _>>()?,
            tokens: tokens.iter().map(token_from_row).collect::<Result<_, _>>()?,
            policies: policies.iter().map(policy_from_row).collect::<Result<_, _>>()?,
        })
    }

    /// Whether no user exists yet (the first start creates the administrator).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM users LIMIT 1").fetch_optional(self.pool()).await?.is_some())
    }

    /// Inserts a user with its first credentials in one transaction; `AlreadyExists` when the name is taken.
    pub async fn insert_user(
        &self,
        user: &UserRecord,
        keys: &[AccessKeyRecord],
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .bind(&user.name)
            .fetch_optional(&mut *transaction)
            .await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!("user {:?} already exists", user.name)));
        }
        sqlx::query("INSERT INTO users (id, name, roles, disabled, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.id)
            .bind(&user.name)
            .bind(roles_text(&user.roles))
            .bind(i64::from(user.disabled))
            .bind(&user.created_at)
            .execute(&mut *transaction)
            .await?;
        self.notify(&mut transaction, "users", &user.name).await?;
        for key in keys {
            insert_key(&mut transaction, key).await?;
            self.notify(&mut transaction, "access_keys", &key.access_key_id).await?;
        }
        for token in tokens {
            insert_token(&mut transaction, token).await?;
            self.notify(&mut transaction, "tokens", &token.id).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn get_user(&self, name: &str) -> Result<UserRecord, StoreError> {
        match sqlx::query("SELECT * FROM users WHERE name = $1").bind(name).fetch_optional(self.pool()).await? {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::NotFound(format!("user {name:?} does not exist"))),
        }
    }

    /// Changes a user's roles and/or disabled flag.
    pub async fn update_user(
        &self,
        name: &str,
        roles: Option<&[String]>,
        disabled: Option<bool>,
    ) -> Result<UserRecord, StoreError> {
        let mut transaction = self.write().await?;
        let Some(row) =
            sqlx::query("SELECT * FROM users WHERE name = $1").bind(name).fetch_optional(&mut *transaction).await?
        else {
            return Err(StoreError::NotFound(format!("user {name:?} does not exist")));
        };
        let mut user = user_from_row(&row)?;
        if let Some(roles) = roles {
            user.roles = roles.to_vec();
        }
        if let Some(disabled) = disabled {
            user.disabled = disabled;
        }
        sqlx::query("UPDATE users SET roles = $1, disabled = $2 WHERE id = $3")
            .bind(roles_text(&user.roles))
            .bind(i64::from(user.disabled))
            .bind(&user.id)
            .execute(&mut *transaction)
            .await?;
        self.notify(&mut transaction, "users", &user.name).await?;
        transaction.commit().await?;
        Ok(user)
    }

    /// Deletes a user with its keys and tokens (announced as a change of the user).
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *transaction).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {name:?} does not exist")));
        }
        self.notify(&mut transaction, "users", name).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Adds an access key and/or a token to a user, optionally deactivating one old credential (a rotation), in
    /// one transaction.
    pub async fn add_credentials(
        &self,
        key: Option<&AccessKeyRecord>,
        token: Option<&TokenRecord>,
        deactivate_key: Option<&str>,
        deactivate_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        if let Some(key) = key {
            insert_key(&mut transaction, key).await?;
            self.notify(&mut transaction, "access_keys", &key.access_key_id).await?;
        }
        if let Some(token) = token {
            insert_token(&mut transaction, token).await?;
            self.notify(&mut transaction, "tokens", &token.id).await?;
        }
        if let Some(id) = deactivate_key {
            sqlx::query("UPDATE access_keys SET active = 0 WHERE access_key_id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            self.notify(&mut transaction, "access_keys", id).await?;
        }
        if let Some(id) = deactivate_token {
            sqlx::query("UPDATE tokens SET active = 0 WHERE id = $1").bind(id).execute(&mut *transaction).await?;
            self.notify(&mut transaction, "tokens", id).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Activates or deactivates an access key of a user.
    pub async fn set_key_active(&self, user_id: &str, access_key_id: &str, active: bool) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("UPDATE access_keys SET active = $1 WHERE access_key_id = $2 AND user_id = $3")
            .bind(i64::from(active))
            .bind(access_key_id)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("access key {access_key_id:?} does not exist")));
        }
        self.notify(&mut transaction, "access_keys", access_key_id).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn delete_key(&self, user_id: &str, access_key_id: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1 AND user_id = $2")
            .bind(access_key_id)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("access key {access_key_id:?} does not exist")));
        }
        self.notify(&mut transaction, "access_keys", access_key_id).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Activates or deactivates a token of a user.
    pub async fn set_token_active(&self, user_id: &str, token_id: &str, active: bool) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("UPDATE tokens SET active = $1 WHERE id = $2 AND user_id = $3")
            .bind(i64::from(active))
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token {token_id:?} does not exist")));
        }
        self.notify(&mut transaction, "tokens", token_id).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn delete_token(&self, user_id: &str, token_id: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token {token_id:?} does not exist")));
        }
        self.notify(&mut transaction, "tokens", token_id).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Inserts or replaces a custom policy.
    pub async fn put_policy(&self, policy: &PolicyRecord) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO policies (name, text, description, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT(name) DO UPDATE SET text = excluded.text, description = excluded.description",
        )
        .bind(&policy.name)
        .bind(&policy.text)
        .bind(&policy.description)
        .bind(&policy.created_at)
        .execute(&mut *transaction)
        .await?;
        self.notify(&mut transaction, "policies", &policy.name).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn delete_policy(&self, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM policies WHERE name = $1").bind(name).execute(&mut *transaction).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("policy {name:?} does not exist")));
        }
        self.notify(&mut transaction, "policies", name).await?;
        transaction.commit().await?;
        Ok(())
    }
}

async fn insert_key(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &AccessKeyRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO access_keys (access_key_id, user_id, sealed_secret, active, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.access_key_id)
    .bind(&key.user_id)
    .bind(&key.sealed_secret)
    .bind(i64::from(key.active))
    .bind(&key.created_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

async fn insert_token(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    token: &TokenRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO tokens (id, user_id, token_hash, active, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(&token.token_hash)
        .bind(i64::from(token.active))
        .bind(&token.created_at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}
