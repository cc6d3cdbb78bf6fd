/* The shared limit table: keys compared whole, no eviction of a live counter, and exact counts
 * when many threads and two processes hit one key at once. */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <apr_thread_proc.h>
#include "fl_test.h"
#include "fl_limit_table.h"
#include "fl_spinlock.h"

#define SEC APR_USEC_PER_SEC
#define NOW ((apr_time_t)1767225600 * SEC)
#define THREADS 16

static fl_limit_table_t *table_in(apr_pool_t *p, apr_size_t n)
{
    fl_limit_table_t *t = NULL;
    CHECK(fl_limit_table_init(&t, apr_palloc(p, fl_limit_table_size(n)), n) == APR_SUCCESS);
    return t;
}

static int admitted(fl_limit_table_t *t, const fl_limit_key_t *k, const fl_limit_rate_t *r,
                    apr_time_t now)
{
    fl_limit_result_t res;
    return fl_limit_table_admit(t, k, r, now, &res) == APR_SUCCESS && res.admitted;
}

static void keys(apr_pool_t *p)
{
    fl_limit_table_t *t = table_in(p, 8), *again = NULL;
    fl_limit_rate_t one = { 1, 0, 0 };
    fl_limit_key_t a, b, twin, k[9];
    char id[FL_LIMIT_ID_MAX + 2];
    void *mem;
    int i;

    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    CHECK(fl_limit_key_make(&a, FL_LIMIT_KEY_RPM, id) == APR_EINVAL);
    CHECK(fl_limit_key_make(&a, FL_LIMIT_KEY_RPM, "") == APR_EINVAL);
    id[FL_LIMIT_ID_MAX] = '\0';
    CHECK(fl_limit_key_make(&a, FL_LIMIT_KEY_RPM, id) == APR_SUCCESS);

    /* the same id in two scopes is two counters */
    CHECK(fl_limit_key_make(&a, FL_LIMIT_KEY_RPM, "org-1") == APR_SUCCESS);
    CHECK(fl_limit_key_make(&b, FL_LIMIT_ORG_RPM, "org-1") == APR_SUCCESS);
    CHECK(a.hash != b.hash);
    CHECK(admitted(t, &a, &one, NOW) && !admitted(t, &a, &one, NOW));
    CHECK(admitted(t, &b, &one, NOW));

    /* A key whose 64-bit hash is another's (forged here; FNV is no defence against a chosen
     * id) still gets a counter of its own: the whole key is compared. */
    CHECK(fl_limit_key_make(&twin, FL_LIMIT_KEY_RPM, "org-2") == APR_SUCCESS);
    twin.hash = a.hash;
    CHECK(admitted(t, &twin, &one, NOW));
    CHECK(!admitted(t, &twin, &one, NOW) && !admitted(t, &a, &one, NOW));

    /* One bucket of 8: with every slot holding a live counter a ninth key is refused, never
     * given another's counter; once a counter is back to idle its slot goes to the new key. */
    t = table_in(p, 8);
    for (i = 0; i < 9; i++) {
        id[0] = (char)('a' + i), id[1] = '\0';
        CHECK(fl_limit_key_make(&k[i], FL_LIMIT_KEY_TPM, id) == APR_SUCCESS);
    }
    for (i = 0; i < 8; i++) CHECK(admitted(t, &k[i], &one, NOW + i));
    {
        fl_limit_result_t res;
        CHECK(fl_limit_table_admit(t, &k[8], &one, NOW + 8, &res) == APR_ENOSPC);
    }
    /* a minute after the first, k[0] has leaked empty: k[8] takes its slot, the others keep
     * their counts */
    CHECK(admitted(t, &k[8], &one, NOW + FL_LIMIT_MINUTE));
    for (i = 1; i < 8; i++) CHECK(!admitted(t, &k[i], &one, NOW + FL_LIMIT_MINUTE));
    CHECK(!admitted(t, &k[8], &one, NOW + FL_LIMIT_MINUTE));
    {
        fl_limit_result_t res;
        CHECK(fl_limit_table_admit(t, &k[0], &one, NOW + FL_LIMIT_MINUTE, &res) == APR_ENOSPC);
    }

    /* attach finds the table wherever it is mapped, and only a table */
    mem = t;
    CHECK(fl_limit_table_attach(&again, mem, fl_limit_table_size(8)) == APR_SUCCESS);
    CHECK(again == t);
    CHECK(fl_limit_table_attach(&again, mem, fl_limit_table_size(8) - 1) == APR_EINVAL);
    mem = apr_pcalloc(p, fl_limit_table_size(8));
    CHECK(fl_limit_table_attach(&again, mem, fl_limit_table_size(8)) == APR_EINVAL);
}

