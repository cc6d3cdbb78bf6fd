/* Labels of the prepared statements (floopy_store.c holds their SQL). */
#ifndef FLOOPY_STORE_H
#define FLOOPY_STORE_H

#define FLOOPY_SQL_DECISION_INS "floopy_decision_ins_"
#define FLOOPY_SQL_DECISION_GET "floopy_decision_get"
#define FLOOPY_SQL_KEY_LOOKUP   "floopy_key_lookup"
#define FLOOPY_SQL_AUDIT_INS    "floopy_audit_ins"
#define FLOOPY_SQL_ORG_INS      "floopy_org_ins"
#define FLOOPY_SQL_ORG_LIST     "floopy_org_list"
#define FLOOPY_SQL_ORG_GET      "floopy_org_get"
#define FLOOPY_SQL_KEY_INS      "floopy_key_ins"
#define FLOOPY_SQL_KEY_LIST     "floopy_key_list"
#define FLOOPY_SQL_KEY_GET      "floopy_key_get"
#define FLOOPY_SQL_KEY_REVOKE   "floopy_key_revoke"
#define FLOOPY_SQL_PRICES       "floopy_prices"
#define FLOOPY_SQL_ORG_UPDATE   "floopy_org_update"
#define FLOOPY_SQL_SESSION_SEEN "floopy_session_seen"
#define FLOOPY_SQL_CONSTRAINTS_GET "floopy_constraints_get"
#define FLOOPY_SQL_CONSTRAINTS_PUT "floopy_constraints_put"
#define FLOOPY_SQL_FEEDBACK_INS "floopy_feedback_ins"
#define FLOOPY_SQL_FEEDBACK_ACTIVE "floopy_feedback_active"
#define FLOOPY_SQL_FEEDBACK_REPLACE "floopy_feedback_replace"
#define FLOOPY_SQL_DECISION_LIST "floopy_decision_list_"   /* + page size */
#define FLOOPY_SQL_AUDIT_LIST   "floopy_audit_list_"       /* + page size */
#define FLOOPY_SQL_DECISION_EXPORT "floopy_decision_export"
#define FLOOPY_SQL_ARM_QUALITY_ALL "floopy_arm_quality_all"
#define FLOOPY_SQL_ARM_QUALITY_LOCK "floopy_arm_quality_lock"
#define FLOOPY_SQL_ARM_QUALITY_PUT "floopy_arm_quality_put"
#define FLOOPY_SQL_ARM_USAGE_RECENT "floopy_arm_usage_recent"
#define FLOOPY_SQL_ARM_USAGE_ADD "floopy_arm_usage_add"
#define FLOOPY_SQL_BENCHMARK_PRIORS "floopy_benchmark_priors"
#define FLOOPY_SQL_OPTED_OUT    "floopy_opted_out"
#define FLOOPY_SQL_CONSTRAINTS_ALL "floopy_constraints_all"
#define FLOOPY_SQL_SESSION_ARMS "floopy_session_arms"
#define FLOOPY_SQL_DECISION_ARM "floopy_decision_arm"
#define FLOOPY_SQL_CREDITS_OF   "floopy_credits_of"
#define FLOOPY_SQL_CREDIT_INS   "floopy_credit_ins"
#define FLOOPY_SQL_JUDGE_INS    "floopy_judge_ins"
#define FLOOPY_SQL_OUTCOMES_FEEDBACK "floopy_outcomes_feedback"
#define FLOOPY_SQL_OUTCOMES_JUDGE "floopy_outcomes_judge"
#define FLOOPY_SQL_SAVINGS      "floopy_savings"
#define FLOOPY_SQL_SAVINGS_EXCLUDED "floopy_savings_excluded"
#define FLOOPY_SQL_EXPERIMENT_INS "floopy_experiment_ins"
#define FLOOPY_SQL_EXPERIMENT_GET "floopy_experiment_get"
#define FLOOPY_SQL_EXPERIMENT_LIST "floopy_experiment_list_"   /* + page size */
#define FLOOPY_SQL_EXPERIMENT_STOP "floopy_experiment_stop"
#define FLOOPY_SQL_EXPERIMENTS_RUNNING "floopy_experiments_running"
#define FLOOPY_SQL_EXPERIMENT_TAKE "floopy_experiment_take"
#define FLOOPY_SQL_EXPERIMENT_RESULT_INS "floopy_experiment_result_ins"
#define FLOOPY_SQL_OUTCOMES_EXPERIMENT "floopy_outcomes_experiment"

/* The columns of an experiment as GET /experiments shows it (view experiment_outcomes), in the
 * order FLOOPY_SQL_EXPERIMENT_GET and _LIST select them. */
enum {
    FLOOPY_XC_ID, FLOOPY_XC_ORG, FLOOPY_XC_ROUTE, FLOOPY_XC_CANDIDATE, FLOOPY_XC_RATE,
    FLOOPY_XC_CAP, FLOOPY_XC_STATUS, FLOOPY_XC_SAMPLED, FLOOPY_XC_CREATED_BY,
    FLOOPY_XC_CREATED_AT, FLOOPY_XC_STOPPED_AT, FLOOPY_XC_STOPPED_BY, FLOOPY_XC_COMPARED,
    FLOOPY_XC_CAND_ERRORS, FLOOPY_XC_JUDGED, FLOOPY_XC_LIVE_Q, FLOOPY_XC_LIVE_Q_SE,
    FLOOPY_XC_CAND_Q, FLOOPY_XC_CAND_Q_SE, FLOOPY_XC_DELTA_Q, FLOOPY_XC_DELTA_Q_SE,
    FLOOPY_XC_COSTED, FLOOPY_XC_COST_DELTA, FLOOPY_XC_LIVE_COST, FLOOPY_XC_CAND_COST,
    FLOOPY_XC_TIMED, FLOOPY_XC_LAT_DELTA, FLOOPY_XC_LIVE_LAT, FLOOPY_XC_CAND_LAT,
    FLOOPY_XC_N
};

/* Page sizes a list statement is prepared for (a page asks for one row more than it shows, to
 * know whether another page follows): the smallest that holds limit + 1 is used. */
#define FLOOPY_NPAGE 5
extern const int floopy_page_sizes[FLOOPY_NPAGE];
#define FLOOPY_EXPORT_BATCH 1000

/* Multi-row insert statements exist for these batch sizes, largest first. */
#define FLOOPY_NBATCH 5
extern const int floopy_batch_sizes[FLOOPY_NBATCH];
const char *floopy_batch_label(int i);

#endif
