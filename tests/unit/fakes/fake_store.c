/* The store in memory for the domain's unit tests: tenants and their key
 * versions, tokens by hash, servers with revisions and encryption counts,
 * master keys, and the audit events written or committed with a change.
 * Calls the tests do not model fail with CV_ERR_INTERNAL, naming themselves.
 * Write calls commit the event passed to them with the change (one helper,
 * commit_event), as the real store does in the change's transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/store.h"
#include "credvault/store_audit.h"
#include "credvault/store_installation.h"
#include "credvault/store_lifecycle.h"
#include "domain/domain.h"
#include "fakes.h"
#include "fakes_internal.h"

#define TENANTS_MAX 32
#define KEYS_MAX 16
#define TOKENS_MAX 64
#define SERVERS_MAX 128
#define MASTERS_MAX 8
#define EVENTS_MAX 512

struct fake_tenant {
    struct cv_tenant_row row;
    struct cv_tenant_key_row keys[KEYS_MAX]; /* by version, oldest first */
    size_t nkeys;
};

struct fake_token {
    struct cv_token_row row;
    uint8_t hash[CV_TOKEN_HASH_BYTES];
};

struct fake_event {
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];
    char actor[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    char role[CV_STORE_ROLE_MAX_BYTES + 1];
    char action[CV_AUDIT_ACTION_MAX_BYTES + 1];
    char target[CV_AUDIT_TARGET_MAX_BYTES + 1];
    char outcome[CV_AUDIT_OUTCOME_MAX_BYTES + 1];
};

struct cv_store {
    struct fake_tenant tenants[TENANTS_MAX];
    size_t ntenants;
    struct fake_token tokens[TOKENS_MAX];
    size_t ntokens;
    struct cv_server_row servers[SERVERS_MAX]; /* insertion order */
    size_t nservers;
    struct cv_master_key_row masters[MASTERS_MAX];
    size_t nmasters;
    struct fake_event events[EVENTS_MAX];
    size_t nevents;
    unsigned long ids;
};

static int64_t now_ms(void)
{
    return cv_time_now_ms();
}

static void next_uuid(struct cv_store *st, char out[CV_STORE_UUID_BYTES + 1])
{
    snprintf(out, CV_STORE_UUID_BYTES + 1, "00000000-0000-4000-8000-%012lu", ++st->ids);
}

static cv_result unmodelled(const char *fn)
{
    return cv_fail(CV_ERR_INTERNAL, "%s is not modelled by the fake store", fn);
}

struct cv_store *cv_fake_store_new(void)
{
    struct cv_store *st = calloc(1, sizeof(*st));
    if (!st) abort();
    st->nmasters = 1;
    st->masters[0].version = 1;
    snprintf(st->masters[0].state, sizeof(st->masters[0].state), "active");
    st->masters[0].created_at_ms = now_ms();
    return st;
}

void cv_store_close(struct cv_store *st)
{
    cv_fake_count(__func__);
    if (!st) return;
    for (size_t i = 0; i < st->nservers; i++)
        cv_server_row_free(&st->servers[i]);
    free(st);
}

void cv_store_thread_done(struct cv_store *st)
{
    (void)st;
    cv_fake_count(__func__);
}

/* ---- rows ---- */

void cv_server_row_free(struct cv_server_row *row)
{
    if (!row) return;
    free(row->encrypted_env);
    free(row->configured_integrations);
    free(row->credential_names);
    row->encrypted_env = row->configured_integrations = row->credential_names = NULL;
}

void cv_audit_checkpoint_free(struct cv_audit_checkpoint *cp)
{
    if (!cp) return;
    free(cp->payload);
    cp->payload = NULL;
}

