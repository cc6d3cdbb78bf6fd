#include <string.h>
#include <apr_strings.h>
#include <apr_general.h>
#include <apr_lib.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "fl_util.h"

static const char HEX[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, apr_size_t n, char *out)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

apr_status_t fl_uuid7(char out[FL_UUID_LEN + 1], apr_time_t now)
{
    unsigned char b[16];
    char hex[33];
    apr_uint64_t ms = (apr_uint64_t)apr_time_as_msec(now);
    int i;

    /* getrandom(2) through APR: no lock shared by the request threads, unlike RAND_bytes */
    if (apr_generate_random_bytes(b + 6, 10) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    for (i = 0; i < 6; i++) {
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    }
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    hex_encode(b, 16, hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
    return APR_SUCCESS;
}

int fl_uuid_valid(const char *s)
{
    int i;
    if (!s || strlen(s) != FL_UUID_LEN) {
        return 0;
    }
    for (i = 0; i < FL_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        }
        else if (!apr_isxdigit(s[i])) {
            return 0;
        }
    }
    return 1;
}

apr_int64_t fl_uuid7_millis(const char *id)
{
    char hex[13];
    if (!fl_uuid_valid(id) || id[14] != '7') {
        return -1;
    }
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return apr_strtoi64(hex, NULL, 16);
}

void fl_sha256_hex(const void *data, apr_size_t len, char out[FL_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, mdlen, out);
}

apr_status_t fl_key_generate(apr_pool_t *p, const char **psecret)
{
    static const char B64URL[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[32];
    char *s;
    apr_size_t i, bits = 0, n = 0;
    apr_uint32_t acc = 0;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return APR_EGENERAL;
    }
    s = apr_palloc(p, 3 + 44 + 1);
    memcpy(s, "fl-", 3);
    for (i = 0; i < sizeof(raw); i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            s[3 + n++] = B64URL[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) {
        s[3 + n++] = B64URL[(acc << (6 - bits)) & 0x3f];
    }
    s[3 + n] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    *psecret = s;
    return APR_SUCCESS;
}

int fl_secure_equals(const char *a, const char *b)
{
    apr_size_t la = strlen(a), lb = strlen(b);
    if (la != lb) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, la) == 0;
}

const char *fl_time_sql(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;
    apr_time_exp_gmt(&x, t);
    return apr_psprintf(p, "%04d-%02d-%02d %02d:%02d:%02d.%03d", x.tm_year + 1900, x.tm_mon + 1,
                        x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec, x.tm_usec / 1000);
}

const char *fl_time_sql_to_iso(apr_pool_t *p, const char *sql)
{
    char *s;
    if (!sql) {
        return NULL;
    }
    s = apr_pstrcat(p, sql, "Z", NULL);
    if (strlen(s) > 10 && s[10] == ' ') {
        s[10] = 'T';
    }
    return s;
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

apr_status_t fl_time_parse(const char *s, apr_time_t *out)
{
    apr_time_exp_t x;
    const char *p;
    int usec = 0, scale = 100000;
    char *end;

    if (!s || !*s) return APR_EINVAL;
    if (strspn(s, "0123456789") == strlen(s)) {
        apr_int64_t sec = apr_strtoi64(s, &end, 10);
        if (*end || sec < 0) return APR_EINVAL;
        *out = apr_time_from_sec(sec);
        return APR_SUCCESS;
    }
    memset(&x, 0, sizeof(x));
    if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ')
        || s[13] != ':' || s[16] != ':'
        || !digits(s, 4, &x.tm_year) || !digits(s + 5, 2, &x.tm_mon)
        || !digits(s + 8, 2, &x.tm_mday) || !digits(s + 11, 2, &x.tm_hour)
        || !digits(s + 14, 2, &x.tm_min) || !digits(s + 17, 2, &x.tm_sec)) {
        return APR_EINVAL;
    }
    p = s + 19;
    if (*p == '.') {
        for (p++; apr_isdigit(*p); p++) {
            if (scale) usec += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p && strcmp(p, "Z") && strcmp(p, "+00:00")) return APR_EINVAL;
    x.tm_year -= 1900;
    x.tm_mon -= 1;
    x.tm_usec = usec;
    if (x.tm_mon < 0 || x.tm_mon > 11 || x.tm_mday < 1 || x.tm_mday > 31 || x.tm_hour > 23
        || x.tm_min > 59 || x.tm_sec > 60) {
        return APR_EINVAL;
    }
    return apr_time_exp_gmt_get(out, &x) == APR_SUCCESS ? APR_SUCCESS : APR_EINVAL;
}
