/* Fuzzes cv_record_decode. Besides memory errors it checks that whatever the
 * decoder accepts, the encoder writes back, and that the written text decodes
 * to the same record and re-encodes to the same bytes. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/json_alloc.h"

static int same_record(const struct cv_record *a, const struct cv_record *b)
{
    return a->v == b->v && strcmp(a->tenant_id, b->tenant_id) == 0 && a->key_version == b->key_version &&
           memcmp(a->iv, b->iv, sizeof(a->iv)) == 0 && memcmp(a->tag, b->tag, sizeof(a->tag)) == 0 &&
           a->ct.len == b->ct.len && memcmp(a->ct.data, b->ct.data, a->ct.len) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cv_json_alloc_install(); /* the decoder's jansson values live where the binary's do */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cv_record rec, again;
    struct cv_buf text, text2;
    cv_record_init(&rec);
    cv_record_init(&again);
    cv_buf_init(&text, 4 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES);
    cv_buf_init(&text2, 4 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES);

    if (cv_ok(cv_record_decode((const char *)data, size, &rec))) {
        if (!cv_tenant_id_valid(rec.tenant_id) || rec.key_version == 0 || rec.ct.len == 0) abort();
        if (cv_failed(cv_record_encode(&rec, &text))) abort();
        if (cv_failed(cv_record_decode((const char *)text.data, text.len, &again))) abort();
        if (!same_record(&rec, &again)) abort();
        if (cv_failed(cv_record_encode(&again, &text2))) abort();
        if (text.len != text2.len || memcmp(text.data, text2.data, text.len) != 0) abort();
    }

    cv_buf_free(&text);
    cv_buf_free(&text2);
    cv_record_wipe(&rec);
    cv_record_wipe(&again);
    cv_error_clear();
    return 0;
}
