/* Every SQL statement the module runs, prepared through mod_dbd under its label. Labels are the
 * only names the rest of the code uses. */
#include <apr_strings.h>
#include <http_request.h>

#include "store.h"
#include "fl_decision.h"
#include "fl_json.h"
#include "fl_util.h"

static const char *const batch_sizes_labels[] = {
    FLOOPY_SQL_DECISION_INS "256", FLOOPY_SQL_DECISION_INS "64", FLOOPY_SQL_DECISION_INS "16",
    FLOOPY_SQL_DECISION_INS "4", FLOOPY_SQL_DECISION_INS "1"
};
const int floopy_batch_sizes[FLOOPY_NBATCH] = { 256, 64, 16, 4, 1 };

const char *floopy_batch_label(int i)
{
    return batch_sizes_labels[i];
}

static const char *decision_insert_sql(apr_pool_t *p, int rows)
{
    apr_array_header_t *parts = apr_array_make(p, rows + 2, sizeof(const char *));
    const char *cols = "", *row = "(";
    int i;
    for (i = 0; i < FL_DECISION_NCOLS; i++) {
        cols = apr_pstrcat(p, cols, i ? "," : "", fl_decision_columns[i], NULL);
        row = apr_pstrcat(p, row, i ? ",%s" : "%s", NULL);
    }
    row = apr_pstrcat(p, row, ")", NULL);
    APR_ARRAY_PUSH(parts, const char *) = apr_pstrcat(p, "INSERT IGNORE INTO decisions (", cols,
                                                      ") VALUES ", row, NULL);
    for (i = 1; i < rows; i++) {
        APR_ARRAY_PUSH(parts, const char *) = apr_pstrcat(p, ",", row, NULL);
    }
    return apr_array_pstrcat(p, parts, 0);
}

const int floopy_page_sizes[FLOOPY_NPAGE] = { 11, 51, 101, 501, 1001 };

static const char *decision_cols(apr_pool_t *p)
{
    const char *cols = "";
    int i;
    for (i = 0; i < FL_DECISION_NCOLS; i++) {
        cols = apr_pstrcat(p, cols, i ? "," : "", fl_decision_columns[i], NULL);
    }
    return cols;
}

static const char *decision_select_sql(apr_pool_t *p)
{
    return apr_pstrcat(p, "SELECT ", decision_cols(p),
                       " FROM decisions WHERE id = %s AND org_id = %s", NULL);
}

/* Newest first, below the cursor; every filter is "(%s IS NULL OR ...)" so one statement serves
 * any combination, and the (org_id, id) index drives the scan whatever the filters (forced: on a
 * small table the optimiser may prefer another index and a sort, which does not stay cheap). */
static const char *decision_list_sql(apr_pool_t *p, int rows)
{
    return apr_psprintf(p, "SELECT %s FROM decisions FORCE INDEX (PRIMARY)"
        " WHERE org_id = %%s AND id < %%s"
        " AND created_at >= %%s AND created_at <= %%s"
        " AND (%%s IS NULL OR provider = %%s) AND (%%s IS NULL OR model = %%s)"
        " AND (%%s IS NULL OR route = %%s) AND (%%s IS NULL OR session_id = %%s)"
        " AND (%%s IS NULL OR status = %%s) AND (%%s IS NULL OR cache_hit = %%s)"
        " AND confidence >= %%s AND confidence <= %%s"
        " ORDER BY id DESC LIMIT %d", decision_cols(p), rows);
}

static const char *audit_list_sql(apr_pool_t *p, int rows)
{
    return apr_psprintf(p, "SELECT id, org_id, actor, action, target, before_json, after_json,"
        " created_at FROM audit_events FORCE INDEX (ix_audit_org_id)"
        " WHERE org_id = %%s AND id < %%s"
        " AND created_at >= %%s AND created_at <= %%s"
        " AND (%%s IS NULL OR action = %%s) AND (%%s IS NULL OR actor = %%s)"
        " ORDER BY id DESC LIMIT %d", rows);
}

