-- Model monitoring (issue 15): per endpoint a baseline, a schedule, ground-truth outcomes keyed by inference id, and
-- the reports of its runs. JSON documents are kept as text; times are milliseconds since the Unix epoch.

-- What an endpoint's current data is compared against (riskserve_monitor's Baseline plus the column layout it was
-- built for), replaced as a whole.
CREATE TABLE monitor_baselines (
    endpoint TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- When and how an endpoint is monitored. `next_run_at` is claimed by a compare-and-set, so among replicas sharing
-- the database exactly one runs each due schedule.
CREATE TABLE monitor_schedules (
    endpoint TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    next_run_at INTEGER NOT NULL,
    last_run_at INTEGER,
    last_report TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- Ground truth: the outcome of an invocation (row `row_index` of it), arriving days or months after it. An upload
-- of the same key replaces the earlier outcome.
CREATE TABLE monitor_outcomes (
    endpoint TEXT NOT NULL,
    inference_id TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    bad INTEGER NOT NULL,
    attribute TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint, inference_id, row_index)
) STRICT;

-- One run of a schedule (or one asked for): its summary columns and the whole report as JSON.
CREATE TABLE monitor_reports (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    breaches INTEGER NOT NULL,
    data TEXT NOT NULL
) STRICT;

CREATE INDEX monitor_reports_by_endpoint ON monitor_reports(endpoint, started_at);
