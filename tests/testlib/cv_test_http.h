/* Test HTTP client over libcurl: one handle per client so keep-alive is real,
 * bound to a base URL and (for HTTPS) a CA file, with the response's status,
 * parsed JSON, raw body, headers and whether the connection was reused. */
#ifndef CV_TEST_HTTP_H
#define CV_TEST_HTTP_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

struct cv_test_client;

/* base_url: "https://127.0.0.1:8443" (no trailing slash); ca_file: PEM to trust,
 * or NULL for plain HTTP. NULL on failure. */
struct cv_test_client *cv_test_client_new(const char *base_url, const char *ca_file);
void cv_test_client_free(struct cv_test_client *c);
/* Called on the handle before every request (after the options are reset), for
 * tests that set TLS versions, timeouts and the like. NULL removes it. */
typedef void (*cv_test_client_setup_fn)(CURL *curl, void *arg);
void cv_test_client_on_setup(struct cv_test_client *c, cv_test_client_setup_fn fn, void *arg);

#define CV_TEST_MAX_HEADERS 64

struct cv_test_response {
    long status;         /* 0 when the transfer failed */
    json_t *json;        /* the body parsed as JSON, or NULL */
    char *body;          /* raw body, NUL-terminated (may be "") */
    size_t body_len;
    int reused;          /* 1 when no new connection was opened */
    double answer_ms;    /* from the request sent to the answer's first byte (no connect, no TLS handshake) */
    size_t nheaders;
    char *headers[CV_TEST_MAX_HEADERS]; /* "Name: value" lines of the final response */
    char error[CURL_ERROR_SIZE];        /* curl's message when the transfer failed */
};

/* Sends METHOD base_url+path. A bearer token adds "Authorization: Bearer …".
 * A json_body is sent as-is with Content-Type: application/json unless
 * extra_headers (NULL-terminated "Name: value" strings) names another one.
 * Returns 0 when a response arrived (any status), -1 on a transport failure
 * (out->error says why). Always call cv_test_response_free afterwards. */
int cv_test_request(struct cv_test_client *c, const char *method, const char *path, const char *bearer,
                    const char *json_body, const char *const *extra_headers, struct cv_test_response *out);
/* Same with a body of any bytes and no default Content-Type. */
int cv_test_request_raw(struct cv_test_client *c, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t body_len,
                        struct cv_test_response *out);

/* A response header's value by case-insensitive name (the last one if repeated); NULL if absent. */
const char *cv_test_response_header(const struct cv_test_response *r, const char *name);
void cv_test_response_free(struct cv_test_response *r);

/* Runs scripts/make-cert DIR (found through CV_SOURCE_DIR). 0 on success. */
int cv_test_make_cert(const char *dir);

#endif
