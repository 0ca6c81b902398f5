-- Scheduled classes (a group session at a set time, with its Discord scheduled event),
-- weekly reminders, and whether a person wants each step of their group sessions by DM.

CREATE TABLE classes (
    id VARCHAR(32) PRIMARY KEY,
    server_id VARCHAR(64) NOT NULL,
    channel_id VARCHAR(64) NOT NULL,
    host_id VARCHAR(64) NOT NULL,
    routine_id VARCHAR(64) NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    event_id VARCHAR(64),
    state VARCHAR(16) NOT NULL,
    session_id VARCHAR(32),
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX classes_by_start ON classes (state, starts_at);
CREATE INDEX classes_by_event ON classes (event_id);

CREATE TABLE reminders (
    id VARCHAR(32) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    server_id VARCHAR(64),
    channel_id VARCHAR(64),
    weekday INTEGER NOT NULL,
    at_time VARCHAR(5) NOT NULL,
    zone VARCHAR(64) NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX reminders_by_next ON reminders (next_at);
CREATE INDEX reminders_by_user ON reminders (user_id);

ALTER TABLE user_preferences ADD COLUMN step_alerts BOOLEAN NOT NULL DEFAULT FALSE;
