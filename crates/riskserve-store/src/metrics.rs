//! The metric history's table (one row of aggregates per endpoint variant, minute and replica) and the replicas'
//! live invocation counts.

use sqlx::Row;

use crate::{Metadata, StoreError};

/// A finished minute of one variant; `data` is the aggregates as the server encodes them (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMinute {
    pub endpoint: String,
    pub variant: String,
    /// Minutes since the Unix epoch (UTC).
    pub minute: i64,
    /// The replica that counted them (every server process has its own name; empty for rows written before
    /// replicas existed). Rows of the same minute from different replicas add up.
    pub replica: String,
    pub data: String,
}

/// One replica's invocations of one variant since it started, as it last reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLoad {
    pub replica: String,
    pub endpoint: String,
    pub variant: String,
    pub invocations: u64,
    /// Milliseconds since the Unix epoch.
    pub reported_at: i64,
}

impl Metadata {
    /// Writes finished minutes (a replica's minute written twice keeps the later data), in one transaction.
    pub async fn put_metric_minutes(&self, minutes: &[MetricMinute]) -> Result<(), StoreError> {
        if minutes.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        for minute in minutes {
            sqlx::query(
                "INSERT INTO metric_minutes (endpoint, variant, minute, replica, data) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (endpoint, variant, minute, replica) DO UPDATE SET data = excluded.data",
            )
            .bind(&minute.endpoint)
            .bind(&minute.variant)
            .bind(minute.minute)
            .bind(&minute.replica)
            .bind(&minute.data)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every stored minute from `since` on, oldest first, but those of replica `excluding` (a replica reading what
    /// the others counted).
    pub async fn metric_minutes_since(
        &self,
        since: i64,
        excluding: Option<&str>,
    ) -> Result<Vec<MetricMinute>, StoreError> {
        let query = match excluding {
            Some(replica) => sqlx::query(
                "SELECT endpoint, variant, minute, replica, data FROM metric_minutes WHERE minute >= $1 AND replica <> $2
                 ORDER BY minute, endpoint, variant, replica",
            )
            .bind(since)
            .bind(replica),
            None => sqlx::query(
                "SELECT endpoint, variant, minute, replica, data FROM metric_minutes WHERE minute >= $1
                 ORDER BY minute, endpoint, variant, replica",
            )
            .bind(since),
        };
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(MetricMinute {
                    endpoint: row.try_get("endpoint")?,
                    variant: row.try_get("variant")?,
                    minute: row.try_get("minute")?,
                    replica: row.try_get("replica")?,
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

    /// Stores `replica`'s counts of its serving variants (replacing what it reported before), in one transaction.
    pub async fn report_replica_loads(&self, loads: &[ReplicaLoad]) -> Result<(), StoreError> {
        if loads.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        for load in loads {
            sqlx::query(
                "INSERT INTO replica_loads (replica, endpoint, variant, invocations, reported_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (replica, endpoint, variant) DO UPDATE
                     SET invocations = excluded.invocations, reported_at = excluded.reported_at",
            )
            .bind(&load.replica)
            .bind(&load.endpoint)
            .bind(&load.variant)
            .bind(i64::try_from(load.invocations).unwrap_or(i64::MAX))
            .bind(load.reported_at)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every replica's last report on one variant made at or after `since` (milliseconds since the epoch).
    pub async fn replica_loads(
        &self,
        endpoint: &str,
        variant: &str,
        since: i64,
    ) -> Result<Vec<ReplicaLoad>, StoreError> {
        let rows = sqlx::query(
            "SELECT replica, endpoint, variant, invocations, reported_at FROM replica_loads
             WHERE endpoint = $1 AND variant = $2 AND reported_at >= $3 ORDER BY replica",
        )
        .bind(endpoint)
        .bind(variant)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let invocations: i64 = row.try_get("invocations")?;
                Ok(ReplicaLoad {
                    replica: row.try_get("replica")?,
                    endpoint: row.try_get("endpoint")?,
                    variant: row.try_get("variant")?,
                    invocations: u64::try_from(invocations).unwrap_or(0),
                    reported_at: row.try_get("reported_at")?,
                })
            })
            .collect()
    }

    /// Removes reports older than `before` (milliseconds since the epoch: replicas gone, variants no longer served);
    /// the number removed.
    pub async fn prune_replica_loads(&self, before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM replica_loads WHERE reported_at < $1").bind(before).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}
