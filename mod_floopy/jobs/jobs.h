/* The child's background work, off the request path: one worker thread per child runs jobs from
 * a bounded queue (queue.c); a job may ask a model for an answer (ask.c). The judge (judge.c)
 * and shadow experiments (shadow.c) are its users today; retention and spool replay later. */
#ifndef FLOOPY_JOBS_H
#define FLOOPY_JOBS_H

#include <jansson.h>

#include "floopy_module.h"
#include "fl_decision.h"
#include "fl_error.h"
#include "fl_openai.h"

/* --- the queue (queue.c) --- */
apr_status_t floopy_jobs_start(floopy_jobs_t **pJ, apr_pool_t *pchild, server_rec *s);
/* A job: run(s, pool, baton) is called on the worker thread, then pool is destroyed. pool must be
 * unmanaged; it is the worker's from here on, also when the queue is full (APR_EAGAIN: the job
 * is dropped, nothing ran). Never blocks. */
typedef void floopy_job_fn(server_rec *s, apr_pool_t *pool, void *baton);
apr_status_t floopy_jobs_submit(floopy_jobs_t *J, apr_pool_t *pool, floopy_job_fn *run,
                                void *baton);

/* --- a model call off the request path (ask.c) --- */
/* One non-streamed exchange with a model: body is an OpenAI chat request, *pout the answer in
 * OpenAI's shape, *pms the exchange's time, *usage what it used (may be NULL). */
fl_error_t *floopy_ask(server_rec *s, apr_pool_t *p, const fl_model_t *m, const char *body,
                       const char **pout, double *pms, fl_usage_t *usage);

/* --- LLM-as-judge (judge.c) --- */
#define FLOOPY_JUDGE_NCRITERIA 4
/* What the judge scores, in the order of the judge_scores columns. */
extern const char *const floopy_judge_criteria[FLOOPY_JUDGE_NCRITERIA];
#define FLOOPY_JUDGE_MAX_BYTES (256 * 1024)   /* a longer conversation or answer is not judged */
/* Whether the decision is in the judge's sample (configured, its route, the draw from its id). */
int floopy_judge_wants(request_rec *r, const fl_decision_t *d);
/* Queues the answer (OpenAI shape) for judging when the decision is in the sample. */
void floopy_judge_offer(request_rec *r, const fl_decision_t *d, const fl_chat_request_t *cr,
                        const char *answer, apr_size_t len);
/* The judge's four scores (1..10) of an answer (OpenAI shape) to a conversation; an error when
 * there is no judge, the answer has no text (code "not_judged"), or the judge gave no usable
 * verdict (code "bad_verdict"). *pms (may be NULL) is the judge's time. */
fl_error_t *floopy_judge_rate(server_rec *s, apr_pool_t *p, json_t *messages,
                              const char *answer, apr_size_t len, double scores[4],
                              double *pms);

/* --- shadow experiments (shadow.c) --- */
/* After a non-streamed answer went out: queues a sampled share of an experiment's route's
 * traffic for its candidate; never blocks the request, never changes its answer. */
void floopy_shadow_offer(request_rec *r, const fl_decision_t *d, const fl_chat_request_t *cr,
                         const char *answer, apr_size_t len);

#endif
