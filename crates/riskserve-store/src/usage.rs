//! Metered usage: instance-seconds and invocations per minute, endpoint, variant and principal.

use sqlx::Row;

use crate::{Metadata, StoreError};

/// Usage of one minute; rows with the same key add up.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    /// Minutes since the Unix epoch (UTC).
    pub minute: i64,
    pub endpoint: String,
    pub variant: String,
    /// The calling principal's name; empty for capacity (instance-seconds belong to the endpoint).
    pub principal: String,
    /// The endpoint's tags when metered, as a JSON object.
    pub tags: String,
    pub instance_seconds: f64,
    pub invocations: u64,
}

impl Metadata {
    /// Adds usage rows to what is stored for their minutes, in one transaction.
    pub async fn add_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        for record in records {
            let invocations = i64::try_from(record.invocations).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO usage_minutes (minute, endpoint, variant, principal, tags, instance_seconds, invocations)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (minute, endpoint, variant, principal) DO UPDATE SET tags = excluded.tags,
                     instance_seconds = usage_minutes.instance_seconds + excluded.instance_seconds,
                     invocations = usage_minutes.invocations + excluded.invocations",
            )
            .bind(record.minute)
            .bind(&record.endpoint)
            .bind(&record.variant)
            .bind(&record.principal)
            .bind(&record.tags)
            .bind(record.instance_seconds)
            .bind(invocations)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Stored usage of the minutes in `[from, to)`.
    pub async fn usage_between(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM usage_minutes WHERE minute >= $1 AND minute < $2
             ORDER BY minute, endpoint, variant, principal",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let invocations: i64 = row.try_get("invocations")?;
                Ok(UsageRecord {
                    minute: row.try_get("minute")?,
                    endpoint: row.try_get("endpoint")?,
                    variant: row.try_get("variant")?,
                    principal: row.try_get("principal")?,
                    tags: row.try_get("tags")?,
                    instance_seconds: row.try_get("instance_seconds")?,
                    invocations: u64::try_from(invocations).unwrap_or(0),
                })
            })
            .collect()
    }
}