static char *dup_or_null(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

static void server_copy(struct cv_server_row *dst, const struct cv_server_row *src, int with_env)
{
    *dst = *src;
    dst->encrypted_env = with_env ? dup_or_null(src->encrypted_env) : NULL;
    dst->configured_integrations = dup_or_null(src->configured_integrations);
    dst->credential_names = dup_or_null(src->credential_names);
}

static struct fake_tenant *tenant_find(struct cv_store *st, const char *id)
{
    for (size_t i = 0; id && i < st->ntenants; i++)
        if (strcmp(st->tenants[i].row.id, id) == 0) return &st->tenants[i];
    return NULL;
}

static struct cv_server_row *server_find(struct cv_store *st, const char *tenant_id, const char *server_id)
{
    for (size_t i = 0; i < st->nservers; i++)
        if (strcmp(st->servers[i].tenant_id, tenant_id) == 0 && strcmp(st->servers[i].server_id, server_id) == 0)
            return &st->servers[i];
    return NULL;
}

/* The newest active version (what new writes use), or NULL. */
static struct cv_tenant_key_row *key_current(struct fake_tenant *t)
{
    for (size_t i = t->nkeys; i > 0; i--)
        if (strcmp(t->keys[i - 1].state, "active") == 0) return &t->keys[i - 1];
    return NULL;
}

static struct cv_tenant_key_row *key_find(struct fake_tenant *t, uint32_t version)
{
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->keys[i].ref.version == version) return &t->keys[i];
    return NULL;
}

static void tenant_row(struct fake_tenant *t, struct cv_tenant_row *row)
{
    *row = t->row;
    struct cv_tenant_key_row *k = key_current(t);
    row->current_key_version = k ? k->ref.version : 0;
}

/* Counts one encryption on the key version a record was sealed with. */
static void count_encryption(struct cv_store *st, const char *tenant_id, uint32_t version)
{
    struct fake_tenant *t = tenant_find(st, tenant_id);
    struct cv_tenant_key_row *k = t ? key_find(t, version) : NULL;
    if (k) k->encryptions++;
}

/* ---- audit ---- */

static void event_fill(struct fake_event *e, const struct cv_audit_event *ev)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->tenant_id, sizeof(e->tenant_id), "%s", ev->tenant_id ? ev->tenant_id : "");
    snprintf(e->actor, sizeof(e->actor), "%s", ev->actor ? ev->actor : "");
    snprintf(e->role, sizeof(e->role), "%s", ev->role ? ev->role : "");
    snprintf(e->action, sizeof(e->action), "%s", ev->action ? ev->action : "");
    snprintf(e->target, sizeof(e->target), "%s", ev->target ? ev->target : "");
    snprintf(e->outcome, sizeof(e->outcome), "%s", ev->outcome ? ev->outcome : "");
}

static void event_store(struct cv_store *st, const struct fake_event *e)
{
    if (st->nevents == EVENTS_MAX) abort();
    st->events[st->nevents++] = *e;
}

/* A change committed: so does its event. With version > 0 the target is
 * ev->target followed by the version, as store_lifecycle.h says. */
static void commit_event(struct cv_store *st, const struct cv_audit_event *ev, uint32_t version)
{
    if (!ev) return;
    struct fake_event e;
    event_fill(&e, ev);
    if (version) snprintf(e.target, sizeof(e.target), "%s%u", ev->target ? ev->target : "", version);
    event_store(st, &e);
}

cv_result cv_store_audit_append(struct cv_store *st, const struct cv_audit_event *ev, int durable)
{
    (void)durable;
    CV_GUARD(cv_fake_enter(__func__));
    commit_event(st, ev, 0);
    return CV_OK;
}

cv_result cv_store_audit_check_ready(struct cv_store *st)
{
    (void)st;
    return cv_fake_enter(__func__);
}

cv_result cv_store_audit_heads(struct cv_store *st, const char *chain, int unsealed_only, cv_store_audit_head_cb cb,
                               void *arg)
{
    (void)st, (void)chain, (void)unsealed_only, (void)cb, (void)arg;
    CV_GUARD(cv_fake_enter(__func__));
    return CV_OK; /* no chains: nothing to seal */
}

