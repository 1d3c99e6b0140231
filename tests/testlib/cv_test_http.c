/* libcurl test client: one CURL handle per client (curl_easy_reset keeps live
 * connections, so keep-alive reuse is observable), every transfer bounded in
 * time, bodies and headers captured whole. When CV_OPENAPI_EXCHANGES names a
 * file, each exchange is appended to it as one JSON line, for the check of
 * live responses against docs/openapi.yaml (scripts/openapi-check). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cv_test_http.h"

#define CV_TEST_TIMEOUT_S 30L
#define CV_TEST_BODY_MAX_BYTES (64L * 1024 * 1024)

struct cv_test_client {
    CURL *curl;
    char *base_url;
    char *ca_file;
    cv_test_client_setup_fn setup;
    void *setup_arg;
};

struct cv_test_client *cv_test_client_new(const char *base_url, const char *ca_file)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
        curl_ready = 1;
    }
    struct cv_test_client *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->curl = curl_easy_init();
    c->base_url = strdup(base_url);
    c->ca_file = ca_file ? strdup(ca_file) : NULL;
    if (!c->curl || !c->base_url || (ca_file && !c->ca_file)) {
        cv_test_client_free(c);
        return NULL;
    }
    return c;
}

void cv_test_client_free(struct cv_test_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->base_url);
    free(c->ca_file);
    free(c);
}

void cv_test_client_on_setup(struct cv_test_client *c, cv_test_client_setup_fn fn, void *arg)
{
    c->setup = fn;
    c->setup_arg = arg;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    struct cv_test_response *r = userdata;
    size_t len = size * n;
    if (r->body_len + len > (size_t)CV_TEST_BODY_MAX_BYTES) return 0;
    char *b = realloc(r->body, r->body_len + len + 1);
    if (!b) return 0;
    memcpy(b + r->body_len, p, len);
    r->body = b;
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static void headers_clear(struct cv_test_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) free(r->headers[i]);
    r->nheaders = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    struct cv_test_response *r = userdata;
    size_t len = size * n;
    /* a new status line (after "100 Continue") starts a new header set */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        headers_clear(r);
        return len;
    }
    size_t l = len;
    while (l && (p[l - 1] == '\r' || p[l - 1] == '\n')) l--;
    if (l == 0 || r->nheaders >= CV_TEST_MAX_HEADERS) return len;
    char *line = malloc(l + 1);
    if (!line) return 0;
    memcpy(line, p, l);
    line[l] = '\0';
    r->headers[r->nheaders++] = line;
    return len;
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':') return 1;
    return 0;
}

/* One line per exchange, written with one write() to a file opened with
 * O_APPEND, so lines of forked test cases and parallel tests never mix. */
static void record_exchange(CURL *h, const char *method, const char *path, const struct cv_test_response *out)
{
    const char *file = getenv("CV_OPENAPI_EXCHANGES");
    if (!file || !*file) return;
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    json_t *headers = json_array();
    for (size_t i = 0; headers && i < out->nheaders; i++) json_array_append_new(headers, json_string(out->headers[i]));
    json_t *body = json_stringn(out->body, out->body_len); /* NULL when not UTF-8 */
    json_t *line = json_pack("{s:s, s:s, s:i, s:s?, s:o*, s:o}", "method", method, "path", path, "status",
                             (int)out->status, "contentType", ct, "headers", headers, "body",
                             body ? body : json_null());
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!text) {
        fprintf(stderr, "cv_test_http: could not record an exchange for %s\n", file);
        abort();
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* the terminating NUL becomes the line end; written by length */
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ssize_t w = fd >= 0 ? write(fd, text, n + 1) : -1;
    if (fd >= 0) close(fd);
    text[n] = '\0';
    json_free_t json_free; /* the service's code may have set wiping allocators */
    json_get_alloc_funcs(NULL, &json_free);
    json_free(text);
    if (w != (ssize_t)(n + 1)) {
        fprintf(stderr, "cv_test_http: could not append to %s\n", file);
        abort();
    }
}

