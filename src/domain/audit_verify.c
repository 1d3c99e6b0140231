/* `credvault audit verify`: recomputes every event's hash from its fields,
 * follows each chain link by link, compares each chain's end with its head
 * and with every head a checkpoint signed, and checks each checkpoint's
 * signature (with the HSM's public key) and its link to the one before. It
 * reports the first broken link of each chain; it never repairs anything. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/hsm_installation.h"
#include "credvault/hsm_signing.h"
#include "credvault/store_installation.h"
#include "domain/audit.h"

#define PAGE 500

typedef char digest_hex[2 * CV_AUDIT_HASH_BYTES + 1];

static void problem(struct cv_audit_report *rep, const char *chain, int64_t seq, int64_t event_id, int64_t cp_id,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void problem(struct cv_audit_report *rep, const char *chain, int64_t seq, int64_t event_id, int64_t cp_id,
                    const char *fmt, ...)
{
    if (rep->nproblems == CV_AUDIT_PROBLEMS_MAX) {
        rep->problems_dropped++;
        return;
    }
    struct cv_audit_report *r = rep;
    size_t i = r->nproblems++;
    snprintf(r->problems[i].chain, sizeof(r->problems[i].chain), "%s", chain ? chain : "");
    r->problems[i].seq = seq;
    r->problems[i].event_id = event_id;
    r->problems[i].checkpoint_id = cp_id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problems[i].reason, sizeof(r->problems[i].reason), fmt, ap);
    va_end(ap);
}

/* The digest lines of a payload, and SHA-256 over them; NULL list when the
 * payload is not in the canonical shape. */
