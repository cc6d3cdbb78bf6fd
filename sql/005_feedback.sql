-- Outcome signals from the organisation: one NPS per session (credits every decision of the
-- session) or a score for one decision. A repeated session score does not overwrite: the new row
-- is added and the earlier one points at it (replaced_by), so nothing is lost.
CREATE TABLE IF NOT EXISTS feedback (
  id           CHAR(36)     NOT NULL,
  org_id       CHAR(36)     NOT NULL,
  api_key_id   CHAR(36)     NULL,
  kind         ENUM('session','decision') NOT NULL,
  session_id   VARCHAR(255) NULL,
  decision_id  CHAR(36)     NULL,
  score        DOUBLE       NOT NULL COMMENT 'NPS 0..10 for a session; 0..10 for a decision',
  comment      TEXT         NULL,
  replaced_by  CHAR(36)     NULL COMMENT 'the session score that replaced this one',
  created_at   DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_feedback_session (org_id, session_id, replaced_by),
  KEY ix_feedback_decision (org_id, decision_id),
  KEY ix_feedback_org_id (org_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