static void spend(apr_pool_t *p)
{
    fl_limit_table_t *t = table_in(p, 8);
    fl_limit_budget_t day = { 1000, FL_LIMIT_DAY };
    fl_limit_rate_t none = { 0, 0, 0 };
    fl_limit_key_t k;
    fl_limit_ticket_t tk;
    fl_limit_result_t res;
    CHECK(fl_limit_key_make(&k, FL_LIMIT_ORG_SPEND_DAY, "org-1") == APR_SUCCESS);
    CHECK(fl_limit_table_spend_check(t, &k, &day, NOW, &res) == APR_SUCCESS && res.admitted);
    CHECK(fl_limit_table_spend_add(t, &k, &day, 999, NOW, &res) == APR_SUCCESS);
    CHECK(res.admitted && res.remaining == 1);
    CHECK(fl_limit_table_spend_add(t, &k, &day, 1, NOW, &res) == APR_SUCCESS && !res.admitted);
    CHECK(fl_limit_table_spend_check(t, &k, &day, NOW + SEC, &res) == APR_SUCCESS);
    CHECK(!res.admitted && res.retry_after == 86400 * SEC - SEC);
    /* a refusal for good leaves a slot alone: it must not pass for idle */
    CHECK(fl_limit_key_make(&k, FL_LIMIT_KEY_TPM, "key-1") == APR_SUCCESS);
    CHECK(fl_limit_table_reserve(t, &k, &none, 1, 1, NOW, &tk, &res) == APR_SUCCESS);
    CHECK(res.too_large);
}

/* --- many threads, two processes --------------------------------------------------------- */

typedef enum { ADMIT, RESERVE, RESERVE_RECONCILE } mode_e;

typedef struct hammer_t {
    fl_limit_table_t *t;
    const fl_limit_key_t *key;
    fl_limit_rate_t rate;
    mode_e mode;
    int tries;
    const apr_uint64_t *go;               /* when set, start once it is raised */
    apr_uint64_t admitted, tokens, used;   /* requests admitted; tokens reserved; reported */
    int errors;
} hammer_t;

static void *APR_THREAD_FUNC hammer(apr_thread_t *th, void *data)
{
    hammer_t *h = data;
    fl_limit_result_t res;
    fl_limit_ticket_t tk;
    int i;
    while (h->go && !__atomic_load_n(h->go, __ATOMIC_ACQUIRE)) apr_thread_yield();
    for (i = 0; i < h->tries; i++) {
        /* 1 to 97 tokens, different in every thread, so the reservations interleave unevenly */
        apr_uint64_t want = (apr_uint64_t)((i * 31 + (apr_uintptr_t)h) % 97) + 1;
        apr_status_t rv = h->mode == ADMIT
                              ? fl_limit_table_admit(h->t, h->key, &h->rate, NOW, &res)
                              : fl_limit_table_reserve(h->t, h->key, &h->rate, want, 0, NOW,
                                                       &tk, &res);
        if (rv != APR_SUCCESS) h->errors++;
        if (rv != APR_SUCCESS || !res.admitted) continue;
        h->admitted++;
        h->tokens += tk.tokens;
        if (h->mode == RESERVE_RECONCILE) {
            apr_uint64_t used = want / 2;
            if (fl_limit_table_reconcile(h->t, h->key, &h->rate, &tk, used, NOW, &res)
                != APR_SUCCESS) h->errors++;
            h->used += used;
        }
    }
    return NULL;
}

/* THREADS threads of this process on one key; the sums land in *sum. */
static void hammer_threads(apr_pool_t *p, fl_limit_table_t *t, const fl_limit_key_t *key,
                           apr_uint64_t limit, mode_e mode, const apr_uint64_t *go,
                           hammer_t *sum)
{
    apr_thread_t *th[THREADS];
    hammer_t h[THREADS];
    apr_status_t rv;
    int i;
    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < THREADS; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        h[i].t = t, h[i].key = key, h[i].rate.limit = limit;
        h[i].tries = 2000, h[i].mode = mode, h[i].go = go;
        if (apr_thread_create(&th[i], NULL, hammer, &h[i], p) != APR_SUCCESS) sum->errors++;
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&rv, th[i]);
        sum->admitted += h[i].admitted;
        sum->tokens += h[i].tokens;
        sum->used += h[i].used;
        sum->errors += h[i].errors;
    }
}

static apr_uint64_t remaining(fl_limit_table_t *t, const fl_limit_key_t *key, apr_uint64_t limit)
{
    fl_limit_rate_t r = { limit, 0, 0 };
    fl_limit_ticket_t tk;
    fl_limit_result_t res;
    CHECK(fl_limit_table_reserve(t, key, &r, 0, 0, NOW, &tk, &res) == APR_SUCCESS);
    return res.remaining;
}

