-- Organisations, API keys, decisions and audit events: the foundation every later feature hangs on.
-- Ids are UUIDv7 strings: time-ordered, so InnoDB appends decisions at the end of the primary key.

CREATE TABLE IF NOT EXISTS organizations (
  id              CHAR(36)     NOT NULL,
  name            VARCHAR(200) NOT NULL,
  plan            ENUM('free','pro','enterprise') NOT NULL DEFAULT 'free',
  pooling_opt_out TINYINT(1)   NOT NULL DEFAULT 0,
  created_at      DATETIME(3)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS api_keys (
  id          CHAR(36)     NOT NULL,
  org_id      CHAR(36)     NOT NULL,
  name        VARCHAR(200) NULL,
  key_hash    CHAR(64)     NOT NULL COMMENT 'hex SHA-256 of the secret; the secret itself is never stored',
  key_prefix  VARCHAR(16)  NOT NULL COMMENT 'first characters of the secret, to recognise a key in lists',
  role        ENUM('client','admin') NOT NULL DEFAULT 'client',
  created_at  DATETIME(3)  NOT NULL,
  revoked_at  DATETIME(3)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_api_keys_hash (key_hash),
  KEY ix_api_keys_org (org_id, created_at, id),
  CONSTRAINT fk_api_keys_org FOREIGN KEY (org_id) REFERENCES organizations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS decisions (
  id                  CHAR(36)      NOT NULL,
  org_id              CHAR(36)      NOT NULL,
  api_key_id          CHAR(36)      NULL,
  session_id          VARCHAR(255)  NULL,
  route               VARCHAR(255)  NOT NULL,
  pinned              TINYINT(1)    NOT NULL DEFAULT 0,
  stream              TINYINT(1)    NOT NULL DEFAULT 0,
  provider            VARCHAR(100)  NULL,
  model               VARCHAR(255)  NULL,
  chosen_score        DOUBLE        NULL,
  alternatives        JSON          NOT NULL,
  signals             JSON          NOT NULL,
  constraints_applied JSON          NOT NULL,
  confidence          DOUBLE        NOT NULL,
  phase               VARCHAR(16)   NOT NULL,
  status              VARCHAR(32)   NOT NULL,
  http_status         SMALLINT      NOT NULL,
  latency_total_ms    DOUBLE        NOT NULL,
  latency_upstream_ms DOUBLE        NULL,
  input_tokens        INT           NULL,
  output_tokens       INT           NULL,
  cached_tokens       INT           NULL,
  reasoning_tokens    INT           NULL,
  cost_usd            DECIMAL(20,10) NULL COMMENT 'NULL when the model has no price',
  cache_hit           TINYINT(1)    NOT NULL DEFAULT 0,
  error               JSON          NULL,
  attempts            JSON          NOT NULL,
  created_at          DATETIME(3)   NOT NULL,
  completed_at        DATETIME(3)   NOT NULL,
  PRIMARY KEY (id),
  KEY ix_decisions_org_time (org_id, created_at, id),
  KEY ix_decisions_org_session (org_id, session_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_events (
  id          CHAR(36)     NOT NULL,
  org_id      CHAR(36)     NULL COMMENT 'NULL for deployment-wide events',
  actor       VARCHAR(255) NOT NULL,
  action      VARCHAR(64)  NOT NULL,
  target      VARCHAR(255) NULL,
  before_json JSON         NULL,
  after_json  JSON         NULL,
  created_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_audit_org_time (org_id, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