/* The learning router's statistics (floopy_learn.c) and the outcomes that feed them. */
static void learning_statements(server_rec *s,
                                void (*prepare)(server_rec *, const char *, const char *))
{
    prepare(s, "SELECT org_id, route, model_id, n, s, ss, n2 FROM arm_quality",
            FLOOPY_SQL_ARM_QUALITY_ALL);
    prepare(s, "SELECT n, s, ss, n2 FROM arm_quality WHERE org_id = %s AND route = %s "
               "AND model_id = %s FOR UPDATE", FLOOPY_SQL_ARM_QUALITY_LOCK);
    prepare(s, "INSERT INTO arm_quality (org_id, route, model_id, n, s, ss, n2, updated_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE n = VALUES(n), "
               "s = VALUES(s), ss = VALUES(ss), n2 = VALUES(n2), updated_at = VALUES(updated_at)",
            FLOOPY_SQL_ARM_QUALITY_PUT);
    prepare(s, "SELECT org_id, route, model_id, SUM(requests), SUM(priced), SUM(cost_usd), "
               "SUM(latency_ms), SUM(tokens) FROM arm_usage_daily "
               "WHERE day >= CURRENT_DATE - INTERVAL 7 DAY GROUP BY org_id, route, model_id",
            FLOOPY_SQL_ARM_USAGE_RECENT);
    prepare(s, "INSERT INTO arm_usage_daily (org_id, route, model_id, day, requests, priced, "
               "cost_usd, latency_ms, tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
               "ON DUPLICATE KEY UPDATE requests = requests + VALUES(requests), "
               "priced = priced + VALUES(priced), cost_usd = cost_usd + VALUES(cost_usd), "
               "latency_ms = latency_ms + VALUES(latency_ms), tokens = tokens + VALUES(tokens)",
            FLOOPY_SQL_ARM_USAGE_ADD);
    prepare(s, "SELECT model_id, quality, weight FROM benchmark_priors", FLOOPY_SQL_BENCHMARK_PRIORS);
    prepare(s, "SELECT id FROM organizations WHERE pooling_opt_out = 1", FLOOPY_SQL_OPTED_OUT);
    prepare(s, "SELECT org_id, max_regression, max_cost_increase, confidence_threshold "
               "FROM org_constraints", FLOOPY_SQL_CONSTRAINTS_ALL);
    prepare(s, "SELECT route, CONCAT(provider, '/', model), COUNT(*) FROM decisions "
               "WHERE org_id = %s AND session_id = %s AND pinned = 0 AND provider IS NOT NULL "
               "GROUP BY route, provider, model ORDER BY route, provider, model", FLOOPY_SQL_SESSION_ARMS);
    prepare(s, "SELECT route, CONCAT(provider, '/', model), pinned FROM decisions "
               "WHERE id = %s AND org_id = %s AND provider IS NOT NULL", FLOOPY_SQL_DECISION_ARM);
    prepare(s, "SELECT route, model_id, weight, reward FROM feedback_credits "
               "WHERE feedback_id = %s AND org_id = %s ORDER BY route, model_id", FLOOPY_SQL_CREDITS_OF);
    prepare(s, "INSERT INTO feedback_credits (feedback_id, org_id, route, model_id, weight, reward) "
               "VALUES (%s, %s, %s, %s, %s, %s)", FLOOPY_SQL_CREDIT_INS);
    prepare(s, "INSERT INTO judge_scores (id, decision_id, org_id, judge_model, subject_model, "
               "relevance, coherence, helpfulness, safety, latency_ms, created_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", FLOOPY_SQL_JUDGE_INS);
    /* what a decision's outcome signals are: its session's active NPS and its own scores */
    prepare(s, "SELECT f.id, f.kind, f.score, f.comment, f.created_at, c.weight FROM feedback f "
               "LEFT JOIN feedback_credits c ON c.feedback_id = f.id AND c.route = %s "
               "AND c.model_id = %s WHERE f.org_id = %s AND f.replaced_by IS NULL AND "
               "((f.kind = 'session' AND f.session_id = %s) OR "
               "(f.kind = 'decision' AND f.decision_id = %s)) ORDER BY f.id",
            FLOOPY_SQL_OUTCOMES_FEEDBACK);
    prepare(s, "SELECT judge_model, subject_model, relevance, coherence, helpfulness, safety, "
               "created_at FROM judge_scores WHERE org_id = %s AND decision_id = %s ORDER BY id",
            FLOOPY_SQL_OUTCOMES_JUDGE);
    /* Baseline vs Floopy (docs/methodology/baseline-vs-floopy.md): routed, answered, priced
     * requests by route and model, and the counts of what the figure leaves out */
    prepare(s, "SELECT route, CONCAT(provider, '/', model), COUNT(*), SUM(COALESCE(input_tokens, 0)), "
               "SUM(COALESCE(output_tokens, 0)), SUM(COALESCE(cached_tokens, 0)), SUM(cost_usd) "
               "FROM decisions WHERE org_id = %s AND created_at >= %s AND created_at <= %s "
               "AND pinned = 0 AND status = 'ok' AND cache_hit = 0 AND cost_usd IS NOT NULL "
               "GROUP BY route, provider, model ORDER BY route, provider, model", FLOOPY_SQL_SAVINGS);
    prepare(s, "SELECT SUM(pinned = 1), SUM(pinned = 0 AND status <> 'ok'), "
               "SUM(pinned = 0 AND status = 'ok' AND cache_hit = 1), "
               "SUM(pinned = 0 AND status = 'ok' AND cache_hit = 0 AND cost_usd IS NULL) "
               "FROM decisions WHERE org_id = %s AND created_at >= %s AND created_at <= %s",
            FLOOPY_SQL_SAVINGS_EXCLUDED);
}

