-- Model prices in USD per million tokens, kept by the operator: an UPDATE reaches every child
-- within 30 seconds (the decision writer reloads the table) and prices the decisions after it.
-- A model with no row here is priced by its FloopyModel line in httpd.conf.
-- provider_type is the FloopyProvider type= (the vendor's wire format), model the vendor's name.

CREATE TABLE IF NOT EXISTS model_prices (
  provider_type          VARCHAR(32)   NOT NULL,
  model                  VARCHAR(255)  NOT NULL,
  input_per_mtok         DECIMAL(12,6) NOT NULL,
  output_per_mtok        DECIMAL(12,6) NOT NULL,
  cached_input_per_mtok  DECIMAL(12,6) NULL COMMENT 'NULL: cached input costs as input',
  source                 VARCHAR(255)  NULL COMMENT 'where the price was read',
  updated_at             DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (provider_type, model)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Seed: list prices as published on the vendors' pricing pages (standard tier, text tokens).
INSERT IGNORE INTO model_prices (provider_type, model, input_per_mtok, output_per_mtok, cached_input_per_mtok, source) VALUES
  ('openai', 'gpt-4o',       2.50, 10.00, 1.25,  'openai.com/api/pricing'),
  ('openai', 'gpt-4o-mini',  0.15,  0.60, 0.075, 'openai.com/api/pricing'),
  ('openai', 'gpt-4.1',      2.00,  8.00, 0.50,  'openai.com/api/pricing'),
  ('openai', 'gpt-4.1-mini', 0.40,  1.60, 0.10,  'openai.com/api/pricing'),
  ('openai', 'gpt-4.1-nano', 0.10,  0.40, 0.025, 'openai.com/api/pricing'),
  ('anthropic', 'claude-3-5-haiku-20241022',  0.80,  4.00, 0.08, 'anthropic.com/pricing'),
  ('anthropic', 'claude-3-7-sonnet-20250219', 3.00, 15.00, 0.30, 'anthropic.com/pricing'),
  ('anthropic', 'claude-sonnet-4-20250514',   3.00, 15.00, 0.30, 'anthropic.com/pricing'),
  ('anthropic', 'claude-opus-4-20250514',    15.00, 75.00, 1.50, 'anthropic.com/pricing'),
  ('gemini', 'gemini-2.0-flash',  0.10, 0.40, 0.025, 'ai.google.dev/gemini-api/docs/pricing'),
  ('gemini', 'gemini-2.5-flash',  0.30, 2.50, 0.075, 'ai.google.dev/gemini-api/docs/pricing'),
  ('gemini', 'gemini-2.5-pro',    1.25, 10.00, 0.31, 'ai.google.dev/gemini-api/docs/pricing (prompts up to 200k tokens)');
