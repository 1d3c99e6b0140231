/* The canonical bytes of the audit trail and the walk that checks a chain.
 * Every field is written as `name:<byte length>:<value>\n`, so no value can
 * pass for another field whatever bytes it holds, and the text is what an
 * auditor reads and what `openssl dgst -sha256` hashes. The event encoding
 * must stay byte-for-byte equal to credvault_audit_canon() in migration 0010
 * (v1) and credvault_audit_canon2() in 0016 (v2: v1's lines, then the mac);
 * a change is a new version string in both. Since 0019 the service hashes
 * new events here (cv_audit_hash_hook) and the database only links them. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/crypto.h"
#include "domain/audit.h"

static cv_result field(struct cv_buf *out, const char *name, const char *value)
{
    char head[64];
    size_t n = value ? strlen(value) : 0;
    snprintf(head, sizeof(head), "%s:%zu:", name, n);
    CV_GUARD(cv_buf_append_str(out, head));
    if (n) CV_GUARD(cv_buf_append(out, value, n));
    return cv_buf_append_u8(out, '\n');
}

static cv_result field_i64(struct cv_buf *out, const char *name, int64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return field(out, name, text);
}

static cv_result field_hash(struct cv_buf *out, const char *name, const uint8_t h[CV_AUDIT_HASH_BYTES])
{
    char hex[2 * CV_AUDIT_HASH_BYTES + 1];
    cv_hex_encode(h, CV_AUDIT_HASH_BYTES, hex);
    return field(out, name, hex);
}

void cv_audit_time_text(int64_t at_us, char out[32])
{
    int64_t s = at_us / 1000000, us = at_us % 1000000;
    if (us < 0) {
        us += 1000000;
        s -= 1;
    }
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96]; /* the format gives 27 characters; the compiler cannot prove it */
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)us);
    snprintf(out, 32, "%.31s", buf);
}

cv_result cv_audit_canon_event(const struct cv_audit_row *row, struct cv_buf *out)
{
    char at[32];
    cv_audit_time_text(row->at_us, at);
    CV_GUARD(cv_buf_append_str(out, row->has_mac ? CV_AUDIT_EVENT_VERSION_ANCHORED "\n" : CV_AUDIT_EVENT_VERSION "\n"));
    CV_GUARD(field(out, "chain", row->chain));
    CV_GUARD(field_i64(out, "seq", row->seq));
    CV_GUARD(field_hash(out, "prev", row->prev));
    CV_GUARD(field(out, "at", at));
    CV_GUARD(field(out, "tenant", row->tenant_id));
    CV_GUARD(field(out, "actor", row->actor));
    CV_GUARD(field(out, "role", row->role));
    CV_GUARD(field(out, "action", row->action));
    CV_GUARD(field(out, "target", row->target));
    CV_GUARD(field(out, "outcome", row->outcome));
    CV_GUARD(field(out, "request_id", row->request_id));
    CV_GUARD(field(out, "detail", row->detail));
    /* v2: the HSM anchor, so that removing or replacing it changes the hash */
    return row->has_mac ? field_hash(out, "mac", row->mac) : CV_OK;
}

cv_result cv_audit_hash_hook(void *arg, const struct cv_audit_row *row, uint8_t hash[CV_AUDIT_HASH_BYTES])
{
    (void)arg;
    struct cv_buf canon;
    cv_buf_init(&canon, CV_AUDIT_CANON_MAX_BYTES);
    cv_result r = cv_audit_canon_event(row, &canon);
    if (cv_ok(r)) cv_crypto_sha256(canon.data, canon.len, hash);
    cv_buf_free(&canon);
    return r;
}

