//! The audit trail in the metadata database: hash-chained events appended in batches (continuing the stored head
//! inside the write transaction, so that several replicas extend one chain), signed seals, and the filtered,
//! paginated reads of `GET /api/v1/audit-events` and `riskserve audit verify`.

use std::fmt::Write as _;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

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

/// Where the chain stands when a batch is appended, read inside the batch's write transaction: the last event and
/// the last seal, as every replica's writer must continue them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditHead {
    /// The last event's sequence number; 0 while the trail is empty (the next event is `last_seq + 1`).
    pub last_seq: i64,
    /// The last event's hash; `None` while the trail is empty (the first event chains to the caller's genesis hash).
    pub last_hash: Option<String>,
    /// The last seal; `None` before the first one.
    pub last_seal: Option<AuditSeal>,
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

/// Why `events` (and `seal`) do not continue `head`, if they do not: sequence numbers one after another from
/// `head.last_seq + 1`, each event's `prev_hash` the hash before it, a seal over exactly the end of the chain.
fn broken_link(head: &AuditHead, events: &[AuditRecord], seal: Option<&AuditSeal>) -> Option<String> {
    let (mut seq, mut hash) = (head.last_seq, head.last_hash.as_deref());
    for event in events {
        if event.seq != seq + 1 {
            return Some(format!("audit event {} does not follow event {seq}", event.seq));
        }
        if let Some(previous) = hash
            && event.prev_hash != previous
        {
            return Some(format!("audit event {} does not chain to the hash of event {seq}", event.seq));
        }
        (seq, hash) = (event.seq, Some(event.hash.as_str()));
    }
    match seal {
        Some(seal) if seal.last_seq != seq || Some(seal.last_hash.as_str()) != hash => {
            Some(format!("the seal over event {} does not seal the end of the chain, event {seq}", seal.last_seq))
        }
        _ => None,
    }
}

impl Metadata {
    /// Appends a batch of events (and optionally a seal after them) in one transaction.
    pub async fn append_audit(&self, events: &[AuditRecord], seal: Option<&AuditSeal>) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        Self::insert_audit(&mut transaction, events, seal).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Appends a batch that continues the chain as it is in the database, whoever wrote it: inside one write
    /// transaction (which holds the database's one write lock, so no other writer, on this replica or another, can
    /// append in between) it reads the [`AuditHead`], calls `chain` with it to build the events (sequence numbers
    /// from `last_seq + 1`, the first `prev_hash` the head's hash, hashed by the caller) and optionally a seal over
    /// the end of the chain, inserts them, commits, and returns the events written. A batch that does not continue the
    /// head is refused with `InvalidState` and nothing is written; an empty batch without a seal writes nothing.
    pub async fn append_audit_chained<F>(&self, chain: F) -> Result<Vec<AuditRecord>, StoreError>
    where
        F: FnOnce(AuditHead) -> (Vec<AuditRecord>, Option<AuditSeal>) + Send,
    {
        let mut transaction = self.write().await?;
        let last_event = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *transaction)
            .await?;
        let last_seal =
            sqlx::query("SELECT * FROM audit_seals ORDER BY id DESC LIMIT 1").fetch_optional(&mut *transaction).await?;
        let head = AuditHead {
            last_seq: last_event.as_ref().map(|row| row.try_get("seq")).transpose()?.unwrap_or(0),
            last_hash: last_event.as_ref().map(|row| row.try_get("hash")).transpose()?,
            last_seal: last_seal.as_ref().map(seal_from_row).transpose()?,
        };
        let (events, seal) = chain(head.clone());
        if events.is_empty() && seal.is_none() {
            return Ok(events);
        }
        if let Some(problem) = broken_link(&head, &events, seal.as_ref()) {
            return Err(StoreError::InvalidState(format!("{problem}: the batch does not continue the stored chain")));
        }
        Self::insert_audit(&mut transaction, &events, seal.as_ref()).await?;
        transaction.commit().await?;
        Ok(events)
    }

    async fn insert_audit(
        transaction: &mut Transaction<'static, Any>,
        events: &[AuditRecord],
        seal: Option<&AuditSeal>,
    ) -> Result<(), StoreError> {
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
            insert.execute(&mut **transaction).await?;
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
            .execute(&mut **transaction)
            .await?;
        }
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
    use super::{AUDIT_COLUMNS, AuditHead, AuditRecord, AuditSeal, audit_insert, broken_link};

    fn event(seq: i64, prev_hash: &str) -> AuditRecord {
        AuditRecord {
            seq,
            time: "2024-01-01T00:00:00.000Z".to_string(),
            request_id: "r".to_string(),
            principal: "p".to_string(),
            source: None,
            action: "a".to_string(),
            resource: "x".to_string(),
            parameters: "{}".to_string(),
            outcome: "allowed".to_string(),
            status: 200,
            error_code: None,
            latency_us: 1,
            prev_hash: prev_hash.to_string(),
            hash: format!("h{seq}"),
        }
    }

    fn seal(last_seq: i64, last_hash: &str) -> AuditSeal {
        AuditSeal {
            id: 0,
            time: String::new(),
            last_seq,
            last_hash: last_hash.to_string(),
            prev_seal: String::new(),
            public_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_batch_must_continue_the_head() {
        let empty = AuditHead::default();
        assert_eq!(broken_link(&empty, &[event(1, "genesis"), event(2, "h1")], Some(&seal(2, "h2"))), None);
        assert!(broken_link(&empty, &[event(2, "genesis")], None).is_some());
        assert!(broken_link(&empty, &[event(1, "g"), event(3, "h1")], None).is_some());
        assert!(broken_link(&empty, &[event(1, "g"), event(2, "h9")], None).is_some());
        let head = AuditHead { last_seq: 7, last_hash: Some("h7".to_string()), last_seal: None };
        assert_eq!(broken_link(&head, &[event(8, "h7")], None), None);
        assert!(broken_link(&head, &[event(8, "other")], None).is_some());
        assert!(broken_link(&head, &[event(8, "h7")], Some(&seal(7, "h7"))).is_some());
        // A seal alone seals the head.
        assert_eq!(broken_link(&head, &[], Some(&seal(7, "h7"))), None);
        assert!(broken_link(&head, &[], Some(&seal(7, "h6"))).is_some());
    }

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
