/* The versions of libmicrohttpd and GnuTLS this process runs with, as they
 * report themselves at run time. */
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "http/http.h"

const char *cv_http_mhd_version(void) { return MHD_get_version(); }

const char *cv_http_gnutls_version(void) { return gnutls_check_version(NULL); }
