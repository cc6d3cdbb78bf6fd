-- The spread of each arm's own outcomes, so max_regression can judge a candidate by a lower
-- confidence bound of its own mean rather than by the mean alone (fl_quality_lower_bound;
-- docs/methodology/confidence.md). Both fade with the same discount as n and s.
--   ss  the weighted sum of squared rewards (the variance is ss/n - (s/n)^2)
--   n2  the sum of the squared faded weights: (n*n)/n2 is the effective number of observations
--       behind s/n (weights 0.5 and 1 and the discount make it differ from n)
ALTER TABLE arm_quality
  ADD COLUMN IF NOT EXISTS ss DOUBLE NOT NULL DEFAULT 0 COMMENT 'weighted sum of squared rewards' AFTER s,
  ADD COLUMN IF NOT EXISTS n2 DOUBLE NOT NULL DEFAULT 0 COMMENT 'sum of squared faded weights' AFTER ss;

-- Rows learnt before this have no spread. They get the widest one their n and s allow, the same
-- the module assumes for a row with n > 0 and n2 = 0 (fl_quality_stored): ss = s, as if every
-- reward had been 0 or 1 (the Bernoulli bound p(1-p) on the variance), and n2 = n, the most it
-- can be with weights up to 1 (the fewest effective observations). Such an arm's bound is wide
-- until new outcomes outweigh the old ones; it never passes a candidate the data cannot support.
UPDATE arm_quality SET ss = s, n2 = n WHERE n > 0 AND n2 = 0;
