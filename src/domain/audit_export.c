/* `credvault audit export --tenant T`: the tenant's chains (one per writer
 * slot, migration 0019) as one canonical file per event (the exact bytes that were hashed), every checkpoint that
 * signed it (payload, DER signature, the tenant's head line), the public key
 * as PEM and a script of openssl commands, so that an auditor checks it all
 * offline without credvault. Exports no other tenant's names or events. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/hsm_signing.h"
#include "domain/audit.h"

#define PAGE 500

/* The commands of docs/operations.md ("Exporting a tenant's trail and verifying it offline"). */
static const char verify_sh[] =
    "#!/bin/sh\n"
    "# Verifies this export of a credvault audit chain with the openssl command line.\n"
    "set -eu\n"
    "cd \"$(dirname \"$0\")\"\n"
    "fail() { echo \"FAILED: $*\" >&2; exit 1; }\n"
    "zero=0000000000000000000000000000000000000000000000000000000000000000\n"
    "# 1. every checkpoint was signed by the key in public-key.pem\n"
    "for p in checkpoints/*.txt; do\n"
    "  case $p in *.head.txt) continue ;; esac\n"
    "  openssl dgst -sha256 -verify public-key.pem -signature \"${p%.txt}.sig\" \"$p\" >/dev/null \\\n"
    "    || fail \"the signature of $p does not verify\"\n"
    "done\n"
    "# 2. in each chain (one folder each), each event names the SHA-256 of the event before it\n"
    "n=0\n"
    "for d in events-*; do\n"
    "  [ -d \"$d\" ] || continue\n"
    "  prev=$zero\n"
    "  for e in \"$d\"/*.txt; do\n"
    "    grep -qx \"prev:64:$prev\" \"$e\" || fail \"$e does not follow the event before it\"\n"
    "    prev=$(openssl dgst -sha256 -r \"$e\" | cut -d' ' -f1)\n"
    "    n=$((n + 1))\n"
    "  done\n"
    "done\n"
    "# 3. each head line is listed in its signed checkpoint and is an event of its chain\n"
    "for h in checkpoints/*.head.txt; do\n"
    "  [ -f \"$h\" ] || continue\n"
    "  id=${h#checkpoints/}\n"
    "  p=checkpoints/${id%%.*}.txt\n"
    "  d=$(openssl dgst -sha256 -r \"$h\" | cut -d' ' -f1)\n"
    "  grep -qx \"$d\" \"$p\" || fail \"$h is not listed in $p\"\n"
    "  chain=$(sed -n 's/^chain:[0-9]*://p' \"$h\" | tr ':' '.')\n"
    "  seq=$(sed -n 's/^seq:[0-9]*://p' \"$h\")\n"
    "  hash=$(sed -n 's/^hash:64://p' \"$h\")\n"
    "  e=events-$chain/$(printf '%010d' \"$seq\").txt\n"
    "  [ -f \"$e\" ] || fail \"$e, signed in $p, is missing\"\n"
    "  [ \"$(openssl dgst -sha256 -r \"$e\" | cut -d' ' -f1)\" = \"$hash\" ] || fail \"$e is not the event $p "
    "signed\"\n"
    "done\n"
    "echo \"OK: $n events; every chain is intact and every checkpoint is signed by public-key.pem\"\n";

static const char readme_fmt[] =
    "credvault audit export\n"
    "======================\n"
    "\n"
    "tenant:           %s (chains: %u, one per writer slot that wrote for it)\n"
    "events:           %" PRIu64 "\n"
    "checkpoints:      %" PRIu64 "\n"
    "signing key:      %s (EC P-256, held in the HSM)\n"
    "key fingerprint:  sha256:%s\n"
    "\n"
    "events-<chain>/NNNNNNNNNN.txt one event each, exactly the bytes that were hashed: one line per\n"
    "                              field, name:<byte length>:<value>; prev: is the SHA-256 of the\n"
    "                              event before in its chain (zeros for the first); ':' in a\n"
    "                              chain's name is '.' in its folder's\n"
    "checkpoints/NNNNNNNNNN.txt    a signed checkpoint: the SHA-256 of each chain head it sealed\n"
    "checkpoints/NNNNNNNNNN.sig    its ECDSA P-256 / SHA-256 signature (DER)\n"
    "checkpoints/NNNNNNNNNN.<chain>.head.txt  a chain's head line at that checkpoint\n"
    "public-key.pem                the public half of the signing key\n"
    "verify.sh                     the checks below, as a script\n"
    "\n"
    "To verify with the openssl command line alone, run `sh verify.sh`, or the same commands by\n"
    "hand (docs/operations.md). Check the key first: the fingerprint above must equal\n"
    "  openssl pkey -pubin -in public-key.pem -outform DER | openssl dgst -sha256\n"
    "and the one `credvault audit verify` prints at the operator's site.\n";

