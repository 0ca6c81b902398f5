-- Per-server settings, per-user preferences, and the questions nobody could answer yet.

CREATE TABLE server_settings (
    server_id VARCHAR(64) PRIMARY KEY,
    participant_limit INTEGER NOT NULL
);

CREATE TABLE user_preferences (
    user_id VARCHAR(64) PRIMARY KEY,
    usual_pressure VARCHAR(16),
    favourite_routine VARCHAR(64)
);

CREATE TABLE unanswered_questions (
    question VARCHAR(500) PRIMARY KEY,
    times_asked INTEGER NOT NULL,
    first_asked_at DOUBLE PRECISION NOT NULL,
    last_asked_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX unanswered_by_count ON unanswered_questions (times_asked);