static int payload_digests(const char *payload, uint32_t heads, digest_hex **out, uint8_t digest[CV_AUDIT_HASH_BYTES])
{
    *out = NULL;
    const char *p = strstr(payload, "\nheads:");
    if (!p) return -1;
    p = strchr(p + 1, '\n');
    if (!p) return -1;
    p++;
    size_t rest = strlen(p);
    if (rest != (size_t)heads * (2 * CV_AUDIT_HASH_BYTES + 1)) return -1;
    cv_crypto_sha256(p, rest, digest);
    digest_hex *list = calloc(heads ? heads : 1, sizeof(*list));
    if (!list) return -1;
    for (uint32_t i = 0; i < heads; i++) {
        const char *line = p + (size_t)i * (2 * CV_AUDIT_HASH_BYTES + 1);
        if (line[2 * CV_AUDIT_HASH_BYTES] != '\n') {
            free(list);
            return -1;
        }
        memcpy(list[i], line, 2 * CV_AUDIT_HASH_BYTES);
        list[i][2 * CV_AUDIT_HASH_BYTES] = '\0';
        if (i && strcmp(list[i - 1], list[i]) > 0) { /* the payload is sorted */
            free(list);
            return -1;
        }
    }
    *out = list;
    return 0;
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static cv_result head_digest(const struct cv_audit_head *h, digest_hex out)
{
    struct cv_buf line;
    cv_buf_init(&line, 1024);
    cv_result r = cv_audit_canon_head(h, &line);
    if (cv_ok(r)) {
        uint8_t d[CV_AUDIT_HASH_BYTES];
        cv_crypto_sha256(line.data, line.len, d);
        cv_hex_encode(d, sizeof(d), out);
    }
    cv_buf_free(&line);
    return r;
}

/* ---- checkpoints ---- */

struct cp_ctx {
    struct cv_app *app;
    struct cv_audit_report *rep;
    const char *chain; /* NULL: every chain */
    uint8_t expected_prev[CV_AUDIT_HASH_BYTES];
    int64_t last_id;
    cv_result r;
    /* per checkpoint */
    int64_t cp_id;
    digest_hex *digests;
    uint32_t ndigests;
    uint32_t rows;
};

static int check_head_row(void *arg, const struct cv_audit_head *h)
{
    struct cp_ctx *c = arg;
    c->rows++;
    digest_hex d;
    if (cv_failed(head_digest(h, d)) || !c->digests ||
        !bsearch(d, c->digests, c->ndigests, sizeof(*c->digests), digest_cmp))
        problem(c->rep, h->chain, h->seq, 0, c->cp_id,
                "checkpoint %" PRId64 " holds a head of this chain (event %" PRId64
                ") that its signed payload does not list",
                c->cp_id, h->seq);
    return 0;
}

/* A field of the payload's header ("\nname:len:value\n"), before the heads;
 * "" when absent (a v1 payload) or malformed. */
static void payload_field(const char *payload, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    const char *end = strstr(payload, "\nheads:");
    char pat[32];
    snprintf(pat, sizeof(pat), "\n%s:", name);
    const char *p = strstr(payload, pat);
    if (!p || !end || p > end) return;
    p += strlen(pat);
    char *after = NULL;
    unsigned long n = strtoul(p, &after, 10);
    if (!after || *after != ':' || n >= cap || after + 1 + n > end || after[1 + n] != '\n') return;
    for (unsigned long i = 0; i < n; i++) /* hex and UUIDs only: the report prints it */
        if (!strchr("0123456789abcdef-", after[1 + i])) return;
    memcpy(out, after + 1, n);
    out[n] = '\0';
}

static void note_signer(struct cv_audit_report *rep, const char *fp, const char *inst, int foreign, int64_t id)
{
    for (size_t i = 0; i < rep->nsigners; i++) {
        if (strcmp(rep->signers[i].key_fingerprint, fp) == 0 && strcmp(rep->signers[i].installation, inst) == 0 &&
            rep->signers[i].last_id < id) {
            rep->signers[i].checkpoints++;
            rep->signers[i].last_id = id;
            return;
        }
    }
    if (rep->nsigners == CV_AUDIT_SIGNERS_MAX) {
        rep->signers_dropped++;
        return;
    }
    size_t i = rep->nsigners++;
    snprintf(rep->signers[i].key_fingerprint, sizeof(rep->signers[i].key_fingerprint), "%s", fp);
    snprintf(rep->signers[i].installation, sizeof(rep->signers[i].installation), "%s", inst);
    rep->signers[i].foreign = foreign;
    rep->signers[i].checkpoints = 1;
    rep->signers[i].first_id = rep->signers[i].last_id = id;
}

static int check_checkpoint(void *arg, const struct cv_audit_checkpoint *cp)
{
    struct cp_ctx *c = arg;
    struct cv_audit_report *rep = c->rep;
    rep->checkpoints++;
    c->last_id = cp->id;
    if (!cv_memeq(cp->prev, c->expected_prev, CV_AUDIT_HASH_BYTES))
        problem(rep, "", 0, 0, cp->id,
                "checkpoint %" PRId64 " does not follow the checkpoint before it: one was deleted or replaced", cp->id);
    size_t len = strlen(cp->payload);
    char fp[2 * CV_HSM_KEY_FINGERPRINT_BYTES + 1], inst[CV_INSTALLATION_ID_BYTES + 1];
    payload_field(cp->payload, "key-sha256", fp, sizeof(fp));
    payload_field(cp->payload, "installation", inst, sizeof(inst));
    if ((fp[0] && strcmp(fp, rep->key_fingerprint) != 0) || (inst[0] && strcmp(inst, rep->installation) != 0)) {
        /* named in the payload: not proven, but never this installation's signature */
        note_signer(rep, fp, inst, 1, cp->id);
        problem(rep, "", 0, 0, cp->id,
                "checkpoint %" PRId64 " was signed by a foreign key sha256:%s of installation %s, not by this "
                "installation's audit key sha256:%s (installation %s)",
                cp->id, fp[0] ? fp : "(not named)", inst[0] ? inst : "(not named)", rep->key_fingerprint,
                rep->installation);
    } else {
        cv_result r =
            cv_hsm_audit_verify(c->app->hsm, (const uint8_t *)cp->payload, len, cp->signature, cp->signature_len);
        if (r.err == CV_ERR_CRYPTO)
            problem(rep, "", 0, 0, cp->id,
                    "checkpoint %" PRId64 ": the signature does not verify with this installation's audit key "
                    "sha256:%s",
                    cp->id, rep->key_fingerprint);
        else if (cv_failed(r)) {
            c->r = r;
            return 1;
        } else
            note_signer(rep, rep->key_fingerprint, inst, 0, cp->id);
    }
    uint8_t digest[CV_AUDIT_HASH_BYTES];
    c->cp_id = cp->id;
    c->digests = NULL;
    c->ndigests = cp->heads;
    c->rows = 0;
    if (payload_digests(cp->payload, cp->heads, &c->digests, digest) != 0 ||
        !cv_memeq(digest, cp->heads_digest, CV_AUDIT_HASH_BYTES))
        problem(c->rep, "", 0, 0, cp->id, "checkpoint %" PRId64 ": the payload is not the one recorded", cp->id);
    cv_result r = cv_store_audit_checkpoint_heads(c->app->store, cp->id, c->chain, check_head_row, c);
    free(c->digests);
    c->digests = NULL;
    if (cv_failed(r)) {
        c->r = r;
        return 1;
    }
    if (!c->chain && c->rows != cp->heads)
        problem(c->rep, "", 0, 0, cp->id, "checkpoint %" PRId64 " signed %u heads but %u are recorded", cp->id,
                cp->heads, c->rows);
    cv_crypto_sha256(cp->payload, len, c->expected_prev);
    return 0;
}

static cv_result verify_checkpoints(struct cv_app *app, const char *chain, struct cv_audit_report *rep,
                                    int64_t *last_id)
{
    struct cp_ctx c;
    memset(&c, 0, sizeof(c));
    c.app = app;
    c.rep = rep;
    c.chain = chain;
    c.r = CV_OK;
    for (;;) {
        unsigned rows = 0;
        CV_GUARD(cv_store_audit_checkpoint_list(app->store, c.last_id, PAGE, check_checkpoint, &c, &rows));
        CV_GUARD(c.r);
        *last_id = c.last_id;
        if (rows < PAGE) return CV_OK;
    }
}

/* ---- chains ---- */

struct signed_head {
    int64_t checkpoint_id, seq;
    uint8_t hash[CV_AUDIT_HASH_BYTES];
};

struct chain_ctx {
    struct cv_audit_report *rep;
    int64_t head_seq;  /* events appended after the heads were read are not looked at */
    int64_t max_cp_id; /* nor checkpoints made after the checkpoint pass */
    struct cv_audit_walk walk;
    struct signed_head *signed_heads;
    size_t nsigned, next_signed, cap;
    int64_t last_seq;
    int mismatch_reported;
    struct cv_app *app;
    int anchored; /* an event of this chain carried an HSM anchor */
    cv_result r;
};

static int collect_signed(void *arg, int64_t checkpoint_id, const struct cv_audit_head *h)
{
    struct chain_ctx *c = arg;
    c->last_seq = h->seq;
    if (checkpoint_id > c->max_cp_id) return 0;
    if (c->nsigned == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct signed_head *n = realloc(c->signed_heads, cap * sizeof(*n));
        if (!n) {
            c->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        c->signed_heads = n;
        c->cap = cap;
    }
    struct signed_head *s = &c->signed_heads[c->nsigned++];
    s->checkpoint_id = checkpoint_id;
    s->seq = h->seq;
    memcpy(s->hash, h->hash, CV_AUDIT_HASH_BYTES);
    return 0;
}

static int check_event(void *arg, const struct cv_audit_row *row)
{
    struct chain_ctx *c = arg;
    if (row->seq > c->head_seq) return 1; /* appended while we read */
    c->rep->events++;
    c->last_seq = row->seq;
    if (cv_audit_walk_next(&c->walk, row) != 0) return 1; /* the first broken link is all we report */
    /* A chain consistent in itself can still have been recomputed with SQL:
     * every event since anchoring began carries the HSM's anchor of its
     * content, and its hash covers that anchor. */
    if (row->has_mac) {
        c->anchored = 1;
        cv_result ar = cv_audit_anchor_check(c->app->hsm, row);
        if (ar.err == CV_ERR_CRYPTO) {
            problem(c->rep, row->chain, row->seq, row->id, 0,
                    "event %" PRId64 " does not match its HSM anchor (rewritten outside the service)", row->seq);
            c->mismatch_reported = 1;
            return 1;
        }
        if (cv_failed(ar)) {
            c->r = ar;
            return 1;
        }
    } else if (c->anchored) {
        problem(c->rep, row->chain, row->seq, row->id, 0,
                "event %" PRId64 " has no HSM anchor but follows anchored events (its anchor was removed)", row->seq);
        c->mismatch_reported = 1;
        return 1;
    }
    /* A chain can be rewritten whole, hashes and head included; what a
     * checkpoint signed cannot be. */
    while (c->next_signed < c->nsigned && c->signed_heads[c->next_signed].seq < row->seq)
        c->next_signed++;
    if (c->next_signed < c->nsigned && c->signed_heads[c->next_signed].seq == row->seq &&
        !cv_memeq(c->signed_heads[c->next_signed].hash, row->hash, CV_AUDIT_HASH_BYTES)) {
        problem(c->rep, row->chain, row->seq, row->id, c->signed_heads[c->next_signed].checkpoint_id,
                "event %" PRId64 " is not the event checkpoint %" PRId64 " signed (the chain was rewritten)", row->seq,
                c->signed_heads[c->next_signed].checkpoint_id);
        c->mismatch_reported = 1;
        return 1;
    }
    return 0;
}

static cv_result verify_chain(struct cv_app *app, const struct cv_audit_head *head, int64_t max_cp_id,
                              struct cv_audit_report *rep)
{
    struct chain_ctx c;
    memset(&c, 0, sizeof(c));
    c.rep = rep;
    c.head_seq = head->seq;
    c.max_cp_id = max_cp_id;
    c.app = app;
    c.r = CV_OK;
    cv_audit_walk_init(&c.walk, head->chain);
    cv_result r = CV_OK;
    for (int64_t after = 0;;) {
        unsigned rows = 0;
        c.last_seq = after;
        CV_GUARD_OUT(r,
                     cv_store_audit_chain_checkpoints(app->store, head->chain, after, PAGE, collect_signed, &c, &rows));
        CV_GUARD_OUT(r, c.r);
        if (rows < PAGE) break;
        after = c.last_seq;
    }
    rep->chains++;
    for (int64_t after = 0;;) {
        unsigned rows = 0;
        CV_GUARD_OUT(r, cv_store_audit_chain_read(app->store, head->chain, after, PAGE, check_event, &c, &rows));
        CV_GUARD_OUT(r, c.r);
        if (c.walk.broken || c.mismatch_reported || rows < PAGE || c.walk.seq >= head->seq) break;
        after = c.walk.seq;
    }
    if (c.mismatch_reported) goto out;
    if (!c.walk.broken) cv_audit_walk_end(&c.walk, head);
    if (c.walk.broken) {
        problem(rep, head->chain, c.walk.broken_seq, c.walk.broken_id, 0, "%s", c.walk.reason);
        goto out;
    }
    /* a checkpoint that signed an event past the end: the tail was cut and
     * the head rewritten to match */
    if (c.nsigned && c.signed_heads[c.nsigned - 1].seq > c.walk.seq)
        problem(rep, head->chain, c.walk.seq + 1, 0, c.signed_heads[c.nsigned - 1].checkpoint_id,
                "checkpoint %" PRId64 " signed event %" PRId64 " but the chain ends at %" PRId64
                " (events deleted at the end)",
                c.signed_heads[c.nsigned - 1].checkpoint_id, c.signed_heads[c.nsigned - 1].seq, c.walk.seq);
out:
    free(c.signed_heads);
    return r;
}

struct head_list {
    struct cv_audit_head *items;
    size_t n, cap;
    cv_result r;
};

static int collect_head(void *arg, const struct cv_audit_head *h)
{
    struct head_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct cv_audit_head *n = realloc(l->items, cap * sizeof(*n));
        if (!n) {
            l->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        l->items = n;
        l->cap = cap;
    }
    l->items[l->n++] = *h;
    return 0;
}

cv_result cv_audit_verify(struct cv_app *app, const char *tenant_id, struct cv_audit_report *rep)
{
    CV_ENSURE(app && app->store && app->hsm, CV_ERR_INTERNAL, "verify needs the store and the HSM");
    CV_ENSURE(tenant_id == NULL || cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    memset(rep, 0, sizeof(*rep));
    char pem[CV_HSM_PUBLIC_KEY_PEM_MAX_BYTES];
    uint8_t fp[CV_HSM_KEY_FINGERPRINT_BYTES];
    CV_GUARD(cv_hsm_audit_public_key(app->hsm, pem, sizeof(pem), fp));
    cv_hex_encode(fp, sizeof(fp), rep->key_fingerprint);
    CV_GUARD(cv_store_installation_get(app->store, rep->installation));

    /* checkpoints first, then heads: a chain is never compared with a
     * checkpoint this pass did not check */
    int64_t last_cp = 0;
    CV_GUARD(verify_checkpoints(app, tenant_id, rep, &last_cp));
    struct head_list heads = {NULL, 0, 0, CV_OK};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_audit_heads(app->store, tenant_id, 0, collect_head, &heads));
    CV_GUARD_OUT(r, heads.r);
    for (size_t i = 0; i < heads.n; i++)
        CV_GUARD_OUT(r, verify_chain(app, &heads.items[i], last_cp, rep));
out:
    free(heads.items);
    return r;
}

json_t *cv_audit_report_json(const struct cv_audit_report *rep)
{
    json_t *problems = json_array();
    for (size_t i = 0; problems && i < rep->nproblems; i++) {
        json_t *p =
            json_pack("{s:s, s:I, s:I, s:I, s:s}", "chain", rep->problems[i].chain, "seq",
                      (json_int_t)rep->problems[i].seq, "eventId", (json_int_t)rep->problems[i].event_id,
                      "checkpointId", (json_int_t)rep->problems[i].checkpoint_id, "reason", rep->problems[i].reason);
        json_array_append_new(problems, p);
    }
    json_t *signers = json_array();
    for (size_t i = 0; signers && i < rep->nsigners; i++) {
        json_t *s = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "keyFingerprint", rep->signers[i].key_fingerprint,
                              "installation", rep->signers[i].installation, "foreign", rep->signers[i].foreign,
                              "checkpoints", (json_int_t)rep->signers[i].checkpoints, "firstCheckpointId",
                              (json_int_t)rep->signers[i].first_id, "lastCheckpointId",
                              (json_int_t)rep->signers[i].last_id);
        json_array_append_new(signers, s);
    }
    return json_pack("{s:b, s:I, s:I, s:I, s:s, s:s, s:o, s:I, s:o, s:I}", "ok",
                     rep->nproblems == 0 && rep->problems_dropped == 0, "chains", (json_int_t)rep->chains, "events",
                     (json_int_t)rep->events, "checkpoints", (json_int_t)rep->checkpoints, "keyFingerprint",
                     rep->key_fingerprint, "installation", rep->installation, "signers",
                     signers ? signers : json_array(), "signersNotShown", (json_int_t)rep->signers_dropped,
                     "problems", problems ? problems : json_array(), "problemsNotShown",
                     (json_int_t)rep->problems_dropped);
}
