/* Writer chains (migration 0019). A connection that appends audit events
 * claims a writer slot (a session advisory lock) and appends only to the
 * chains of that slot, '<tenant or _platform>:<slot>'; no other session
 * moves their heads, so this one keeps them in memory (read once, dropped
 * on any failure) and computes each event's hash through the domain's hook.
 * One statement appends the events of a batch: every chain's run at once
 * when there are several (0021), else the run's (0019; also for each run
 * of a conditional event); the database checks the slot and the links and
 * moves the heads. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/buf.h"
#include "store/pq.h"

#define HEADS_MAX 1024 /* chains a connection remembers; more and it starts over */
#define ARRAY_MAX_BYTES (CV_AUDIT_BATCH_MAX * (2 * CV_AUDIT_DETAIL_MAX_BYTES + 64))

/* clang-format off */
CV_SQL_DEF(claim_sql, AUDIT_CLAIM_SLOT, "SELECT credvault_audit_claim_slot()", 0);
CV_SQL_DEF(head_sql, AUDIT_HEAD,
    "SELECT h.seq, encode(h.hash, 'hex') FROM audit_heads h WHERE h.chain = $1::text", 1);
CV_SQL_DEF(batch_sql, AUDIT_APPEND_BATCH,
    "SELECT head_seq FROM credvault_audit_append_batch($1::text, $2::text, $3::bool, $4::bool, $5::int8, $6::bytea, "
    "$7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], "
    "$15::bytea[], $16::bytea[])", 16);
CV_SQL_DEF(chains_sql, AUDIT_APPEND_CHAINS,
    "SELECT run_no, head_seq FROM credvault_audit_append_chains($1::bool, $2::text[], $3::text[], $4::int8[], "
    "$5::bytea[], $6::int4[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], "
    "$13::text[], $14::text[], $15::bytea[], $16::bytea[])", 16);
CV_SQL_DEF(scope_again_sql, AUDIT_SCOPE_AGAIN,
    "SELECT set_config('credvault.tenant_id', $1::text, true), set_config('credvault.scope', $2::text, true)", 2);
/* clang-format on */

void cv_store_set_audit_hash(struct cv_store *st, cv_store_audit_hash_fn fn, void *arg)
{
    st->audit_hash = fn;
    st->audit_hash_arg = arg;
}

