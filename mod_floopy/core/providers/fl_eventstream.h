/* An incremental decoder of AWS's binary event stream (application/vnd.amazon.eventstream), the
 * framing of Bedrock's ConverseStream. A message is
 *   total_length u32 | headers_length u32 | prelude CRC-32 u32 | headers | payload | CRC-32 u32
 * (big-endian; CRC-32 is zlib's). Bytes arrive in any split; each whole message is checked (both
 * CRCs, lengths, header encoding) and handed to a callback. One buffer, reused, holds at most one
 * message: memory stays bounded by the largest message, whatever the stream's length. */
#ifndef FL_EVENTSTREAM_H
#define FL_EVENTSTREAM_H

#include <apr_pools.h>

#define FL_ES_PRELUDE_LEN 12
#define FL_ES_MIN_MESSAGE 16

typedef struct fl_es_t fl_es_t;

/* One header as it appears in the message (not NUL-terminated). Types: 0 true, 1 false, 2 byte,
 * 3 short, 4 int, 5 long, 6 bytes, 7 string, 8 timestamp, 9 uuid. value points at the raw value
 * bytes (for 6 and 7 after the length). */
typedef struct fl_es_header_t {
    const char *name;
    apr_size_t name_len;
    int type;
    const char *value;
    apr_size_t value_len;
} fl_es_header_t;

#define FL_ES_MAX_HEADERS 32

typedef struct fl_es_message_t {
    int nheaders;
    fl_es_header_t headers[FL_ES_MAX_HEADERS];
    const char *payload;            /* valid during the callback only */
    apr_size_t payload_len;
} fl_es_message_t;

/* A non-success return stops the decoding and is handed back by fl_es_feed. */
typedef apr_status_t fl_es_message_cb(void *baton, const fl_es_message_t *m);

/* Messages larger than max_message are refused. */
apr_status_t fl_es_create(fl_es_t **pes, apr_pool_t *p, apr_size_t max_message,
                          fl_es_message_cb *cb, void *baton);

/* APR_EGENERAL on a corrupt stream (bad CRC, impossible lengths, malformed headers) and
 * APR_ENOSPC on a message over the cap; fl_es_error says which. After an error the decoder
 * refuses further input: a framing error leaves no way to find the next message. */
apr_status_t fl_es_feed(fl_es_t *es, const char *buf, apr_size_t len);

/* What went wrong, or NULL. */
const char *fl_es_error(const fl_es_t *es);

/* 1 when bytes of an unfinished message are pending (a stream cut mid-message). */
int fl_es_pending(const fl_es_t *es);

/* The value of a string header (type 7) as a NUL-terminated copy in p, or NULL. */
const char *fl_es_header_str(apr_pool_t *p, const fl_es_message_t *m, const char *name);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320, as zlib's crc32), continuing from crc. */
apr_uint32_t fl_es_crc32(apr_uint32_t crc, const void *buf, apr_size_t len);

/* Encodes a message with string headers (names[i] = values[i], n of them) into p: for tests and
 * anyone who must speak the format. */
char *fl_es_encode(apr_pool_t *p, const char *const *names, const char *const *values, int n,
                   const char *payload, apr_size_t payload_len, apr_size_t *plen);

#endif
