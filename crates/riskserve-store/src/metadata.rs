//! The metadata database: every SQL statement riskserve runs, written once for every backend. Each public method
//! that changes state runs in one write transaction, so it either happens entirely or not at all; a change to a
//! resource other replicas keep in memory also announces itself in that transaction ([`Metadata::CHANGES_CHANNEL`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::backend::Backend;
use crate::records::{ConfigRecord, EndpointRecord, EndpointStatus, ModelRecord, Page, PageRequest, VariantRecord};
use crate::{StoreError, now_rfc3339};

mod facade;
pub use facade::{FacadeDocument, TaggedKind};

/// The metadata database, in whichever engine its backend names (the embedded file by default).
#[derive(Debug, Clone)]
pub struct Metadata {
    pool: AnyPool,
    backend: Backend,
    /// The server's URL, for a database reached by URL.
    url: Option<DatabaseUrl>,
}

/// A database URL, which may hold a password: `Debug` shows it redacted.
#[derive(Clone)]
struct DatabaseUrl {
    backend: Backend,
    url: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.backend.redact_url(&self.url))
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn parse_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

fn model_from_row(row: &AnyRow) -> Result<ModelRecord, StoreError> {
    Ok(ModelRecord {
        name: row.try_get("name")?,
        format: row.try_get("format")?,
        pipeline: row.try_get("pipeline")?,
        artifacts: parse_json(row.try_get("artifacts")?, "model artifacts")?,
        inputs: parse_json(row.try_get("inputs")?, "model inputs")?,
        outputs: parse_json(row.try_get("outputs")?, "model outputs")?,
        tags: parse_json(row.try_get("tags")?, "model tags")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

fn endpoint_from_row(row: &AnyRow) -> Result<EndpointRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let live_variants: Option<String> = row.try_get("live_variants")?;
    Ok(EndpointRecord {
        name: row.try_get("name")?,
        status: EndpointStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown endpoint status {status:?}")))?,
        config: row.try_get("config")?,
        live_config: row.try_get("live_config")?,
        live_variants: live_variants.map(|text| parse_json(&text, "endpoint variants")).transpose()?,
        failure_reason: row.try_get("failure_reason")?,
        generation: row.try_get("generation")?,
        tags: parse_json(row.try_get("tags")?, "endpoint tags")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn page_of<T>(mut items: Vec<T>, limit: u32, name_of: impl Fn(&T) -> &str) -> Page<T> {
    let next_token = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|item| name_of(item).to_string())
    } else {
        None
    };
    Page { items, next_token }
}

impl Metadata {
    /// The channel on which, with a database server, every committed change of models, endpoint configs, endpoints,
    /// users, access keys, tokens, policies and scaling policies is announced (listen on it on a connection of your own
    /// to [`Metadata::database_url`]). The payload is `<table>:<name>`: the table (`models`, `endpoint_configs`,
    /// `endpoints`, `users`, `access_keys`, `tokens`, `policies`, `scaling_policies`) and the row's name (a user's
    /// name, an access key's id, a token's id, `<endpoint>/<variant>` for a scaling policy), or an empty name when
    /// the row's name is too long for a notification (reload the table). Delivered at commit, never for a rollback.
    pub const CHANGES_CHANNEL: &'static str = crate::backend::CHANGES_CHANNEL;

    /// Opens the embedded database file (created when absent) and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Metadata, StoreError> {
        let (backend, pool) = Backend::open_file(path).await?;
        backend.migrator().run(&pool).await?;
        Ok(Metadata { pool, backend, url: None })
    }

    /// Opens the database server `url` names (`postgres://user:password@host:port/database`, with sqlx's connection
    /// parameters, which may set the schema) and applies pending migrations; replicas opening the same database
    /// at once apply each migration once. Fails within seconds with [`StoreError::Unavailable`], naming the server
    /// (never the password), when it cannot be reached.
    pub async fn open_url(url: &str) -> Result<Metadata, StoreError> {
        let (backend, pool) = Backend::open_url(url).await?;
        if let Err(error) = backend.migrator().run(&pool).await {
            pool.close().await;
            return Err(error.into());
        }
        Ok(Metadata { pool, backend, url: Some(DatabaseUrl { backend, url: url.to_string() }) })
    }

    /// The URL of the database server, password included (to open a listener on [`Metadata::CHANGES_CHANNEL`]);
    /// `None` for the embedded file, whose process is the only one.
    pub fn database_url(&self) -> Option<String> {
        self.url.as_ref().map(|url| url.url.clone())
    }

    /// Whether other servers may share this store (a database server, not an embedded file).
    pub fn is_shared(&self) -> bool {
        self.url.is_some()
    }

    /// The connection pool, for the other modules of this crate (each keeps its own tables' SQL).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (tests reopen the same file to simulate a restart).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction: it holds the database's one write lock from its first statement, so write
    /// transactions run one at a time (across replicas too) and a read-then-write transaction never fails half-way
    /// or interleaves with another writer.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.backend.begin_write(&self.pool).await
    }

    /// Announces in `transaction` that row `name` of `table` changed (see [`Metadata::CHANGES_CHANNEL`]); other
    /// replicas hear of it when the transaction commits. Nothing on the embedded file.
    pub(crate) async fn notify(
        &self,
        transaction: &mut Transaction<'static, Any>,
        table: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        self.backend.notify(transaction, table, name).await
    }

    // ---- models ----

    /// Inserts a model; `AlreadyExists` when the name is taken.
    pub async fn insert_model(&self, model: &ModelRecord) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM models WHERE name = $1")
            .bind(&model.name)
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::AlreadyExists(format!("model {:?} already exists", model.name)));
        }
        sqlx::query(
            "INSERT INTO models (name, format, pipeline, artifacts, inputs, outputs, tags, description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&model.name)
        .bind(&model.format)
        .bind(&model.pipeline)
        .bind(json_text(&model.artifacts))
        .bind(json_text(&model.inputs))
        .bind(json_text(&model.outputs))
        .bind(json_text(&model.tags))
        .bind(&model.description)
        .bind(&model.created_at)
        .execute(&mut *transaction)
        .await?;
        self.notify(&mut transaction, "models", &model.name).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn get_model(&self, name: &str) -> Result<ModelRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM models WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => model_from_row(&row),
            None => Err(StoreError::NotFound(format!("model {name:?} does not exist"))),
        }
    }

    pub async fn list_models(&self, page: &PageRequest) -> Result<Page<ModelRecord>, StoreError> {
        let limit = page.limit();
        let rows = sqlx::query("SELECT * FROM models WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(page.next_token.as_deref().unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(model_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, limit, |model| &model.name))
    }

    /// Deletes a model; `InUse` while an endpoint serves, or is moving to, a config naming it.
    pub async fn delete_model(&self, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let exists =
            sqlx::query("SELECT 1 FROM models WHERE name = $1").bind(name).fetch_optional(&mut *transaction).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("model {name:?} does not exist")));
        }
        let user = sqlx::query(
            "SELECT e.name AS endpoint, v.config_name AS config FROM config_variants v
             JOIN endpoints e ON e.config = v.config_name OR e.live_config = v.config_name
             WHERE v.model_name = $1 ORDER BY e.name LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(row) = user {
            let endpoint: String = row.try_get("endpoint")?;
            let config: String = row.try_get("config")?;
            return Err(StoreError::InUse(format!(
                "model {name:?} is used by endpoint {endpoint:?} through endpoint config {config:?}"
            )));
        }
        sqlx::query("DELETE FROM models WHERE name = $1").bind(name).execute(&mut *transaction).await?;
        self.notify(&mut transaction, "models", name).await?;
        transaction.commit().await?;
        Ok(())
    }

    // ---- endpoint configs ----

    /// Inserts a config and its variants; `AlreadyExists` when the name is taken, `NotFound`
    /// when a variant names a model that does not exist.
    pub async fn insert_config(&self, config: &ConfigRecord) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let taken = sqlx::query("SELECT 1 FROM endpoint_configs WHERE name = $1")
            .bind(&config.name)
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::AlreadyExists(format!("endpoint config {:?} already exists", config.name)));
        }
        for variant in &config.variants {
            let model = sqlx::query("SELECT 1 FROM models WHERE name = $1")
                .bind(&variant.model)
                .fetch_optional(&mut *transaction)
                .await?;
            if model.is_none() {
                return Err(StoreError::NotFound(format!(
                    "model {:?} named by variant {:?} does not exist",
                    variant.model, variant.name
                )));
            }
        }
        sqlx::query("INSERT INTO endpoint_configs (name, tags, created_at, data_capture) VALUES ($1, $2, $3, $4)")
            .bind(&config.name)
            .bind(json_text(&config.tags))
            .bind(&config.created_at)
            .bind(&config.data_capture)
            .execute(&mut *transaction)
            .await?;
        for (position, variant) in config.variants.iter().enumerate() {
            sqlx::query(
                "INSERT INTO config_variants (config_name, position, variant_name, model_name, weight, instances)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&config.name)
            .bind(position as i64)
            .bind(&variant.name)
            .bind(&variant.model)
            .bind(variant.weight)
            .bind(i64::from(variant.instances))
            .execute(&mut *transaction)
            .await?;
        }
        self.notify(&mut transaction, "endpoint_configs", &config.name).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn config_from_row(&self, row: &AnyRow) -> Result<ConfigRecord, StoreError> {
        let name: String = row.try_get("name")?;
        let variants = sqlx::query("SELECT * FROM config_variants WHERE config_name = $1 ORDER BY position")
            .bind(&name)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let instances: i64 = row.try_get("instances")?;
                Ok(VariantRecord {
                    name: row.try_get("variant_name")?,
                    model: row.try_get("model_name")?,
                    weight: row.try_get("weight")?,
                    instances: u32::try_from(instances)
                        .map_err(|_| StoreError::Corrupt(format!("instance count {instances}")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(ConfigRecord {
            name,
            variants,
            tags: parse_json(row.try_get("tags")?, "config tags")?,
            created_at: row.try_get("created_at")?,
            data_capture: row.try_get("data_capture")?,
        })
    }

    pub async fn get_config(&self, name: &str) -> Result<ConfigRecord, StoreError> {
        let row =
            sqlx::query("SELECT * FROM endpoint_configs WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => self.config_from_row(&row).await,
            None => Err(StoreError::NotFound(format!("endpoint config {name:?} does not exist"))),
        }
    }

    pub async fn list_configs(&self, page: &PageRequest) -> Result<Page<ConfigRecord>, StoreError> {
        let limit = page.limit();
        let rows = sqlx::query("SELECT * FROM endpoint_configs WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(page.next_token.as_deref().unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.config_from_row(row).await?);
        }
        Ok(page_of(items, limit, |config| &config.name))
    }

    /// Deletes a config; `InUse` while an endpoint serves it or is moving to it.
    pub async fn delete_config(&self, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM endpoint_configs WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *transaction)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("endpoint config {name:?} does not exist")));
        }
        let user =
            sqlx::query("SELECT name FROM endpoints WHERE config = $1 OR live_config = $2 ORDER BY name LIMIT 1")
                .bind(name)
                .bind(name)
                .fetch_optional(&mut *transaction)
                .await?;
        if let Some(row) = user {
            let endpoint: String = row.try_get("name")?;
            return Err(StoreError::InUse(format!("endpoint config {name:?} is used by endpoint {endpoint:?}")));
        }
        sqlx::query("DELETE FROM endpoint_configs WHERE name = $1").bind(name).execute(&mut *transaction).await?;
        self.notify(&mut transaction, "endpoint_configs", name).await?;
        transaction.commit().await?;
        Ok(())
    }

    // ---- endpoints ----

    async fn endpoint_in(
        transaction: &mut Transaction<'static, Any>,
        name: &str,
    ) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM endpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **transaction)
            .await?;
        match row {
            Some(row) => endpoint_from_row(&row),
            None => Err(StoreError::NotFound(format!("endpoint {name:?} does not exist"))),
        }
    }

    async fn require_config(transaction: &mut Transaction<'static, Any>, config: &str) -> Result<(), StoreError> {
        let exists = sqlx::query("SELECT 1 FROM endpoint_configs WHERE name = $1")
            .bind(config)
            .fetch_optional(&mut **transaction)
            .await?;
        match exists {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("endpoint config {config:?} does not exist"))),
        }
    }

    /// Records a new endpoint in status `Creating`; the caller then deploys it.
    pub async fn insert_endpoint(
        &self,
        name: &str,
        config: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<EndpointRecord, StoreError> {
        let mut transaction = self.write().await?;
        let taken =
            sqlx::query("SELECT 1 FROM endpoints WHERE name = $1").bind(name).fetch_optional(&mut *transaction).await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!("endpoint {name:?} already exists")));
        }
        Self::require_config(&mut transaction, config).await?;
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO endpoints (name, status, config, live_config, live_variants, failure_reason, generation, tags,
                                    created_at, updated_at)
             VALUES ($1, 'Creating', $2, NULL, NULL, NULL, 1, $3, $4, $5)",
        )
        .bind(name)
        .bind(config)
        .bind(json_text(tags))
        .bind(&now)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
        let record = Self::endpoint_in(&mut transaction, name).await?;
        self.notify(&mut transaction, "endpoints", name).await?;
        transaction.commit().await?;
        Ok(record)
    }

    pub async fn get_endpoint(&self, name: &str) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM endpoints WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => endpoint_from_row(&row),
            None => Err(StoreError::NotFound(format!("endpoint {name:?} does not exist"))),
        }
    }

    pub async fn list_endpoints(&self, page: &PageRequest) -> Result<Page<EndpointRecord>, StoreError> {
        let limit = page.limit();
        let rows = sqlx::query("SELECT * FROM endpoints WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(page.next_token.as_deref().unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(endpoint_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, limit, |endpoint| &endpoint.name))
    }

    /// Every endpoint, for recovery at start.
    pub async fn all_endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM endpoints ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Moves an endpoint to a new config: status `Updating`. Allowed from `InService` and `Failed`
    /// only, so that one deployment at a time runs per endpoint.
    pub async fn begin_update(&self, name: &str, config: &str) -> Result<EndpointRecord, StoreError> {
        let mut transaction = self.write().await?;
        let endpoint = Self::endpoint_in(&mut transaction, name).await?;
        if !matches!(endpoint.status, EndpointStatus::InService | EndpointStatus::Failed) {
            return Err(StoreError::InvalidState(format!(
                "endpoint {name:?} is {}; it can be updated once it is InService or Failed",
                endpoint.status.as_str()
            )));
        }
        Self::require_config(&mut transaction, config).await?;
        let status = if endpoint.live_config.is_some() { "Updating" } else { "Creating" };
        sqlx::query(
            "UPDATE endpoints SET status = $1, config = $2, failure_reason = NULL, generation = generation + 1,
                                  updated_at = $3
             WHERE name = $4",
        )
        .bind(status)
        .bind(config)
        .bind(now_rfc3339())
        .bind(name)
        .execute(&mut *transaction)
        .await?;
        let record = Self::endpoint_in(&mut transaction, name).await?;
        self.notify(&mut transaction, "endpoints", name).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// Records that the deployment of `generation` serves traffic: status `InService`, the target
    /// config becomes the live one. Returns false (and changes nothing) when a later request
    /// (a delete) superseded that deployment.
    pub async fn finish_deploy(
        &self,
        name: &str,
        generation: i64,
        variants: &[VariantRecord],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query(
            "UPDATE endpoints SET status = 'InService', live_config = config, live_variants = $1, failure_reason = NULL,
                                  updated_at = $2
             WHERE name = $3 AND generation = $4 AND status IN ('Creating', 'Updating')",
        )
        .bind(json_text(&variants))
        .bind(now_rfc3339())
        .bind(name)
        .bind(generation)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if done {
            self.notify(&mut transaction, "endpoints", name).await?;
        }
        transaction.commit().await?;
        Ok(done)
    }

    /// Records that the deployment of `generation` failed: `Failed` when nothing served before,
    /// else `RollingBack` (the caller then calls [`Metadata::finish_rollback`]). Returns the new
    /// status, or `None` when a later request superseded that deployment.
    pub async fn fail_deploy(
        &self,
        name: &str,
        generation: i64,
        reason: &str,
    ) -> Result<Option<EndpointStatus>, StoreError> {
        let mut transaction = self.write().await?;
        let endpoint = match Self::endpoint_in(&mut transaction, name).await {
            Ok(endpoint) => endpoint,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        if endpoint.generation != generation
            || !matches!(endpoint.status, EndpointStatus::Creating | EndpointStatus::Updating)
        {
            return Ok(None);
        }
        let status = if endpoint.live_config.is_some() { EndpointStatus::RollingBack } else { EndpointStatus::Failed };
        sqlx::query("UPDATE endpoints SET status = $1, failure_reason = $2, updated_at = $3 WHERE name = $4")
            .bind(status.as_str())
            .bind(reason)
            .bind(now_rfc3339())
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        self.notify(&mut transaction, "endpoints", name).await?;
        transaction.commit().await?;
        Ok(Some(status))
    }

    /// Ends a rollback: the endpoint serves its live config again, `InService`, and keeps the
    /// failure reason. Returns false when a later request superseded it.
    pub async fn finish_rollback(&self, name: &str, generation: i64) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query(
            "UPDATE endpoints SET status = 'InService', config = live_config, updated_at = $1
             WHERE name = $2 AND generation = $3 AND status = 'RollingBack' AND live_config IS NOT NULL",
        )
        .bind(now_rfc3339())
        .bind(name)
        .bind(generation)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if done {
            self.notify(&mut transaction, "endpoints", name).await?;
        }
        transaction.commit().await?;
        Ok(done)
    }

    /// Marks an endpoint `Deleting` (idempotent); the caller stops it, then calls
    /// [`Metadata::finish_delete`].
    pub async fn begin_delete(&self, name: &str) -> Result<EndpointRecord, StoreError> {
        let mut transaction = self.write().await?;
        let endpoint = Self::endpoint_in(&mut transaction, name).await?;
        if endpoint.status == EndpointStatus::Deleting {
            return Ok(endpoint);
        }
        sqlx::query(
            "UPDATE endpoints SET status = 'Deleting', generation = generation + 1, updated_at = $1 WHERE name = $2",
        )
        .bind(now_rfc3339())
        .bind(name)
        .execute(&mut *transaction)
        .await?;
        let record = Self::endpoint_in(&mut transaction, name).await?;
        self.notify(&mut transaction, "endpoints", name).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// Removes a `Deleting` endpoint's row. Returns false when it is not (or no longer) there.
    pub async fn finish_delete(&self, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query("DELETE FROM endpoints WHERE name = $1 AND status = 'Deleting'")
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 1;
        if done {
            self.notify(&mut transaction, "endpoints", name).await?;
        }
        transaction.commit().await?;
        Ok(done)
    }

    /// Records that an endpoint serves nothing (its stored artifacts no longer load after a
    /// restart): `Failed`, with no live config, so that an update deploys from scratch.
    pub async fn mark_failed(&self, name: &str, reason: &str) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let done = sqlx::query(
            "UPDATE endpoints SET status = 'Failed', failure_reason = $1, live_config = NULL, live_variants = NULL,
                                  generation = generation + 1, updated_at = $2
             WHERE name = $3",
        )
        .bind(reason)
        .bind(now_rfc3339())
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if done {
            self.notify(&mut transaction, "endpoints", name).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Records a serving variant's new weight and/or instance count (the runtime changed them).
    pub async fn set_live_variant(
        &self,
        name: &str,
        variant: &str,
        weight: Option<f64>,
        instances: Option<u32>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        let endpoint = Self::endpoint_in(&mut transaction, name).await?;
        let mut variants = endpoint
            .live_variants
            .ok_or_else(|| StoreError::InvalidState(format!("endpoint {name:?} has no serving variants")))?;
        let slot = variants
            .iter_mut()
            .find(|candidate| candidate.name == variant)
            .ok_or_else(|| StoreError::NotFound(format!("endpoint {name:?} has no variant {variant:?}")))?;
        if let Some(weight) = weight {
            slot.weight = weight;
        }
        if let Some(instances) = instances {
            slot.instances = instances;
        }
        sqlx::query("UPDATE endpoints SET live_variants = $1, updated_at = $2 WHERE name = $3")
            .bind(json_text(&variants))
            .bind(now_rfc3339())
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        self.notify(&mut transaction, "endpoints", name).await?;
        transaction.commit().await?;
        Ok(())
    }
}
