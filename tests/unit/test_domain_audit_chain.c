/* The audit trail's canonical bytes and the chain walk (src/domain/audit_chain.c).
 * The expected hashes were computed by credvault_audit_canon() of migration
 * 0010 in PostgreSQL, so C and SQL are held to the same bytes. Hostile input
 * first: changed, deleted, reordered and forged events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "domain/audit.h"
#include "credvault/json_alloc.h"

static void hex_of(const uint8_t h[32], char out[65])
{
    cv_hex_encode(h, 32, out);
}

static void row_set(struct cv_audit_row *r, const char *chain, int64_t seq, const char *action)
{
    memset(r, 0, sizeof(*r));
    r->id = 100 + seq;
    snprintf(r->chain, sizeof(r->chain), "%s", chain);
    r->seq = seq;
    r->at_us = 1767323045123456 + seq;
    snprintf(r->tenant_id, sizeof(r->tenant_id), "%s", strcmp(chain, "_platform") ? chain : "");
    snprintf(r->actor, sizeof(r->actor), "alice");
    snprintf(r->role, sizeof(r->role), "tenant-admin");
    snprintf(r->action, sizeof(r->action), "%s", action);
    snprintf(r->target, sizeof(r->target), "srv-%lld", (long long)seq);
    snprintf(r->outcome, sizeof(r->outcome), "success");
    snprintf(r->request_id, sizeof(r->request_id), "rid-%lld", (long long)seq);
}

static void seal(struct cv_audit_row *r)
{
    struct cv_buf b;
    cv_buf_init(&b, CV_AUDIT_CANON_MAX_BYTES);
    ck_assert(cv_ok(cv_audit_canon_event(r, &b)));
    cv_crypto_sha256(b.data, b.len, r->hash);
    cv_buf_free(&b);
}

/* A well-formed chain of n events. */
static void make_chain(struct cv_audit_row *rows, int n, const char *chain)
{
    uint8_t prev[32] = {0};
    for (int i = 0; i < n; i++) {
        row_set(&rows[i], chain, i + 1, i % 2 ? "credentials.read_masked" : "credentials.deploy");
        memcpy(rows[i].prev, prev, 32);
        seal(&rows[i]);
        memcpy(prev, rows[i].hash, 32);
    }
}

static int walk(struct cv_audit_row *rows, int n, struct cv_audit_walk *w)
{
    cv_audit_walk_init(w, rows[0].chain);
    for (int i = 0; i < n; i++)
        if (cv_audit_walk_next(w, &rows[i]) != 0) return -1;
    return 0;
}

START_TEST(changed_event_is_the_first_broken_link)
{
    struct cv_audit_row rows[6];
    make_chain(rows, 6, "acme");
    snprintf(rows[3].actor, sizeof(rows[3].actor), "mallory"); /* a direct UPDATE of one column */
    struct cv_audit_walk w;
    ck_assert_int_eq(walk(rows, 6, &w), -1);
    ck_assert_int_eq(w.broken_seq, 4);
    ck_assert_int_eq(w.broken_id, rows[3].id);
    ck_assert_ptr_nonnull(strstr(w.reason, "was changed"));
}
END_TEST

START_TEST(rehashed_event_breaks_the_next_link)
{
    struct cv_audit_row rows[6];
    make_chain(rows, 6, "acme");
    snprintf(rows[2].outcome, sizeof(rows[2].outcome), "denied");
    seal(&rows[2]); /* the attacker recomputed that event's hash, not its successors' */
    struct cv_audit_walk w;
    ck_assert_int_eq(walk(rows, 6, &w), -1);
    ck_assert_int_eq(w.broken_seq, 4);
    ck_assert_ptr_nonnull(strstr(w.reason, "does not follow event 3"));
}
END_TEST

START_TEST(deleted_event_is_named)
{
    struct cv_audit_row rows[6];
    make_chain(rows, 6, "acme");
    memmove(&rows[2], &rows[3], 3 * sizeof(rows[0])); /* event 3 deleted */
    struct cv_audit_walk w;
    ck_assert_int_eq(walk(rows, 5, &w), -1);
    ck_assert_int_eq(w.broken_seq, 3);
    ck_assert_ptr_nonnull(strstr(w.reason, "is missing"));
}
END_TEST

START_TEST(reordered_events_are_caught)
{
    struct cv_audit_row rows[6];
    make_chain(rows, 6, "acme");
    /* swap the sequence numbers of events 2 and 3 (an UPDATE of seq), read in seq order */
    struct cv_audit_row a = rows[1], b = rows[2];
    a.seq = 3;
    b.seq = 2;
    rows[1] = b;
    rows[2] = a;
    struct cv_audit_walk w;
    ck_assert_int_eq(walk(rows, 6, &w), -1);
    ck_assert_int_eq(w.broken_seq, 2);
    ck_assert_ptr_nonnull(strstr(w.reason, "does not follow event 1"));
}
END_TEST

