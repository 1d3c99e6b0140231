/* Hostile HTTP clients against the real `credvault serve` (SoftHSM2 token,
 * PostgreSQL, TLS): a raw TLS socket client (GnuTLS) that trickles header
 * lines is cut off at the whole-request deadline; conflicting framing
 * headers get 400 and a closed connection, with nothing stored; request
 * paths holding any bytes leave every access-log line valid UTF-8 JSON; and
 * X-Forwarded-For is believed only from a configured proxy. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "cv_test_api.h"
#include "cv_test_service.h"
#include "cv_test_suite.h"

static struct cv_test_service svc, proxied; /* proxied: 127.0.0.1 is a trusted proxy */
static struct cv_test_client *cl, *cl_proxied;
static char tok_a[160];
static gnutls_certificate_credentials_t creds;

/* ---- a raw TLS client ---- */

struct raw {
    int fd;
    gnutls_session_t s;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void raw_open(struct raw *r, unsigned port)
{
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(r->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 40}; /* longer than any deadline here: a hang fails, not blocks */
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(gnutls_init(&r->s, GNUTLS_CLIENT), GNUTLS_E_SUCCESS);
    ck_assert_int_eq(gnutls_set_default_priority(r->s), GNUTLS_E_SUCCESS);
    ck_assert_int_eq(gnutls_credentials_set(r->s, GNUTLS_CRD_CERTIFICATE, creds), GNUTLS_E_SUCCESS);
    gnutls_session_set_verify_cert(r->s, "localhost", 0);
    gnutls_transport_set_int(r->s, r->fd);
    int rc;
    do rc = gnutls_handshake(r->s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    ck_assert_msg(rc == GNUTLS_E_SUCCESS, "TLS handshake: %s", gnutls_strerror(rc));
}

static void raw_close(struct raw *r)
{
    gnutls_deinit(r->s);
    close(r->fd);
}

/* 0 when sent whole; -1 when the connection is gone. */
static int raw_send(struct raw *r, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = gnutls_record_send(r->s, data, n);
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) continue;
        if (w <= 0) return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Everything until the server closes (or the receive timeout): malloc'ed.
 * *closed tells whether the end was the server closing. */
static char *raw_read_all(struct raw *r, int *closed)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    *closed = 0;
    for (;;) {
        ssize_t k = gnutls_record_recv(r->s, buf + len, cap - 1 - len);
        if (k == GNUTLS_E_AGAIN && errno != EAGAIN && errno != EWOULDBLOCK) continue;
        if (k == GNUTLS_E_INTERRUPTED) continue;
        if (k > 0) {
            len += (size_t)k;
            if (len + 1 >= cap) break;
            continue;
        }
        /* 0: close_notify; a premature end or a reset is a close as well; a timeout is not */
        *closed = k == 0 || k == GNUTLS_E_PREMATURE_TERMINATION || k == GNUTLS_E_PULL_ERROR ||
                  (k == GNUTLS_E_AGAIN && !(errno == EAGAIN || errno == EWOULDBLOCK));
        break;
    }
    buf[len] = '\0';
    return buf;
}

/* ---- the whole-request deadline ---- */

START_TEST(slow_headers_are_cut_off_at_the_deadline)
{
    /* the default deadline (CREDVAULT_REQUEST_DEADLINE_MS = 10 s) and idle
     * timeout (30 s): one header line every 5 s never goes idle long enough
     * for the idle timeout, and before this change held the connection for
     * as long as the client liked */
    struct raw r;
    /* from before the connection: the server times it from its accept */
    long long start = now_ms();
    raw_open(&r, svc.port);
    const char *head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n";
    ck_assert_int_eq(raw_send(&r, head, strlen(head)), 0);
    /* one line, then up to 5 s watching for the server to hang up */
    long long took = -1;
    const char *how = "";
    for (int i = 0; i < 8 && took < 0; i++) {
        struct pollfd p = {.fd = r.fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 0) {
            took = now_ms() - start;
            how = "readable";
            break;
        }
        char line[64];
        int n = snprintf(line, sizeof(line), "X-Slow-%d: %d\r\n", i, i);
        if (raw_send(&r, line, (size_t)n) != 0) {
            took = now_ms() - start;
            how = "send failed";
        }
    }
    int closed = 0;
    char *rest = raw_read_all(&r, &closed);
    ck_assert_msg(closed, "the connection is still open after %lld ms", took);
    ck_assert_msg(took >= 10000 && took < 12000, "cut after %lld ms (%s), not at the 10 s deadline: %s", took, how,
                  rest);
    ck_assert_msg(strstr(rest, "200 OK") == NULL, "the trickled request was served: %s", rest);
    free(rest);
    raw_close(&r);
    ck_assert(cv_test_service_log_contains(&svc, "\"event\":\"http_request_deadline\""));
    /* the service is fine for everyone else */
    cv_t_expect_call(cl, "GET", "/healthz", NULL, NULL, 200, NULL);
}
END_TEST

START_TEST(a_prompt_client_on_keep_alive_is_not_cut)
{
    /* two whole requests on one connection, well within the deadline each */
    struct raw r;
    raw_open(&r, svc.port);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ck_assert_int_eq(raw_send(&r, req, strlen(req)), 0);
    sleep(2);
    const char *last = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(raw_send(&r, last, strlen(last)), 0);
    int closed = 0;
    char *out = raw_read_all(&r, &closed);
    const char *second = strstr(out, "HTTP/1.1 200");
    ck_assert_msg(second && strstr(second + 1, "HTTP/1.1 200"), "two answers expected: %s", out);
    free(out);
    raw_close(&r);
}
END_TEST

/* ---- conflicting framing ---- */

/* Sends `head` + `body` on a fresh connection; returns what came back and
 * asserts that the server closed the connection after it. */
static char *framing_exchange(const char *head, const char *body)
{
    struct raw r;
    raw_open(&r, svc.port);
    char req[4096];
    int n = snprintf(req, sizeof(req), "%s", head);
    ck_assert_int_eq(raw_send(&r, req, (size_t)n), 0);
    raw_send(&r, body, strlen(body)); /* the server may already have closed */
    int closed = 0;
    char *out = raw_read_all(&r, &closed);
    ck_assert_msg(closed, "the connection stayed open after: %s", out);
    raw_close(&r);
    return out;
}

START_TEST(conflicting_framing_is_400_and_closes)
{
    const char *body = "{\"env\":{\"GITHUB_TOKEN\":\"ghp_framing_0001\"}}";
    size_t bl = strlen(body);
    char heads[4][1024];
    snprintf(heads[0], sizeof(heads[0]),
             "POST /api/mcp/templates/github/deploy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nContent-Length: %zu\r\n\r\n",
             tok_a, bl, bl - 10);
    snprintf(heads[1], sizeof(heads[1]),
             "POST /api/mcp/templates/github/deploy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nContent-Length: %zu\r\n\r\n",
             tok_a, bl, bl);
    snprintf(heads[2], sizeof(heads[2]),
             "POST /api/mcp/templates/github/deploy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n",
             tok_a, bl);
    snprintf(heads[3], sizeof(heads[3]),
             "POST /api/mcp/templates/github/deploy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: %zu\r\n\r\n",
             tok_a, bl);
    char chunked[256];
    snprintf(chunked, sizeof(chunked), "%zx\r\n%s\r\n0\r\n\r\n", bl, body);
    long long before = cv_t_psql_int("SELECT count(*) FROM mcp_credentials");
    for (int i = 0; i < 4; i++) {
        char *out = framing_exchange(heads[i], i >= 2 ? chunked : body);
        ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0, "framing case %d: %s", i, out);
        ck_assert_msg(strstr(out, "201 Created") == NULL, "framing case %d deployed: %s", i, out);
        free(out);
    }
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials"), before);
    /* the same request framed once is served */
    char one[1024];
    snprintf(one, sizeof(one),
             "POST /api/mcp/templates/github/deploy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             tok_a, bl);
    char *out = framing_exchange(one, body);
    ck_assert_msg(strncmp(out, "HTTP/1.1 201", 12) == 0, "%s", out);
    free(out);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials"), before + 1);
}
END_TEST

/* ---- the access log ---- */

/* Every line of the service's log is a JSON object, and valid UTF-8 (jansson
 * refuses anything else). Returns how many lines hold `needle`. */
static int log_lines_valid(const struct cv_test_service *s, const char *needle)
{
    FILE *f = fopen(s->log_file, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int found = 0, no = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        no++;
        json_error_t err;
        json_t *j = json_loadb(line, (size_t)n, 0, &err);
        ck_assert_msg(json_is_object(j), "log line %d is not valid JSON (%s): %.200s", no, err.text, line);
        if (needle && strstr(line, needle)) found++;
        json_decref(j);
    }
    free(line);
    fclose(f);
    return found;
}

START_TEST(access_log_stays_utf8_json_whatever_the_path)
{
    const char *paths[] = {
        "/api/mcp/servers/a\xff" "b/credentials",     /* a byte that starts no character */
        "/api/mcp/servers/a\xc0\x80" "b/credentials", /* an overlong NUL */
        "/api/mcp/servers/\xed\xa0\x80/x",            /* a surrogate */
        "/api/\x01\x1b[31mred\x7f/x",                 /* control characters, an ANSI escape, DEL */
        "/api/\"quoted\\\"/x",                         /* JSON's own specials */
        "/api/mcp/servers/%ff%c0%80%00/credentials",  /* the same, percent-encoded */
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct raw r;
        raw_open(&r, svc.port);
        char req[1024];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                         paths[i]);
        ck_assert_int_eq(raw_send(&r, req, (size_t)n), 0);
        int closed = 0;
        char *out = raw_read_all(&r, &closed);
        ck_assert_msg(strncmp(out, "HTTP/1.1 4", 10) == 0, "path %zu: %s", i, out);
        free(out);
        raw_close(&r);
    }
    /* a long path of invalid bytes: cut short, never inside an escape */
    struct raw r;
    raw_open(&r, svc.port);
    char req[8192] = "GET /api/";
    size_t n = strlen(req);
    memset(req + n, 0xff, 4000);
    n += 4000;
    n += (size_t)snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(raw_send(&r, req, n), 0);
    int closed = 0;
    free(raw_read_all(&r, &closed));
    raw_close(&r);
    cv_t_expect_call(cl, "GET", "/healthz", NULL, NULL, 200, NULL); /* and the server is well */
    /* the raw bytes reached the access log, as U+FFFD, escaped control characters */
    ck_assert_int_ge(log_lines_valid(&svc, "\\ufffd"), 3);
    ck_assert_int_ge(log_lines_valid(&svc, "\\u001b[31mred\\u007f"), 1);
    ck_assert_int_ge(log_lines_valid(&svc, "\"event\":\"http_request\""), 8);
}
END_TEST

