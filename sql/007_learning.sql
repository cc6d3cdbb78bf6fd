-- What the learning router learns from, durable here and read by every child into a snapshot in
-- memory (refreshed within a second). docs/methodology/confidence.md explains the numbers.

-- Quality per organisation, route and model: n is the weighted, discounted count of outcomes,
-- s their weighted reward sum (rewards 0..1: NPS/10, score/10, judge mean/10). Written only by
-- the module's core maths (fl_quality_observe / fl_quality_revise), row-locked per update.
CREATE TABLE IF NOT EXISTS arm_quality (
  org_id      CHAR(36)     NOT NULL,
  route       VARCHAR(255) NOT NULL,
  model_id    VARCHAR(255) NOT NULL COMMENT 'provider/model',
  n           DOUBLE       NOT NULL,
  s           DOUBLE       NOT NULL,
  updated_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (org_id, route, model_id),
  KEY ix_arm_quality_model (model_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Usage per organisation, route, model and day, added by the decision writer with each flush:
-- the rolling cost and latency the router weighs (the last 7 days).
CREATE TABLE IF NOT EXISTS arm_usage_daily (
  org_id      CHAR(36)     NOT NULL,
  route       VARCHAR(255) NOT NULL,
  model_id    VARCHAR(255) NOT NULL,
  day         DATE         NOT NULL,
  requests    BIGINT       NOT NULL,
  priced      BIGINT       NOT NULL COMMENT 'requests with a known cost',
  cost_usd    DOUBLE       NOT NULL,
  latency_ms  DOUBLE       NOT NULL COMMENT 'summed over requests',
  tokens      BIGINT       NOT NULL,
  PRIMARY KEY (org_id, route, model_id, day),
  KEY ix_arm_usage_day (day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What each feedback credited, so a replaced session score revises exactly those credits.
CREATE TABLE IF NOT EXISTS feedback_credits (
  feedback_id CHAR(36)     NOT NULL,
  org_id      CHAR(36)     NOT NULL,
  route       VARCHAR(255) NOT NULL,
  model_id    VARCHAR(255) NOT NULL,
  weight      DOUBLE       NOT NULL,
  reward      DOUBLE       NOT NULL,
  PRIMARY KEY (feedback_id, route, model_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Benchmark priors an operator keeps: a model's expected quality 0..1 and how many observations
-- it is worth (the router caps that at FloopyRouter bench_cap, 3 by default, so a benchmark can
-- warm a model up but never carry it). Load public benchmark figures here with their source.
CREATE TABLE IF NOT EXISTS benchmark_priors (
  model_id    VARCHAR(255) NOT NULL COMMENT 'provider/model',
  quality     DOUBLE       NOT NULL,
  weight      DOUBLE       NOT NULL,
  source      VARCHAR(512) NOT NULL,
  updated_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (model_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The quick start's stand-in provider (./apxs-build.sh run without keys): not facts about any real
-- model, just enough for a newcomer to see a prior on the explain output.
INSERT IGNORE INTO benchmark_priors (model_id, quality, weight, source, updated_at) VALUES
  ('local/stand-in-mini',  0.70, 2, 'demo value for the local stand-in', NOW(3)),
  ('local/stand-in',       0.80, 2, 'demo value for the local stand-in', NOW(3)),
  ('local/stand-in-large', 0.85, 2, 'demo value for the local stand-in', NOW(3));

-- LLM-as-judge scores of sampled responses (FloopyJudge), off the request path. 1..10 each.
CREATE TABLE IF NOT EXISTS judge_scores (
  id            CHAR(36)     NOT NULL,
  decision_id   CHAR(36)     NOT NULL,
  org_id        CHAR(36)     NOT NULL,
  judge_model   VARCHAR(255) NOT NULL,
  subject_model VARCHAR(255) NOT NULL COMMENT 'the provider/model whose answer was judged',
  relevance     DOUBLE       NOT NULL,
  coherence     DOUBLE       NOT NULL,
  helpfulness   DOUBLE       NOT NULL,
  safety        DOUBLE       NOT NULL,
  latency_ms    DOUBLE       NOT NULL,
  created_at    DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_judge_decision (org_id, decision_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The shared prior as an admin can inspect it: outcomes summed per model over the organisations
-- that pool (never one that opted out), with how many stand behind it. No organisation, user,
-- prompt or completion enters it. The router subtracts an organisation's own share when it reads.
CREATE OR REPLACE VIEW shared_priors AS
  SELECT q.model_id, COUNT(DISTINCT q.org_id) AS organizations, SUM(q.n) AS observations,
         SUM(q.s) / NULLIF(SUM(q.n), 0) AS mean_quality
    FROM arm_quality q JOIN organizations o ON o.id = q.org_id
   WHERE o.pooling_opt_out = 0 AND q.n > 0
   GROUP BY q.model_id;