struct export_ctx {
    const struct cv_audit_sink *sink;
    char dir[CV_AUDIT_CHAIN_MAX_BYTES + 1]; /* the chain's name as a folder name */
    struct cv_buf canon;
    uint64_t events;
    int64_t last_seq;
    cv_result r;
};

static int export_event(void *arg, const struct cv_audit_row *row)
{
    struct export_ctx *x = arg;
    char path[160];
    cv_buf_reset(&x->canon);
    x->r = cv_audit_canon_event(row, &x->canon);
    if (cv_failed(x->r)) return 1;
    snprintf(path, sizeof(path), "events-%s/%010" PRId64 ".txt", x->dir, row->seq);
    x->r = x->sink->file(x->sink->arg, path, x->canon.data, x->canon.len);
    if (cv_failed(x->r)) return 1;
    x->events++;
    x->last_seq = row->seq;
    return 0;
}

struct signed_ctx {
    struct cv_app *app;
    const struct cv_audit_sink *sink;
    const char *dir; /* the chain's folder name */
    uint64_t written;
    int64_t last_seq;
    int64_t *done; /* checkpoints whose payload is written already */
    size_t ndone, capdone;
    cv_result r;
};

static int already(struct signed_ctx *s, int64_t id)
{
    for (size_t i = 0; i < s->ndone; i++)
        if (s->done[i] == id) return 1;
    if (s->ndone == s->capdone) {
        size_t cap = s->capdone ? 2 * s->capdone : 64;
        int64_t *n = realloc(s->done, cap * sizeof(*n));
        if (!n) return 0; /* written again: the sink refuses, and says so */
        s->done = n;
        s->capdone = cap;
    }
    s->done[s->ndone++] = id;
    return 0;
}

/* A chain's name as a folder name: tenant ids and '_platform' are safe, ':' is not. */
static void dir_of(const char *chain, char out[CV_AUDIT_CHAIN_MAX_BYTES + 1])
{
    snprintf(out, CV_AUDIT_CHAIN_MAX_BYTES + 1, "%s", chain);
    for (char *p = out; *p; p++)
        if (*p == ':') *p = '.';
}

struct one_cp {
    int64_t want;
    struct cv_audit_checkpoint cp;
    int found;
};

static int take_checkpoint(void *arg, const struct cv_audit_checkpoint *cp)
{
    struct one_cp *o = arg;
    if (cp->id == o->want && !o->found) {
        o->cp = *cp;
        o->cp.payload = strdup(cp->payload);
        o->found = o->cp.payload != NULL;
    }
    return 1;
}

static int export_signed(void *arg, int64_t checkpoint_id, const struct cv_audit_head *head)
{
    struct signed_ctx *s = arg;
    s->last_seq = head->seq;
    struct one_cp o;
    memset(&o, 0, sizeof(o));
    o.want = checkpoint_id;
    s->r = cv_store_audit_checkpoint_list(s->app->store, checkpoint_id - 1, 1, take_checkpoint, &o, NULL);
    if (cv_ok(s->r) && !o.found) s->r = cv_fail(CV_ERR_INTERNAL, "checkpoint %lld vanished", (long long)checkpoint_id);
    struct cv_buf line;
    cv_buf_init(&line, 1024);
    char path[160];
    if (cv_ok(s->r)) s->r = cv_audit_canon_head(head, &line);
    if (cv_ok(s->r)) {
        snprintf(path, sizeof(path), "checkpoints/%010" PRId64 ".%s.head.txt", checkpoint_id, s->dir);
        s->r = s->sink->file(s->sink->arg, path, line.data, line.len);
    }
    int again = cv_ok(s->r) && already(s, checkpoint_id);
    if (cv_ok(s->r) && !again) {
        snprintf(path, sizeof(path), "checkpoints/%010" PRId64 ".txt", checkpoint_id);
        s->r = s->sink->file(s->sink->arg, path, o.cp.payload, strlen(o.cp.payload));
    }
    if (cv_ok(s->r) && !again) {
        snprintf(path, sizeof(path), "checkpoints/%010" PRId64 ".sig", checkpoint_id);
        s->r = s->sink->file(s->sink->arg, path, o.cp.signature, o.cp.signature_len);
    }
    cv_buf_free(&line);
    cv_audit_checkpoint_free(&o.cp);
    if (cv_failed(s->r)) return 1;
    if (!again) s->written++;
    return 0;
}

