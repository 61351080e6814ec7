//! Model monitoring's tables: per endpoint a baseline, a schedule (claimed by compare-and-set so that among replicas
//! exactly one runs each due run), ground-truth outcomes keyed by inference id and row, and the reports of runs.
//! Times are milliseconds since the Unix epoch; documents (baseline, settings, report) are JSON text the service owns.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Metadata, StoreError, now_rfc3339};

/// An endpoint's baseline, as the service encodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorBaselineRecord {
    pub endpoint: String,
    pub data: String,
    pub rows: u64,
    pub created_at: String,
}

/// When and how an endpoint is monitored.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorScheduleRecord {
    pub endpoint: String,
    /// The service's settings document (JSON).
    pub settings: String,
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    /// The id of the last run's report.
    pub last_report: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The observed outcome of row `row_index` of the invocation `inference_id`: bad (the event happened) or not, and
/// the value of the fairness attribute, which the model does not see.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRecord {
    pub inference_id: String,
    pub row_index: u32,
    pub bad: bool,
    pub attribute: Option<String>,
}

/// One run's report: its summary columns and the whole report (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorReportRecord {
    pub id: String,
    pub endpoint: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub status: String,
    pub breaches: u32,
    pub data: String,
}

/// Rows inserted per statement: each row binds 6 values, well below every engine's limit on bound values.
const OUTCOME_ROWS_PER_STATEMENT: usize = 500;

fn count(row: &AnyRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value} is negative")))
}

