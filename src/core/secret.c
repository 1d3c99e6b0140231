/* Secret memory: a heap of its own. Every secret block lies in page-aligned
 * regions mapped for secrets only, each locked (mlock, best effort: the limit
 * is RLIMIT_MEMLOCK) and excluded from core dumps (MADV_DONTDUMP), so no
 * secret shares a page with ordinary data. Blocks are wiped whole on free.
 * Small blocks come from power-of-two classes carved from regions that are
 * kept for reuse; a large block gets its own mapping, unmapped on free.
 * Every mapping is listed, so that a child of fork(2), which inherits the
 * pages but not their locks, can lock them again.
 * AddressSanitizer builds take blocks from malloc instead, so that ASan and
 * LeakSanitizer see every one (overflows, use after free, leaks). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "credvault/buf.h"

#define HEADER_BYTES 16 /* keeps 16-byte alignment */
#define HEADER_MAGIC 0x63767365u /* "cvse": a block of this heap */
#define CLASS_MIN_SHIFT 5       /* 32-byte blocks, header included */
#define CLASS_MAX_SHIFT 16      /* 64 KiB blocks; larger ones are mapped alone */
#define CLASSES (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)
#define CLASS_LARGE UINT32_MAX
#define REGION_BYTES ((size_t)256 * 1024)
#define CLASS_MALLOC (UINT32_MAX - 1) /* sanitizer builds only */

#if defined(__SANITIZE_ADDRESS__)
#define SECRET_FROM_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECRET_FROM_MALLOC 1
#endif
#endif
#ifndef SECRET_FROM_MALLOC
#define SECRET_FROM_MALLOC 0
#endif

struct header {
    size_t n;      /* bytes asked for */
    uint32_t cls;  /* size class, or CLASS_LARGE */
    uint32_t magic;
};
_Static_assert(sizeof(struct header) <= HEADER_BYTES, "header fits");

static struct {
    pthread_mutex_t lock;
    void *free_list[CLASSES]; /* wiped blocks; the first word links the next */
    uint8_t *cur, *end;       /* the unused tail of the newest region */
} heap = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Every live mapping of this heap (addresses only, no secret): fork(2)
 * does not carry memory locks into the child, so it must lock them again. */
static struct {
    struct span { void *p; size_t len; } *v;
    size_t n, cap;
} spans; /* under heap.lock */

static atomic_int lock_failed;

#ifdef CV_TEST_HOOKS
/* Tests only, never in a library or the binary: sees each block after its
 * wipe and before it is reused or unmapped. */
void (*cv_secret_test_freed)(const void *block, size_t n);
#endif

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

int cv_secret_memory_locked(void) { return !SECRET_FROM_MALLOC && !atomic_load(&lock_failed); }

int cv_secret_memory_isolated(void) { return !SECRET_FROM_MALLOC; }

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return n > SIZE_MAX - page ? 0 : (n + page - 1) / page * page;
}

static int spans_add(void *p, size_t len)
{
    if (spans.n == spans.cap) {
        size_t cap = spans.cap ? spans.cap * 2 : 16;
        struct span *v = realloc(spans.v, cap * sizeof(*v));
        if (!v) return -1;
        spans.v = v;
        spans.cap = cap;
    }
    spans.v[spans.n++] = (struct span){p, len};
    return 0;
}

static void spans_remove(const void *p)
{
    for (size_t i = 0; i < spans.n; i++)
        if (spans.v[i].p == p) {
            spans.v[i] = spans.v[--spans.n];
            return;
        }
}

/* A fresh region: locked, out of core dumps and listed. Called under heap.lock. */
static void *map_secret(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (spans_add(p, len) != 0) {
        munmap(p, len);
        return NULL;
    }
    if (mlock(p, len) != 0) atomic_store(&lock_failed, 1);
    (void)madvise(p, len, MADV_DONTDUMP); /* best effort: kernels before 3.4 lack it */
    return p;
}

void cv_secret_memory_relock(void)
{
    pthread_mutex_lock(&heap.lock);
    int failed = 0;
    for (size_t i = 0; i < spans.n; i++)
        if (mlock(spans.v[i].p, spans.v[i].len) != 0) failed = 1;
    /* the state now describes this process's locks, not the parent's */
    atomic_store(&lock_failed, failed);
    pthread_mutex_unlock(&heap.lock);
}

