/* The cluster test's HTTPS client (libcurl), three modes:
 *   load URL CA TOKEN DIR WRITERS STOPFILE   deploys with an Idempotency-Key per write,
 *       retried with the same key until acknowledged; acknowledged writes go to
 *       DIR/acked-<writer>; counts and the longest unavailability on stdout
 *   verify URL CA TOKEN DIR                   every acknowledged write readable, none twice
 *   agree CA ADMIN URL1 URL2 URL3             revoke, tenant key rotate, master rotate and
 *       shred made on the first instance: ms until every instance acts on it
 * Test code: it prints no secret but the ones it made for this throwaway cluster. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS 15000L /* a request longer than this is a hang: the test fails */
#define RETRY_PAUSE_MS 100        /* shorter than Retry-After on purpose: it measures the outage */
#define WRITE_PAUSE_MS 40         /* a few writers, modest load: the machine is shared */
#define CONN_LIFETIME_S 2L        /* then a new connection: HAProxy balances connections, not requests */
#define DRAIN_MS 30000            /* after the stop file, a writer's last key has this long */
#define AGREE_BOUND_MS 1000
#define MAX_WRITERS 16

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cluster_client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- one request ---- */

struct resp {
    long status; /* 0: no answer (refused, reset, timed out) */
    char *body;
    size_t len;
    int retry_after;
    long long ms;
    char error[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t add = sz * n;
    char *b = realloc(r->body, r->len + add + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, add);
    r->body = b;
    r->len += add;
    b[r->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    if (sz * n > 12 && strncasecmp(p, "Retry-After:", 12) == 0) r->retry_after = 1;
    return sz * n;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void request(CURL *c, const char *ca, const char *method, const char *url, const char *token, const char *body,
                    const char *idem, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    char auth[256], key[160];
    struct curl_slist *h = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
    if (body) h = curl_slist_append(h, "Content-Type: application/json");
    if (idem) {
        snprintf(key, sizeof(key), "Idempotency-Key: %s", idem);
        h = curl_slist_append(h, key);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MAXLIFETIME_CONN, CONN_LIFETIME_S);
    long long t0 = now_ms();
    CURLcode rc = curl_easy_perform(c);
    r->ms = now_ms() - t0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (rc == CURLE_OPERATION_TIMEDOUT) r->status = -1;
    curl_slist_free_all(h);
}

/* data.<field> of a JSON answer as a string (a number is printed), or "" */
static void data_field(const struct resp *r, const char *field, char *out, size_t n)
{
    out[0] = '\0';
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    json_t *v = json_object_get(json_object_get(j, "data"), field);
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    json_decref(j);
}

/* ---- load ---- */

struct load {
    const char *url, *ca, *token, *dir, *stopfile;
    atomic_long requests, acked, unavailable, unavailable_no_retry_after, no_answer, throttled, unexpected, hung,
        unresolved;
    atomic_llong longest_outage_ms, slowest_ms;
};

struct writer {
    struct load *ld;
    int n;
};

static void max_into(atomic_llong *a, long long v)
{
    long long cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct load *ld = w->ld;
    char path[512], url[640], body[512], key[96], id[160];
    snprintf(path, sizeof(path), "%s/acked-%d", ld->dir, w->n);
    FILE *out = fopen(path, "w");
    if (!out) die("cannot write %s", path);
    CURL *c = curl_easy_init();
    snprintf(url, sizeof(url), "%s/api/mcp/templates/grc-evidence/deploy", ld->url);
    long long stop_at = 0;
    for (int seq = 0;; seq++) {
        if (!stop_at && access(ld->stopfile, F_OK) == 0) stop_at = now_ms();
        if (stop_at) break;
        snprintf(key, sizeof(key), "w%d-%06d", w->n, seq);
        /* the value's last four characters are the key's: the masked read shows them */
        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"env\":{\"GITHUB_TOKEN\":\"ghp_cluster_test_value_%s\"}}", key,
                 key);
        long long first_fail = 0;
        for (;;) {
            struct resp r;
            request(c, ld->ca, "POST", url, ld->token, body, key, &r);
            atomic_fetch_add(&ld->requests, 1);
            max_into(&ld->slowest_ms, r.ms);
            if (r.status == 201) {
                data_field(&r, "id", id, sizeof(id));
                resp_free(&r);
                if (!id[0]) die("a 201 without an id");
                fprintf(out, "%s %s\n", key, id);
                fflush(out);
                atomic_fetch_add(&ld->acked, 1);
                if (first_fail) max_into(&ld->longest_outage_ms, now_ms() - first_fail);
                break;
            }
            if (!first_fail) first_fail = now_ms();
            if (r.status == 503) {
                atomic_fetch_add(&ld->unavailable, 1);
                if (!r.retry_after) atomic_fetch_add(&ld->unavailable_no_retry_after, 1);
            } else if (r.status == 429) {
                atomic_fetch_add(&ld->throttled, 1);
            } else if (r.status == -1) {
                atomic_fetch_add(&ld->hung, 1);
            } else if (r.status == 0) {
                /* the first few say why: refused, reset, a handshake cut short */
                if (atomic_fetch_add(&ld->no_answer, 1) < 5)
                    fprintf(stderr, "cluster_client: write %s: %s\n", key, r.error);
            } else {
                atomic_fetch_add(&ld->unexpected, 1);
                fprintf(stderr, "cluster_client: write %s: status %ld: %.300s\n", key, r.status, r.body ? r.body : "");
            }
            resp_free(&r);
            if (!stop_at && access(ld->stopfile, F_OK) == 0) stop_at = now_ms();
            if (stop_at && now_ms() - stop_at > DRAIN_MS) {
                atomic_fetch_add(&ld->unresolved, 1);
                fprintf(stderr, "cluster_client: write %s never acknowledged\n", key);
                break;
            }
            sleep_ms(RETRY_PAUSE_MS);
        }
        sleep_ms(WRITE_PAUSE_MS);
    }
    curl_easy_cleanup(c);
    fclose(out);
    return NULL;
}

static int cmd_load(char **a)
{
    struct load ld = {.url = a[0], .ca = a[1], .token = a[2], .dir = a[3], .stopfile = a[5]};
    int n = atoi(a[4]);
    if (n < 1 || n > MAX_WRITERS) die("1 to %d writers", MAX_WRITERS);
    pthread_t t[MAX_WRITERS];
    struct writer w[MAX_WRITERS];
    for (int i = 0; i < n; i++) {
        w[i] = (struct writer){&ld, i};
        if (pthread_create(&t[i], NULL, writer_main, &w[i]) != 0) die("pthread_create");
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("requests=%ld\nacknowledged=%ld\nanswered_503=%ld\nanswered_503_without_retry_after=%ld\n"
           "no_answer=%ld\nanswered_429=%ld\nunexpected=%ld\nhung=%ld\nunresolved=%ld\n"
           "longest_unavailability_ms=%lld\nslowest_request_ms=%lld\n",
           atomic_load(&ld.requests), atomic_load(&ld.acked), atomic_load(&ld.unavailable),
           atomic_load(&ld.unavailable_no_retry_after), atomic_load(&ld.no_answer), atomic_load(&ld.throttled),
           atomic_load(&ld.unexpected), atomic_load(&ld.hung), atomic_load(&ld.unresolved),
           atomic_load(&ld.longest_outage_ms), atomic_load(&ld.slowest_ms));
    return 0;
}

/* ---- verify ---- */

struct verify {
    const char *base, *ca, *token, *dir;
    atomic_long acked, found, wrong;
};

struct verify_part {
    struct verify *v;
    int writer;
};

/* one writer's acknowledged writes, read back (the masked read decrypts them) */
static void *verify_main(void *arg)
{
    struct verify_part *part = arg;
    struct verify *v = part->v;
    char url[640], line[512], key[96], id[160];
    snprintf(line, sizeof(line), "%s/acked-%d", v->dir, part->writer);
    FILE *f = fopen(line, "r");
    if (!f) return NULL;
    CURL *c = curl_easy_init();
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%95s %159s", key, id) != 2) continue;
        atomic_fetch_add(&v->acked, 1);
        snprintf(url, sizeof(url), "%s/api/mcp/servers/%s/credentials", v->base, id);
        struct resp r;
        request(c, v->ca, "GET", url, v->token, NULL, NULL, &r);
        json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        const char *m = json_string_value(
            json_object_get(json_object_get(json_object_get(j, "data"), "credentials"), "GITHUB_TOKEN"));
        size_t kl = strlen(key), ml = m ? strlen(m) : 0;
        if (m && ml >= 4 && strcmp(m + ml - 4, key + kl - 4) == 0) {
            atomic_fetch_add(&v->found, 1);
        } else {
            atomic_fetch_add(&v->wrong, 1);
            fprintf(stderr, "cluster_client: write %s (%s): status %ld %.200s\n", key, id, r.status,
                    r.body ? r.body : "");
        }
        json_decref(j);
        resp_free(&r);
    }
    fclose(f);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmd_verify(char **a)
{
    const char *base = a[0], *ca = a[1], *token = a[2], *dir = a[3];
    struct verify v = {.base = base, .ca = ca, .token = token, .dir = dir};
    pthread_t t[MAX_WRITERS];
    struct verify_part parts[MAX_WRITERS];
    for (int i = 0; i < MAX_WRITERS; i++) {
        parts[i] = (struct verify_part){&v, i};
        if (pthread_create(&t[i], NULL, verify_main, &parts[i]) != 0) die("pthread_create");
    }
    for (int i = 0; i < MAX_WRITERS; i++)
        pthread_join(t[i], NULL);
    long acked = atomic_load(&v.acked), found = atomic_load(&v.found), wrong = atomic_load(&v.wrong);
    CURL *c = curl_easy_init();
    char url[640];
    /* every server of the tenant, by name: a name twice is a duplicated write */
    long servers = 0, duplicates = 0;
    json_t *names = json_object();
    for (long offset = 0;; offset += 200) {
        snprintf(url, sizeof(url), "%s/api/mcp/servers?limit=200&offset=%ld", base, offset);
        struct resp r;
        request(c, ca, "GET", url, token, NULL, NULL, &r);
        if (r.status != 200) die("listing servers: status %ld", r.status);
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *arr = json_object_get(j, "data");
        size_t i, n = json_array_size(arr);
        json_t *s;
        json_array_foreach (arr, i, s) {
            const char *name = json_string_value(json_object_get(s, "name"));
            if (!name) continue;
            servers++;
            if (json_object_get(names, name))
                duplicates++;
            else
                json_object_set_new(names, name, json_true());
        }
        json_decref(j);
        resp_free(&r);
        if (n < 200) break;
    }
    json_decref(names);
    curl_easy_cleanup(c);
    printf("acknowledged=%ld\nfound=%ld\nmissing_or_wrong=%ld\nservers=%ld\nduplicates=%ld\n", acked, found, wrong,
           servers, duplicates);
    return 0;
}

/* ---- agree ---- */

struct agree {
    const char *ca, *admin, *url[3];
    CURL *c;
};

/* right after a failover an instance may still say 503 (its breaker probes every 500 ms) */
static void call_r(struct agree *g, int inst, const char *method, const char *path, const char *token, const char *body,
                   struct resp *r)
{
    char url[640];
    snprintf(url, sizeof(url), "%s%s", g->url[inst], path);
    long long t0 = now_ms();
    for (;;) {
        request(g->c, g->ca, method, url, token, body, NULL, r);
        if ((r->status != 503 && r->status != 0) || now_ms() - t0 > 10000) break;
        resp_free(r);
        sleep_ms(50);
    }
    if (r->status >= 500 || r->status <= 0)
        fprintf(stderr, "cluster_client: %s %s on %d: %ld %.200s\n", method, path, inst, r->status,
                r->body ? r->body : r->error);
}

static long call(struct agree *g, int inst, const char *method, const char *path, const char *token, const char *body,
                 char *field_out, const char *field, size_t n)
{
    struct resp r;
    call_r(g, inst, method, path, token, body, &r);
    if (field_out) data_field(&r, field, field_out, n);
    long s = r.status;
    resp_free(&r);
    return s;
}

static void expect(long got, long want, const char *what)
{
    if (got != want) die("%s: status %ld, expected %ld", what, got, want);
}

typedef int (*probe_fn)(struct agree *g, int inst, void *arg); /* 1: the change took effect there */

/* ms from t0 until probe holds on every instance; dies past the bound */
static long long until_all(struct agree *g, long long t0, probe_fn probe, void *arg, const char *what)
{
    int done[3] = {0, 0, 0};
    long long worst = 0;
    for (;;) {
        int left = 0;
        for (int i = 0; i < 3; i++) {
            if (done[i]) continue;
            if (probe(g, i, arg)) {
                done[i] = 1;
                long long t = now_ms() - t0;
                if (t > worst) worst = t;
            } else {
                left++;
            }
        }
        if (!left) break;
        if (now_ms() - t0 > 10 * AGREE_BOUND_MS)
            die("%s: not on every instance after %d ms", what, 10 * AGREE_BOUND_MS);
        sleep_ms(10);
    }
    printf("%s_ms=%lld\n", what, worst);
    fflush(stdout);
    return worst;
}

struct probe_arg {
    const char *token, *id, *tenant;
    char expect[32];
    int seq;
};

static int revoked(struct agree *g, int inst, void *arg)
{
    struct probe_arg *p = arg;
    return call(g, inst, "GET", "/api/mcp/servers", p->token, NULL, NULL, NULL, 0) == 401;
}

static int writes_new_version(struct agree *g, int inst, void *arg)
{
    struct probe_arg *p = arg;
    char path[256], body[160], v[32];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", p->id);
    snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_TOKEN\":\"ghp_cluster_agree_%06d\"}}", p->seq++);
    if (call(g, inst, "PUT", path, p->token, body, NULL, NULL, 0) != 200) return 0;
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", p->id);
    call(g, inst, "GET", path, p->token, NULL, v, "keyVersion", sizeof(v));
    return strcmp(v, p->expect) == 0;
}

static int wraps_under_new_master(struct agree *g, int inst, void *arg)
{
    struct probe_arg *p = arg;
    char body[160], path[160], v[32];
    snprintf(body, sizeof(body), "{\"id\":\"%s-%d-%d\",\"name\":\"agree\"}", p->tenant, inst, p->seq);
    snprintf(path, sizeof(path), "/api/tenants/%s-%d-%d", p->tenant, inst, p->seq++);
    if (call(g, inst, "POST", "/api/tenants", g->admin, body, NULL, NULL, 0) != 201) return 0;
    struct resp r;
    call_r(g, inst, "GET", path, g->admin, NULL, &r);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    json_int_t m = json_integer_value(
        json_object_get(json_array_get(json_object_get(json_object_get(j, "data"), "keys"), 0), "masterVersion"));
    snprintf(v, sizeof(v), "%lld", (long long)m);
    json_decref(j);
    resp_free(&r);
    return strcmp(v, p->expect) == 0;
}

static int record_refused(struct agree *g, int inst, void *arg)
{
    struct probe_arg *p = arg;
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", p->id);
    return call(g, inst, "GET", path, p->token, NULL, NULL, NULL, 0) != 200;
}

static void mint(struct agree *g, const char *tenant, char *tok, size_t tn)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"agree@%s\",\"role\":\"tenant-admin\",\"tenantId\":\"%s\"}", tenant,
             tenant);
    expect(call(g, 0, "POST", "/api/tokens", g->admin, body, tok, "token", tn), 201, "token create");
}

