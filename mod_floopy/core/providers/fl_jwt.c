#include <string.h>
#include <apr_strings.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fl_jwt.h"
#include "fl_json.h"

char *fl_b64url(apr_pool_t *p, const unsigned char *data, apr_size_t len)
{
    char *out = apr_palloc(p, 4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len), i;
    while (n > 0 && out[n - 1] == '=') n--;
    out[n] = '\0';
    for (i = 0; i < n; i++) {
        if (out[i] == '+') out[i] = '-';
        else if (out[i] == '/') out[i] = '_';
    }
    return out;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k;
    if (!bio) return NULL;
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

const char *fl_jwt_check_key(apr_pool_t *p, const char *pem)
{
    EVP_PKEY *k = read_key(pem);
    int rsa;
    if (!k) return "private_key is not a PEM private key";
    rsa = EVP_PKEY_base_id(k) == EVP_PKEY_RSA;
    EVP_PKEY_free(k);
    return rsa ? NULL : "private_key is not an RSA key (RS256 needs one)";
}

/* The RSASSA-PKCS1-v1_5 SHA-256 signature of input; NULL when OpenSSL refuses. */
static const char *sign(apr_pool_t *p, EVP_PKEY *k, const char *input)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t n = 0;
    const char *out = NULL;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1
        && EVP_DigestSignUpdate(md, input, strlen(input)) == 1
        && EVP_DigestSignFinal(md, NULL, &n) == 1) {
        sig = apr_palloc(p, n);
        if (EVP_DigestSignFinal(md, sig, &n) == 1) out = fl_b64url(p, sig, n);
    }
    EVP_MD_CTX_free(md);
    return out;
}

const char *fl_jwt_rs256(apr_pool_t *p, const char *pem, const char *kid, const json_t *claims,
                         const char **err)
{
    json_t *h = json_object();
    const char *hs, *cs, *input, *sig;
    EVP_PKEY *k;

    json_object_set_new(h, "alg", json_string("RS256"));
    json_object_set_new(h, "typ", json_string("JWT"));
    if (kid && *kid) json_object_set_new(h, "kid", json_string(kid));
    hs = fl_json_dump(p, h, 1);
    cs = fl_json_dump(p, (json_t *)claims, 0);
    input = apr_pstrcat(p, fl_b64url(p, (const unsigned char *)hs, strlen(hs)), ".",
                        fl_b64url(p, (const unsigned char *)cs, strlen(cs)), NULL);
    if (!(k = read_key(pem))) {
        *err = "private_key is not a PEM private key";
        return NULL;
    }
    sig = sign(p, k, input);
    EVP_PKEY_free(k);
    if (!sig) {
        *err = "OpenSSL could not sign with the private key";
        return NULL;
    }
    return apr_pstrcat(p, input, ".", sig, NULL);
}
