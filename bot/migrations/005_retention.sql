-- What retention and lookups by message need at scale: when sessions ended, when
-- questions were last asked, and which session a message shows.

CREATE INDEX sessions_by_end ON sessions (ended_at);
CREATE INDEX unanswered_by_last_asked ON unanswered_questions (last_asked_at);
CREATE INDEX server_unanswered_by_last_asked ON server_unanswered_questions (last_asked_at);
CREATE INDEX session_messages_by_message ON session_messages (message_id);
