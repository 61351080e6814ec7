//! The audit trail in the metadata database: hash-chained events appended in batches, signed seals,
//! and the filtered, paginated reads of `GET /api/v1/audit-events` and `riskserve audit verify`.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Metadata, StoreError};

/// One audit event as stored; `hash` chains it to `prev_hash` (computed by the server).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub time: String,
    pub request_id: String,
    pub principal: String,
    pub source: Option<String>,
    pub action: String,
    pub resource: String,
    /// A JSON object (secrets redacted, never a payload).
    pub parameters: String,
    pub outcome: String,
    pub status: i64,
    pub error_code: Option<String>,
    pub latency_us: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed digest of the chain up to `last_seq`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditSeal {
    pub id: i64,
    pub time: String,
    pub last_seq: i64,
    pub last_hash: String,
    pub prev_seal: String,
    pub public_key: String,
    pub signature: String,
}

/// Filters of an audit query; every present one must hold. Times compare as RFC 3339 text.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    /// Events after this sequence number (the page token).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

fn record_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        request_id: row.try_get("request_id")?,
        principal: row.try_get("principal")?,
        source: row.try_get("source")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        parameters: row.try_get("parameters")?,
        outcome: row.try_get("outcome")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
        latency_us: row.try_get("latency_us")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn seal_from_row(row: &SqliteRow) -> Result<AuditSeal, StoreError> {
    Ok(AuditSeal {
        id: row.try_get("id")?,
        time: row.try_get("time")?,
        last_seq: row.try_get("last_seq")?,
        last_hash: row.try_get("last_hash")?,
        prev_seal: row.try_get("prev_seal")?,
        public_key: row.try_get("public_key")?,
        signature: row.try_get("signature")?,
    })
}

impl Metadata {
    /// Appends a batch of events (and optionally a seal after them) in one transaction.
    pub async fn append_audit(&self, events: &[AuditRecord], seal: Option<&AuditSeal>) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        // Many rows a statement: one statement costs far more than one row (14 variables a row, well under
        // SQLite's limit of 32,766).
        for chunk in events.chunks(128) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit_events (seq, time, request_id, principal, source, action, resource, parameters, \
                 outcome, status, error_code, latency_us, prev_hash, hash) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.seq)
                    .push_bind(event.time.clone())
                    .push_bind(event.request_id.clone())
                    .push_bind(event.principal.clone())
                    .push_bind(event.source.clone())
                    .push_bind(event.action.clone())
                    .push_bind(event.resource.clone())
                    .push_bind(event.parameters.clone())
                    .push_bind(event.outcome.clone())
                    .push_bind(event.status)
                    .push_bind(event.error_code.clone())
                    .push_bind(event.latency_us)
                    .push_bind(event.prev_hash.clone())
                    .push_bind(event.hash.clone());
            });
            insert.build().execute(&mut *transaction).await?;
        }
        if let Some(seal) = seal {
            sqlx::query(
                "INSERT INTO audit_seals (time, last_seq, last_hash, prev_seal, public_key, signature)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&seal.time)
            .bind(seal.last_seq)
            .bind(&seal.last_hash)
            .bind(&seal.prev_seal)
            .bind(&seal.public_key)
            .bind(&seal.signature)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The last event (highest sequence number), where the chain continues from.
    pub async fn audit_tail(&self) -> Result<Option<AuditRecord>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(self.pool()).await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Events in sequence order after `after_seq`, at most `limit` (for verification, which reads the whole chain).
    pub async fn audit_range(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Events matching `filter`, oldest first, at most `filter.limit`.
    pub async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE seq > ?
               AND (? IS NULL OR time >= ?) AND (? IS NULL OR time < ?)
               AND (? IS NULL OR principal = ?) AND (? IS NULL OR action = ?)
               AND (? IS NULL OR resource = ?) AND (? IS NULL OR outcome = ?)
             ORDER BY seq LIMIT ?",
        )
        .bind(filter.after_seq.unwrap_or(0))
        .bind(&filter.since)
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(&filter.until)
        .bind(&filter.principal)
        .bind(&filter.principal)
        .bind(&filter.action)
        .bind(&filter.action)
        .bind(&filter.resource)
        .bind(&filter.resource)
        .bind(&filter.outcome)
        .bind(&filter.outcome)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Every seal, oldest first.
    pub async fn audit_seals(&self) -> Result<Vec<AuditSeal>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_seals ORDER BY id").fetch_all(self.pool()).await?;
        rows.iter().map(seal_from_row).collect()
    }
}
