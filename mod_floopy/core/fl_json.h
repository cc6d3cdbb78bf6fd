/* Jansson glue: serialise into a pool, read fields with defaults. */
#ifndef FL_JSON_H
#define FL_JSON_H

#include <apr_pools.h>
#include <jansson.h>

/* Serialises v compactly into p; with steal, drops the caller's reference to v. */
char *fl_json_dump(apr_pool_t *p, json_t *v, int steal);

/* Serialises v exactly as fl_json_dump does, handing the text to cb piece by piece (no
 * allocation of the whole); cb's non-zero return stops it and is returned as -1. */
int fl_json_dump_cb(const json_t *v, json_dump_callback_t cb, void *data);
/* Serialises v as fl_json_dump does into buf; the length it needs (larger than size: nothing
 * useful was written), 0 on failure. */
size_t fl_json_dumpb(const json_t *v, char *buf, size_t size);

/* obj serialised as fl_json_dump does, less its braces, into p: a run of members that joins
 * others with a comma into one object ("" for an empty object). *len gets its length; NULL when
 * Jansson fails. */
char *fl_json_members(apr_pool_t *p, const json_t *obj, apr_size_t *len);
/* The same without the copy: the members lie in local (size bytes) when they fit, else in p. */
const char *fl_json_members_in(apr_pool_t *p, const json_t *obj, char *local, apr_size_t size,
                               apr_size_t *len);

/* The string at key, or dflt when absent or not a string. */
const char *fl_json_str(const json_t *obj, const char *key, const char *dflt);

/* Registers a cleanup on p that drops one reference to v; returns v. */
json_t *fl_json_pool_own(apr_pool_t *p, json_t *v);

/* Integer token counts: the value at key as a non-negative integer, or -1. */
apr_int64_t fl_json_count(const json_t *obj, const char *key);

#endif
