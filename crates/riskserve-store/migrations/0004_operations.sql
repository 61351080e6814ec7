-- Operations (issue 6): per-minute metric history, scaling policies and their activities, usage metering.

-- One row per endpoint variant and minute (minutes since the Unix epoch, UTC); `data` is the minute's aggregates as
-- JSON (counts, latency sums and sparse latency buckets), written once the minute is over.
CREATE TABLE metric_minutes (
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (endpoint, variant, minute)
) STRICT;

CREATE INDEX metric_minutes_by_minute ON metric_minutes(minute);

-- A target-tracking policy per serving variant; times in seconds.
CREATE TABLE scaling_policies (
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    min_instances INTEGER NOT NULL,
    max_instances INTEGER NOT NULL,
    target REAL NOT NULL,
    scale_out_cooldown REAL NOT NULL,
    scale_in_cooldown REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (endpoint, variant)
) STRICT;

-- Every change the scaler made, newest last.
CREATE TABLE scaling_activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    time TEXT NOT NULL,
    from_instances INTEGER NOT NULL,
    to_instances INTEGER NOT NULL,
    cause TEXT NOT NULL
) STRICT;

CREATE INDEX scaling_activities_by_endpoint ON scaling_activities(endpoint, id);

-- Metered usage per minute, endpoint, variant and principal (the empty principal holds the capacity: instance
-- seconds belong to the endpoint, not to a caller); `tags` are the endpoint's tags when metered (JSON object).
CREATE TABLE usage_minutes (
    minute INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    principal TEXT NOT NULL,
    tags TEXT NOT NULL,
    instance_seconds REAL NOT NULL,
    invocations INTEGER NOT NULL,
    PRIMARY KEY (minute, endpoint, variant, principal)
) STRICT;
