-- Console sessions (issue 14): a signed-in browser's session, found by the SHA-256 of its cookie (the cookie itself
-- is never stored), the user it acts for, the token its state-changing requests must echo (CSRF), and when it ends
-- (milliseconds since the Unix epoch). Shared by replicas, so any replica behind a balancer knows the session.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX console_sessions_by_expiry ON console_sessions(expires_at);