static void threads(apr_pool_t *p)
{
    fl_limit_table_t *t = table_in(p, 64);
    fl_limit_key_t rpm, tpm, both;
    hammer_t sum;
    CHECK(fl_limit_key_make(&rpm, FL_LIMIT_KEY_RPM, "key-1") == APR_SUCCESS);
    CHECK(fl_limit_key_make(&tpm, FL_LIMIT_KEY_TPM, "key-1") == APR_SUCCESS);
    CHECK(fl_limit_key_make(&both, FL_LIMIT_ORG_TPM, "org-1") == APR_SUCCESS);

    /* 16 threads x 2000 tries at one instant against 100 rpm: exactly 100 */
    hammer_threads(p, t, &rpm, 100, ADMIT, NULL, &sum);
    CHECK(sum.errors == 0);
    CHECK(sum.admitted == 100);
    fprintf(stdout, "limit: %d threads, rpm 100: %" APR_UINT64_T_FMT " admitted\n", THREADS,
            sum.admitted);

    /* tpm 10000: the reservations admitted never add up past it, and what is left is exactly
     * the rest */
    hammer_threads(p, t, &tpm, 10000, RESERVE, NULL, &sum);
    CHECK(sum.errors == 0);
    CHECK(sum.tokens <= 10000);
    CHECK(sum.tokens + remaining(t, &tpm, 10000) == 10000);
    fprintf(stdout, "limit: %d threads, tpm 10000: %" APR_UINT64_T_FMT " tokens reserved\n",
            THREADS, sum.tokens);

    /* reserving and reconciling at once: the bucket holds exactly what was reported used */
    hammer_threads(p, t, &both, 10000, RESERVE_RECONCILE, NULL, &sum);
    CHECK(sum.errors == 0);
    CHECK(sum.used + remaining(t, &both, 10000) == 10000);
    CHECK(sum.admitted > 100);
}

/* Two processes, each with THREADS threads, on one key in an anonymous shared mapping. */
static void processes(apr_uint64_t limit)
{
    apr_size_t size = fl_limit_table_size(64);
    apr_size_t extra = sizeof(apr_uint64_t) * 3;
    void *mem = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    /* after the table: each child's count, and the start flag that lets both go at once */
    apr_uint64_t *counts = (apr_uint64_t *)((char *)mem + size), *go = counts + 2;
    fl_limit_table_t *t = NULL;
    fl_limit_key_t key;
    pid_t pid[2];
    int i, status, clean = 1;
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED) return;
    CHECK(fl_limit_table_init(&t, mem, 64) == APR_SUCCESS);
    CHECK(fl_limit_key_make(&key, FL_LIMIT_ORG_RPM, "org-1") == APR_SUCCESS);
    for (i = 0; i < 2; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            apr_pool_t *cp;
            fl_limit_table_t *mine = NULL;
            hammer_t sum;
            apr_pool_create(&cp, NULL);
            if (fl_limit_table_attach(&mine, mem, size) != APR_SUCCESS) _exit(2);
            hammer_threads(cp, mine, &key, limit, ADMIT, go, &sum);
            counts[i] = sum.admitted;
            _exit(sum.errors ? 1 : 0);
        }
    }
    __atomic_store_n(go, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 2; i++) {
        if (pid[i] < 0 || waitpid(pid[i], &status, 0) != pid[i] || !WIFEXITED(status)
            || WEXITSTATUS(status) != 0) clean = 0;
    }
    CHECK(clean);
    CHECK(counts[0] + counts[1] == limit);
    fprintf(stdout, "limit: 2 processes x %d threads, rpm %" APR_UINT64_T_FMT ": %"
            APR_UINT64_T_FMT " + %" APR_UINT64_T_FMT " admitted\n", THREADS, limit, counts[0],
            counts[1]);
    munmap(mem, size + extra);
}

/* A holder that died inside is taken over; a live one is waited for, then given up on. */
static void spinlock(void)
{
    fl_spinlock_t lock = 0;
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    CHECK(dead > 0 && waitpid(dead, NULL, 0) == dead);
    lock = (fl_spinlock_t)dead;
    CHECK(fl_spin_lock(&lock) == APR_SUCCESS);
    CHECK(lock == (fl_spinlock_t)getpid());
    fl_spin_unlock(&lock);
    CHECK(lock == 0);
    lock = (fl_spinlock_t)getppid();
    CHECK(fl_spin_lock(&lock) == APR_EBUSY);
    lock = (fl_spinlock_t)getpid();
    CHECK(fl_spin_lock(&lock) == APR_EBUSY);
}

void test_limit_table(apr_pool_t *p)
{
    keys(p);
    spend(p);
    threads(p);
    processes(100);
    processes(20000);            /* enough that both processes are still at it together */
    spinlock();
}