/* ---- X-Forwarded-For ---- */

/* The client address of the newest auth.failed event. */
static char *last_failed_client(void)
{
    return cv_t_psql("SELECT detail->>'client' FROM audit_events WHERE action = 'auth.failed' ORDER BY id DESC "
                     "LIMIT 1");
}

START_TEST(forwarded_for_only_from_a_trusted_proxy)
{
    const char *bad = "Bearer cvt_6666666666666666666666666666666666666666666666666666666666666666";
    const char *one[] = {"X-Forwarded-For: 203.0.113.9", NULL};
    /* not configured: the header is the client's say-so, ignored */
    struct cv_test_response r = cv_t_request_h(cl, "GET", "/api/mcp/servers", bad + 7, NULL, one);
    cv_t_expect_status(&r, 401, NULL);
    cv_test_response_free(&r);
    char *c = last_failed_client();
    ck_assert_str_eq(c, "127.0.0.1");
    free(c);
    /* from a trusted proxy: the right-most entry that is not a proxy */
    r = cv_t_request_h(cl_proxied, "GET", "/api/mcp/servers", bad + 7, NULL, one);
    cv_t_expect_status(&r, 401, NULL);
    cv_test_response_free(&r);
    c = last_failed_client();
    ck_assert_str_eq(c, "203.0.113.9");
    free(c);
    /* a forged entry to the left is not believed; several lines join in order */
    const char *forged[] = {"X-Forwarded-For: 198.51.100.1, 192.0.2.7", "X-Forwarded-For: 127.0.0.1", NULL};
    r = cv_t_request_h(cl_proxied, "GET", "/api/mcp/servers", bad + 7, NULL, forged);
    cv_t_expect_status(&r, 401, NULL);
    cv_test_response_free(&r);
    c = last_failed_client();
    ck_assert_str_eq(c, "192.0.2.7");
    free(c);
    /* a value that is no address stays with the proxy */
    const char *junk[] = {"X-Forwarded-For: <script>", NULL};
    r = cv_t_request_h(cl_proxied, "GET", "/api/mcp/servers", bad + 7, NULL, junk);
    cv_t_expect_status(&r, 401, NULL);
    cv_test_response_free(&r);
    c = last_failed_client();
    ck_assert_str_eq(c, "127.0.0.1");
    free(c);
}
END_TEST

