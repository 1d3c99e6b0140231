/* Bounded byte buffers with a read cursor, and secret memory.
 * A buffer never grows past `max`; readers consume exactly what was asked or
 * fail without moving. Secret buffers live in locked memory and are wiped. */
#ifndef CREDVAULT_BUF_H
#define CREDVAULT_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"

struct cv_buf {
    uint8_t *data;
    size_t len;  /* bytes written */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard limit on len */
    size_t pos;  /* read cursor */
    int secret;  /* allocated by cv_secret_alloc, wiped on free */
};

#define CV_BUF_EMPTY {NULL, 0, 0, 0, 0, 0}

void cv_buf_init(struct cv_buf *b, size_t max);
void cv_buf_init_secret(struct cv_buf *b, size_t max);
/* Wipes (always) and frees; the buffer may be reused after cv_buf_init. */
void cv_buf_free(struct cv_buf *b);
/* Wipes content, keeps the allocation. */
void cv_buf_reset(struct cv_buf *b);

CV_RESULT cv_buf_reserve(struct cv_buf *b, size_t extra);
CV_RESULT cv_buf_append(struct cv_buf *b, const void *p, size_t n);
CV_RESULT cv_buf_append_str(struct cv_buf *b, const char *s);
CV_RESULT cv_buf_append_u8(struct cv_buf *b, uint8_t v);
CV_RESULT cv_buf_append_u32be(struct cv_buf *b, uint32_t v);
/* Appends a NUL after the data without counting it, so data is a C string. */
CV_RESULT cv_buf_terminate(struct cv_buf *b);

CV_RESULT cv_buf_read(struct cv_buf *b, void *out, size_t n);
CV_RESULT cv_buf_read_u32be(struct cv_buf *b, uint32_t *v);
size_t cv_buf_remaining(const struct cv_buf *b);

/* Secret memory (src/core/secret.c): page-aligned regions of their own,
 * locked (best effort) and excluded from core dumps (MADV_DONTDUMP); every
 * block is zeroed when allocated and wiped whole on free. Thread-safe. */
void *cv_secret_alloc(size_t n);
void *cv_secret_realloc(void *p, size_t n);
void cv_secret_free(void *p);
char *cv_secret_strdup(const char *s);
/* 0 once a region could not be locked (RLIMIT_MEMLOCK too small): secrets
 * may then be swapped out, though never dumped. */
int cv_secret_memory_locked(void);
/* In a child, first thing after fork(2): locks every secret mapping again,
 * since memory locks are not inherited (the dump exclusion is), and makes
 * cv_secret_memory_locked() report this process's locks. Call it before the
 * child starts threads; in AddressSanitizer builds it does nothing. */
void cv_secret_memory_relock(void);
/* 1 when secrets live in regions of their own; 0 in AddressSanitizer builds,
 * which take them from malloc so the sanitizer sees every block. */
int cv_secret_memory_isolated(void);
/* Wipe that the compiler cannot drop. */
void cv_wipe(void *p, size_t n);
/* Constant-time comparison: 1 when equal. */
int cv_memeq(const void *a, const void *b, size_t n);

/* Size arithmetic that refuses to wrap. */
CV_RESULT cv_size_add(size_t a, size_t b, size_t *out);
CV_RESULT cv_size_mul(size_t a, size_t b, size_t *out);

/* Hex: lowercase out; strict in (exact length, lowercase [0-9a-f] only). */
void cv_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);
CV_RESULT cv_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len);

/* Process hardening: no core dumps, not ptrace-attachable by non-root. */
void cv_process_harden(void);

#endif
