/* A small seedable random source for the router's exploration: the same seed gives the same
 * draws, so a dry run (explain) and the real request it predicts can agree, and the simulation
 * benchmark is repeatable. Not for anything secret. */
#ifndef FL_RNG_H
#define FL_RNG_H

#include <apr.h>

typedef struct fl_rng_t {
    apr_uint64_t s[4];           /* xoshiro256** state */
} fl_rng_t;

void fl_rng_seed(fl_rng_t *g, apr_uint64_t seed);
apr_uint64_t fl_rng_next(fl_rng_t *g);
double fl_rng_uniform(fl_rng_t *g);          /* [0, 1) */
double fl_rng_normal(fl_rng_t *g);           /* mean 0, sd 1 */
double fl_rng_gamma(fl_rng_t *g, double shape); /* scale 1, shape > 0 */
double fl_rng_beta(fl_rng_t *g, double a, double b);

/* A draw in [0, 1) fixed by a string and a salt: the same id always draws alike (sampling a
 * decision for the judge or an experiment, replayably). */
double fl_hash_unit(const char *s, apr_uint64_t salt);

/* A 64-bit hash of bytes (FNV-1a then a final mix): seeds and table slots from strings. */
apr_uint64_t fl_hash64(const void *data, apr_size_t len, apr_uint64_t h);

#endif