cv_result cv_store_audit_checkpoint_last(struct cv_store *st, struct cv_audit_checkpoint *cp, int *found)
{
    (void)st, (void)cp;
    CV_GUARD(cv_fake_enter(__func__));
    *found = 0;
    return CV_OK;
}

cv_result cv_store_audit_checkpoint_insert(struct cv_store *st, struct cv_audit_checkpoint *cp,
                                           const struct cv_audit_head *heads, size_t nheads)
{
    (void)st, (void)cp, (void)heads, (void)nheads;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_installation_get(struct cv_store *st, char id[37])
{
    (void)st;
    CV_GUARD(cv_fake_enter(__func__));
    snprintf(id, 37, "%s", "00000000-0000-4000-8000-000000000001");
    return CV_OK;
}

unsigned cv_fake_audit_count(const struct cv_app *app, const char *action, const char *outcome)
{
    const struct cv_store *st = app->store;
    unsigned n = 0;
    for (size_t i = 0; i < st->nevents; i++)
        n += (!action || strcmp(st->events[i].action, action) == 0) &&
             (!outcome || strcmp(st->events[i].outcome, outcome) == 0);
    return n;
}

/* ---- master keys ---- */

cv_result cv_store_master_key_current(struct cv_store *st, struct cv_master_key_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    for (size_t i = st->nmasters; i > 0; i--) {
        if (strcmp(st->masters[i - 1].state, "active") != 0) continue;
        *row = st->masters[i - 1];
        return CV_OK;
    }
    return cv_fail(CV_ERR_NOT_FOUND, "no master key");
}

cv_result cv_store_master_key_list(struct cv_store *st, cv_store_master_key_cb cb, void *arg)
{
    CV_GUARD(cv_fake_enter(__func__));
    for (size_t i = 0; i < st->nmasters; i++)
        if (cb(arg, &st->masters[i])) break;
    return CV_OK;
}

/* ---- tenants ---- */

cv_result cv_store_tenant_create(struct cv_store *st, const struct cv_tenant_row *tenant,
                                 const struct cv_tenant_key_row *first_key, const char *created_by,
                                 const struct cv_audit_event *ev)
{
    (void)created_by;
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(!tenant_find(st, tenant->id), CV_ERR_CONFLICT, "tenant exists");
    if (st->ntenants == TENANTS_MAX) abort();
    struct fake_tenant *t = &st->tenants[st->ntenants++];
    memset(t, 0, sizeof(*t));
    t->row = *tenant;
    t->row.created_at_ms = now_ms();
    if (t->row.min_decrypt_version == 0) t->row.min_decrypt_version = 1;
    t->keys[0] = *first_key;
    t->keys[0].created_at_ms = now_ms();
    t->keys[0].encryptions = 0;
    t->nkeys = 1;
    commit_event(st, ev, 0);
    return CV_OK;
}

cv_result cv_store_tenant_get(struct cv_store *st, const char *tenant_id, struct cv_tenant_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, tenant_id);
    CV_ENSURE(t, CV_ERR_NOT_FOUND, "tenant not found");
    tenant_row(t, row);
    return CV_OK;
}

cv_result cv_store_tenant_list(struct cv_store *st, unsigned limit, unsigned offset, cv_store_tenant_cb cb, void *arg,
                               uint64_t *total)
{
    CV_GUARD(cv_fake_enter(__func__));
    *total = st->ntenants;
    for (size_t i = offset; i < st->ntenants && i < (size_t)offset + limit; i++) {
        struct cv_tenant_row row;
        tenant_row(&st->tenants[i], &row);
        if (cb(arg, &row)) break;
    }
    return CV_OK;
}

cv_result cv_store_tenant_key_list(struct cv_store *st, const char *tenant_id, cv_store_tenant_key_cb cb, void *arg)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, tenant_id);
    for (size_t i = 0; t && i < t->nkeys; i++)
        if (cb(arg, &t->keys[i])) break;
    return CV_OK;
}

