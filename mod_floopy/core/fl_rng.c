#include <math.h>
#include <string.h>
#include "fl_rng.h"

static apr_uint64_t splitmix(apr_uint64_t *x)
{
    apr_uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fl_rng_seed(fl_rng_t *g, apr_uint64_t seed)
{
    int i;
    /* splitmix spreads any seed (0 included) over the whole state, as xoshiro's authors advise */
    for (i = 0; i < 4; i++) g->s[i] = splitmix(&seed);
}

static apr_uint64_t rotl(apr_uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

apr_uint64_t fl_rng_next(fl_rng_t *g)
{
    apr_uint64_t *s = g->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* the top 53 bits of a 64-bit value as a double in [0, 1) */
static double unit(apr_uint64_t x)
{
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

double fl_rng_uniform(fl_rng_t *g)
{
    return unit(fl_rng_next(g));
}

double fl_rng_normal(fl_rng_t *g)
{
    /* Box-Muller; 1 - u keeps the logarithm finite */
    double u = 1.0 - fl_rng_uniform(g), v = fl_rng_uniform(g);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

double fl_rng_gamma(fl_rng_t *g, double shape)
{
    double d, c;
    if (shape < 1.0) {
        /* Marsaglia and Tsang's boost for shape < 1: Gamma(a) = Gamma(a + 1) * U^(1/a) */
        double u = 1.0 - fl_rng_uniform(g);
        return fl_rng_gamma(g, shape + 1.0) * pow(u, 1.0 / shape);
    }
    d = shape - 1.0 / 3.0;
    c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = fl_rng_normal(g), v = 1.0 + c * x, u;
        if (v <= 0) continue;
        v = v * v * v;
        u = 1.0 - fl_rng_uniform(g);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

double fl_rng_beta(fl_rng_t *g, double a, double b)
{
    double x = fl_rng_gamma(g, a), y = fl_rng_gamma(g, b);
    return x + y > 0 ? x / (x + y) : 0.5;
}

apr_uint64_t fl_hash64(const void *data, apr_size_t len, apr_uint64_t h)
{
    const unsigned char *p = data;
    apr_size_t i;
    if (!h) h = 0xcbf29ce484222325ULL;
    for (i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return splitmix(&h);
}

double fl_hash_unit(const char *s, apr_uint64_t salt)
{
    return unit(fl_hash64(s, strlen(s), salt));
}
