/* Secret memory, wiping and constant-time comparison (src/core/secret.c):
 * refusals first, then what the kernel says about the pages secrets live in. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "credvault/buf.h"

START_TEST(huge_allocation_refused)
{
    ck_assert_ptr_null(cv_secret_alloc(SIZE_MAX));
    ck_assert_ptr_null(cv_secret_alloc(SIZE_MAX - 8));
    cv_secret_free(NULL);
    cv_wipe(NULL, 10);
}
END_TEST

START_TEST(memeq)
{
    ck_assert_int_eq(cv_memeq("abcd", "abcd", 4), 1);
    ck_assert_int_eq(cv_memeq("abcd", "abce", 4), 0);
    ck_assert_int_eq(cv_memeq("xbcd", "abcd", 4), 0);
    ck_assert_int_eq(cv_memeq("\x80", "\x00", 1), 0);
    ck_assert_int_eq(cv_memeq("a", "b", 0), 1);
}
END_TEST

START_TEST(wipe)
{
    uint8_t p[16];
    memset(p, 0xaa, sizeof(p));
    cv_wipe(p + 4, 8);
    ck_assert_uint_eq(p[3], 0xaa);
    for (int i = 4; i < 12; i++) ck_assert_uint_eq(p[i], 0);
    ck_assert_uint_eq(p[12], 0xaa);
}
END_TEST

START_TEST(alloc_realloc_strdup)
{
    char *s = cv_secret_strdup("pin-1234");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "pin-1234");
    ck_assert_uint_eq((uintptr_t)s % 16, 0);
    char *t = cv_secret_realloc(s, 4096);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "pin-1234");
    char *u = cv_secret_realloc(t, 4); /* shrinking keeps the first bytes */
    ck_assert_ptr_nonnull(u);
    ck_assert_mem_eq(u, "pin-", 4);
    cv_secret_free(u);
    void *z = cv_secret_realloc(NULL, 32);
    ck_assert_ptr_nonnull(z);
    cv_secret_free(z);
    void *e = cv_secret_alloc(0);
    ck_assert_ptr_nonnull(e);
    cv_secret_free(e);
}
END_TEST

static int all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

/* The VmFlags line of the mapping that holds `p`, from /proc/self/smaps. */
static int vmflags_of(const void *p, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int inside = 0, found = 0;
    uintptr_t a = (uintptr_t)p;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) inside = a >= lo && a < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            size_t k = strlen(line + 8);
            if (k > n - 1) k = n - 1;
            memcpy(out, line + 8, k);
            out[k] = '\0';
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Every size class and the large path: the block's pages are out of core
 * dumps ("dd") and, when the lock limit allowed it, locked ("lo"). */
START_TEST(blocks_in_dump_excluded_pages)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 5000, 40000, 65520, 65521, 70000, 1 << 20};
    long page = sysconf(_SC_PAGESIZE);
#if defined(__SANITIZE_ADDRESS__)
    /* the sanitizer build takes blocks from malloc, by design: say so, check nothing else */
    ck_assert_int_eq(cv_secret_memory_isolated(), 0);
    return;
#endif
    ck_assert_int_eq(cv_secret_memory_isolated(), 1);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *b = cv_secret_alloc(sizes[i]);
        ck_assert_ptr_nonnull(b);
        char flags[512];
        ck_assert_msg(vmflags_of(b, flags, sizeof(flags)), "no mapping holds the block of %zu bytes", sizes[i]);
        ck_assert_msg(strstr(flags, " dd") != NULL, "block of %zu bytes may be dumped: %s", sizes[i], flags);
        if (cv_secret_memory_locked())
            ck_assert_msg(strstr(flags, " lo") != NULL, "block of %zu bytes is not locked: %s", sizes[i], flags);
        /* the block does not share its pages with the ordinary heap */
        char *heap = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(heap);
        char hflags[512];
        ck_assert(vmflags_of(heap, hflags, sizeof(hflags)));
        ck_assert_msg(strstr(hflags, " dd") == NULL, "malloc memory is excluded too: the test proves nothing");
        free(heap);
        if (sizes[i] > 65520) ck_assert_uint_eq(((uintptr_t)b - 16) % (uintptr_t)page, 0);
        cv_secret_free(b);
    }
}
END_TEST

