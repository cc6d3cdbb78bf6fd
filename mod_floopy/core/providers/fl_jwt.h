/* JSON Web Tokens signed with RS256 (RFC 7515/7519), as Google's OAuth2 JWT-bearer grant
 * (RFC 7523) wants them for service accounts. OpenSSL EVP does the signing; Jansson the JSON. */
#ifndef FL_JWT_H
#define FL_JWT_H

#include <apr_pools.h>
#include <jansson.h>

/* Base64url without padding (RFC 4648 section 5), as JWTs use it. */
char *fl_b64url(apr_pool_t *p, const unsigned char *data, apr_size_t len);

/* NULL when pem is an RSA private key OpenSSL can read, else why not. */
const char *fl_jwt_check_key(apr_pool_t *p, const char *pem);

/* header.claims.signature, the header {"alg":"RS256","typ":"JWT"[,"kid"]}; NULL and *err when
 * the key cannot sign. claims is not stolen. */
const char *fl_jwt_rs256(apr_pool_t *p, const char *pem, const char *kid, const json_t *claims,
                         const char **err);

#endif
