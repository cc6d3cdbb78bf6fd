/* Unit tests of the session table (fl_sticky): colliding sessions, and many threads of two
 * processes putting and reading at once over shared memory, as httpd's children do. A read
 * may miss (a collision evicted the session, a writer held the slot) but must never give one
 * session the model another one put. */
#include <stdlib.h>
#include <unistd.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include "fl_test.h"
#include "fl_learn.h"
#include "fl_rng.h"

#define ORGS 2
#define ROUTES 2
#define SESSIONS 32
#define KEYS (ORGS * ROUTES * SESSIONS)
#define SLOTS 16                 /* far fewer than the keys: every slot is fought over */
#define THREADS 4
#define ROUNDS 500000

static const char *orgs[ORGS] = { "org-1", "org-2" };
static const char *routes[ROUTES] = { "auto", "learn" };

/* Every key (org, route, session) has a model of its own, so a read is checked whole. */
typedef struct keys_t {
    const char *session[SESSIONS];
    const char *model[KEYS];
    apr_uint64_t hash[KEYS];
} keys_t;

typedef struct tally_t {
    long gets, hits, wrong, puts;
} tally_t;

typedef struct worker_t {
    fl_sticky_t *st;
    const keys_t *k;
    apr_time_t now;
    apr_uint64_t seed;
    tally_t t;
} worker_t;

static void keys_make(apr_pool_t *p, keys_t *k)
{
    int o, r, s;
    for (s = 0; s < SESSIONS; s++) k->session[s] = apr_psprintf(p, "session-%d", s);
    for (o = 0; o < ORGS; o++) {
        for (r = 0; r < ROUTES; r++) {
            for (s = 0; s < SESSIONS; s++) {
                int i = (o * ROUTES + r) * SESSIONS + s;
                k->model[i] = apr_psprintf(p, "prov/model-%d-%d-%d", o, r, s);
                k->hash[i] = fl_hash64(k->model[i], strlen(k->model[i]), 0);
            }
        }
    }
}

static apr_uint64_t xorshift(apr_uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void work(worker_t *w)
{
    int n;
    for (n = 0; n < ROUNDS; n++) {
        apr_uint64_t r = xorshift(&w->seed);
        int i = (int)(r % KEYS), s = i % SESSIONS, o = i / (ROUTES * SESSIONS);
        int rt = (i / SESSIONS) % ROUTES;
        if ((r >> 32) % 4 == 0) {
            fl_sticky_put(w->st, orgs[o], routes[rt], w->k->session[s], w->k->model[i], w->now);
            w->t.puts++;
        }
        else {
            apr_uint64_t h = fl_sticky_get(w->st, orgs[o], routes[rt], w->k->session[s], w->now);
            w->t.gets++;
            if (h == w->k->hash[i]) w->t.hits++;
            else if (h) w->t.wrong++;
        }
    }
}

static void *APR_THREAD_FUNC work_thread(apr_thread_t *t, void *data)
{
    work(data);
    return NULL;
}

/* THREADS threads over the table; their tallies summed into *sum. */
static void hammer(apr_pool_t *p, fl_sticky_t *st, const keys_t *k, apr_time_t now,
                   apr_uint64_t seed, tally_t *sum)
{
    worker_t w[THREADS];
    apr_thread_t *th[THREADS];
    apr_status_t rv;
    int i;
    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].st = st;
        w[i].k = k;
        w[i].now = now;
        w[i].seed = seed * 7919 + i + 1;
        if (apr_thread_create(&th[i], NULL, work_thread, &w[i], p) != APR_SUCCESS) th[i] = NULL;
    }
    for (i = 0; i < THREADS; i++) {
        if (!th[i]) {
            sum->wrong = -1;     /* a thread that did not start fails the test */
            continue;
        }
        apr_thread_join(&rv, th[i]);
        sum->gets += w[i].t.gets;
        sum->hits += w[i].t.hits;
        sum->wrong += w[i].t.wrong;
        sum->puts += w[i].t.puts;
    }
}

/* A table of one slot: each session evicts the other, and neither reads the other's model. */
static void collisions(apr_pool_t *p)
{
    fl_sticky_t *st;
    apr_time_t now = apr_time_now();
    CHECK(fl_sticky_create(&st, p, 1, apr_time_from_sec(60)) == APR_SUCCESS);
    fl_sticky_put(st, "o", "auto", "a", "p/one", now);
    CHECK(fl_sticky_get(st, "o", "auto", "a", now) == fl_hash64("p/one", 5, 0));
    fl_sticky_put(st, "o", "auto", "b", "p/two", now);
    CHECK(fl_sticky_get(st, "o", "auto", "a", now) == 0);
    CHECK(fl_sticky_get(st, "o", "auto", "b", now) == fl_hash64("p/two", 5, 0));
    /* the same session id in another organisation or route is another key */
    CHECK(fl_sticky_get(st, "o2", "auto", "b", now) == 0);
    CHECK(fl_sticky_get(st, "o", "auto2", "b", now) == 0);
    /* the parts of the key are kept apart: ("ab", "c") is not ("a", "bc") */
    fl_sticky_put(st, "ab", "c", "s", "p/one", now);
    CHECK(fl_sticky_get(st, "a", "bc", "s", now) == 0);
    /* a put over a live session gives it its new model */
    fl_sticky_put(st, "ab", "c", "s", "p/two", now);
    CHECK(fl_sticky_get(st, "ab", "c", "s", now) == fl_hash64("p/two", 5, 0));
}

/* Threads of this process and of a forked child on one table in shared memory at once. */
static void concurrent(apr_pool_t *p)
{
    keys_t k;
    apr_shm_t *shm;
    apr_size_t size = fl_sticky_size(SLOTS);
    fl_sticky_t *st;
    tally_t *child, mine;
    apr_proc_t proc;
    apr_exit_why_e why;
    apr_status_t rv;
    int code = -1;
    apr_time_t now = apr_time_now();

    keys_make(p, &k);
    /* the table, then the child's tally, in one anonymous segment both processes map */
    CHECK(apr_shm_create(&shm, size + sizeof(tally_t), NULL, p) == APR_SUCCESS);
    st = fl_sticky_init(apr_shm_baseaddr_get(shm), SLOTS, apr_time_from_sec(60));
    child = (tally_t *)((char *)apr_shm_baseaddr_get(shm) + size);
    memset(child, 0, sizeof(*child));

    rv = apr_proc_fork(&proc, p);
    if (rv == APR_INCHILD) {
        tally_t t;
        hammer(p, st, &k, now, 2, &t);
        *child = t;
        _exit(0);
    }
    CHECK(rv == APR_INPARENT);
    hammer(p, st, &k, now, 1, &mine);
    if (rv == APR_INPARENT) {
        CHECK(apr_proc_wait(&proc, &code, &why, APR_WAIT) == APR_CHILD_DONE);
        CHECK(why == APR_PROC_EXIT && code == 0);
    }
    CHECK(mine.wrong == 0);
    CHECK(child->wrong == 0);
    /* the table did its job under the fight: most reads found their key's own model */
    CHECK(mine.gets > 0 && child->gets > 0);
    CHECK(mine.hits > 0 && child->hits > 0);
    if (mine.wrong || child->wrong || !mine.hits || !child->hits) {
        fprintf(stderr, "sticky: parent %ld gets %ld hits %ld wrong, child %ld gets %ld hits "
                "%ld wrong\n", mine.gets, mine.hits, mine.wrong, child->gets, child->hits,
                child->wrong);
    }
    apr_shm_destroy(shm);
}

void test_sticky(apr_pool_t *p)
{
    collisions(p);
    concurrent(p);
}