START_TEST(forged_chain_is_caught_at_the_head_and_by_chain_name)
{
    struct cv_audit_row rows[5];
    make_chain(rows, 5, "acme");
    struct cv_audit_walk w;
    ck_assert_int_eq(walk(rows, 5, &w), 0);
    /* the tail was deleted and the head left as it was */
    struct cv_audit_head head;
    memset(&head, 0, sizeof(head));
    snprintf(head.chain, sizeof(head.chain), "acme");
    head.seq = 5;
    memcpy(head.hash, rows[4].hash, 32);
    ck_assert_int_eq(walk(rows, 4, &w), 0);
    ck_assert_int_eq(cv_audit_walk_end(&w, &head), -1);
    ck_assert_ptr_nonnull(strstr(w.reason, "deleted at the end"));
    ck_assert_int_eq(walk(rows, 5, &w), 0);
    ck_assert_int_eq(cv_audit_walk_end(&w, &head), 0);
    /* an event of another chain spliced in */
    struct cv_audit_row other[2];
    make_chain(other, 2, "beta");
    rows[2] = other[1];
    rows[2].seq = 3;
    ck_assert_int_eq(walk(rows, 5, &w), -1);
    ck_assert_int_eq(w.broken_seq, 3);
    /* a first event that does not start from zeros */
    make_chain(rows, 2, "acme");
    rows[0].prev[0] = 1;
    seal(&rows[0]);
    ck_assert_int_eq(walk(rows, 2, &w), -1);
    ck_assert_int_eq(w.broken_seq, 1);
}
END_TEST

START_TEST(canonical_bytes_match_postgresql)
{
    struct cv_audit_row r;
    memset(&r, 0, sizeof(r));
    snprintf(r.chain, sizeof(r.chain), "acme");
    r.seq = 7;
    memset(r.prev, 0xab, sizeof(r.prev));
    r.at_us = 1767323045123456; /* 2026-01-02T03:04:05.123456Z */
    snprintf(r.tenant_id, sizeof(r.tenant_id), "acme");
    snprintf(r.actor, sizeof(r.actor), "alice@acme.example");
    snprintf(r.role, sizeof(r.role), "tenant-admin");
    snprintf(r.action, sizeof(r.action), "credentials.read_masked");
    snprintf(r.target, sizeof(r.target), "grc-evidence-1765222822161");
    snprintf(r.outcome, sizeof(r.outcome), "success");
    snprintf(r.request_id, sizeof(r.request_id), "9f1c");
    char detail[] = "{\"k\":\"\xc3\xbc\\nx\"}"; /* a multibyte character and an escape in a value */
    r.detail = detail;
    seal(&r);
    char hex[65];
    hex_of(r.hash, hex);
    ck_assert_str_eq(hex, "44ee617823dd91cb3036fb9e8fdbb250a9980360302f5a590900564b1136893f");

    /* a platform event with every optional field empty */
    memset(&r, 0, sizeof(r));
    snprintf(r.chain, sizeof(r.chain), "_platform");
    r.seq = 1;
    r.at_us = 946684799000001; /* 1999-12-31T23:59:59.000001Z */
    snprintf(r.actor, sizeof(r.actor), "anonymous");
    snprintf(r.action, sizeof(r.action), "auth.failed");
    snprintf(r.outcome, sizeof(r.outcome), "denied");
    struct cv_buf b;
    cv_buf_init(&b, CV_AUDIT_CANON_MAX_BYTES);
    ck_assert(cv_ok(cv_audit_canon_event(&r, &b)));
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    ck_assert_str_eq((const char *)b.data,
                     "credvault.audit.event.v1\nchain:9:_platform\nseq:1:1\n"
                     "prev:64:0000000000000000000000000000000000000000000000000000000000000000\n"
                     "at:27:1999-12-31T23:59:59.000001Z\ntenant:0:\nactor:9:anonymous\nrole:0:\n"
                     "action:11:auth.failed\ntarget:0:\noutcome:6:denied\nrequest_id:0:\ndetail:0:\n");
    uint8_t h[32];
    cv_crypto_sha256(b.data, b.len, h);
    hex_of(h, hex);
    ck_assert_str_eq(hex, "a4cdef3df7e05610b15c361d561ef1d58abd3313c86ed744d7994cb3bb2b8658");
    cv_buf_free(&b);
}
END_TEST