cv_result cv_store_tenant_key_get(struct cv_store *st, const char *tenant_id, uint32_t version,
                                  struct cv_tenant_key_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, tenant_id);
    struct cv_tenant_key_row *k = t ? key_find(t, version) : NULL;
    CV_ENSURE(k, CV_ERR_NOT_FOUND, "key version not found");
    *row = *k;
    return CV_OK;
}

cv_result cv_store_tenant_key_current(struct cv_store *st, const char *tenant_id, struct cv_tenant_key_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, tenant_id);
    struct cv_tenant_key_row *k = t ? key_current(t) : NULL;
    CV_ENSURE(k, CV_ERR_NOT_FOUND, "tenant not found");
    *row = *k;
    return CV_OK;
}

/* ---- tokens ---- */

cv_result cv_store_token_insert(struct cv_store *st, struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES],
                                const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(!row->tenant_id[0] || tenant_find(st, row->tenant_id), CV_ERR_NOT_FOUND, "tenant not found");
    if (!row->id[0]) next_uuid(st, row->id);
    for (size_t i = 0; i < st->ntokens; i++) {
        CV_ENSURE(strcmp(st->tokens[i].row.id, row->id) != 0, CV_ERR_CONFLICT, "token id exists");
        CV_ENSURE(memcmp(st->tokens[i].hash, hash, CV_TOKEN_HASH_BYTES) != 0, CV_ERR_CONFLICT, "token hash exists");
        const struct cv_token_row *o = &st->tokens[i].row;
        CV_ENSURE(strcmp(o->name, row->name) != 0 || strcmp(o->role, row->role) != 0 ||
                      strcmp(o->tenant_id, row->tenant_id) != 0,
                  CV_ERR_CONFLICT, "a token of this role with this name exists already in this tenant");
    }
    if (st->ntokens == TOKENS_MAX) abort();
    row->created_at_ms = now_ms();
    st->tokens[st->ntokens].row = *row;
    memcpy(st->tokens[st->ntokens].hash, hash, CV_TOKEN_HASH_BYTES);
    st->ntokens++;
    commit_event(st, ev, 0);
    return CV_OK;
}

cv_result cv_store_token_lookup(struct cv_store *st, const uint8_t hash[CV_TOKEN_HASH_BYTES], struct cv_token_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    for (size_t i = 0; i < st->ntokens; i++) {
        if (memcmp(st->tokens[i].hash, hash, CV_TOKEN_HASH_BYTES) != 0) continue;
        *row = st->tokens[i].row;
        return CV_OK;
    }
    return cv_fail(CV_ERR_NOT_FOUND, "token not found");
}

/* The fake has no rows from before verifiers: nothing is ever pending. */
cv_result cv_store_token_bind_pending(struct cv_store *st, cv_store_token_bind_cb cb, void *arg)
{
    (void)st, (void)cb, (void)arg;
    return cv_fake_enter(__func__);
}

cv_result cv_store_token_bind_finish(struct cv_store *st, const struct cv_token_row *rows, size_t n,
                                     const struct cv_audit_event *ev, int *bound)
{
    (void)st, (void)rows, (void)n, (void)ev;
    CV_GUARD(cv_fake_enter(__func__));
    *bound = -1;
    return CV_OK;
}

cv_result cv_store_token_revoke(struct cv_store *st, const char *tenant_id, const char *token_id,
                                const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    for (size_t i = 0; i < st->ntokens; i++) {
        struct cv_token_row *t = &st->tokens[i].row;
        if (strcmp(t->id, token_id) != 0 || (tenant_id && strcmp(t->tenant_id, tenant_id) != 0)) continue;
        t->revoked = 1;
        commit_event(st, ev, 0);
        return CV_OK;
    }
    return cv_fail(CV_ERR_NOT_FOUND, "token not found");
}