/* Shadow experiments (floopy_experiments.c, floopy_shadow.c). What the API shows of one comes
 * from the view experiment_outcomes, the same numbers an admin's report reads. */
#define EXPERIMENT_COLS "id, org_id, route, candidate, sample_rate, sample_cap, status, sampled, " \
    "created_by, created_at, stopped_at, stopped_by, compared, candidate_errors, judged, " \
    "live_quality, live_quality_se, candidate_quality, candidate_quality_se, quality_delta, " \
    "quality_delta_se, costed, cost_delta_usd, live_cost_usd, candidate_cost_usd, timed, " \
    "latency_delta_ms, live_latency_ms, candidate_latency_ms"

static void experiment_statements(server_rec *s, apr_pool_t *p,
                                  void (*prepare)(server_rec *, const char *, const char *))
{
    int i;
    /* refuses (no row) while another experiment of the organisation runs on the route; the
     * unique key on running_route backs it against a race */
    prepare(s, "INSERT INTO experiments (id, org_id, route, candidate, sample_rate, sample_cap, "
               "status, created_by, created_at) SELECT %s, %s, %s, %s, %s, %s, 'running', %s, %s "
               "FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM experiments WHERE org_id = %s "
               "AND route = %s AND status = 'running')", FLOOPY_SQL_EXPERIMENT_INS);
    prepare(s, "SELECT " EXPERIMENT_COLS " FROM experiment_outcomes WHERE id = %s AND org_id = %s",
            FLOOPY_SQL_EXPERIMENT_GET);
    for (i = 0; i < FLOOPY_NPAGE; i++) {
        prepare(s, apr_psprintf(p, "SELECT " EXPERIMENT_COLS " FROM experiment_outcomes"
                                   " WHERE org_id = %%s AND id < %%s"
                                   " AND (%%s IS NULL OR status = %%s)"
                                   " AND (%%s IS NULL OR route = %%s)"
                                   " ORDER BY id DESC LIMIT %d", floopy_page_sizes[i]),
                apr_psprintf(p, FLOOPY_SQL_EXPERIMENT_LIST "%d", floopy_page_sizes[i]));
    }
    prepare(s, "UPDATE experiments SET status = 'stopped', stopped_at = %s, stopped_by = %s "
               "WHERE id = %s AND org_id = %s AND status = 'running'", FLOOPY_SQL_EXPERIMENT_STOP);
    prepare(s, "SELECT id, org_id, route, candidate, sample_rate, sample_cap, sampled "
               "FROM experiments WHERE status = 'running'", FLOOPY_SQL_EXPERIMENTS_RUNNING);
    /* one sample taken, or none (no row) once the cap is reached or the experiment stopped; the
     * sample that reaches the cap completes it. sampled is assigned last: the conditions read
     * the count before this sample whichever order the server assigns in. */
    prepare(s, "UPDATE experiments SET stopped_at = IF(sampled + 1 >= sample_cap, %s, stopped_at), "
               "status = IF(sampled + 1 >= sample_cap, 'completed', status), "
               "sampled = sampled + 1 WHERE id = %s AND org_id = %s AND status = 'running' "
               "AND sampled < sample_cap", FLOOPY_SQL_EXPERIMENT_TAKE);
    prepare(s, "INSERT INTO experiment_results (id, experiment_id, decision_id, org_id, live_model, "
               "candidate_model, judge_model, live_relevance, live_coherence, live_helpfulness, "
               "live_safety, candidate_relevance, candidate_coherence, candidate_helpfulness, "
               "candidate_safety, live_cost_usd, candidate_cost_usd, live_latency_ms, "
               "candidate_latency_ms, live_tokens, candidate_tokens, candidate_error, judge_note, "
               "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
               "%s, %s, %s, %s, %s, %s, %s, %s, %s)", FLOOPY_SQL_EXPERIMENT_RESULT_INS);
    prepare(s, "SELECT experiment_id, judge_model, live_model, live_quality, live_cost_usd, "
               "live_latency_ms, live_tokens, candidate_model, candidate_quality, "
               "candidate_cost_usd, candidate_latency_ms, candidate_tokens, candidate_error, "
               "judge_note, created_at FROM experiment_result_pairs "
               "WHERE org_id = %s AND decision_id = %s ORDER BY id", FLOOPY_SQL_OUTCOMES_EXPERIMENT);
}

