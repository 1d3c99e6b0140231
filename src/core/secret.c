/* Secret memory. Each allocation carries its size in a header so it can be
 * wiped whole on free; pages are locked (best effort: RLIMIT_MEMLOCK may be
 * small) and excluded from core dumps, which cv_process_harden also disables. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "credvault/buf.h"

#define HEADER_BYTES 16 /* keeps malloc's 16-byte alignment */

void cv_wipe(void *p, size_t n)
{
    if (p && n) explicit_bzero(p, n);
}

int cv_memeq(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) d |= (uint8_t)(x[i] ^ y[i]);
    return d == 0;
}

void *cv_secret_alloc(size_t n)
{
    if (n > SIZE_MAX - HEADER_BYTES) return NULL;
    uint8_t *p = malloc(n + HEADER_BYTES);
    if (!p) return NULL;
    memcpy(p, &n, sizeof(n));
    /* Never munlock: a page may hold another live secret, and mlock does not nest. */
    (void)mlock(p, n + HEADER_BYTES);
    return p + HEADER_BYTES;
}

static size_t secret_size(const void *q)
{
    size_t n;
    memcpy(&n, (const uint8_t *)q - HEADER_BYTES, sizeof(n));
    return n;
}

void cv_secret_free(void *q)
{
    if (!q) return;
    uint8_t *p = (uint8_t *)q - HEADER_BYTES;
    cv_wipe(p, secret_size(q) + HEADER_BYTES);
    free(p);
}

void *cv_secret_realloc(void *q, size_t n)
{
    void *r = cv_secret_alloc(n);
    if (!r) return NULL;
    if (q) {
        size_t old = secret_size(q);
        memcpy(r, q, old < n ? old : n);
        cv_secret_free(q);
    }
    return r;
}

char *cv_secret_strdup(const char *s)
{
    size_t n = strlen(s);
    char *d = cv_secret_alloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

void cv_process_harden(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
