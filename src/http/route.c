/* Route tables: checked once at start, matched per request by method and by
 * pattern segments (literal, or ":name" binding a path parameter). The first
 * matching route in table order wins. Pure: no I/O, no allocation. */
#include <string.h>

#include "internal.h"

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static cv_result check_method(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    CV_ENSURE(n > 0 && n < sizeof(((struct cv_http_request *)0)->method), CV_ERR_INTERNAL,
              "route method is empty or too long");
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(m[i] >= 'A' && m[i] <= 'Z', CV_ERR_INTERNAL, "route method %s is not an upper-case token", m);
    return CV_OK;
}

static cv_result check_pattern(const char *p)
{
    CV_ENSURE(p != NULL && p[0] == '/', CV_ERR_INTERNAL, "route pattern must start with '/'");
    size_t len = strlen(p);
    CV_ENSURE(len <= CV_HTTP_PATH_MAX_BYTES, CV_ERR_INTERNAL, "route pattern %.64s is too long", p);
    if (len == 1) return CV_OK;
    size_t segs = 0, params = 0;
    const char *s = p + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        CV_ENSURE(n > 0, CV_ERR_INTERNAL, "route pattern %.64s has an empty segment", p);
        CV_ENSURE(++segs <= CV_HTTP_MAX_SEGMENTS, CV_ERR_INTERNAL, "route pattern %.64s is too deep", p);
        if (s[0] == ':') {
            CV_ENSURE(n > 1, CV_ERR_INTERNAL, "route pattern %.64s has an unnamed parameter", p);
            for (size_t i = 1; i < n; i++)
                CV_ENSURE(is_name_char(s[i]), CV_ERR_INTERNAL, "route pattern %.64s: bad parameter name", p);
            CV_ENSURE(++params <= CV_HTTP_MAX_PARAMS, CV_ERR_INTERNAL, "route pattern %.64s has too many parameters",
                      p);
        } else {
            for (size_t i = 0; i < n; i++)
                CV_ENSURE(s[i] > 0x20 && s[i] != 0x7f && s[i] != '%' && s[i] != '?' && s[i] != '#', CV_ERR_INTERNAL,
                          "route pattern %.64s has a character that needs encoding", p);
        }
        if (!slash) break;
        s = slash + 1;
    }
    return CV_OK;
}

cv_result cv_http_routes_check(const struct cv_http_route *routes, size_t n)
{
    CV_ENSURE(routes != NULL || n == 0, CV_ERR_INTERNAL, "route table is NULL");
    for (size_t i = 0; i < n; i++) {
        CV_GUARD(check_method(routes[i].method));
        CV_GUARD(check_pattern(routes[i].pattern));
    }
    return CV_OK;
}

bool cv_http_pattern_match(const char *pattern, const struct cv_http_path *path, struct cv_http_params *params)
{
    params->n = 0;
    if (pattern[0] != '/') return false;
    const char *s = pattern + 1;
    size_t i = 0;
    if (*s == '\0') return path->n == 0;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (i >= path->n) return false;
        const char *seg = path->seg[i++];
        if (s[0] == ':') {
            if (seg[0] == '\0' || params->n >= CV_HTTP_MAX_PARAMS) return false;
            params->name[params->n] = s + 1;
            params->name_len[params->n] = n - 1;
            params->value[params->n] = seg;
            params->n++;
        } else if (strlen(seg) != n || memcmp(seg, s, n) != 0) {
            return false;
        }
        if (!slash) break;
        s = slash + 1;
    }
    return i == path->n;
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0) return true;
    /* HEAD is GET without the body; libmicrohttpd drops the body for us */
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void allow_add(char *allow, size_t allow_len, const char *method)
{
    if (!allow || allow_len == 0) return;
    size_t used = strlen(allow), m = strlen(method);
    /* already listed? compare whole comma-separated items */
    for (const char *p = allow; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == m && memcmp(p, method, m) == 0) return;
        if (!comma) break;
        p = comma + 2; /* ", " */
    }
    size_t need = used + (used ? 2 : 0) + m + 1;
    if (need > allow_len) return;
    if (used) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, method, m + 1);
}

enum cv_http_lookup cv_http_route_find(const struct cv_http_route *routes, size_t n, const char *method,
                                       const struct cv_http_path *path, const struct cv_http_route **route,
                                       struct cv_http_params *params, char *allow, size_t allow_len)
{
    bool path_known = false;
    struct cv_http_params scratch;
    if (allow && allow_len) allow[0] = '\0';
    *route = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!cv_http_pattern_match(routes[i].pattern, path, &scratch)) continue;
        if (method_matches(routes[i].method, method)) {
            *route = &routes[i];
            *params = scratch;
            return CV_HTTP_ROUTE_FOUND;
        }
        path_known = true;
        allow_add(allow, allow_len, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0) allow_add(allow, allow_len, "HEAD");
    }
    return path_known ? CV_HTTP_ROUTE_NO_METHOD : CV_HTTP_ROUTE_NO_PATH;
}