cv_result cv_store_token_revoke_roles(struct cv_store *st, const char *tenant_id, const char *token_id,
                                      const char *roles, const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    for (size_t i = 0; i < st->ntokens; i++) {
        struct cv_token_row *t = &st->tokens[i].row;
        if (strcmp(t->id, token_id) != 0 || (tenant_id && strcmp(t->tenant_id, tenant_id) != 0)) continue;
        if (roles) {
            /* "{a,b}": the role as a whole element */
            char want[64];
            snprintf(want, sizeof(want), "%s", t->role);
            const char *p = strstr(roles, want);
            size_t n = strlen(want);
            CV_ENSURE(p && (p[-1] == '{' || p[-1] == ',') && (p[n] == '}' || p[n] == ','), CV_ERR_FORBIDDEN,
                      "the token's role is not one this caller may revoke");
        }
        t->revoked = 1;
        commit_event(st, ev, 0);
        return CV_OK;
    }
    return cv_fail(CV_ERR_NOT_FOUND, "token not found");
}

/* ---- servers ---- */

cv_result cv_store_server_insert(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(!server_find(st, row->tenant_id, row->server_id), CV_ERR_CONFLICT, "server exists");
    if (st->nservers == SERVERS_MAX) abort();
    next_uuid(st, row->id);
    row->revision = 1;
    row->created_at_ms = row->last_updated_ms = now_ms();
    server_copy(&st->servers[st->nservers++], row, 1);
    count_encryption(st, row->tenant_id, row->key_version);
    commit_event(st, ev, 0);
    return CV_OK;
}

/* Idempotency keys are the real store's (integration tests): the fake
 * remembers none, so every write goes through. */
cv_result cv_store_server_insert_idem(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev,
                                     const struct cv_store_idem *idem)
{
    (void)idem;
    return cv_store_server_insert(st, row, ev);
}

cv_result cv_store_server_update_idem(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                     const struct cv_audit_event *ev, const struct cv_store_idem *idem)
{
    (void)idem;
    return cv_store_server_update(st, row, expected_revision, ev);
}

cv_result cv_store_idem_get(struct cv_store *st, const char *tenant_id, const struct cv_store_idem *idem, int *found,
                            int *same_request, char server_id[CV_SERVER_ID_MAX_BYTES + 1])
{
    (void)tenant_id;
    (void)idem;
    CV_GUARD(cv_fake_enter(__func__));
    (void)st;
    *found = *same_request = 0;
    server_id[0] = '\0';
    return CV_OK;
}

cv_result cv_store_server_get(struct cv_store *st, const char *tenant_id, const char *server_id, int with_env,
                              struct cv_server_row *row)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct cv_server_row *s = server_find(st, tenant_id, server_id);
    CV_ENSURE(s, CV_ERR_NOT_FOUND, "server not found");
    server_copy(row, s, with_env);
    return CV_OK;
}

cv_result cv_store_server_get_keyed(struct cv_store *st, const char *tenant_id, const char *server_id, int with_env,
                                    struct cv_server_row *row, struct cv_tenant_key_row *key, int *has_key)
{
    CV_GUARD(cv_fake_enter(__func__));
    memset(key, 0, sizeof(*key));
    *has_key = 0;
    struct cv_server_row *s = server_find(st, tenant_id, server_id);
    CV_ENSURE(s, CV_ERR_NOT_FOUND, "server not found");
    server_copy(row, s, with_env);
    struct fake_tenant *t = tenant_find(st, tenant_id);
    struct cv_tenant_key_row *k = t ? key_find(t, s->key_version) : NULL;
    if (k) {
        *key = *k;
        *has_key = 1;
    }
    return CV_OK;
}

cv_result cv_store_server_list(struct cv_store *st, const char *tenant_id, unsigned limit, unsigned offset,
                               cv_store_server_cb cb, void *arg, uint64_t *total)
{
    CV_GUARD(cv_fake_enter(__func__));
    uint64_t n = 0;
    for (size_t i = st->nservers; i > 0; i--) { /* newest first */
        const struct cv_server_row *s = &st->servers[i - 1];
        if (strcmp(s->tenant_id, tenant_id) != 0) continue;
        if (n >= offset && n < (uint64_t)offset + limit) {
            struct cv_server_row copy;
            server_copy(&copy, s, 0);
            int stop = cb(arg, &copy);
            cv_server_row_free(&copy);
            if (stop) break;
        }
        n++;
    }
    *total = 0;
    for (size_t i = 0; i < st->nservers; i++)
        *total += strcmp(st->servers[i].tenant_id, tenant_id) == 0;
    return CV_OK;
}

