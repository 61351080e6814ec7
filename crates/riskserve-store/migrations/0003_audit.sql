-- The audit trail: hash-chained events (seq counts from 1 without gaps) and signed seals over the chain.

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY NOT NULL,
    time TEXT NOT NULL,
    request_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    source TEXT,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    parameters TEXT NOT NULL,     -- JSON object, secrets redacted, never a payload
    outcome TEXT NOT NULL,        -- allowed | denied | failed | unauthenticated
    status INTEGER NOT NULL,
    error_code TEXT,
    latency_us INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
) STRICT;

CREATE INDEX audit_events_time ON audit_events(time);
CREATE INDEX audit_events_principal ON audit_events(principal, seq);
CREATE INDEX audit_events_action ON audit_events(action, seq);
CREATE INDEX audit_events_resource ON audit_events(resource, seq);

CREATE TABLE audit_seals (
    id INTEGER PRIMARY KEY NOT NULL,
    time TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    prev_seal TEXT NOT NULL,      -- hex SHA-256 of the previous seal's signed message
    public_key TEXT NOT NULL,     -- hex Ed25519 public key
    signature TEXT NOT NULL       -- hex Ed25519 signature of the seal message
) STRICT;