int cv_store_chain_valid(const char *chain)
{
    if (!chain) return 0;
    char owner[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    snprintf(owner, sizeof(owner), "%s", chain);
    char *colon = strchr(owner, ':');
    if (colon) {
        const char *k = colon + 1;
        size_t n = strlen(k);
        if (n < 1 || n > 9 || *k == '0' || strspn(k, "0123456789") != n) return 0;
        *colon = '\0';
    }
    return strcmp(owner, CV_AUDIT_PLATFORM_CHAIN) == 0 || cv_tenant_id_valid(owner);
}

int cv_store_chain_of(const char *chain, const char *tenant_id)
{
    const char *owner = tenant_id && *tenant_id ? tenant_id : CV_AUDIT_PLATFORM_CHAIN;
    size_t n = strlen(owner);
    return cv_store_chain_valid(chain) && strncmp(chain, owner, n) == 0 && (chain[n] == '\0' || chain[n] == ':');
}

void cv_chain_forget(struct cv_conn *c)
{
    if (c) c->nheads = 0;
}

static struct cv_chain_head *head_find(struct cv_conn *c, const char *chain)
{
    for (size_t i = 0; i < c->nheads; i++)
        if (strcmp(c->heads[i].chain, chain) == 0) return &c->heads[i];
    return NULL;
}

static cv_result head_put(struct cv_conn *c, const char *chain, int64_t seq, const uint8_t hash[CV_AUDIT_HASH_BYTES])
{
    struct cv_chain_head *h = head_find(c, chain);
    if (!h) {
        if (c->nheads == HEADS_MAX) c->nheads = 0;
        if (c->nheads == c->cap_heads) {
            size_t cap = c->cap_heads ? 2 * c->cap_heads : 16;
            struct cv_chain_head *n = realloc(c->heads, cap * sizeof(*n));
            CV_ENSURE(n != NULL, CV_ERR_MEMORY, "out of memory");
            c->heads = n;
            c->cap_heads = cap;
        }
        h = &c->heads[c->nheads++];
        snprintf(h->chain, sizeof(h->chain), "%s", chain);
    }
    h->seq = seq;
    memcpy(h->hash, hash, CV_AUDIT_HASH_BYTES);
    return CV_OK;
}

static void bind_scope_of(struct cv_q *q, const struct cv_tx *tx)
{
    cv_q_init(q, &scope_again_sql);
    cv_q_text(q, tx->scope == CV_SCOPE_TENANT ? tx->tenant_id : "");
    cv_q_text(q, tx->scope == CV_SCOPE_TENANT ? "tenant" : "platform");
}

/* The slot and the unknown heads, in one round trip. */
static cv_result load(struct cv_conn *c, const struct cv_tx *tx, struct cv_chain_plan *plan)
{
    struct cv_q claim, scope, heads[CV_AUDIT_BATCH_MAX] = {0};
    struct cv_q *all[CV_AUDIT_BATCH_MAX + 2];
    size_t n = 0, nh = 0;
    size_t which[CV_AUDIT_BATCH_MAX];
    int claiming = c->slot == 0;
    if (claiming) {
        cv_q_init(&claim, &claim_sql);
        all[n++] = &claim;
    }
    bind_scope_of(&scope, tx);
    all[n++] = &scope;
    for (size_t i = 0; i < plan->nruns; i++) {
        if (head_find(c, plan->runs[i].chain)) continue;
        cv_q_init(&heads[nh], &head_sql);
        cv_q_text(&heads[nh], plan->runs[i].chain);
        which[nh] = i;
        all[n++] = &heads[nh++];
    }
    if (!claiming && nh == 0) {
        cv_q_clear(&scope, 1);
        return CV_OK;
    }
    cv_result r = cv_store_run(c, all, n);
    if (cv_ok(r) && claiming) {
        int64_t k = 0;
        r = cv_pq_expect(claim.res, 1);
        if (cv_ok(r) && PQntuples(claim.res) != 1) r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        if (cv_ok(r)) r = cv_pq_i64(claim.res, 0, 0, &k);
        if (cv_ok(r) && (k < 1 || k > 999999999)) r = cv_fail(CV_ERR_INTERNAL, "bad audit writer slot");
        if (cv_ok(r)) c->slot = (int)k;
    }
    for (size_t j = 0; j < nh && cv_ok(r); j++) {
        const PGresult *res = heads[j].res;
        int64_t seq = 0;
        uint8_t hash[CV_AUDIT_HASH_BYTES] = {0};
        r = cv_pq_expect(res, 2);
        if (cv_ok(r) && PQntuples(res) == 1) {
            size_t got;
            r = cv_pq_i64(res, 0, 0, &seq);
            if (cv_ok(r)) r = cv_pq_hex(res, 0, 1, hash, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &got);
        } else if (cv_ok(r) && PQntuples(res) != 0) {
            r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        }
        if (cv_ok(r)) r = head_put(c, plan->runs[which[j]].chain, seq, hash);
    }
    if (claiming) cv_q_clear(&claim, 1);
    cv_q_clear(&scope, 1);
    cv_q_clear(heads, nh);
    return r;
}

/* An array literal's element: quoted, with '"' and '\' escaped; NULL bare. */
static cv_result elem(struct cv_buf *b, const char *s, size_t len, int first)
{
    if (!first) CV_GUARD(cv_buf_append_u8(b, ','));
    if (!s) return cv_buf_append_str(b, "NULL");
    CV_GUARD(cv_buf_append_u8(b, '"'));
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') CV_GUARD(cv_buf_append_u8(b, '\\'));
        CV_GUARD(cv_buf_append_u8(b, (uint8_t)s[i]));
    }
    return cv_buf_append_u8(b, '"');
}

static cv_result elem_str(struct cv_buf *b, const char *s, int first)
{
    return elem(b, s, s ? strlen(s) : 0, first);
}

static cv_result elem_hex(struct cv_buf *b, const uint8_t *p, int first)
{
    if (!p) return elem_str(b, NULL, first);
    char text[3 + 2 * CV_AUDIT_HASH_BYTES + 1] = "\\x";
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CV_AUDIT_HASH_BYTES; i++) {
        text[2 + 2 * i] = digits[p[i] >> 4];
        text[3 + 2 * i] = digits[p[i] & 15];
    }
    text[2 + 2 * CV_AUDIT_HASH_BYTES] = '\0';
    return elem_str(b, text, first);
}

