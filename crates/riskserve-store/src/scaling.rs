//! Scaling policies (one per endpoint variant) and the activities the scaler recorded. A policy's change announces
//! itself as `scaling_policies:<endpoint>/<variant>`.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Metadata, StoreError, now_rfc3339};

/// A target-tracking policy: keep invocations per instance per minute near `target`, between
/// `min_instances` and `max_instances`; cooldowns in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicyRecord {
    pub endpoint: String,
    pub variant: String,
    pub min_instances: u32,
    pub max_instances: u32,
    pub target: f64,
    pub scale_out_cooldown: f64,
    pub scale_in_cooldown: f64,
    pub created_at: String,
    pub updated_at: String,
}

/// One change of a variant's instance count, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingActivityRecord {
    pub endpoint: String,
    pub variant: String,
    /// RFC 3339.
    pub time: String,
    pub from_instances: u32,
    pub to_instances: u32,
    pub cause: String,
}

fn count(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value} is out of range")))
}

fn policy_from_row(row: &AnyRow) -> Result<ScalingPolicyRecord, StoreError> {
    Ok(ScalingPolicyRecord {
        endpoint: row.try_get("endpoint")?,
        variant: row.try_get("variant")?,
        min_instances: count(row, "min_instances")?,
        max_instances: count(row, "max_instances")?,
        target: row.try_get("target")?,
        scale_out_cooldown: row.try_get("scale_out_cooldown")?,
        scale_in_cooldown: row.try_get("scale_in_cooldown")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// How change notifications name a variant's policy: `<endpoint>/<variant>`.
fn policy_name(endpoint: &str, variant: &str) -> String {
    format!("{endpoint}/{variant}")
}

impl Metadata {
    /// Creates or replaces the policy of a variant (its `created_at` stays when replaced).
    pub async fn put_scaling_policy(&self, policy: &ScalingPolicyRecord) -> Result<(), StoreError> {
        let now = now_rfc3339();
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO scaling_policies (endpoint, variant, min_instances, max_instances, target, scale_out_cooldown,
                                           scale_in_cooldown, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (endpoint, variant) DO UPDATE SET min_instances = excluded.min_instances,
                 max_instances = excluded.max_instances, target = excluded.target,
                 scale_out_cooldown = excluded.scale_out_cooldown, scale_in_cooldown = excluded.scale_in_cooldown,
                 updated_at = excluded.updated_at",
        )
        .bind(&policy.endpoint)
        .bind(&policy.variant)
        .bind(i64::from(policy.min_instances))
        .bind(i64::from(policy.max_instances))
        .bind(policy.target)
        .bind(policy.scale_out_cooldown)
        .bind(policy.scale_in_cooldown)
        .bind(&now)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
        self.notify(&mut transaction, "scaling_policies", &policy_name(&policy.endpoint, &policy.variant)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The policies of one endpoint (`Some`) or of every endpoint, by endpoint and variant.
    pub async fn scaling_policies(&self, endpoint: Option<&str>) -> Result<Vec<ScalingPolicyRecord>, StoreError> {
        let rows = match endpoint {
            Some(name) => {
                sqlx::query("SELECT * FROM scaling_policies WHERE endpoint = $1 ORDER BY variant")
                    .bind(name)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM scaling_policies ORDER BY endpoint, variant").fetch_all(self.pool()).await?
            }
        };
        rows.iter().map(policy_from_row).collect()
    }

    /// Deletes a variant's policy; `NotFound` when it has none.
    pub async fn delete_scaling_policy(&self, endpoint: &str, variant: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM scaling_policies WHERE endpoint = $1 AND variant = $2")
            .bind(endpoint)
            .bind(variant)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "endpoint {endpoint:?} has no scaling policy for variant {variant:?}"
            )));
        }
        self.notify(&mut transaction, "scaling_policies", &policy_name(endpoint, variant)).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn insert_scaling_activity(&self, activity: &ScalingActivityRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scaling_activities (endpoint, variant, time, from_instances, to_instances, cause)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&activity.endpoint)
        .bind(&activity.variant)
        .bind(&activity.time)
        .bind(i64::from(activity.from_instances))
        .bind(i64::from(activity.to_instances))
        .bind(&activity.cause)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The endpoint's latest `limit` activities, oldest first.
    pub async fn recent_scaling_activities(
        &self,
        endpoint: &str,
        limit: u32,
    ) -> Result<Vec<ScalingActivityRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM scaling_activities WHERE endpoint = $1 ORDER BY id DESC LIMIT $2) AS recent
             ORDER BY id",
        )
        .bind(endpoint)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScalingActivityRecord {
                    endpoint: row.try_get("endpoint")?,
                    variant: row.try_get("variant")?,
                    time: row.try_get("time")?,
                    from_instances: count(row, "from_instances")?,
                    to_instances: count(row, "to_instances")?,
                    cause: row.try_get("cause")?,
                })
            })
            .collect()
    }
}
