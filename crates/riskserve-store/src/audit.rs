//! The audit trail in the metadata database: hash-chained events appended in batches, signed seals,
//! and the filtered, paginated reads of `GET /api/v1/audit-events` and `riskserve audit verify`.

use std::fmt::Write as _;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Metadata, StoreError};

/// The columns of `audit_events`, in the order [`audit_insert`] binds them.
const AUDIT_COLUMNS: &[&str] = &[
    "seq",
    "time",
    "request_id",
    "principal",
    "source",
    "action",
    "resource",
    "parameters",
    "outcome",
    "status",
    "error_code",
    "latency_us",
    "prev_hash",
    "hash",
];

/// Events inserted by one statement.
const AUDIT_ROWS_PER_STATEMENT: usize = 128;

/// `INSERT INTO audit_events (...) VALUES ($1, ..., $14), ($15, ...), ...` for `rows` rows: numbered placeholders,
/// which every backend reads (the query builder's `?` is not portable). Fixed text: no value reaches the SQL.
fn audit_insert(rows: usize) -> String {
    let mut sql = format!("INSERT INTO audit_events ({}) VALUES ", AUDIT_COLUMNS.join(", "));
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..AUDIT_COLUMNS.len() {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}", row * AUDIT_COLUMNS.len() + column + 1);
        }
        sql.push(')');
    }
    sql
}

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

fn record_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
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

fn seal_from_row(row: &AnyRow) -> Result<AuditSeal, StoreError> {
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
        let mut transaction = self.write().await?;
        // Many rows a statement: one statement costs far more than one row (14 variables a row, 1,792 a statement:
        // well under what either engine allows in one statement).
        for chunk in events.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let mut insert = sqlx::query(AssertSqlSafe(audit_insert(chunk.len())));
            for event in chunk {
                insert = insert
                    .bind(event.seq)
                    .bind(&event.time)
                    .bind(&event.request_id)
                    .bind(&event.principal)
                    .bind(&event.source)
                    .bind(&event.action)
                    .bind(&event.resource)
                    .bind(&event.parameters)
                    .bind(&event.outcome)
                    .bind(event.status)
                    .bind(&event.error_code)
                    .bind(event.latency_us)
                    .bind(&event.prev_hash)
                    .bind(&event.hash);
            }
            insert.execute(&mut *transaction).await?;
        }
        if let Some(seal) = seal {
            sqlx::query(
                // The next id, as an auto-assigned integer key would get it (one past the largest), written out so
                // that the column needs no engine-specific auto-increment; the write transaction holds the lock.
                "INSERT INTO audit_seals (id, time, last_seq, last_hash, prev_seal, public_key, signature)
                 VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM audit_seals), $1, $2, $3, $4, $5, $6)",
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
        let rows = sqlx::query("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Events matching `filter`, oldest first, at most `filter.limit`.
    pub async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            // Each filter is one parameter used twice, compared first so that its type follows from the column
            // (PostgreSQL cannot type a parameter that only meets `IS NULL`); a NULL filter matches every row.
            "SELECT * FROM audit_events WHERE seq > $1
               AND (time >= $2 OR $2 IS NULL) AND (time < $3 OR $3 IS NULL)
               AND (principal = $4 OR $4 IS NULL) AND (action = $5 OR $5 IS NULL)
               AND (resource = $6 OR $6 IS NULL) AND (outcome = $7 OR $7 IS NULL)
             ORDER BY seq LIMIT $8",
        )
        .bind(filter.after_seq.unwrap_or(0))
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(&filter.principal)
        .bind(&filter.action)
        .bind(&filter.resource)
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

#[cfg(test)]
mod tests {
    use super::{AUDIT_COLUMNS, audit_insert};

    #[test]
    fn the_multi_row_insert_numbers_every_placeholder_once() {
        assert_eq!(
            audit_insert(1),
            "INSERT INTO audit_events (seq, time, request_id, principal, source, action, resource, parameters, \
             outcome, status, error_code, latency_us, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        let sql = audit_insert(3);
        assert!(sql.ends_with("($29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42)"), "{sql}");
        assert_eq!(sql.matches('$').count(), 3 * AUDIT_COLUMNS.len());
        assert!(!sql.contains('?'));
    }
}