static int perform(struct cv_test_client *c, const char *method, const char *path, struct curl_slist *hdrs,
                   const void *body, size_t body_len, int has_body, struct cv_test_response *out)
{
    CURL *h = c->curl;
    size_t url_len = strlen(c->base_url) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url) return -1;
    snprintf(url, url_len, "%s%s", c->base_url, path);
    curl_easy_reset(h); /* options only: live connections stay for reuse */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->error);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, CV_TEST_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    if (c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (has_body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        }
        if (strcmp(method, has_body ? "POST" : "GET") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (c->setup) c->setup(h, c->setup_arg);
    CURLcode rc = curl_easy_perform(h);
    free(url);
    if (rc != CURLE_OK) {
        if (!out->error[0]) snprintf(out->error, sizeof(out->error), "%s", curl_easy_strerror(rc));
        return -1;
    }
    long connects = -1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    out->reused = connects == 0;
    curl_off_t sent_us = 0, first_byte_us = 0;
    curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &sent_us);
    curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &first_byte_us);
    out->answer_ms = first_byte_us > sent_us ? (double)(first_byte_us - sent_us) / 1000.0 : 0.0;
    if (!out->body) {
        out->body = calloc(1, 1);
        if (!out->body) return -1;
    }
    json_error_t jerr;
    out->json = out->body_len ? json_loadb(out->body, out->body_len, 0, &jerr) : NULL;
    record_exchange(h, method, path, out);
    return 0;
}

int cv_test_request_raw(struct cv_test_client *c, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t body_len,
                        struct cv_test_response *out)
{
    memset(out, 0, sizeof(*out));
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, headers[i]);
        if (!n) {
            curl_slist_free_all(hdrs);
            return -1;
        }
        hdrs = n;
    }
    int rc = perform(c, method, path, hdrs, body, body_len, body != NULL, out);
    curl_slist_free_all(hdrs);
    return rc;
}

int cv_test_request(struct cv_test_client *c, const char *method, const char *path, const char *bearer,
                    const char *json_body, const char *const *extra_headers, struct cv_test_response *out)
{
    const char *all[CV_TEST_MAX_HEADERS + 3];
    size_t n = 0;
    char *auth = NULL;
    if (bearer) {
        size_t len = strlen(bearer) + sizeof("Authorization: Bearer ");
        auth = malloc(len);
        if (!auth) return -1;
        snprintf(auth, len, "Authorization: Bearer %s", bearer);
        all[n++] = auth;
    }
    if (json_body && !has_header(extra_headers, "Content-Type")) all[n++] = "Content-Type: application/json";
    for (size_t i = 0; extra_headers && extra_headers[i] && n < CV_TEST_MAX_HEADERS + 2; i++)
        all[n++] = extra_headers[i];
    all[n] = NULL;
    int rc = cv_test_request_raw(c, method, path, all, json_body, json_body ? strlen(json_body) : 0, out);
    free(auth);
    return rc;
}

const char *cv_test_response_header(const struct cv_test_response *r, const char *name)
{
    size_t n = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->headers[i];
        if (strncasecmp(h, name, n) != 0 || h[n] != ':') continue;
        const char *v = h + n + 1;
        while (*v == ' ' || *v == '\t') v++;
        found = v;
    }
    return found;
}

void cv_test_response_free(struct cv_test_response *r)
{
    if (!r) return;
    json_decref(r->json);
    free(r->body);
    headers_clear(r);
    memset(r, 0, sizeof(*r));
}

int cv_test_make_cert(const char *dir)
{
    const char *src = getenv("CV_SOURCE_DIR");
    if (!src || !*src || strchr(dir, '\'') || strchr(src, '\'')) return -1;
    char cmd[4096];
    int n = snprintf(cmd, sizeof(cmd), "'%s/scripts/make-cert' '%s' 2>/dev/null", src, dir);
    if (n < 0 || (size_t)n >= sizeof(cmd)) return -1;
    return system(cmd) == 0 ? 0 : -1;
}
