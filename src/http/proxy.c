/* The client address behind trusted proxies. Only a peer listed in
 * CREDVAULT_TRUSTED_PROXIES is believed about X-Forwarded-For, and only its
 * right-most entries: everything left of the first untrusted hop was written
 * by the client and may say anything (RFC 7239 §5.2 on the same problem). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy.h"

#define XFF_MAX_BYTES 1024

static int parse_ip(const char *s, int *family, unsigned char addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return 1;
    }
    return 0;
}

cv_result cv_http_proxies_parse(const char *list, struct cv_http_proxies *out)
{
    memset(out, 0, sizeof(*out));
    if (!list) return CV_OK;
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0) break;
        char one[INET6_ADDRSTRLEN + 1];
        CV_ENSURE(len < sizeof(one), CV_ERR_INPUT, "CREDVAULT_TRUSTED_PROXIES: '%.*s' is not an IP address",
                  (int)(len > 64 ? 64 : len), p);
        memcpy(one, p, len);
        one[len] = '\0';
        CV_ENSURE(out->n < CV_HTTP_TRUSTED_PROXIES_MAX, CV_ERR_INPUT,
                  "CREDVAULT_TRUSTED_PROXIES lists more than %d addresses", CV_HTTP_TRUSTED_PROXIES_MAX);
        CV_ENSURE(parse_ip(one, &out->a[out->n].family, out->a[out->n].addr), CV_ERR_INPUT,
                  "CREDVAULT_TRUSTED_PROXIES: '%s' is not an IP address (ranges are not supported)", one);
        out->n++;
        p += len;
    }
    return CV_OK;
}

static int trusted(const struct cv_http_proxies *p, int family, const unsigned char *addr)
{
    size_t len = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < p->n; i++)
        if (p->a[i].family == family && memcmp(p->a[i].addr, addr, len) == 0) return 1;
    return 0;
}

struct xff {
    char text[XFF_MAX_BYTES];
    size_t len;
    int overflow;
};

/* Every X-Forwarded-For line, in order, joined with commas (RFC 9110 §5.3). */
static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct xff *x = cls;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || !value) return MHD_YES;
    size_t n = strlen(value);
    if (x->len + n + 2 > sizeof(x->text)) {
        x->overflow = 1;
        return MHD_NO;
    }
    if (x->len) x->text[x->len++] = ',';
    memcpy(x->text + x->len, value, n);
    x->len += n;
    x->text[x->len] = '\0';
    return MHD_YES;
}

void cv_http_client_address(const struct cv_http_proxies *p, struct MHD_Connection *conn, char *out, size_t n)
{
    snprintf(out, n, "-");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    int family = sa->sa_family;
    unsigned char addr[16];
    if (family == AF_INET)
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    else if (family == AF_INET6)
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    else
        return;
    if (p && p->n && trusted(p, family, addr)) {
        struct xff x = {.len = 0, .overflow = 0};
        x.text[0] = '\0';
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect, &x);
        /* right to left: each trusted hop vouches for the entry before it */
        while (!x.overflow && x.len > 0) {
            char *comma = strrchr(x.text, ',');
            char *entry = comma ? comma + 1 : x.text;
            entry += strspn(entry, " \t");
            size_t el = strcspn(entry, " \t");
            entry[el] = '\0';
            int f;
            unsigned char a[16];
            if (!parse_ip(entry, &f, a)) break; /* not an address: stay with the last trusted hop */
            family = f;
            memcpy(addr, a, sizeof(a));
            if (!trusted(p, f, a) || !comma) break;
            *comma = '\0';
            x.len = (size_t)(comma - x.text);
        }
    }
    inet_ntop(family, addr, out, (socklen_t)n);
}
