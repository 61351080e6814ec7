//! How replicas that share a PostgreSQL database coordinate without a home-made consensus: a feed of committed
//! changes (`LISTEN riskserve_changes`, sent by every state change's transaction) and one leader, the replica that
//! holds a session advisory lock on a connection of its own (released by PostgreSQL when that replica dies).

use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgListener};

use crate::{Metadata, StoreError, redact_url};

/// The advisory-lock key of leadership (any fixed 64-bit number no other lock of the database uses).
const LEADER_KEY: i64 = 0x7269_736b_6c65_6164; // "risklead"

/// One committed change: the table and the name of the row it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub table: String,
    pub name: String,
}

impl Change {
    fn parse(payload: &str) -> Change {
        let (table, name) = payload.split_once(':').unwrap_or((payload, ""));
        Change { table: table.to_string(), name: name.to_string() }
    }
}

/// The feed of committed changes of one database.
pub struct ChangeFeed {
    listener: PgListener,
}

impl ChangeFeed {
    /// Listens on the database at `url`.
    pub async fn connect(url: &str) -> Result<ChangeFeed, StoreError> {
        let mut listener = PgListener::connect(url).await.map_err(|error| unreachable(url, &error))?;
        listener.listen(Metadata::CHANGES_CHANNEL).await.map_err(|error| unreachable(url, &error))?;
        Ok(ChangeFeed { listener })
    }

    /// The next change; after a lost connection (which sqlx re-establishes) `None`, since notifications sent in
    /// between are gone: the caller then reconciles everything.
    pub async fn next(&mut self) -> Result<Option<Change>, StoreError> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Some(Change::parse(notification.payload()))),
            None => Ok(None),
        }
    }
}

/// Leadership among the replicas of one database.
pub struct Leadership {
    url: String,
    /// A connection of its own: it holds the lock while this replica leads, and asks for it while it does not
    /// (kept between checks, so a follower does not open a connection every time it asks).
    connection: Option<PgConnection>,
    leading: bool,
}

impl Leadership {
    pub fn new(url: &str) -> Leadership {
        Leadership { url: url.to_string(), connection: None, leading: false }
    }

    /// Whether this replica leads now: keeps the lock it holds (checking that its connection lives), or tries to
    /// take it. Errors count as not leading.
    pub async fn check(&mut self) -> bool {
        if self.connection.is_none() {
            self.leading = false;
            self.connection = PgConnection::connect(&self.url).await.ok();
        }
        let Some(connection) = self.connection.as_mut() else { return false };
        let answer = if self.leading {
            sqlx::query("SELECT 1").execute(&mut *connection).await.map(|_| true)
        } else {
            sqlx::query_as::<_, (bool,)>("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_KEY)
                .fetch_one(&mut *connection)
                .await
                .map(|(taken,)| taken)
        };
        match answer {
            Ok(leads) => self.leading = leads,
            Err(_) => {
                // The connection is gone, and with it any lock it held: another replica may lead already.
                self.connection = None;
                self.leading = false;
            }
        }
        self.leading
    }

    /// Gives leadership up (at shutdown), so another replica takes over at once.
    pub async fn resign(&mut self) {
        self.leading = false;
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }
}

fn unreachable(url: &str, error: &sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL at {} is unreachable: {error}", redact_url(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_table_and_a_row() {
        assert_eq!(Change::parse("endpoints:credit"), Change { table: "endpoints".into(), name: "credit".into() });
        assert_eq!(Change::parse("policies:a:b"), Change { table: "policies".into(), name: "a:b".into() });
        assert_eq!(Change::parse("identities"), Change { table: "identities".into(), name: String::new() });
    }
}
