-- Everyone who was ever in a session, also after they left it (session_participants holds
-- those still in): stats and people's own data count the sessions someone left early.

CREATE TABLE session_attendance (
    session_id VARCHAR(32) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

INSERT INTO session_attendance (session_id, user_id)
SELECT DISTINCT session_id, user_id FROM session_participants;