struct chain_list {
    char (*names)[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    size_t n, cap;
    cv_result r;
};

static int collect_chain(void *arg, const struct cv_audit_head *head)
{
    struct chain_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void *n = realloc(l->names, cap * sizeof(*l->names));
        if (!n) {
            l->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        l->names = n;
        l->cap = cap;
    }
    snprintf(l->names[l->n++], CV_AUDIT_CHAIN_MAX_BYTES + 1, "%s", head->chain);
    return 0;
}

cv_result cv_audit_export(struct cv_app *app, const char *tenant_id, const struct cv_audit_sink *sink, uint64_t *events,
                          uint64_t *checkpoints)
{
    CV_ENSURE(app && app->store && app->hsm && sink && sink->file, CV_ERR_INTERNAL, "export needs store and HSM");
    CV_ENSURE(tenant_id && (cv_tenant_id_valid(tenant_id) || strcmp(tenant_id, CV_AUDIT_PLATFORM_CHAIN) == 0),
              CV_ERR_INPUT, "a tenant id (or %s) is required", CV_AUDIT_PLATFORM_CHAIN);
    int made = 0;
    /* seal the newest events first, so the export has no unsigned tail */
    CV_GUARD(cv_audit_checkpoint(app, &made));

    char pem[CV_HSM_PUBLIC_KEY_PEM_MAX_BYTES];
    uint8_t fp[CV_HSM_KEY_FINGERPRINT_BYTES];
    char fp_hex[2 * CV_HSM_KEY_FINGERPRINT_BYTES + 1];
    CV_GUARD(cv_hsm_audit_public_key(app->hsm, pem, sizeof(pem), fp));
    cv_hex_encode(fp, sizeof(fp), fp_hex);
    CV_GUARD(sink->file(sink->arg, "public-key.pem", pem, strlen(pem)));

    struct export_ctx x;
    memset(&x, 0, sizeof(x));
    x.sink = sink;
    x.r = CV_OK;
    cv_buf_init(&x.canon, CV_AUDIT_CANON_MAX_BYTES);
    struct signed_ctx s;
    memset(&s, 0, sizeof(s));
    s.app = app;
    s.sink = sink;
    s.r = CV_OK;
    struct chain_list chains = {NULL, 0, 0, CV_OK};
    cv_result r = CV_OK;
    /* every chain of the tenant: the one named by its id (before writer
     * chains) and one per writer slot */
    CV_GUARD_OUT(r, cv_store_audit_heads(app->store, tenant_id, 0, collect_chain, &chains));
    CV_GUARD_OUT(r, chains.r);
    for (size_t i = 0; i < chains.n; i++) {
        dir_of(chains.names[i], x.dir);
        s.dir = x.dir;
        for (int64_t after = 0;;) {
            unsigned rows = 0;
            CV_GUARD_OUT(r, cv_store_audit_chain_read(app->store, chains.names[i], after, PAGE, export_event, &x, &rows));
            CV_GUARD_OUT(r, x.r);
            if (rows < PAGE) break;
            after = x.last_seq;
        }
        for (int64_t after = 0;;) {
            unsigned rows = 0;
            CV_GUARD_OUT(r, cv_store_audit_chain_checkpoints(app->store, chains.names[i], after, PAGE, export_signed, &s,
                                                             &rows));
            CV_GUARD_OUT(r, s.r);
            if (rows < PAGE) break;
            after = s.last_seq;
        }
    }
    char readme[4096];
    int n =
        snprintf(readme, sizeof(readme), readme_fmt, tenant_id, (unsigned)chains.n, x.events, s.written, CV_HSM_AUDIT_KEY_LABEL, fp_hex);
    CV_GUARD_OUT(r, sink->file(sink->arg, "README.txt", readme, n > 0 && (size_t)n < sizeof(readme) ? (size_t)n : 0));
    CV_GUARD_OUT(r, sink->file(sink->arg, "verify.sh", verify_sh, sizeof(verify_sh) - 1));
    if (events) *events = x.events;
    if (checkpoints) *checkpoints = s.written;
out:
    cv_buf_free(&x.canon);
    free(s.done);
    free(chains.names);
    return r;
}