START_TEST(blocks_zeroed_aligned_and_reused_wiped)
{
    for (size_t n = 0; n < 70000; n = n * 2 + 1) {
        uint8_t *b = cv_secret_alloc(n);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq((uintptr_t)b % 16, 0);
        ck_assert(all_bytes(b, n, 0));
        memset(b, 0xa5, n);
        cv_secret_free(b);
        /* the same class hands the block back: wiped, not with the old bytes */
        uint8_t *c = cv_secret_alloc(n);
        ck_assert_ptr_nonnull(c);
        ck_assert(all_bytes(c, n, 0));
        cv_secret_free(c);
    }
}
END_TEST

/* Enough blocks of mixed classes to fill several regions, so that each
 * region's tail is handed out too: every block zeroed, none overlapping. */
START_TEST(regions_roll_over_without_overlap)
{
    enum { N = 400 };
    static uint8_t *b[N];
    static size_t len[N];
    for (int i = 0; i < N; i++) {
        len[i] = i % 5 == 0 ? 40000 : (size_t)(i * 37 % 3000);
        b[i] = cv_secret_alloc(len[i]);
        ck_assert_ptr_nonnull(b[i]);
        ck_assert(all_bytes(b[i], len[i], 0));
        memset(b[i], i & 0xff, len[i]);
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(all_bytes(b[i], len[i], (uint8_t)(i & 0xff)), "block %d was overwritten", i);
    for (int i = 0; i < N; i++) cv_secret_free(b[i]);
}
END_TEST

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    uint8_t *held[64] = {0};
    size_t len[64] = {0};
    for (int i = 0; i < 20000; i++) {
        unsigned k = (unsigned)rand_r(&seed) % 64;
        if (held[k]) {
            for (size_t j = 0; j < len[k]; j++)
                if (held[k][j] != (uint8_t)k) return (void *)1; /* another thread wrote into this block */
            cv_secret_free(held[k]);
            held[k] = NULL;
        } else {
            len[k] = (size_t)rand_r(&seed) % (rand_r(&seed) % 50 == 0 ? 100000 : 600);
            held[k] = cv_secret_alloc(len[k]);
            if (!held[k]) return (void *)1;
            memset(held[k], (int)k, len[k]);
        }
    }
    for (int k = 0; k < 64; k++) cv_secret_free(held[k]);
    return NULL;
}

START_TEST(threads_share_the_heap)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        ck_assert_ptr_null(r);
    }
}
END_TEST

/* VmLck of this process, in kB, from /proc/self/status. */
static long vmlck_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static int locked_mapping(const void *p)
{
    char flags[512];
    return vmflags_of(p, flags, sizeof(flags)) && strstr(flags, " lo") != NULL;
}

/* Child's exit codes, so that the parent names what failed. */
enum {
    FORK_KEPT_LOCK = 10, /* the fork kept the lock: the test would prove nothing */
    NOT_RELOCKED,        /* a region is still unlocked after the relock */
    STATE_WRONG,         /* cv_secret_memory_locked() disagrees with the pages */
    VMLCK_WRONG,         /* VmLck did not grow by the regions */
    CONTENT_CHANGED,     /* the secret bytes did not survive */
    LIMIT_NOT_SET,       /* the test could not set up its limits */
    LOCKED_PAST_LIMIT,   /* a lock held with no allowance: the refusal path went untested */
};

static const char *child_failure(int code)
{
    switch (code) {
    case FORK_KEPT_LOCK: return "the child inherited the lock: the test proves nothing";
    case NOT_RELOCKED: return "an inherited region is not locked after cv_secret_memory_relock()";
    case STATE_WRONG: return "cv_secret_memory_locked() does not say what the pages are";
    case VMLCK_WRONG: return "VmLck does not cover the relocked regions";
    case CONTENT_CHANGED: return "the secret bytes changed";
    case LIMIT_NOT_SET: return "RLIMIT_MEMLOCK or the user could not be set up";
    case LOCKED_PAST_LIMIT: return "a region is locked with RLIMIT_MEMLOCK 0 and no privilege";
    default: return "the child died";
    }
}

static int run_child(int (*fn)(uint8_t *, uint8_t *), uint8_t *small, uint8_t *large)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(fn(small, large));
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define SMALL_BYTES 100
#define LARGE_BYTES 100000 /* above the largest class: a mapping of its own */

