-- The first schema: models, endpoint configs with their variants, endpoints with their target and live configs.

CREATE TABLE models (
    name TEXT PRIMARY KEY NOT NULL,
    format TEXT NOT NULL,
    pipeline TEXT,
    artifacts TEXT NOT NULL,      -- JSON list of {name, digest, size}
    inputs TEXT NOT NULL,         -- JSON list of field names
    outputs TEXT NOT NULL,        -- JSON list of output names
    tags TEXT NOT NULL,           -- JSON object
    description TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE endpoint_configs (
    name TEXT PRIMARY KEY NOT NULL,
    tags TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE config_variants (
    config_name TEXT NOT NULL REFERENCES endpoint_configs(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    variant_name TEXT NOT NULL,
    model_name TEXT NOT NULL,
    weight REAL NOT NULL,
    instances INTEGER NOT NULL,
    PRIMARY KEY (config_name, position),
    UNIQUE (config_name, variant_name)
) STRICT;

CREATE INDEX config_variants_by_model ON config_variants(model_name);

-- `config` is the config the endpoint is moving to (or serves, once InService); `live_config` the one that serves
-- traffic now (NULL until the first deployment succeeds). `live_variants` holds the serving variants with their
-- current weights and instance counts, which may differ from the config's initial ones. `generation` grows with
-- every accepted request so that a deployment task only finishes the request that started it.
CREATE TABLE endpoints (
    name TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL REFERENCES endpoint_configs(name),
    live_config TEXT REFERENCES endpoint_configs(name),
    live_variants TEXT,
    failure_reason TEXT,
    generation INTEGER NOT NULL,
    tags TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
