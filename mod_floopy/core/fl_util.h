/* Small server-independent helpers: time-ordered ids, digests, secrets, timestamps. */
#ifndef FL_UTIL_H
#define FL_UTIL_H

#include <apr_pools.h>
#include <apr_time.h>

#define FL_UUID_LEN 36
#define FL_SHA256_HEX_LEN 64

/* A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time. */
apr_status_t fl_uuid7(char out[FL_UUID_LEN + 1], apr_time_t now);

/* The millisecond timestamp embedded in a UUIDv7 string, or -1 if it is not one. */
apr_int64_t fl_uuid7_millis(const char *id);

/* 1 when s has the shape of a UUID (8-4-4-4-12 hex). */
int fl_uuid_valid(const char *s);

void fl_sha256_hex(const void *data, apr_size_t len, char out[FL_SHA256_HEX_LEN + 1]);

/* A new API key secret: "fl-" + 43 base64url characters carrying 256 random bits. */
apr_status_t fl_key_generate(apr_pool_t *p, const char **psecret);

/* Compares without leaking where the strings differ. */
int fl_secure_equals(const char *a, const char *b);

/* "2026-11-22 05:20:54.123" (UTC), the form MariaDB's DATETIME(3) takes. */
const char *fl_time_sql(apr_pool_t *p, apr_time_t t);

/* Parses a client's time: ISO 8601 UTC ("2026-11-22T05:20:54Z", fraction and "+00:00" allowed)
 * or Unix seconds. APR_EINVAL otherwise. */
apr_status_t fl_time_parse(const char *s, apr_time_t *out);

/* "2026-11-22T05:20:54.123Z" from the SQL form above. */
const char *fl_time_sql_to_iso(apr_pool_t *p, const char *sql);

#endif