cv_result cv_audit_canon_head(const struct cv_audit_head *head, struct cv_buf *out)
{
    CV_GUARD(cv_buf_append_str(out, CV_AUDIT_HEAD_VERSION "\n"));
    CV_GUARD(field(out, "chain", head->chain));
    CV_GUARD(field_i64(out, "seq", head->seq));
    return field_hash(out, "hash", head->hash);
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

cv_result cv_audit_canon_checkpoint(int64_t at_ms, const char *key_label, const char *installation,
                                    const char *key_sha256, const uint8_t prev[CV_AUDIT_HASH_BYTES],
                                    char (*digests)[2 * CV_AUDIT_HASH_BYTES + 1], size_t n, struct cv_buf *out,
                                    uint8_t heads_digest[CV_AUDIT_HASH_BYTES])
{
    /* sorted, so the payload says nothing about which chain is which */
    qsort(digests, n, sizeof(*digests), digest_cmp);
    char at[32];
    cv_audit_time_text(at_ms * 1000, at);
    CV_GUARD(cv_buf_append_str(out, CV_AUDIT_CHECKPOINT_VERSION "\n"));
    CV_GUARD(field(out, "at", at));
    CV_GUARD(field(out, "key", key_label));
    /* which installation and which key signed: covered by the signature, so
     * verify can name the signer and refuse a foreign one */
    CV_GUARD(field(out, "installation", installation));
    CV_GUARD(field(out, "key-sha256", key_sha256));
    CV_GUARD(field_hash(out, "prev", prev));
    CV_GUARD(field_i64(out, "heads", (int64_t)n));
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        CV_GUARD(cv_buf_append(out, digests[i], 2 * CV_AUDIT_HASH_BYTES));
        CV_GUARD(cv_buf_append_u8(out, '\n'));
    }
    cv_crypto_sha256(out->data + start, out->len - start, heads_digest);
    return CV_OK;
}

/* ---- the walk ---- */

void cv_audit_walk_init(struct cv_audit_walk *w, const char *chain)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->chain, sizeof(w->chain), "%s", chain);
}

static int breaks(struct cv_audit_walk *w, int64_t seq, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int breaks(struct cv_audit_walk *w, int64_t seq, int64_t id, const char *fmt, ...)
{
    w->broken = 1;
    w->broken_seq = seq;
    w->broken_id = id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
    va_end(ap);
    return -1;
}

int cv_audit_walk_next(struct cv_audit_walk *w, const struct cv_audit_row *row)
{
    if (w->broken) return -1;
    int64_t want = w->seq + 1;
    if (strcmp(row->chain, w->chain) != 0)
        return breaks(w, want, row->id, "event id %" PRId64 " is filed in chain '%s' but read from this one", row->id,
                      row->chain);
    if (row->seq > want)
        return breaks(w, want, 0,
                      "event %" PRId64 " is missing: the chain goes from %" PRId64 " to %" PRId64 " (deleted)", want,
                      w->seq, row->seq);
    if (row->seq < want)
        return breaks(w, row->seq, row->id, "event %" PRId64 " appears twice or out of order", row->seq);
    /* An event that does not name its predecessor's hash was moved, inserted
     * or follows a rewritten event; one whose bytes do not give its own hash
     * was changed. */
    if (!cv_memeq(row->prev, w->hash, CV_AUDIT_HASH_BYTES))
        return breaks(w, row->seq, row->id,
                      "event %" PRId64 " does not follow event %" PRId64
                      ": its previous hash differs (reordered, inserted, or an earlier event rewritten)",
                      row->seq, w->seq);
    struct cv_buf canon;
    cv_buf_init(&canon, CV_AUDIT_CANON_MAX_BYTES);
    uint8_t h[CV_AUDIT_HASH_BYTES];
    int ok = cv_ok(cv_audit_canon_event(row, &canon));
    if (ok) cv_crypto_sha256(canon.data, canon.len, h);
    cv_buf_free(&canon);
    if (!ok) return breaks(w, row->seq, row->id, "event %" PRId64 " cannot be encoded", row->seq);
    if (!cv_memeq(h, row->hash, CV_AUDIT_HASH_BYTES))
        return breaks(w, row->seq, row->id, "event %" PRId64 " was changed: its content does not match its hash",
                      row->seq);
    w->seq = row->seq;
    memcpy(w->hash, row->hash, CV_AUDIT_HASH_BYTES);
    return 0;
}

int cv_audit_walk_end(struct cv_audit_walk *w, const struct cv_audit_head *head)
{
    if (w->broken) return -1;
    if (head->seq > w->seq)
        return breaks(w, w->seq + 1, 0,
                      "the chain ends at event %" PRId64 " but its head says %" PRId64 " (events deleted at the end)",
                      w->seq, head->seq);
    if (head->seq < w->seq || !cv_memeq(head->hash, w->hash, CV_AUDIT_HASH_BYTES))
        return breaks(w, head->seq, 0, "the chain's head (event %" PRId64 ") does not match its last event %" PRId64,
                      head->seq, w->seq);
    return 0;
}
