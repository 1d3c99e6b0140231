/* CREDVAULT_LISTEN: "host:port" with a literal IPv4 address or a bracketed
 * IPv6 one, and the loopback test that decides whether plain HTTP may be
 * served. Never resolves names: what is bound is exactly what was written. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HOST_MAX_BYTES 64

static cv_result parse_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    CV_ENSURE(n >= 1 && n <= 5, CV_ERR_INPUT, "listen port must be a number from 0 to 65535");
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        CV_ENSURE(s[i] >= '0' && s[i] <= '9', CV_ERR_INPUT, "listen port must be a number from 0 to 65535");
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    CV_ENSURE(v <= 65535, CV_ERR_INPUT, "listen port must be a number from 0 to 65535");
    *out = (uint16_t)v;
    return CV_OK;
}

cv_result cv_http_listen_parse(const char *text, struct cv_http_listen_addr *out)
{
    CV_ENSURE(text != NULL && *text, CV_ERR_INPUT, "listen address is empty (expected host:port)");
    memset(out, 0, sizeof(*out));
    char host[HOST_MAX_BYTES];
    const char *port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        CV_ENSURE(close != NULL && close[1] == ':', CV_ERR_INPUT,
                  "listen address %.80s: an IPv6 address is written [addr]:port", text);
        size_t n = (size_t)(close - text - 1);
        CV_ENSURE(n > 0 && n < sizeof(host), CV_ERR_INPUT, "listen address %.80s: bad IPv6 address", text);
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port = close + 2;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->ss;
        CV_ENSURE(inet_pton(AF_INET6, host, &a->sin6_addr) == 1, CV_ERR_INPUT,
                  "listen address %.80s: bad IPv6 address (names are not resolved)", text);
        CV_GUARD(parse_port(port, &out->port));
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(out->port);
        out->family = AF_INET6;
        out->len = sizeof(*a);
        return CV_OK;
    }
    const char *colon = strrchr(text, ':');
    CV_ENSURE(colon != NULL, CV_ERR_INPUT, "listen address %.80s: expected host:port", text);
    size_t n = (size_t)(colon - text);
    CV_ENSURE(n > 0 && n < sizeof(host) && memchr(text, ':', n) == NULL, CV_ERR_INPUT,
              "listen address %.80s: expected IPv4:port or [IPv6]:port", text);
    memcpy(host, text, n);
    host[n] = '\0';
    port = colon + 1;
    struct sockaddr_in *a = (struct sockaddr_in *)&out->ss;
    CV_ENSURE(inet_pton(AF_INET, host, &a->sin_addr) == 1, CV_ERR_INPUT,
              "listen address %.80s: bad IPv4 address (names are not resolved)", text);
    CV_GUARD(parse_port(port, &out->port));
    a->sin_family = AF_INET;
    a->sin_port = htons(out->port);
    out->family = AF_INET;
    out->len = sizeof(*a);
    return CV_OK;
}

bool cv_http_listen_is_loopback(const struct cv_http_listen_addr *addr)
{
    if (addr->family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&addr->ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&addr->ss;
        const uint8_t *b = a->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
        return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127;
    }
    return false;
}

#define SHARED_BACKLOG 1024

static cv_result bind_one(const char *listen, unsigned port, int reuseport, int *fd, unsigned *bound)
{
    struct cv_http_listen_addr la;
    CV_GUARD(cv_http_listen_parse(listen, &la));
    if (port) {
        la.port = (uint16_t)port;
        if (la.family == AF_INET) ((struct sockaddr_in *)&la.ss)->sin_port = htons(la.port);
        else ((struct sockaddr_in6 *)&la.ss)->sin6_port = htons(la.port);
    }
    int s = socket(la.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CV_ENSURE(s >= 0, CV_ERR_UNAVAILABLE, "cannot make a socket for %.80s: %s", listen, strerror(errno));
    int one = 1;
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* as libmicrohttpd does */
    if (la.family == AF_INET6) (void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = errno;
        close(s);
        CV_BAIL(CV_ERR_UNAVAILABLE, "cannot serve on %.80s: SO_REUSEPORT: %s", listen, strerror(e));
    }
    if (bind(s, (const struct sockaddr *)&la.ss, la.len) != 0) {
        close(s);
        char why[256];
        cv_http_listen_why(&la, listen, why, sizeof(why));
        CV_BAIL(CV_ERR_UNAVAILABLE, "%s", why);
    }
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    if (getsockname(s, (struct sockaddr *)&got, &len) == 0)
        *bound = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                 : ((struct sockaddr_in *)&got)->sin_port);
    *fd = s;
    return CV_OK;
}

cv_result cv_http_listen_probe(const char *listen, unsigned *port)
{
    CV_ENSURE_REF(port);
    int fd = -1;
    *port = 0;
    CV_GUARD(bind_one(listen, 0, 0, &fd, port));
    close(fd); /* bound, never listening: nothing queued on it is lost */
    return CV_OK;
}

cv_result cv_http_listen_shared(const char *listen, unsigned port, int *fd)
{
    CV_ENSURE_REF(fd);
    unsigned bound = 0;
    return bind_one(listen, port, 1, fd, &bound);
}

cv_result cv_http_listen_resume(int fd)
{
    CV_ENSURE(listen(fd, SHARED_BACKLOG) == 0, CV_ERR_UNAVAILABLE, "cannot listen on the shared socket: %s",
              strerror(errno));
    return CV_OK;
}

void cv_http_listen_pause(int fd)
{
    /* Linux: a listening socket shut down returns to closed but stays bound
     * (its port was named explicitly), and may listen again */
    (void)shutdown(fd, SHUT_RDWR);
}