cv_result cv_store_server_update(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                 const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct cv_server_row *s = server_find(st, row->tenant_id, row->server_id);
    CV_ENSURE(s, CV_ERR_NOT_FOUND, "server not found");
    CV_ENSURE(s->revision == expected_revision, CV_ERR_PRECONDITION, "the revision moved");
    struct cv_server_row next = *s;
    next.encrypted_env = dup_or_null(row->encrypted_env);
    next.configured_integrations = dup_or_null(row->configured_integrations);
    next.credential_names = dup_or_null(row->credential_names);
    next.key_version = row->key_version;
    next.expires_at_ms = row->expires_at_ms;
    memcpy(next.binding, row->binding, sizeof(next.binding));
    next.has_binding = row->has_binding;
    snprintf(next.updated_by, sizeof(next.updated_by), "%s", row->updated_by);
    next.revision = s->revision + 1;
    next.last_updated_ms = now_ms();
    cv_server_row_free(s);
    *s = next;
    row->revision = next.revision;
    row->last_updated_ms = next.last_updated_ms;
    count_encryption(st, row->tenant_id, row->key_version);
    commit_event(st, ev, 0);
    return CV_OK;
}

/* The fake has no rows from before bindings: nothing is ever pending. */
cv_result cv_store_server_bind_pending(struct cv_store *st, cv_store_server_cb cb, void *arg)
{
    (void)st, (void)cb, (void)arg;
    return cv_fake_enter(__func__);
}

cv_result cv_store_server_bind_finish(struct cv_store *st, const struct cv_server_row *rows, size_t n,
                                      const struct cv_audit_event *ev, int *bound)
{
    (void)st, (void)rows, (void)n, (void)ev;
    CV_GUARD(cv_fake_enter(__func__));
    *bound = -1;
    return CV_OK;
}

cv_result cv_store_server_delete(struct cv_store *st, const char *tenant_id, const char *server_id,
                                 const struct cv_audit_event *ev)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct cv_server_row *s = server_find(st, tenant_id, server_id);
    CV_ENSURE(s, CV_ERR_NOT_FOUND, "server not found");
    cv_server_row_free(s);
    size_t i = (size_t)(s - st->servers);
    memmove(s, s + 1, (st->nservers - i - 1) * sizeof(*s));
    st->nservers--;
    commit_event(st, ev, 0);
    return CV_OK;
}

char *cv_fake_record(struct cv_app *app, const char *tenant_id, const char *server_id)
{
    struct cv_server_row *s = server_find(app->store, tenant_id, server_id);
    return s ? s->encrypted_env : NULL;
}

unsigned cv_fake_server_count(const struct cv_app *app, const char *tenant_id)
{
    unsigned n = 0;
    for (size_t i = 0; i < app->store->nservers; i++)
        n += strcmp(app->store->servers[i].tenant_id, tenant_id) == 0;
    return n;
}

/* ---- key lifecycle: tenant keys are modelled, jobs and masters are not ---- */

cv_result cv_store_lc_tenant_key_add(struct cv_store *st, const struct cv_tenant_key_row *key, uint32_t expect_newest,
                                     const struct cv_audit_event *ev, int *added)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, key->ref.tenant_id);
    CV_ENSURE(t, CV_ERR_NOT_FOUND, "tenant not found");
    *added = 0;
    if (t->keys[t->nkeys - 1].ref.version != expect_newest) return CV_OK;
    if (t->nkeys == KEYS_MAX) abort();
    t->keys[t->nkeys] = *key;
    t->keys[t->nkeys].created_at_ms = now_ms();
    t->keys[t->nkeys].encryptions = 0;
    t->nkeys++;
    *added = 1;
    commit_event(st, ev, key->ref.version);
    return CV_OK;
}

