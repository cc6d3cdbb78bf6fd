-- An organisation's routing constraints (PUT /v1/constraints; every change is an audit event).
-- NULL = no such constraint. The learning router applies them on every decision.
CREATE TABLE IF NOT EXISTS org_constraints (
  org_id                CHAR(36)     NOT NULL,
  max_regression        DOUBLE       NULL COMMENT 'percentage points of quality below the default',
  max_cost_increase     DOUBLE       NULL COMMENT 'percent of rolling cost',
  confidence_threshold  DOUBLE       NULL COMMENT '0..1',
  updated_at            DATETIME(3)  NOT NULL,
  updated_by            VARCHAR(255) NOT NULL,
  PRIMARY KEY (org_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
