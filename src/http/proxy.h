/* Trusted proxies: which peers may name the client in X-Forwarded-For. */
#ifndef CREDVAULT_HTTP_PROXY_H
#define CREDVAULT_HTTP_PROXY_H

#include <microhttpd.h>
#include <stddef.h>

#include "credvault/result.h"

#define CV_HTTP_TRUSTED_PROXIES_MAX 32

struct cv_http_proxies {
    size_t n;
    struct {
        int family;
        unsigned char addr[16];
    } a[CV_HTTP_TRUSTED_PROXIES_MAX];
};

/* Parses CREDVAULT_TRUSTED_PROXIES: IP addresses separated by commas or
 * spaces (NULL or empty: none). CV_ERR_INPUT names the entry that is not one. */
CV_RESULT cv_http_proxies_parse(const char *list, struct cv_http_proxies *out);
/* The client's address for logs, limits and audit: the peer's, or — when the
 * peer is a trusted proxy — the right-most X-Forwarded-For entry that is not
 * itself a trusted proxy. An entry that is not an IP address stops the walk
 * at the last trusted hop, so a forged value never passes for an address. */
void cv_http_client_address(const struct cv_http_proxies *p, struct MHD_Connection *conn, char *out, size_t n);

#endif
