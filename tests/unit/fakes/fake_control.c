/* The fakes' switchboard: armed failures, call counts, and the service
 * context the domain's unit tests run against. Never linked into credvault. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/config.h"
#include "domain/domain.h"
#include "fakes.h"
#include "fakes_internal.h"

#define ARMED_MAX 16
#define CALLS_MAX 128
#define FN_MAX_BYTES 64

static struct {
    char fn[FN_MAX_BYTES];
    cv_err err;
    unsigned after;
    int live;
} armed[ARMED_MAX];

static struct {
    char fn[FN_MAX_BYTES];
    unsigned n;
} calls[CALLS_MAX];

static int matches(const char *pattern, const char *fn)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') return strncmp(pattern, fn, n - 1) == 0;
    return strcmp(pattern, fn) == 0;
}

void cv_fake_count(const char *fn)
{
    for (size_t i = 0; i < CALLS_MAX; i++) {
        if (calls[i].fn[0] == '\0') snprintf(calls[i].fn, sizeof(calls[i].fn), "%s", fn);
        if (strcmp(calls[i].fn, fn) == 0) {
            calls[i].n++;
            return;
        }
    }
    fprintf(stderr, "fakes: more than %d functions called\n", CALLS_MAX);
    abort();
}

cv_result cv_fake_enter(const char *fn)
{
    cv_fake_count(fn);
    for (size_t i = 0; i < ARMED_MAX; i++) {
        if (!armed[i].live || !matches(armed[i].fn, fn)) continue;
        if (armed[i].after > 0) {
            armed[i].after--;
            continue;
        }
        armed[i].live = 0;
        return cv_fail(armed[i].err, "injected failure of %s", fn);
    }
    return CV_OK;
}

void cv_fake_fail(const char *fn, cv_err err, unsigned after)
{
    for (size_t i = 0; i < ARMED_MAX; i++) {
        if (armed[i].live) continue;
        snprintf(armed[i].fn, sizeof(armed[i].fn), "%s", fn);
        armed[i].err = err;
        armed[i].after = after;
        armed[i].live = 1;
        return;
    }
    fprintf(stderr, "fakes: more than %d failures armed\n", ARMED_MAX);
    abort();
}

unsigned cv_fake_calls(const char *fn)
{
    unsigned n = 0;
    for (size_t i = 0; i < CALLS_MAX && calls[i].fn[0]; i++)
        if (matches(fn, calls[i].fn)) n += calls[i].n;
    return n;
}

void cv_fake_calls_clear(void)
{
    memset(calls, 0, sizeof(calls));
}

void cv_fake_reset(void)
{
    memset(armed, 0, sizeof(armed));
    memset(calls, 0, sizeof(calls));
}

struct cv_app *cv_fake_app_new(void)
{
    cv_fake_reset();
    struct cv_config *cfg = calloc(1, sizeof(*cfg));
    struct cv_app *app = calloc(1, sizeof(*app));
    if (!cfg || !app) abort();
    cv_config_defaults(cfg);
    app->cfg = cfg;
    app->store = cv_fake_store_new();
    app->hsm = cv_fake_hsm_new();
    app->master_version = 1;
    if (cv_failed(cv_catalog_load(NULL, &app->catalog))) {
        fprintf(stderr, "fakes: the built-in catalog does not load: %s\n", cv_error_message());
        abort();
    }
    cv_fake_reset(); /* the counts start with the test */
    return app;
}

void cv_fake_app_free(struct cv_app *app)
{
    if (!app) return;
    struct cv_config *cfg = (struct cv_config *)app->cfg;
    cv_config_free(cfg);
    free(cfg);
    /* what cv_app_close does, without linking app.c (which opens the real layers) */
    cv_catalog_free(app->catalog);
    cv_store_close(app->store);
    cv_hsm_close(app->hsm);
    free(app);
}

struct cv_principal cv_fake_principal(enum cv_role role, const char *tenant_id, const char *server_id)
{
    struct cv_principal p;
    memset(&p, 0, sizeof(p));
    snprintf(p.token_id, sizeof(p.token_id), "00000000-0000-4000-8000-%012d", (int)role);
    snprintf(p.name, sizeof(p.name), "%s@test", cv_role_name(role));
    p.role = role;
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant_id ? tenant_id : "");
    snprintf(p.server_id, sizeof(p.server_id), "%s", server_id ? server_id : "");
    p.request_id = "test-request";
    return p;
}

void cv_fake_tenant(struct cv_app *app, const char *id)
{
    struct cv_principal admin = cv_fake_principal(CV_ROLE_ADMIN, NULL, NULL);
    json_t *b = json_pack("{s:s}", "id", id), *d = NULL;
    ck_assert_msg(cv_ok(cv_tenant_create(app, &admin, b, &d)), "tenant %s: %s", id, cv_error_message());
    json_decref(b);
    json_decref(d);
}

json_t *cv_fake_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", text, e.text);
    return j;
}
