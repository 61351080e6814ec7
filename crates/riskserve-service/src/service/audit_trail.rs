//! Audit-trail use cases: querying events (filters, pages) and verifying the whole chain with this server's key.

use riskserve_store::{AuditFilter, AuditRecord};
use serde::{Deserialize, Serialize};

use super::Service;
use crate::audit::{VerifyReport, verify};
use crate::error::ServiceError;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Events before this RFC 3339 time.
    pub until: Option<String>,
    /// The user name (or `anonymous`, or the access key id of a failed authentication).
    pub principal: Option<String>,
    /// e.g. `sagemaker:InvokeEndpoint`.
    pub action: Option<String>,
    /// e.g. `Endpoint/credit`.
    pub resource: Option<String>,
    /// `allowed`, `denied`, `failed` or `unauthenticated`.
    pub outcome: Option<String>,
    /// 1 to 1000, default 100.
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

/// An event as the API shows it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub seq: i64,
    pub time: String,
    pub request_id: String,
    pub principal: String,
    pub source: Option<String>,
    pub action: String,
    pub resource: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: serde_json::Value,
    pub outcome: String,
    pub status: i64,
    pub error_code: Option<String>,
    pub latency_us: i64,
    pub prev_hash: String,
    pub hash: String,
}

fn view(record: AuditRecord) -> AuditEventView {
    AuditEventView {
        parameters: serde_json::from_str(&record.parameters)
            .unwrap_or(serde_json::Value::String(record.parameters.clone())),
        seq: record.seq,
        time: record.time,
        request_id: record.request_id,
        principal: record.principal,
        source: record.source,
        action: record.action,
        resource: record.resource,
        outcome: record.outcome,
        status: record.status,
        error_code: record.error_code,
        latency_us: record.latency_us,
        prev_hash: record.prev_hash,
        hash: record.hash,
    }
}

fn check_time(what: &str, value: &Option<String>) -> Result<(), ServiceError> {
    if let Some(text) = value {
        let bytes = text.as_bytes();
        let shaped = bytes.len() >= 10 && bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-');
        if !shaped {
            return Err(ServiceError::validation(format!(
                "{what}: {text:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)"
            )));
        }
    }
    Ok(())
}

impl Service {
    /// Events matching the query, oldest first, with the token of the next page.
    pub async fn query_audit(&self, query: AuditQuery) -> Result<serde_json::Value, ServiceError> {
        check_time("since", &query.since)?;
        check_time("until", &query.until)?;
        let limit = query.max_results.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ServiceError::validation(format!("max_results must be 1 to 1000, got {limit}")));
        }
        let after_seq =
            match &query.next_token {
                None => None,
                Some(token) => Some(token.parse::<i64>().map_err(|_| {
                    ServiceError::validation(format!("next_token {token:?} is not one this server gave"))
                })?),
            };
        self.security().audit().flush().await;
        let filter = AuditFilter {
            since: query.since,
            until: query.until,
            principal: query.principal,
            action: query.action,
            resource: query.resource,
            outcome: query.outcome,
            after_seq,
            limit: limit + 1,
        };
        let mut records = self.store().metadata.query_audit(&filter).await?;
        let next_token = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|record| record.seq.to_string())
        } else {
            None
        };
        let items: Vec<AuditEventView> = records.into_iter().map(view).collect();
        Ok(serde_json::json!({"items": items, "next_token": next_token}))
    }

    /// Writes and seals what is queued, then verifies the whole trail with this server's public key.
    pub async fn verify_audit(&self) -> Result<VerifyReport, ServiceError> {
        self.security().audit().flush().await;
        verify(&self.store().metadata, &self.security().audit().public_key_hex()).await
    }

    /// This server's audit public key, in hex (Ed25519), for verifying the trail elsewhere.
    pub fn audit_public_key(&self) -> String {
        self.security().audit().public_key_hex()
    }
}
