//! Console sessions: found by the hash of their cookie, removed at sign-out or once expired.

use sqlx::Row;

use crate::{Metadata, StoreError};

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSessionRecord {
    /// Hex SHA-256 of the session cookie.
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

impl Metadata {
    pub async fn insert_console_session(&self, session: &ConsoleSessionRecord) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id_hash)
        .bind(&session.user_id)
        .bind(&session.csrf_token)
        .bind(&session.created_at)
        .bind(session.expires_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The session whose cookie hashes to `id_hash`, when it has not expired at `now`.
    pub async fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(ConsoleSessionRecord {
                id_hash: row.try_get("id_hash")?,
                user_id: row.try_get("user_id")?,
                csrf_token: row.try_get("csrf_token")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out); whether there was one.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the sessions expired at `now`; how many.
    pub async fn delete_expired_console_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(done.rows_affected())
    }
}