cv_result cv_store_lc_min_decrypt_raise(struct cv_store *st, const char *tenant_id, uint32_t min_version,
                                        const struct cv_audit_event *ev, uint64_t *blocking)
{
    CV_GUARD(cv_fake_enter(__func__));
    struct fake_tenant *t = tenant_find(st, tenant_id);
    CV_ENSURE(t, CV_ERR_NOT_FOUND, "tenant not found");
    CV_ENSURE(min_version >= t->row.min_decrypt_version && min_version <= t->keys[t->nkeys - 1].ref.version,
              CV_ERR_INPUT, "version out of range");
    *blocking = 0;
    for (size_t i = 0; i < st->nservers; i++)
        *blocking += strcmp(st->servers[i].tenant_id, tenant_id) == 0 && st->servers[i].key_version < min_version;
    CV_ENSURE(*blocking == 0, CV_ERR_CONFLICT, "records need an older key");
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->keys[i].ref.version < min_version && strcmp(t->keys[i].state, "active") == 0)
            snprintf(t->keys[i].state, sizeof(t->keys[i].state), "retired");
    t->row.min_decrypt_version = min_version;
    commit_event(st, ev, min_version);
    return CV_OK;
}

cv_result cv_store_lc_keys_destroy_retired(struct cv_store *st, const char *tenant_id,
                                           const struct cv_audit_event *ev, uint32_t *versions, size_t max,
                                           size_t *n, uint64_t *blocking)
{
    (void)st, (void)tenant_id, (void)ev, (void)versions, (void)max, (void)n, (void)blocking;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_lc_tenant_shred(struct cv_store *st, const char *tenant_id, const struct cv_audit_event *ev,
                                   struct cv_store_shred_counts *counts)
{
    (void)st, (void)tenant_id, (void)ev, (void)counts;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_lc_job_start(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id, const char *actor,
                                const struct cv_audit_event *ev, struct cv_key_job_row *job, int *started)
{
    (void)ev, (void)st, (void)kind, (void)tenant_id, (void)actor, (void)job, (void)started;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_lc_job_latest(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id,
                                 struct cv_key_job_row *job)
{
    (void)st, (void)kind, (void)tenant_id, (void)job;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_lc_master_rotate(struct cv_store *st, const char *actor, cv_store_master_make_cb make, void *arg,
                                    const struct cv_audit_event *ev, uint32_t *new_version,
                                    struct cv_key_job_row *job)
{
    (void)ev, (void)st, (void)actor, (void)make, (void)arg, (void)new_version, (void)job;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_store_lc_master_forget(struct cv_store *st, uint32_t version, const struct cv_audit_event *ev,
                                    int *existed, uint64_t *wrapping, uint32_t *newest)
{
    (void)ev, (void)st, (void)version, (void)existed, (void)wrapping, (void)newest;
    CV_GUARD(cv_fake_enter(__func__));
    return unmodelled(__func__);
}

cv_result cv_fake_token_set_role(struct cv_store *st, const char *token_id, const char *role)
{
    for (size_t i = 0; i < st->ntokens; i++) {
        struct cv_token_row *t = &st->tokens[i].row;
        if (strcmp(t->id, token_id) != 0) continue;
        snprintf(t->role, sizeof(t->role), "%s", role);
        return CV_OK;
    }
    return cv_fail(CV_ERR_NOT_FOUND, "token not found");
}

void cv_store_set_audit_hash(struct cv_store *st, cv_store_audit_hash_fn fn, void *arg)
{
    (void)st;
    (void)fn;
    (void)arg;
}

void cv_store_set_audit_mac(struct cv_store *st, cv_store_audit_mac_fn fn, void *arg)
{
    (void)st, (void)fn, (void)arg;
}
