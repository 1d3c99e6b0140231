/* Audit anchors: an HMAC by the token's binding key over an event's chain
 * and content, made as the event is appended (the store calls
 * cv_audit_anchor_hook) and checked by `audit verify`. The event's hash
 * covers its anchor (format v2), so a writer who rewrites an event and
 * recomputes its hash with SQL alone cannot make the anchor fit. */
#include <string.h>

#include "credvault/buf.h"
#include "credvault/crypto.h"
#include "credvault/hsm_mac.h"
#include "domain/audit.h"

static cv_result put(struct cv_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    CV_GUARD(cv_buf_append_u32be(b, (uint32_t)n));
    return n ? cv_buf_append(b, s, n) : CV_OK;
}

/* Length-prefixed fields; the detail (up to 16 KiB) by its SHA-256. */
static cv_result anchor_of(struct cv_hsm *hsm, const char *tenant, const char *actor, const char *role,
                           const char *action, const char *target, const char *outcome, const char *request_id,
                           const char *detail, uint8_t mac[CV_AUDIT_HASH_BYTES])
{
    struct cv_buf in;
    cv_buf_init(&in, CV_HSM_MAC_INPUT_MAX_BYTES);
    const char *chain = tenant && *tenant ? tenant : CV_AUDIT_PLATFORM_CHAIN;
    uint8_t digest[CV_SHA256_BYTES];
    cv_crypto_sha256(detail ? detail : "", detail ? strlen(detail) : 0, digest);
    cv_result r = put(&in, chain);
    if (cv_ok(r)) r = put(&in, tenant);
    if (cv_ok(r)) r = put(&in, actor);
    if (cv_ok(r)) r = put(&in, role);
    if (cv_ok(r)) r = put(&in, action);
    if (cv_ok(r)) r = put(&in, target);
    if (cv_ok(r)) r = put(&in, outcome);
    if (cv_ok(r)) r = put(&in, request_id);
    if (cv_ok(r)) r = cv_buf_append_u8(&in, detail ? 1 : 0);
    if (cv_ok(r)) r = cv_buf_append(&in, digest, sizeof(digest));
    if (cv_ok(r)) r = cv_hsm_mac(hsm, CV_AUDIT_ANCHOR_CONTEXT, in.data, in.len, mac);
    cv_buf_free(&in);
    return r;
}

cv_result cv_audit_anchor_make(struct cv_hsm *hsm, const struct cv_audit_event *ev, uint8_t mac[CV_AUDIT_HASH_BYTES])
{
    CV_ENSURE_REF(ev);
    /* as stored: NULL and "" are the same empty text in the row */
    return anchor_of(hsm, ev->tenant_id, ev->actor, ev->role, ev->action, ev->target, ev->outcome, ev->request_id,
                     ev->detail, mac);
}

cv_result cv_audit_anchor_hook(void *arg, const struct cv_audit_event *ev, uint8_t mac[32])
{
    struct cv_app *app = arg;
    return cv_audit_anchor_make(app->hsm, ev, mac);
}

cv_result cv_audit_anchor_check(struct cv_hsm *hsm, const struct cv_audit_row *row)
{
    CV_ENSURE_REF(row);
    uint8_t expect[CV_AUDIT_HASH_BYTES];
    CV_GUARD(anchor_of(hsm, row->tenant_id, row->actor, row->role, row->action, row->target, row->outcome,
                       row->request_id, row->detail, expect));
    int same = cv_memeq(expect, row->mac, sizeof(expect));
    CV_ENSURE(same, CV_ERR_CRYPTO, "audit anchor mismatch");
    return CV_OK;
}