void floopy_store_prepare(server_rec *s, apr_pool_t *p)
{
    void (*prepare)(server_rec *, const char *, const char *) =
        APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    int i;
    if (!prepare) return;
    for (i = 0; i < FLOOPY_NBATCH; i++) {
        prepare(s, decision_insert_sql(p, floopy_batch_sizes[i]), batch_sizes_labels[i]);
    }
    prepare(s, decision_select_sql(p), FLOOPY_SQL_DECISION_GET);
    for (i = 0; i < FLOOPY_NPAGE; i++) {
        prepare(s, decision_list_sql(p, floopy_page_sizes[i]),
                apr_psprintf(p, FLOOPY_SQL_DECISION_LIST "%d", floopy_page_sizes[i]));
        prepare(s, audit_list_sql(p, floopy_page_sizes[i]),
                apr_psprintf(p, FLOOPY_SQL_AUDIT_LIST "%d", floopy_page_sizes[i]));
    }
    /* oldest first from a cursor, one batch at a time: an export of any size in constant memory */
    prepare(s, apr_psprintf(p, "SELECT %s FROM decisions FORCE INDEX (PRIMARY)"
                               " WHERE org_id = %%s AND id > %%s"
                               " AND created_at >= %%s AND created_at <= %%s ORDER BY id LIMIT %d",
                            decision_cols(p), FLOOPY_EXPORT_BATCH), FLOOPY_SQL_DECISION_EXPORT);
    learning_statements(s, prepare);
    experiment_statements(s, p, prepare);
    prepare(s, "SELECT k.id, k.org_id, k.role, o.plan FROM api_keys k "
               "JOIN organizations o ON o.id = k.org_id "
               "WHERE k.key_hash = %s AND k.revoked_at IS NULL", FLOOPY_SQL_KEY_LOOKUP);
    prepare(s, "INSERT INTO audit_events (id, org_id, actor, action, target, before_json, "
               "after_json, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            FLOOPY_SQL_AUDIT_INS);
    prepare(s, "INSERT INTO organizations (id, name, plan, pooling_opt_out, created_at) "
               "VALUES (%s, %s, %s, %s, %s)", FLOOPY_SQL_ORG_INS);
    prepare(s, "SELECT id, name, plan, pooling_opt_out, created_at FROM organizations "
               "ORDER BY created_at, id", FLOOPY_SQL_ORG_LIST);
    prepare(s, "SELECT id, name, plan, pooling_opt_out, created_at FROM organizations "
               "WHERE id = %s", FLOOPY_SQL_ORG_GET);
    prepare(s, "INSERT INTO api_keys (id, org_id, name, key_hash, key_prefix, role, created_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s)", FLOOPY_SQL_KEY_INS);
    prepare(s, "SELECT id, org_id, name, role, key_prefix, created_at, revoked_at FROM api_keys "
               "WHERE org_id = %s ORDER BY created_at, id", FLOOPY_SQL_KEY_LIST);
    prepare(s, "SELECT id, org_id, name, role, key_prefix, created_at, revoked_at FROM api_keys "
               "WHERE id = %s", FLOOPY_SQL_KEY_GET);
    prepare(s, "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
            FLOOPY_SQL_KEY_REVOKE);
    prepare(s, "UPDATE organizations SET plan = %s, pooling_opt_out = %s WHERE id = %s",
            FLOOPY_SQL_ORG_UPDATE);
    prepare(s, "SELECT max_regression, max_cost_increase, confidence_threshold, updated_at,"
               " updated_by FROM org_constraints WHERE org_id = %s", FLOOPY_SQL_CONSTRAINTS_GET);
    /* affects a row even when the values do not change: updated_at always moves */
    prepare(s, "INSERT INTO org_constraints (org_id, max_regression, max_cost_increase,"
               " confidence_threshold, updated_at, updated_by) VALUES (%s, %s, %s, %s, %s, %s)"
               " ON DUPLICATE KEY UPDATE max_regression = VALUES(max_regression),"
               " max_cost_increase = VALUES(max_cost_increase),"
               " confidence_threshold = VALUES(confidence_threshold),"
               " updated_at = VALUES(updated_at), updated_by = VALUES(updated_by)",
            FLOOPY_SQL_CONSTRAINTS_PUT);
    prepare(s, "SELECT id FROM decisions FORCE INDEX (ix_decisions_org_session)"
               " WHERE org_id = %s AND session_id = %s LIMIT 1", FLOOPY_SQL_SESSION_SEEN);
    prepare(s, "INSERT INTO feedback (id, org_id, api_key_id, kind, session_id, decision_id, score,"
               " comment, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            FLOOPY_SQL_FEEDBACK_INS);
    prepare(s, "SELECT id FROM feedback WHERE org_id = %s AND kind = 'session' AND session_id = %s"
               " AND replaced_by IS NULL", FLOOPY_SQL_FEEDBACK_ACTIVE);
    prepare(s, "UPDATE feedback SET replaced_by = %s WHERE org_id = %s AND kind = 'session'"
               " AND session_id = %s AND replaced_by IS NULL AND id <> %s",
            FLOOPY_SQL_FEEDBACK_REPLACE);
    prepare(s, "SELECT provider_type, model, input_per_mtok, output_per_mtok, "
               "cached_input_per_mtok FROM model_prices", FLOOPY_SQL_PRICES);
}