START_TEST(a_value_cannot_pass_for_another_field)
{
    /* an actor named so that it reads like the end of the actor line and a
     * role line: the byte length keeps the two apart */
    struct cv_audit_row a, b;
    row_set(&a, "acme", 1, "x");
    row_set(&b, "acme", 1, "x");
    snprintf(a.actor, sizeof(a.actor), "al\nrole:5:admin");
    snprintf(a.role, sizeof(a.role), "%s", "");
    snprintf(b.actor, sizeof(b.actor), "al");
    snprintf(b.role, sizeof(b.role), "admin");
    seal(&a);
    seal(&b);
    ck_assert(!cv_memeq(a.hash, b.hash, 32));
}
END_TEST

START_TEST(time_text)
{
    char t[32];
    cv_audit_time_text(0, t);
    ck_assert_str_eq(t, "1970-01-01T00:00:00.000000Z");
    cv_audit_time_text(1767323045123456, t);
    ck_assert_str_eq(t, "2026-01-02T03:04:05.123456Z");
    cv_audit_time_text(-1, t);
    ck_assert_str_eq(t, "1969-12-31T23:59:59.999999Z");
}
END_TEST

START_TEST(checkpoint_payload_is_sorted_and_digested)
{
    char d[3][65];
    snprintf(d[0], 65, "%064d", 3);
    snprintf(d[1], 65, "%064d", 1);
    snprintf(d[2], 65, "%064d", 2);
    uint8_t prev[32] = {0}, digest[32];
    struct cv_buf b;
    cv_buf_init(&b, 4096);
    ck_assert(cv_ok(cv_audit_canon_checkpoint(1767323045123, "credvault-audit-1",
                                              "0b9f3c1e-5a7d-4e21-9c3b-2f6a8d4e1b70", "ab12", prev, d, 3, &b,
                                              digest)));
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    const char *text = (const char *)b.data;
    ck_assert(strncmp(text,
                      "credvault.audit.checkpoint.v2\nat:27:2026-01-02T03:04:05.123000Z\n"
                      "key:17:credvault-audit-1\ninstallation:36:0b9f3c1e-5a7d-4e21-9c3b-2f6a8d4e1b70\n"
                      "key-sha256:4:ab12\nprev:64:",
                      strlen("credvault.audit.checkpoint.v2\nat:27:2026-01-02T03:04:05.123000Z\n"
                             "key:17:credvault-audit-1\ninstallation:36:0b9f3c1e-5a7d-4e21-9c3b-2f6a8d4e1b70\n"
                             "key-sha256:4:ab12\nprev:64:")) == 0);
    const char *lines = strstr(text, "heads:1:3\n");
    ck_assert_ptr_nonnull(lines);
    lines += strlen("heads:1:3\n");
    char want[3 * 65 + 1];
    snprintf(want, sizeof(want), "%064d\n%064d\n%064d\n", 1, 2, 3);
    ck_assert_str_eq(lines, want);
    uint8_t h[32];
    cv_crypto_sha256(want, strlen(want), h);
    ck_assert(cv_memeq(h, digest, 32));
    cv_buf_free(&b);

    struct cv_audit_head head;
    memset(&head, 0, sizeof(head));
    snprintf(head.chain, sizeof(head.chain), "acme");
    head.seq = 42;
    memset(head.hash, 0x11, 32);
    cv_buf_init(&b, 1024);
    ck_assert(cv_ok(cv_audit_canon_head(&head, &b)));
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    ck_assert_str_eq((const char *)b.data,
                     "credvault.audit.head.v1\nchain:4:acme\nseq:2:42\n"
                     "hash:64:1111111111111111111111111111111111111111111111111111111111111111\n");
    cv_buf_free(&b);
}
END_TEST

START_TEST(uuid_is_version_4)
{
    char a[CV_STORE_UUID_BYTES + 1], b[CV_STORE_UUID_BYTES + 1];
    ck_assert(cv_ok(cv_audit_uuid(a)));
    ck_assert(cv_ok(cv_audit_uuid(b)));
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(strlen(a), 36);
    ck_assert(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    ck_assert(a[14] == '4');
    ck_assert(strchr("89ab", a[19]) != NULL);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *s = suite_create("domain_audit_chain");
    TCase *tc = tcase_create("chain");
    tcase_add_test(tc, changed_event_is_the_first_broken_link);
    tcase_add_test(tc, rehashed_event_breaks_the_next_link);
    tcase_add_test(tc, deleted_event_is_named);
    tcase_add_test(tc, reordered_events_are_caught);
    tcase_add_test(tc, forged_chain_is_caught_at_the_head_and_by_chain_name);
    tcase_add_test(tc, canonical_bytes_match_postgresql);
    tcase_add_test(tc, a_value_cannot_pass_for_another_field);
    tcase_add_test(tc, time_text);
    tcase_add_test(tc, checkpoint_payload_is_sorted_and_digested);
    tcase_add_test(tc, uuid_is_version_4);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
