-- A class's voice or stage channel, where its steps are spoken, and every session being
-- guided aloud, so that a restarted bot joins the channel again.

ALTER TABLE classes ADD COLUMN voice_channel_id VARCHAR(64);

CREATE TABLE voice_guides (
    session_id VARCHAR(32) PRIMARY KEY,
    server_id VARCHAR(64) NOT NULL,
    channel_id VARCHAR(64) NOT NULL
);
