-- Data capture (issue 15): what an endpoint config captures of its invocations, as JSON (sampling percentage,
-- input and/or output, destination prefix); empty when it captures nothing.
ALTER TABLE endpoint_configs ADD COLUMN data_capture TEXT NOT NULL DEFAULT '';
