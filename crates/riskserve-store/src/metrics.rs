//! The metric history's table: one row of aggregates per endpoint variant and minute.

use sqlx::Row;

use crate::{Metadata, StoreError};

/// A finished minute of one variant; `data` is the aggregates as the server encodes them (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMinute {
    pub endpoint: String,
    pub variant: String,
    /// Minutes since the Unix epoch (UTC).
    pub minute: i64,
    pub data: String,
}

impl Metadata {
    /// Writes finished minutes (a minute written twice keeps the later data), in one transaction.
    pub async fn put_metric_minutes(&self, minutes: &[MetricMinute]) -> Result<(), StoreError> {
        if minutes.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        for minute in minutes {
            sqlx::query(
                "INSERT INTO metric_minutes (endpoint, variant, minute, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (endpoint, variant, minute) DO UPDATE SET data = excluded.data",
            )
            .bind(&minute.endpoint)
            .bind(&minute.variant)
            .bind(minute.minute)
            .bind(&minute.data)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every stored minute from `since` on, oldest first.
    pub async fn metric_minutes_since(&self, since: i64) -> Result<Vec<MetricMinute>, StoreError> {
        let rows = sqlx::query(
            "SELECT endpoint, variant, minute, data FROM metric_minutes WHERE minute >= $1
             ORDER BY minute, endpoint, variant",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MetricMinute {
                    endpoint: row.try_get("endpoint")?,
                    variant: row.try_get("variant")?,
                    minute: row.try_get("minute")?,
                    data: row.try_get("data")?,
                })
            })
            .collect()
    }

    /// Removes minutes older than `before`; the number removed.
    pub async fn prune_metric_minutes(&self, before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM metric_minutes WHERE minute < $1").bind(before).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}
