/* The one secret-file reader (src/core/secret_file.c): files others may read
 * or replace, files that are not regular, empty, oversize or NUL-holding
 * content first; then the newline rule and what is accepted. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credvault/buf.h"
#include "credvault/secret_file.h"

#define SECRET "hunter2-correct-horse"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/cv-test-secret-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `n` bytes into dir/name with exactly `mode`; returns the path. */
static const char *file(const char *name, const void *content, size_t n, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

/* Reads `path`; on failure checks that nothing was handed out and that the
 * message names the setting but never quotes the content. */
static cv_err read_err(const char *path, size_t max)
{
    char *out = (char *)"untouched";
    size_t len = 77;
    cv_result r = cv_secret_file_read("CREDVAULT_TEST_FILE", path, max, &out, &len);
    if (cv_ok(r)) {
        cv_secret_free(out);
        return CV_ERR_NONE;
    }
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 77);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "CREDVAULT_TEST_FILE"));
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    return r.err;
}

START_TEST(open_to_others_refused)
{
    static const mode_t loose[] = {0640, 0604, 0644, 0660, 0606, 0620, 0602, 0610, 0601, 0700 | 0040, 0400 | 0004};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        const char *p = file("pin", SECRET "\n", sizeof(SECRET), loose[i]);
        ck_assert_msg(read_err(p, 64) == CV_ERR_INPUT, "mode %04o accepted", (unsigned)loose[i]);
        ck_assert_ptr_nonnull(strstr(cv_error_message(), "0600"));
    }
}
END_TEST

START_TEST(other_owner_refused)
{
    /* root may own a file as someone else; others cannot make one, so this
     * runs where the test is root (containers) and otherwise uses a file
     * that exists and belongs to root */
    if (geteuid() == 0) {
        const char *p = file("pin", SECRET, sizeof(SECRET) - 1, 0600);
        ck_assert_int_eq(chown(p, 65534, 65534), 0);
        ck_assert_int_eq(read_err(p, 64), CV_ERR_INPUT);
        ck_assert_ptr_nonnull(strstr(cv_error_message(), "owned by uid 65534"));
    } else {
        /* /etc/hostname or /etc/passwd: owned by root, and also open to others */
        ck_assert_int_eq(read_err("/etc/passwd", CV_SECRET_FILE_MAX_BYTES * 64), CV_ERR_INPUT);
        ck_assert_ptr_nonnull(strstr(cv_error_message(), "owned by uid 0"));
    }
}
END_TEST

START_TEST(not_regular_refused)
{
    ck_assert_int_eq(read_err(dir, 64), CV_ERR_INPUT); /* a directory */
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(read_err(fifo, 64), CV_ERR_INPUT); /* and it does not hang */
    ck_assert_int_eq(read_err("/dev/null", 64), CV_ERR_INPUT);
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    ck_assert_int_eq(read_err(missing, 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err("", 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(NULL, 64), CV_ERR_INPUT);
}
END_TEST

START_TEST(bad_content_refused)
{
    ck_assert_int_eq(read_err(file("empty", "", 0, 0600), 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(file("newline", "\n", 1, 0600), 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(file("crlf", "\r\n", 2, 0600), 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(file("nul", "12\0" "34\n", 6, 0600), 64), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(file("nul-end", "1234\0", 5, 0600), 64), CV_ERR_INPUT);
    /* one byte over the limit, even with the newline that would be dropped */
    ck_assert_int_eq(read_err(file("big", "123456789", 9, 0600), 8), CV_ERR_INPUT);
    ck_assert_int_eq(read_err(file("big-nl", "12345678\n", 9, 0600), 8), CV_ERR_INPUT);
}
END_TEST

static char *read_ok(const char *path, size_t max, size_t *len)
{
    char *out = NULL;
    cv_result r = cv_secret_file_read("CREDVAULT_TEST_FILE", path, max, &out, len);
    ck_assert_msg(cv_ok(r), "refused: %s", cv_error_message());
    return out;
}

START_TEST(newline_rule)
{
    size_t n;
    char *s = read_ok(file("lf", SECRET "\n", sizeof(SECRET), 0600), 64, &n);
    ck_assert_str_eq(s, SECRET);
    ck_assert_uint_eq(n, strlen(SECRET));
    cv_secret_free(s);
    s = read_ok(file("crlf", SECRET "\r\n", sizeof(SECRET) + 1, 0600), 64, &n);
    ck_assert_str_eq(s, SECRET);
    cv_secret_free(s);
    /* only one newline goes; nothing else is trimmed */
    s = read_ok(file("two", SECRET "\n\n", sizeof(SECRET) + 1, 0600), 64, &n);
    ck_assert_str_eq(s, SECRET "\n");
    cv_secret_free(s);
    s = read_ok(file("cr", SECRET "\r", sizeof(SECRET), 0600), 64, &n);
    ck_assert_str_eq(s, SECRET "\r");
    cv_secret_free(s);
    s = read_ok(file("spaces", " " SECRET " \t", sizeof(SECRET) + 2, 0600), 64, &n);
    ck_assert_str_eq(s, " " SECRET " \t");
    cv_secret_free(s);
    s = read_ok(file("bare", SECRET, sizeof(SECRET) - 1, 0600), 64, NULL);
    ck_assert_str_eq(s, SECRET);
    cv_secret_free(s);
}
END_TEST

START_TEST(accepted)
{
    /* read-only for the owner, exactly the limit, and through a symbolic link
     * (how secret mounts present files) */
    size_t n;
    char *s = read_ok(file("ro", "12345678", 8, 0400), 8, &n);
    ck_assert_str_eq(s, "12345678");
    ck_assert_uint_eq(n, 8);
    cv_secret_free(s);
    s = read_ok(file("limit-nl", "12345678\n", 9, 0600), 9, &n);
    ck_assert_uint_eq(n, 8);
    cv_secret_free(s);
    const char *target = file("target", SECRET "\n", sizeof(SECRET), 0600);
    char link[128];
    snprintf(link, sizeof(link), "%s/link", dir);
    ck_assert_int_eq(symlink(target, link), 0);
    s = read_ok(link, 64, &n);
    ck_assert_str_eq(s, SECRET);
    cv_secret_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_secret_file");
    TCase *tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_to_others_refused);
    tcase_add_test(tc, other_owner_refused);
    tcase_add_test(tc, not_regular_refused);
    tcase_add_test(tc, bad_content_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("reads");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, newline_rule);
    tcase_add_test(tc, accepted);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