static int relock_in_child(uint8_t *small, uint8_t *large)
{
    if (locked_mapping(small) || locked_mapping(large)) return FORK_KEPT_LOCK;
    long before = vmlck_kb();
    cv_secret_memory_relock();
    if (!locked_mapping(small) || !locked_mapping(large)) return NOT_RELOCKED;
    if (!cv_secret_memory_locked()) return STATE_WRONG;
    if (before < 0 || vmlck_kb() - before < (256 + LARGE_BYTES / 1024)) return VMLCK_WRONG;
    if (!all_bytes(small, SMALL_BYTES, 0x5a) || !all_bytes(large, LARGE_BYTES, 0xa5)) return CONTENT_CHANGED;
    return 0;
}

/* Without the lock privilege and with no lock allowance the relock fails and
 * says so; with the allowance raised again a second relock succeeds. */
static int relock_refused_in_child(uint8_t *small, uint8_t *large)
{
    if (geteuid() == 0 && setuid(65534) != 0) return LIMIT_NOT_SET; /* root locks past any limit */
    struct rlimit lim;
    if (getrlimit(RLIMIT_MEMLOCK, &lim) != 0) return LIMIT_NOT_SET;
    struct rlimit none = {0, lim.rlim_max};
    if (setrlimit(RLIMIT_MEMLOCK, &none) != 0) return LIMIT_NOT_SET;
    cv_secret_memory_relock();
    if (locked_mapping(small) || locked_mapping(large)) return LOCKED_PAST_LIMIT;
    if (cv_secret_memory_locked()) return STATE_WRONG;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < (rlim_t)(512 * 1024)) return 0; /* cannot raise it again */
    struct rlimit back = {lim.rlim_max, lim.rlim_max};
    if (setrlimit(RLIMIT_MEMLOCK, &back) != 0) return LIMIT_NOT_SET;
    cv_secret_memory_relock();
    if (!locked_mapping(small) || !locked_mapping(large)) return NOT_RELOCKED;
    if (!cv_secret_memory_locked()) return STATE_WRONG;
    if (!all_bytes(small, SMALL_BYTES, 0x5a) || !all_bytes(large, LARGE_BYTES, 0xa5)) return CONTENT_CHANGED;
    return 0;
}

/* fork(2) keeps the pages and their dump exclusion but drops their locks:
 * the relock locks the inherited regions (a class region and a large
 * mapping) again in the child, and the reported state follows the pages. */
START_TEST(child_relocks_inherited_regions)
{
#if defined(__SANITIZE_ADDRESS__)
    cv_secret_memory_relock(); /* malloc'd blocks: nothing to lock, and it says so */
    ck_assert_int_eq(cv_secret_memory_locked(), 0);
    return;
#endif
    /* enough allowance for one class region and the large block */
    struct rlimit lim;
    ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
    }
    uint8_t *small = cv_secret_alloc(SMALL_BYTES), *large = cv_secret_alloc(LARGE_BYTES);
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(large);
    memset(small, 0x5a, SMALL_BYTES);
    memset(large, 0xa5, LARGE_BYTES);
    if (cv_secret_memory_locked()) {
        ck_assert(locked_mapping(small) && locked_mapping(large));
        int rc = run_child(relock_in_child, small, large);
        ck_assert_msg(rc == 0, "child: %s (%d)", child_failure(rc), rc);
    } else {
        /* the hard limit is below one region: the child must say "not locked" too */
        ck_assert_msg(geteuid() != 0, "root could not lock: mlock is broken here");
    }
    int rc = run_child(relock_refused_in_child, small, large);
    ck_assert_msg(rc == 0, "child without allowance: %s (%d)", child_failure(rc), rc);
    /* the parent's locks were never touched */
    ck_assert_int_eq(locked_mapping(small) && locked_mapping(large), cv_secret_memory_locked());
    cv_secret_free(large);
    cv_secret_free(small);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_secret");
    TCase *tc = tcase_create("secret");
    tcase_add_test(tc, huge_allocation_refused);
    tcase_add_test(tc, memeq);
    tcase_add_test(tc, wipe);
    tcase_add_test(tc, alloc_realloc_strdup);
    tcase_add_test(tc, blocks_in_dump_excluded_pages);
    tcase_add_test(tc, blocks_zeroed_aligned_and_reused_wiped);
    tcase_add_test(tc, regions_roll_over_without_overlap);
    tcase_add_test(tc, threads_share_the_heap);
    tcase_add_test(tc, child_relocks_inherited_regions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