static Suite *hostile_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hostile_clients", .timeout_s = 240};
    return cv_t_suite_new(&spec, CV_T_TESTS(slow_headers_are_cut_off_at_the_deadline,
                                            a_prompt_client_on_keep_alive_is_not_cut,
                                            conflicting_framing_is_400_and_closes,
                                            access_log_stays_utf8_json_whatever_the_path,
                                            forwarded_for_only_from_a_trusted_proxy));
}

int main(void)
{
    cv_json_alloc_install();
    signal(SIGPIPE, SIG_IGN); /* a server that hangs up is what some cases expect */
    Suite *suite = hostile_suite();
    if (gnutls_global_init() != GNUTLS_E_SUCCESS) return 1;
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    const char *extra[] = {"CREDVAULT_TRUSTED_PROXIES=127.0.0.1, ::1", NULL};
    if (cv_test_service_start(&proxied, extra) != 0) return 1;
    if (gnutls_certificate_allocate_credentials(&creds) != GNUTLS_E_SUCCESS ||
        gnutls_certificate_set_x509_trust_file(creds, svc.ca_file, GNUTLS_X509_FMT_PEM) <= 0)
        return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    cl_proxied = cv_test_client_new(proxied.base_url, proxied.ca_file);
    if (cv_test_cli("tenant create acme --name Acme >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)))
        return 1;

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    cv_test_client_free(cl_proxied);
    struct cv_test_service *all[] = {&svc, &proxied};
    for (size_t i = 0; i < 2; i++) {
        if (cv_test_service_stop(all[i]) != 0) {
            fprintf(stderr, "credvault serve exited badly (log: %s)\n", all[i]->log_file);
            failed++;
        }
    }
    gnutls_certificate_free_credentials(creds);
    gnutls_global_deinit();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
