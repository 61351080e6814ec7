//! Storage for the façades (SageMaker, Open Inference Protocol): documents kept beside a resource
//! and tag changes on models, endpoint configs and endpoints.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Metadata, json_text, parse_json};
use crate::StoreError;

/// The kinds of resource that carry tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaggedKind {
    Model,
    EndpointConfig,
    Endpoint,
}

impl TaggedKind {
    /// The statements that read and write the tags of this kind (fixed text: no name reaches SQL).
    fn tag_statements(self) -> (&'static str, &'static str) {
        match self {
            TaggedKind::Model => {
                ("SELECT tags FROM models WHERE name = $1", "UPDATE models SET tags = $1 WHERE name = $2")
            }
            TaggedKind::EndpointConfig => (
                "SELECT tags FROM endpoint_configs WHERE name = $1",
                "UPDATE endpoint_configs SET tags = $1 WHERE name = $2",
            ),
            TaggedKind::Endpoint => {
                ("SELECT tags FROM endpoints WHERE name = $1", "UPDATE endpoints SET tags = $1 WHERE name = $2")
            }
        }
    }

    /// The table the resources of this kind live in (as change notifications name it).
    fn table(self) -> &'static str {
        match self {
            TaggedKind::Model => "models",
            TaggedKind::EndpointConfig => "endpoint_configs",
            TaggedKind::Endpoint => "endpoints",
        }
    }

    /// The word used in messages and as the document kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TaggedKind::Model => "model",
            TaggedKind::EndpointConfig => "endpoint config",
            TaggedKind::Endpoint => "endpoint",
        }
    }
}

/// A façade's document about a resource, with the creation time of the resource it was written for.
#[derive(Debug, Clone, PartialEq)]
pub struct FacadeDocument {
    pub resource_created_at: String,
    pub document: String,
}

impl Metadata {
    /// Writes (or replaces) a façade's document about a resource.
    pub async fn put_facade_document(
        &self,
        facade: &str,
        kind: TaggedKind,
        name: &str,
        resource_created_at: &str,
        document: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO facade_documents (facade, kind, name, resource_created_at, document)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (facade, kind, name) DO UPDATE SET resource_created_at = excluded.resource_created_at,
             document = excluded.document",
        )
        .bind(facade)
        .bind(kind.as_str())
        .bind(name)
        .bind(resource_created_at)
        .bind(document)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn get_facade_document(
        &self,
        facade: &str,
        kind: TaggedKind,
        name: &str,
    ) -> Result<Option<FacadeDocument>, StoreError> {
        let row = sqlx::query(
            "SELECT resource_created_at, document FROM facade_documents WHERE facade = $1 AND kind = $2 AND name = $3",
        )
        .bind(facade)
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(FacadeDocument {
                resource_created_at: row.try_get("resource_created_at")?,
                document: row.try_get("document")?,
            })),
            None => Ok(None),
        }
    }

    /// Adds `add` to a resource's tags (replacing values of keys it has) and removes the keys in
    /// `remove`, in one transaction; returns the tags as they are now.
    pub async fn change_tags(
        &self,
        kind: TaggedKind,
        name: &str,
        add: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let (select, update) = kind.tag_statements();
        let mut transaction = self.write().await?;
        let row = sqlx::query(select).bind(name).fetch_optional(&mut *transaction).await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("{} {name:?} does not exist", kind.as_str())));
        };
        let mut tags: BTreeMap<String, String> = parse_json(row.try_get("tags")?, "tags")?;
        for key in remove {
            tags.remove(key);
        }
        tags.extend(add.iter().map(|(key, value)| (key.clone(), value.clone())));
        sqlx::query(update).bind(json_text(&tags)).bind(name).execute(&mut *transaction).await?;
        self.notify(&mut transaction, kind.table(), name).await?;
        transaction.commit().await?;
        Ok(tags)
    }
}