static int cmd_agree(char **a)
{
    struct agree g = {.ca = a[0], .admin = a[1], .url = {a[2], a[3], a[4]}, .c = curl_easy_init()};
    char tok[256], srv[160], body[256], path[256], v[32];
    struct probe_arg p = {0};
    long long worst = 0, t, t0;
    char tenant[64];
    snprintf(tenant, sizeof(tenant), "agree%lld", now_ms() % 100000000);

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"agree\"}", tenant);
    expect(call(&g, 0, "POST", "/api/tenants", g.admin, body, NULL, NULL, 0), 201, "tenant create");
    mint(&g, tenant, tok, sizeof(tok));
    expect(call(&g, 0, "POST", "/api/mcp/templates/grc-evidence/deploy", tok,
                "{\"env\":{\"GITHUB_TOKEN\":\"ghp_cluster_agree_start\"}}", srv, "id", sizeof(srv)),
           201, "deploy");
    /* every instance has the tenant's key cached before each change */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv);
    for (int i = 0; i < 3; i++)
        expect(call(&g, i, "GET", path, tok, NULL, NULL, NULL, 0), 200, "masked read");

    /* 1. tenant key rotate (first: right after a failover it shows the
     * listeners caught up with what they could not hear): the others write
     * under the new version */
    snprintf(path, sizeof(path), "/api/tenants/%s/keys/rotate", tenant);
    t0 = now_ms();
    expect(call(&g, 0, "POST", path, g.admin, NULL, v, "version", sizeof(v)), 201, "tenant key rotate");
    p = (struct probe_arg){.token = tok, .id = srv};
    snprintf(p.expect, sizeof(p.expect), "%s", v);
    t = until_all(&g, t0, writes_new_version, &p, "tenant_key_rotate");
    if (t > worst) worst = t;

    /* 2. master rotate: the others wrap new tenant keys under the new master */
    t0 = now_ms();
    expect(call(&g, 0, "POST", "/api/admin/master-keys/rotate", g.admin, NULL, v, "version", sizeof(v)), 202,
           "master rotate");
    p = (struct probe_arg){.tenant = tenant};
    snprintf(p.expect, sizeof(p.expect), "%s", v);
    t = until_all(&g, t0, wraps_under_new_master, &p, "master_rotate");
    if (t > worst) worst = t;

    /* 3. token revoke: a token that works everywhere, revoked on the first */
    char victim[256], victim_id[96];
    snprintf(body, sizeof(body), "{\"name\":\"victim@%s\",\"role\":\"auditor\",\"tenantId\":\"%s\"}", tenant, tenant);
    {
        struct resp r;
        call_r(&g, 0, "POST", "/api/tokens", g.admin, body, &r);
        expect(r.status, 201, "token create");
        data_field(&r, "token", victim, sizeof(victim));
        data_field(&r, "id", victim_id, sizeof(victim_id));
        resp_free(&r);
    }
    for (int i = 0; i < 3; i++)
        expect(call(&g, i, "GET", "/api/mcp/servers", victim, NULL, NULL, NULL, 0), 200, "auditor list");
    snprintf(path, sizeof(path), "/api/tokens/%s", victim_id);
    t0 = now_ms();
    expect(call(&g, 0, "DELETE", path, g.admin, NULL, NULL, NULL, 0), 200, "token revoke");
    p.token = victim;
    t = until_all(&g, t0, revoked, &p, "token_revoke");
    if (t > worst) worst = t;

    /* 4. tenant shred: the others refuse the tenant's record */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv);
    for (int i = 0; i < 3; i++)
        expect(call(&g, i, "GET", path, tok, NULL, NULL, NULL, 0), 200, "masked read");
    snprintf(path, sizeof(path), "/api/tenants/%s?confirm=%s", tenant, tenant);
    t0 = now_ms();
    expect(call(&g, 0, "DELETE", path, g.admin, NULL, NULL, NULL, 0), 200, "tenant shred");
    p = (struct probe_arg){.token = tok, .id = srv};
    t = until_all(&g, t0, record_refused, &p, "tenant_shred");
    if (t > worst) worst = t;

    curl_easy_cleanup(g.c);
    printf("agree_worst_ms=%lld\n", worst);
    if (worst > AGREE_BOUND_MS)
        die("a change took %lld ms to reach every instance (bound %d ms)", worst, AGREE_BOUND_MS);
    return 0;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc;
    if (argc == 8 && strcmp(argv[1], "load") == 0)
        rc = cmd_load(argv + 2);
    else if (argc == 6 && strcmp(argv[1], "verify") == 0)
        rc = cmd_verify(argv + 2);
    else if (argc == 7 && strcmp(argv[1], "agree") == 0)
        rc = cmd_agree(argv + 2);
    else {
        fprintf(stderr, "usage: cluster_client load URL CA TOKEN DIR WRITERS STOPFILE\n"
                        "       cluster_client verify URL CA TOKEN DIR\n"
                        "       cluster_client agree CA ADMIN URL1 URL2 URL3\n");
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
