-- Shadow experiments (POST /v1/experiments): a candidate provider/model answers a sampled share
-- of a route's traffic off the request path, next to the live choice; both answers are judged
-- and each comparison is a row of experiment_results, tied to its decision.

-- status: running -> stopped (POST /v1/experiments/{id}/rollback) or completed (sample_cap
-- reached). sampled is the number of samples taken: a child's judge thread raises it, in one
-- UPDATE that refuses once the cap is reached or the experiment stopped, before it calls the
-- candidate, so the cap holds across threads and children.
CREATE TABLE IF NOT EXISTS experiments (
  id            CHAR(36)     NOT NULL,
  org_id        CHAR(36)     NOT NULL,
  route         VARCHAR(255) NOT NULL,
  candidate     VARCHAR(255) NOT NULL COMMENT 'provider/model',
  sample_rate   DOUBLE       NOT NULL COMMENT 'share of the route''s answered requests, 0..1',
  sample_cap    BIGINT       NOT NULL COMMENT 'samples at most; then the experiment is completed',
  status        ENUM('running','stopped','completed') NOT NULL,
  sampled       BIGINT       NOT NULL DEFAULT 0,
  created_by    VARCHAR(255) NOT NULL,
  created_at    DATETIME(3)  NOT NULL,
  stopped_at    DATETIME(3)  NULL COMMENT 'when it was rolled back or completed',
  stopped_by    VARCHAR(255) NULL COMMENT 'the actor of a rollback; NULL when completed',
  -- one running experiment per organisation and route (NULL for the others never collides)
  running_route VARCHAR(255) AS (IF(status = 'running', route, NULL)) PERSISTENT,
  PRIMARY KEY (id),
  UNIQUE KEY ux_experiments_running (org_id, running_route),
  KEY ix_experiments_org_id (org_id, id),
  KEY ix_experiments_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One comparison: the live answer the client got and the candidate's answer to the same request.
-- Judge scores are 1..10 (NULL when no judge is configured or it could not score; judge_note
-- says why). Costs are USD (NULL when the model is unpriced), latency is the upstream exchange.
CREATE TABLE IF NOT EXISTS experiment_results (
  id                     CHAR(36)     NOT NULL,
  experiment_id          CHAR(36)     NOT NULL,
  decision_id            CHAR(36)     NOT NULL,
  org_id                 CHAR(36)     NOT NULL,
  live_model             VARCHAR(255) NOT NULL,
  candidate_model        VARCHAR(255) NOT NULL,
  judge_model            VARCHAR(255) NULL,
  live_relevance         DOUBLE       NULL,
  live_coherence         DOUBLE       NULL,
  live_helpfulness       DOUBLE       NULL,
  live_safety            DOUBLE       NULL,
  candidate_relevance    DOUBLE       NULL,
  candidate_coherence    DOUBLE       NULL,
  candidate_helpfulness  DOUBLE       NULL,
  candidate_safety       DOUBLE       NULL,
  live_cost_usd          DOUBLE       NULL,
  candidate_cost_usd     DOUBLE       NULL,
  live_latency_ms        DOUBLE       NULL,
  candidate_latency_ms   DOUBLE       NULL,
  live_tokens            BIGINT       NULL,
  candidate_tokens       BIGINT       NULL,
  candidate_error        TEXT         NULL COMMENT 'why the candidate gave no answer; NULL if it did',
  judge_note             VARCHAR(512) NULL COMMENT 'why the answers carry no scores',
  created_at             DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_experiment_results_decision (experiment_id, decision_id),
  KEY ix_experiment_results_decision (org_id, decision_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Each comparison with its paired numbers: quality is the mean of the four judge scores (both
-- sides scored, else NULL on both), deltas are candidate - live (both known, else NULL).
CREATE OR REPLACE VIEW experiment_result_pairs AS
SELECT x.*,
       CASE WHEN x.candidate_error IS NULL AND x.live_relevance IS NOT NULL
                 AND x.candidate_relevance IS NOT NULL
            THEN (x.live_relevance + x.live_coherence + x.live_helpfulness + x.live_safety) / 4
       END AS live_quality,
       CASE WHEN x.candidate_error IS NULL AND x.live_relevance IS NOT NULL
                 AND x.candidate_relevance IS NOT NULL
            THEN (x.candidate_relevance + x.candidate_coherence + x.candidate_helpfulness
                  + x.candidate_safety) / 4
       END AS candidate_quality,
       CASE WHEN x.candidate_error IS NULL THEN x.candidate_cost_usd - x.live_cost_usd END
         AS cost_delta_usd,
       CASE WHEN x.candidate_error IS NULL THEN x.candidate_latency_ms - x.live_latency_ms END
         AS latency_delta_ms
  FROM experiment_results x;

-- Experiment outcomes, the report an admin runs by hand and what GET /v1/experiments shows:
-- counts, the compared quality with its standard error (and the paired difference's), and the
-- mean cost and latency deltas per request. Grouped by every experiment column so a filter on
-- any of them is pushed into the grouping.
CREATE OR REPLACE VIEW experiment_outcomes AS
SELECT e.id, e.org_id, e.route, e.candidate, e.sample_rate, e.sample_cap, e.status, e.sampled,
       e.created_by, e.created_at, e.stopped_at, e.stopped_by,
       COUNT(x.id) - COUNT(x.candidate_error) AS compared,
       COUNT(x.candidate_error) AS candidate_errors,
       COUNT(x.live_quality) AS judged,
       AVG(x.live_quality) AS live_quality,
       STDDEV_SAMP(x.live_quality) / SQRT(COUNT(x.live_quality)) AS live_quality_se,
       AVG(x.candidate_quality) AS candidate_quality,
       STDDEV_SAMP(x.candidate_quality) / SQRT(COUNT(x.candidate_quality)) AS candidate_quality_se,
       AVG(x.candidate_quality - x.live_quality) AS quality_delta,
       STDDEV_SAMP(x.candidate_quality - x.live_quality)
         / SQRT(COUNT(x.candidate_quality - x.live_quality)) AS quality_delta_se,
       COUNT(x.cost_delta_usd) AS costed,
       AVG(x.cost_delta_usd) AS cost_delta_usd,
       AVG(CASE WHEN x.cost_delta_usd IS NOT NULL THEN x.live_cost_usd END) AS live_cost_usd,
       AVG(CASE WHEN x.cost_delta_usd IS NOT NULL THEN x.candidate_cost_usd END) AS candidate_cost_usd,
       COUNT(x.latency_delta_ms) AS timed,
       AVG(x.latency_delta_ms) AS latency_delta_ms,
       AVG(CASE WHEN x.latency_delta_ms IS NOT NULL THEN x.live_latency_ms END) AS live_latency_ms,
       AVG(CASE WHEN x.latency_delta_ms IS NOT NULL THEN x.candidate_latency_ms END)
         AS candidate_latency_ms
  FROM experiments e
  LEFT JOIN experiment_result_pairs x ON x.experiment_id = e.id
 GROUP BY e.id, e.org_id, e.route, e.candidate, e.sample_rate, e.sample_cap, e.status, e.sampled,
          e.created_by, e.created_at, e.stopped_at, e.stopped_by;
