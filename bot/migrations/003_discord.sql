-- What the Discord bot keeps: each session's live message, the channels where a server
-- wants answers, and the questions nobody could answer yet, per server.

CREATE TABLE session_messages (
    session_id VARCHAR(32) PRIMARY KEY REFERENCES sessions (id),
    channel_id VARCHAR(32) NOT NULL,
    message_id VARCHAR(32) NOT NULL
);

CREATE TABLE answer_channels (
    server_id VARCHAR(64) NOT NULL,
    channel_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (server_id, channel_id)
);

CREATE TABLE server_unanswered_questions (
    server_id VARCHAR(64) NOT NULL,
    question VARCHAR(500) NOT NULL,
    times_asked INTEGER NOT NULL,
    first_asked_at DOUBLE PRECISION NOT NULL,
    last_asked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (server_id, question)
);

CREATE INDEX server_unanswered_by_count ON server_unanswered_questions (server_id, times_asked);