fn schedule_from_row(row: &AnyRow) -> Result<MonitorScheduleRecord, StoreError> {
    Ok(MonitorScheduleRecord {
        endpoint: row.try_get("endpoint")?,
        settings: row.try_get("settings")?,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_report: row.try_get("last_report")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn report_from_row(row: &AnyRow) -> Result<MonitorReportRecord, StoreError> {
    let breaches = count(row, "breaches")?;
    Ok(MonitorReportRecord {
        id: row.try_get("id")?,
        endpoint: row.try_get("endpoint")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        status: row.try_get("status")?,
        breaches: u32::try_from(breaches).unwrap_or(u32::MAX),
        data: row.try_get("data")?,
    })
}

impl Metadata {
    /// Creates or replaces an endpoint's baseline.
    pub async fn put_monitor_baseline(&self, baseline: &MonitorBaselineRecord) -> Result<(), StoreError> {
        let rows = i64::try_from(baseline.rows).unwrap_or(i64::MAX);
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO monitor_baselines (endpoint, data, rows, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (endpoint) DO UPDATE SET data = excluded.data, rows = excluded.rows,
                 created_at = excluded.created_at",
        )
        .bind(&baseline.endpoint)
        .bind(&baseline.data)
        .bind(rows)
        .bind(&baseline.created_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// An endpoint's baseline; `NotFound` when it has none.
    pub async fn monitor_baseline(&self, endpoint: &str) -> Result<MonitorBaselineRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_baselines WHERE endpoint = $1")
            .bind(endpoint)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("endpoint {endpoint:?} has no monitoring baseline")))?;
        Ok(MonitorBaselineRecord {
            endpoint: row.try_get("endpoint")?,
            data: row.try_get("data")?,
            rows: count(&row, "rows")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// Creates or replaces an endpoint's schedule (its `created_at` and last run stay when replaced).
    pub async fn put_monitor_schedule(
        &self,
        endpoint: &str,
        settings: &str,
        next_run_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_rfc3339();
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO monitor_schedules (endpoint, settings, next_run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (endpoint) DO UPDATE SET settings = excluded.settings, next_run_at = excluded.next_run_at,
                 updated_at = excluded.updated_at",
        )
        .bind(endpoint)
        .bind(settings)
        .bind(next_run_at)
        .bind(&now)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// An endpoint's schedule; `NotFound` when it has none.
    pub async fn monitor_schedule(&self, endpoint: &str) -> Result<MonitorScheduleRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_schedules WHERE endpoint = $1")
            .bind(endpoint)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("endpoint {endpoint:?} has no monitoring schedule")))?;
        schedule_from_row(&row)
    }

    /// Every schedule, by endpoint.
    pub async fn monitor_schedules(&self) -> Result<Vec<MonitorScheduleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM monitor_schedules ORDER BY endpoint").fetch_all(self.pool()).await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Deletes an endpoint's schedule; whether it had one.
    pub async fn delete_monitor_schedule(&self, endpoint: &str) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM monitor_schedules WHERE endpoint = $1")
            .bind(endpoint)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Claims the run of a schedule due at `due` by moving its next run to `next`: true for exactly one caller
    /// among replicas that read the same `due` (compare-and-set).
    pub async fn claim_monitor_run(&self, endpoint: &str, due: i64, next: i64) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query(
            "UPDATE monitor_schedules SET next_run_at = $3, last_run_at = $2 WHERE endpoint = $1 AND next_run_at = $2",
        )
        .bind(endpoint)
        .bind(due)
        .bind(next)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores or replaces outcomes (an upload of the same key replaces the earlier outcome), in one transaction:
    /// all of them or none.
    pub async fn put_outcomes(
        &self,
        endpoint: &str,
        outcomes: &[OutcomeRecord],
        received_at: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        for chunk in outcomes.chunks(OUTCOME_ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO monitor_outcomes (endpoint, inference_id, row_index, bad, attribute, received_at) VALUES ",
            );
            for index in 0..chunk.len() {
                let base = index * 6;
                if index > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4,
                    base + 5,
                    base + 6
                ));
            }
            sql.push_str(
                " ON CONFLICT (endpoint, inference_id, row_index) DO UPDATE SET bad = excluded.bad,
                   attribute = excluded.attribute, received_at = excluded.received_at",
            );
            // Built from placeholders only: every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for outcome in chunk {
                query = query
                    .bind(endpoint)
                    .bind(&outcome.inference_id)
                    .bind(i64::from(outcome.row_index))
                    .bind(i64::from(outcome.bad))
                    .bind(&outcome.attribute)
                    .bind(received_at);
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Outcomes of an endpoint in key order, a page at a time: those after `after` (an inference id and row),
    /// at most `limit`.
    pub async fn outcomes_page(
        &self,
        endpoint: &str,
        after: Option<(&str, u32)>,
        limit: u32,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        let (id, row) = after.unwrap_or(("", 0));
        // The first page starts before ("", 0), which no key equals: row indexes start at 0, ids are never empty.
        let row = if after.is_some() { i64::from(row) } else { -1 };
        let rows = sqlx::query(
            "SELECT inference_id, row_index, bad, attribute FROM monitor_outcomes
             WHERE endpoint = $1 AND (inference_id > $2 OR (inference_id = $2 AND row_index > $3))
             ORDER BY inference_id, row_index LIMIT $4",
        )
        .bind(endpoint)
        .bind(id)
        .bind(row)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let index = count(row, "row_index")?;
                let bad: i64 = row.try_get("bad")?;
                Ok(OutcomeRecord {
                    inference_id: row.try_get("inference_id")?,
                    row_index: u32::try_from(index)
                        .map_err(|_| StoreError::Corrupt(format!("outcome row {index} is out of range")))?,
                    bad: bad != 0,
                    attribute: row.try_get("attribute")?,
                })
            })
            .collect()
    }

    /// How many outcomes an endpoint has.
    pub async fn outcome_count(&self, endpoint: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM monitor_outcomes WHERE endpoint = $1")
            .bind(endpoint)
            .fetch_one(self.pool())
            .await?;
        count(&row, "n")
    }

    /// Stores a run's report and, when the endpoint has a schedule, names it the schedule's last report.
    pub async fn insert_monitor_report(&self, report: &MonitorReportRecord) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO monitor_reports (id, endpoint, started_at, finished_at, status, breaches, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&report.id)
        .bind(&report.endpoint)
        .bind(report.started_at)
        .bind(report.finished_at)
        .bind(&report.status)
        .bind(i64::from(report.breaches))
        .bind(&report.data)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE monitor_schedules SET last_report = $2 WHERE endpoint = $1")
            .bind(&report.endpoint)
            .bind(&report.id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// An endpoint's latest `limit` reports, newest first, without their documents (`data` is empty).
    pub async fn monitor_reports(&self, endpoint: &str, limit: u32) -> Result<Vec<MonitorReportRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, endpoint, started_at, finished_at, status, breaches, '' AS data FROM monitor_reports
             WHERE endpoint = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(endpoint)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// One report of an endpoint, whole; `NotFound` when there is no such report.
    pub async fn monitor_report(&self, endpoint: &str, id: &str) -> Result<MonitorReportRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_reports WHERE endpoint = $1 AND id = $2")
            .bind(endpoint)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("endpoint {endpoint:?} has no monitoring report {id:?}")))?;
        report_from_row(&row)
    }
}
