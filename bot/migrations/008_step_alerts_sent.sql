-- Which step of a group session each person was told of by DM (or joined on), so that a
-- step is never sent twice to anyone, across restarts and processes.

CREATE TABLE step_alerts_sent (
    session_id VARCHAR(32) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    step_index INTEGER NOT NULL,
    PRIMARY KEY (session_id, user_id, step_index)
);
