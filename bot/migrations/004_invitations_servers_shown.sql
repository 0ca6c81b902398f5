-- Which server a session belongs to (its shard's), a partner's pending invitation, the
-- clock scale it runs under (1 outside demonstrations), and the version of each session
-- its Discord message last showed, so a restarted bot brings stale messages up to date.

ALTER TABLE sessions ADD COLUMN server_id VARCHAR(64);
ALTER TABLE sessions ADD COLUMN invited_id VARCHAR(64);
ALTER TABLE sessions ADD COLUMN invite_expires_at DOUBLE PRECISION;
ALTER TABLE sessions ADD COLUMN clock_scale DOUBLE PRECISION NOT NULL DEFAULT 1;
ALTER TABLE session_messages ADD COLUMN shown_version INTEGER NOT NULL DEFAULT 0;
