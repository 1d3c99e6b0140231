/* Secret memory, wiping and constant-time comparison (src/core/secret.c):
 * refusals first, then what the kernel says about the pages secrets live in. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
