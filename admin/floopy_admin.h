/* The operator's admin API (SetHandler floopy-admin): organisations and their keys, behind the
 * deployment's own credential. */
#ifndef FLOOPY_ADMIN_H
#define FLOOPY_ADMIN_H

#include <httpd.h>

int floopy_admin_handler(request_rec *r);

#endif
