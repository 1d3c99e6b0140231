/* Core's JSON allocator (src/core/json_alloc.c): a decrypted credential map
 * lives in secret memory and is wiped when freed. This program compiles its
 * own copy of src/core/secret.c with CV_TEST_HOOKS, whose hook sees every
 * block after its wipe and before reuse; the copy in libcv_core (and so in the
 * credvault binary) is built without it. The copy below defines every symbol
 * of secret.c, so the linker never takes the library's. */
#define CV_TEST_HOOKS 1
#include "core/secret.c"

#include <check.h>
#include <jansson.h>

#include "credvault/json_alloc.h"

#define SECRET "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"
#define MAP "{\"GITHUB_TOKEN\":\"" SECRET "\",\"AWS_SECRET_ACCESS_KEY\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}"

static struct {
    unsigned blocks;       /* blocks freed */
    unsigned dirty;        /* of them, holding a non-zero byte after the wipe */
    const void *watch;     /* a block whose free we wait for */
    int watch_seen;
} seen;

static void on_freed(const void *block, size_t n)
{
    const uint8_t *b = block;
    seen.blocks++;
    for (size_t i = 0; i < n; i++) {
        if (b[i]) {
            seen.dirty++;
            break;
        }
    }
    if (block == seen.watch) seen.watch_seen = 1;
}

static void watch(const void *user_pointer)
{
    memset(&seen, 0, sizeof(seen));
    seen.watch = (const uint8_t *)user_pointer - HEADER_BYTES;
    cv_secret_test_freed = on_freed;
}

START_TEST(installed_by_the_entry_point)
{
    ck_assert(cv_json_alloc_installed());
    cv_json_alloc_install(); /* idempotent */
    ck_assert(cv_json_alloc_installed());
}
END_TEST

/* Fails if a decrypted map's value is freed by another allocator (the map
 * never reaches the hook) or freed without its wipe (a dirty block). */
START_TEST(decrypted_map_wiped_on_free)
{
    json_error_t err;
    json_t *map = json_loads(MAP, JSON_REJECT_DUPLICATES, &err);
    ck_assert_ptr_nonnull(map);
    const char *value = json_string_value(json_object_get(map, "GITHUB_TOKEN"));
    ck_assert_str_eq(value, SECRET);
    watch(value);
    json_decref(map);
    cv_secret_test_freed = NULL;
    ck_assert_msg(seen.watch_seen, "the secret value was not freed through secret memory");
    ck_assert_uint_ge(seen.blocks, 5); /* object, table, keys, two strings */
    ck_assert_uint_eq(seen.dirty, 0);
}
END_TEST

/* A map built in code and the text json_dumps makes of it (what is sealed). */
START_TEST(built_map_and_its_text_wiped)
{
    json_t *map = json_pack("{s:s}", "GITHUB_TOKEN", SECRET);
    ck_assert_ptr_nonnull(map);
    char *text = json_dumps(map, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, SECRET));
    watch(text);
    json_free_t f;
    json_get_alloc_funcs(NULL, &f);
    f(text);
    ck_assert(seen.watch_seen);
    ck_assert_uint_eq(seen.dirty, 0);
    watch(json_string_value(json_object_get(map, "GITHUB_TOKEN")));
    json_decref(map);
    cv_secret_test_freed = NULL;
    ck_assert(seen.watch_seen);
    ck_assert_uint_eq(seen.dirty, 0);
}
END_TEST

/* Large values take the mapped-alone path; they are wiped too. */
START_TEST(large_value_wiped)
{
    size_t n = 100000;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'k', n);
    big[n] = '\0';
    json_t *v = json_string(big);
    free(big);
    ck_assert_ptr_nonnull(v);
    watch(json_string_value(v));
    json_decref(v);
    cv_secret_test_freed = NULL;
    ck_assert(seen.watch_seen);
    ck_assert_uint_eq(seen.dirty, 0);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* first, as every entry point */
    Suite *s = suite_create("core_json_alloc");
    TCase *tc = tcase_create("json_alloc");
    tcase_add_test(tc, installed_by_the_entry_point);
    tcase_add_test(tc, decrypted_map_wiped_on_free);
    tcase_add_test(tc, built_map_and_its_text_wiped);
    tcase_add_test(tc, large_value_wiped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
