-- Identities: users with their roles, access keys (secrets sealed with the master key), bearer tokens (SHA-256
-- hashes only) and custom Cedar policies.

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,          -- JSON list of role names
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,  -- hex of nonce || ChaCha20-Poly1305 ciphertext under the master key
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the token
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE policies (
    name TEXT PRIMARY KEY NOT NULL,
    text TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL
) STRICT;
