-- Replicas (issue 12): the metric history gets one row per replica, so that replicas sharing a database add their
-- minutes up instead of overwriting each other, and each replica reports its live invocation counts for the leader's
-- autoscaler.

-- The history, rebuilt with the replica in its key; rows written before replicas existed keep the empty replica.
CREATE TABLE metric_minutes_by_replica (
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    replica TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (endpoint, variant, minute, replica)
) STRICT;

INSERT INTO metric_minutes_by_replica (endpoint, variant, minute, replica, data)
    SELECT endpoint, variant, minute, '', data FROM metric_minutes;

DROP TABLE metric_minutes;

ALTER TABLE metric_minutes_by_replica RENAME TO metric_minutes;

CREATE INDEX metric_minutes_by_minute ON metric_minutes(minute);

-- Each replica's invocations per serving variant, counted since that replica started, and when it last reported
-- them (milliseconds since the Unix epoch): the leader measures every replica's rate from successive reports.
CREATE TABLE replica_loads (
    replica TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    invocations INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (replica, endpoint, variant)
) STRICT;

CREATE INDEX replica_loads_by_variant ON replica_loads(endpoint, variant);
