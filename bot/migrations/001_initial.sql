-- Sessions, who is in them, and a short event log of each.
-- Portable SQL: standard types, moments as epoch seconds, ids as text.

CREATE TABLE sessions (
    id VARCHAR(32) PRIMARY KEY,
    place VARCHAR(64) NOT NULL,
    routine_id VARCHAR(64) NOT NULL,
    host_id VARCHAR(64) NOT NULL,
    is_group BOOLEAN NOT NULL,
    participant_limit INTEGER NOT NULL,
    state VARCHAR(16) NOT NULL,
    step_index INTEGER NOT NULL,
    steps_done INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    step_started_at DOUBLE PRECISION NOT NULL,
    due_at DOUBLE PRECISION,
    remaining DOUBLE PRECISION,
    paused_at DOUBLE PRECISION,
    paused_seconds DOUBLE PRECISION NOT NULL,
    touched_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    pressure INTEGER NOT NULL,
    event_seq INTEGER NOT NULL
);

CREATE INDEX sessions_by_state ON sessions (state);

CREATE TABLE session_participants (
    session_id VARCHAR(32) NOT NULL REFERENCES sessions (id),
    user_id VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL,
    join_order INTEGER NOT NULL,
    joined_at DOUBLE PRECISION NOT NULL,
    in_control BOOLEAN NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

CREATE TABLE session_events (
    session_id VARCHAR(32) NOT NULL REFERENCES sessions (id),
    seq INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind VARCHAR(32) NOT NULL,
    user_id VARCHAR(64),
    step_index INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
);
