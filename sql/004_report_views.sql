-- Reports an admin runs by hand in MariaDB (README, "Reports in MariaDB").

-- Cost and traffic by model per day and organisation.
CREATE OR REPLACE VIEW report_cost_by_model_day AS
SELECT org_id, DATE(created_at) AS day, provider, model,
       COUNT(*) AS requests,
       SUM(status = 'ok') AS succeeded,
       SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
       SUM(cached_tokens) AS cached_tokens,
       SUM(cost_usd) AS cost_usd, SUM(cost_usd IS NULL AND status = 'ok') AS unpriced_requests,
       AVG(latency_total_ms) AS avg_latency_ms
FROM decisions
GROUP BY org_id, DATE(created_at), provider, model;

-- Decisions by confidence band (tenths) and phase.
CREATE OR REPLACE VIEW report_decisions_by_confidence AS
SELECT org_id, phase, FLOOR(LEAST(confidence, 0.9999) * 10) / 10 AS band_from,
       COUNT(*) AS decisions, SUM(status = 'ok') AS succeeded, AVG(cost_usd) AS avg_cost_usd
FROM decisions
GROUP BY org_id, phase, FLOOR(LEAST(confidence, 0.9999) * 10) / 10;

-- Provider health: tries, failures and fallbacks by provider per day (from the decisions).
CREATE OR REPLACE VIEW report_provider_outcomes_day AS
SELECT DATE(created_at) AS day, provider, status, COUNT(*) AS decisions,
       SUM(JSON_LENGTH(attempts) > 1) AS with_retries_or_fallbacks,
       AVG(latency_upstream_ms) AS avg_upstream_ms
FROM decisions
GROUP BY DATE(created_at), provider, status;