static void time_text(int64_t at_us, char out[32])
{
    time_t t = (time_t)(at_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(at_us % 1000000));
    snprintf(out, 32, "%.31s", buf);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The row as it will be stored, for the hash hook. */
static void row_of(const struct cv_chain_run *run, const struct cv_sealed_event *se, int64_t seq,
                   const uint8_t prev[CV_AUDIT_HASH_BYTES], int64_t at_us, struct cv_audit_row *row)
{
    const struct cv_audit_event *ev = &se->ev;
    memset(row, 0, sizeof(*row));
    snprintf(row->chain, sizeof(row->chain), "%s", run->chain);
    row->seq = seq;
    row->at_us = at_us;
    snprintf(row->tenant_id, sizeof(row->tenant_id), "%s", ev->tenant_id ? ev->tenant_id : "");
    snprintf(row->actor, sizeof(row->actor), "%s", ev->actor ? ev->actor : "");
    snprintf(row->role, sizeof(row->role), "%s", ev->role ? ev->role : "");
    snprintf(row->action, sizeof(row->action), "%s", ev->action ? ev->action : "");
    snprintf(row->target, sizeof(row->target), "%s", ev->target ? ev->target : "");
    snprintf(row->outcome, sizeof(row->outcome), "%s", ev->outcome ? ev->outcome : "");
    snprintf(row->request_id, sizeof(row->request_id), "%s", ev->request_id ? ev->request_id : "");
    row->detail = (char *)ev->detail;
    memcpy(row->prev, prev, CV_AUDIT_HASH_BYTES);
    if (se->has_mac) {
        memcpy(row->mac, se->mac, CV_AUDIT_HASH_BYTES);
        row->has_mac = 1;
    }
}

static int same_tenant(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

enum { EV_ARRAYS = 10 }; /* at, actor, role, action, target, outcome, request_id, detail, mac, hash */

static void arrays_init(struct cv_buf *arr, size_t n)
{
    for (size_t k = 0; k < n; k++) cv_buf_init(&arr[k], ARRAY_MAX_BYTES);
}

/* Closes the array literals and moves them to out; frees them either way. */
static cv_result arrays_take(struct cv_buf *arr, size_t n, cv_result r, char **out)
{
    for (size_t k = 0; k < n && cv_ok(r); k++) {
        r = cv_buf_append_str(&arr[k], "}");
        if (cv_ok(r)) r = cv_buf_terminate(&arr[k]);
    }
    for (size_t k = 0; k < n; k++) {
        if (cv_ok(r)) {
            out[k] = (char *)arr[k].data;
            arr[k].data = NULL;
        }
        cv_buf_free(&arr[k]);
    }
    return r;
}

/* Hashes the run's events in order, continuing its head, and adds them to
 * the event arrays (and, when run_no is given, to the run-number array
 * arr[EV_ARRAYS]); *m counts the elements the arrays hold so far. */
static cv_result hash_run(struct cv_conn *c, struct cv_chain_run *run, const struct cv_sealed_event *se, size_t n,
                          const char *run_no, struct cv_buf *arr, size_t *m)
{
    const struct cv_chain_head *h = head_find(c, run->chain);
    CV_ENSURE(h != NULL, CV_ERR_INTERNAL, "audit chain head not loaded");
    run->first_seq = h->seq + 1;
    memcpy(run->prev, h->hash, CV_AUDIT_HASH_BYTES);
    uint8_t prev[CV_AUDIT_HASH_BYTES];
    memcpy(prev, h->hash, sizeof(prev));
    int64_t at = now_us();
    char at_text[32];
    time_text(at, at_text);
    cv_result r = CV_OK;
    run->n = 0;
    for (size_t i = 0; i < n && cv_ok(r); i++) {
        const struct cv_audit_event *ev = &se[i].ev;
        if (!same_tenant(ev->tenant_id, run->tenant_id)) continue;
        struct cv_audit_row row;
        uint8_t hash[CV_AUDIT_HASH_BYTES];
        row_of(run, &se[i], run->first_seq + (int64_t)run->n, prev, at, &row);
        r = c->st->audit_hash(c->st->audit_hash_arg, &row, hash);
        int first = *m == 0;
        if (cv_ok(r)) r = elem_str(&arr[0], at_text, first);
        if (cv_ok(r)) r = elem_str(&arr[1], ev->actor, first);
        if (cv_ok(r)) r = elem_str(&arr[2], ev->role ? ev->role : "", first);
        if (cv_ok(r)) r = elem_str(&arr[3], ev->action, first);
        if (cv_ok(r)) r = elem_str(&arr[4], ev->target, first);
        if (cv_ok(r)) r = elem_str(&arr[5], ev->outcome, first);
        if (cv_ok(r)) r = elem_str(&arr[6], ev->request_id && *ev->request_id ? ev->request_id : NULL, first);
        if (cv_ok(r)) r = elem_str(&arr[7], ev->detail, first);
        if (cv_ok(r)) r = elem_hex(&arr[8], se[i].has_mac ? se[i].mac : NULL, first);
        if (cv_ok(r)) r = elem_hex(&arr[9], hash, first);
        if (cv_ok(r) && run_no) r = elem_str(&arr[EV_ARRAYS], run_no, first);
        memcpy(prev, hash, sizeof(prev));
        run->n++;
        (*m)++;
    }
    memcpy(run->last, prev, sizeof(prev));
    return r;
}

/* One statement for one run (0019): a batch of one chain, and each run of
 * events written only if the transaction changed something. */
static cv_result bind_run(struct cv_conn *c, struct cv_chain_run *run, const struct cv_sealed_event *se, size_t n,
                          int durable, int if_changed)
{
    struct cv_buf arr[EV_ARRAYS];
    arrays_init(arr, EV_ARRAYS);
    cv_result r = CV_OK;
    for (size_t k = 0; k < EV_ARRAYS && cv_ok(r); k++) r = cv_buf_append_u8(&arr[k], '{');
    size_t m = 0;
    if (cv_ok(r)) r = hash_run(c, run, se, n, NULL, arr, &m);
    CV_GUARD(arrays_take(arr, EV_ARRAYS, r, run->arrays));
    cv_q_init(&run->q, &batch_sql);
    cv_q_text(&run->q, run->chain);
    cv_q_text(&run->q, run->tenant_id);
    cv_q_text(&run->q, durable ? "t" : "f");
    cv_q_text(&run->q, if_changed ? "t" : "f");
    cv_q_i64(&run->q, run->first_seq);
    cv_q_bytes(&run->q, run->prev, sizeof(run->prev));
    for (int k = 0; k < EV_ARRAYS; k++) cv_q_text(&run->q, run->arrays[k]);
    return CV_OK;
}

/* One statement for every run (0021). */
static cv_result bind_chains(struct cv_conn *c, struct cv_chain_plan *plan, const struct cv_sealed_event *se,
                             size_t n, int durable)
{
    enum { RUN_ARRAYS = 4 }; /* chain, tenant, seq, prev */
    struct cv_buf ev[EV_ARRAYS + 1], runs[RUN_ARRAYS];
    arrays_init(ev, EV_ARRAYS + 1);
    arrays_init(runs, RUN_ARRAYS);
    cv_result r = CV_OK;
    for (size_t k = 0; k < EV_ARRAYS + 1 && cv_ok(r); k++) r = cv_buf_append_u8(&ev[k], '{');
    for (size_t k = 0; k < RUN_ARRAYS && cv_ok(r); k++) r = cv_buf_append_u8(&runs[k], '{');
    size_t m = 0;
    for (size_t j = 0; j < plan->nruns && cv_ok(r); j++) {
        struct cv_chain_run *run = &plan->runs[j];
        char no[24], seq[24];
        snprintf(no, sizeof(no), "%zu", j + 1);
        r = hash_run(c, run, se, n, no, ev, &m);
        snprintf(seq, sizeof(seq), "%lld", (long long)run->first_seq);
        if (cv_ok(r)) r = elem_str(&runs[0], run->chain, j == 0);
        if (cv_ok(r)) r = elem_str(&runs[1], run->tenant_id, j == 0);
        if (cv_ok(r)) r = elem_str(&runs[2], seq, j == 0);
        if (cv_ok(r)) r = elem_hex(&runs[3], run->prev, j == 0);
    }
    /* plan->arrays: the runs' four, then the run numbers, then the events' ten */
    cv_result rr = arrays_take(runs, RUN_ARRAYS, r, plan->arrays);
    cv_result re = arrays_take(&ev[EV_ARRAYS], 1, rr, plan->arrays + RUN_ARRAYS);
    CV_GUARD(arrays_take(ev, EV_ARRAYS, re, plan->arrays + RUN_ARRAYS + 1));
    plan->multi = 1;
    cv_q_init(&plan->q, &chains_sql);
    cv_q_text(&plan->q, durable ? "t" : "f");
    for (int k = 0; k < RUN_ARRAYS + 1 + EV_ARRAYS; k++) cv_q_text(&plan->q, plan->arrays[k]);
    return CV_OK;
}

cv_result cv_chain_plan_make(struct cv_conn *c, const struct cv_tx *tx, const struct cv_sealed_event *se, size_t n,
                             int durable, int if_changed, struct cv_chain_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    CV_ENSURE(c->st->audit_hash != NULL, CV_ERR_INTERNAL, "no audit hash: events cannot be chained");
    CV_ENSURE(n >= 1 && n <= CV_AUDIT_BATCH_MAX, CV_ERR_INTERNAL, "bad audit event count");
    plan->runs = calloc(n, sizeof(*plan->runs));
    CV_ENSURE(plan->runs != NULL, CV_ERR_MEMORY, "out of memory");
    /* the slot first: the chain names carry it */
    if (c->slot == 0) {
        struct cv_chain_plan none;
        memset(&none, 0, sizeof(none));
        CV_GUARD(load(c, tx, &none));
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = se[i].ev.tenant_id;
        size_t j = 0;
        while (j < plan->nruns && !same_tenant(plan->runs[j].tenant_id, t)) j++;
        if (j < plan->nruns) continue;
        struct cv_chain_run *run = &plan->runs[plan->nruns++];
        run->tenant_id = t;
        snprintf(run->chain, sizeof(run->chain), "%s:%d", t ? t : CV_AUDIT_PLATFORM_CHAIN, c->slot);
    }
    CV_GUARD(load(c, tx, plan));
    /* several chains: one statement for all (a lone run costs less in 0019's) */
    if (!if_changed && plan->nruns > 1) return bind_chains(c, plan, se, n, durable);
    for (size_t j = 0; j < plan->nruns; j++)
        CV_GUARD(bind_run(c, &plan->runs[j], se, n, durable, if_changed));
    return CV_OK;
}

size_t cv_chain_plan_statements(struct cv_chain_plan *plan, struct cv_q **out)
{
    if (plan->multi) {
        out[0] = &plan->q;
        return 1;
    }
    for (size_t j = 0; j < plan->nruns; j++) out[j] = &plan->runs[j].q;
    return plan->nruns;
}

/* The head a run's statement reported: its last event's seq. */
static int run_applied(struct cv_conn *c, const struct cv_chain_run *run, int64_t seq)
{
    return seq == run->first_seq + (int64_t)run->n - 1 && cv_ok(head_put(c, run->chain, seq, run->last));
}

void cv_chain_plan_applied(struct cv_conn *c, const struct cv_chain_plan *plan)
{
    if (plan->multi) {
        /* one row per run, in order */
        const PGresult *res = plan->q.res;
        if (!res || PQntuples(res) != (int)plan->nruns) {
            cv_chain_forget(c);
            return;
        }
        for (size_t j = 0; j < plan->nruns; j++) {
            int64_t no = 0, seq = 0;
            if (cv_failed(cv_pq_i64(res, (int)j, 0, &no)) || no != (int64_t)j + 1 ||
                cv_failed(cv_pq_i64(res, (int)j, 1, &seq)) || !run_applied(c, &plan->runs[j], seq)) {
                cv_chain_forget(c);
                return;
            }
        }
        return;
    }
    for (size_t j = 0; j < plan->nruns; j++) {
        const struct cv_chain_run *run = &plan->runs[j];
        int64_t seq = 0;
        /* no row: a conditional event found nothing changed and was not written */
        if (!run->q.res || PQntuples(run->q.res) != 1) continue;
        if (cv_failed(cv_pq_i64(run->q.res, 0, 0, &seq)) || !run_applied(c, run, seq)) {
            cv_chain_forget(c);
            return;
        }
    }
}

void cv_chain_plan_free(struct cv_chain_plan *plan)
{
    if (plan->multi) cv_q_clear(&plan->q, 1);
    plan->multi = 0;
    /* also those a failed bind_chains had already taken */
    for (size_t k = 0; k < sizeof(plan->arrays) / sizeof(plan->arrays[0]); k++) free(plan->arrays[k]);
    memset(plan->arrays, 0, sizeof(plan->arrays));
    if (!plan->runs) return;
    for (size_t j = 0; j < plan->nruns; j++) {
        cv_q_clear(&plan->runs[j].q, 1);
        for (int k = 0; k < 10; k++) free(plan->runs[j].arrays[k]);
    }
    free(plan->runs);
    plan->runs = NULL;
    plan->nruns = 0;
}