static uint32_t class_of(size_t total)
{
    uint32_t c = 0;
    while (((size_t)1 << (CLASS_MIN_SHIFT + c)) < total) c++;
    return c;
}

static size_t class_bytes(uint32_t c) { return (size_t)1 << (CLASS_MIN_SHIFT + c); }

/* Before a new region is mapped, the old one's tail goes to the free lists
 * in the largest blocks that fit (offsets stay multiples of 32). */
static void keep_tail(void)
{
    while (heap.cur && (size_t)(heap.end - heap.cur) >= class_bytes(0)) {
        uint32_t c = CLASSES - 1;
        while (class_bytes(c) > (size_t)(heap.end - heap.cur)) c--;
        uint8_t *b = heap.cur;
        heap.cur += class_bytes(c);
        memcpy(b, &heap.free_list[c], sizeof(heap.free_list[c]));
        heap.free_list[c] = b;
    }
}

static uint8_t *small_take(uint32_t c)
{
    size_t size = class_bytes(c);
    uint8_t *b = heap.free_list[c];
    if (b) {
        memcpy(&heap.free_list[c], b, sizeof(heap.free_list[c]));
        memset(b, 0, sizeof(heap.free_list[c]));
        return b;
    }
    if (!heap.cur || (size_t)(heap.end - heap.cur) < size) {
        keep_tail();
        uint8_t *r = map_secret(REGION_BYTES);
        if (!r) return NULL;
        heap.cur = r;
        heap.end = r + REGION_BYTES;
    }
    b = heap.cur;
    heap.cur += size;
    return b;
}

void *cv_secret_alloc(size_t n)
{
    if (n > SIZE_MAX - HEADER_BYTES) return NULL;
    size_t total = n + HEADER_BYTES;
    uint8_t *b;
    struct header h = {.n = n, .magic = HEADER_MAGIC};
    if (SECRET_FROM_MALLOC) {
        h.cls = CLASS_MALLOC;
        b = calloc(1, total);
    } else if (total <= class_bytes(CLASSES - 1)) {
        h.cls = class_of(total);
        pthread_mutex_lock(&heap.lock);
        b = small_take(h.cls);
        pthread_mutex_unlock(&heap.lock);
    } else {
        h.cls = CLASS_LARGE;
        size_t len = page_round(total);
        pthread_mutex_lock(&heap.lock);
        b = len ? map_secret(len) : NULL;
        pthread_mutex_unlock(&heap.lock);
    }
    if (!b) return NULL;
    memcpy(b, &h, sizeof(h));
    return b + HEADER_BYTES;
}

static struct header header_of(const void *q)
{
    struct header h;
    memcpy(&h, (const uint8_t *)q - HEADER_BYTES, sizeof(h));
    /* a pointer from another allocator would be freed into this heap: stop */
    if (h.magic != HEADER_MAGIC || (h.cls != CLASS_LARGE && h.cls != CLASS_MALLOC && h.cls >= CLASSES)) abort();
    return h;
}

void cv_secret_free(void *q)
{
    if (!q) return;
    uint8_t *b = (uint8_t *)q - HEADER_BYTES;
    struct header h = header_of(q);
    size_t size = h.cls == CLASS_MALLOC  ? h.n + HEADER_BYTES
                  : h.cls == CLASS_LARGE ? page_round(h.n + HEADER_BYTES)
                                         : class_bytes(h.cls);
    cv_wipe(b, size);
#ifdef CV_TEST_HOOKS
    if (cv_secret_test_freed) cv_secret_test_freed(b, size);
#endif
    if (h.cls == CLASS_MALLOC) {
        free(b);
        return;
    }
    if (h.cls == CLASS_LARGE) {
        pthread_mutex_lock(&heap.lock);
        spans_remove(b);
        munmap(b, size); /* also unlocks; under the lock, so a relock never meets an unmapped span */
        pthread_mutex_unlock(&heap.lock);
        return;
    }
    pthread_mutex_lock(&heap.lock);
    memcpy(b, &heap.free_list[h.cls], sizeof(heap.free_list[h.cls]));
    heap.free_list[h.cls] = b;
    pthread_mutex_unlock(&heap.lock);
}

void *cv_secret_realloc(void *q, size_t n)
{
    void *r = cv_secret_alloc(n);
    if (!r) return NULL;
    if (q) {
        size_t old = header_of(q).n;
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
