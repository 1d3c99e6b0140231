/* Bounded buffers, size arithmetic and hex (src/core/buf.c): limits first. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"

START_TEST(append_over_max_fails_unchanged)
{
    struct cv_buf b;
    cv_buf_init(&b, 8);
    ck_assert(cv_ok(cv_buf_append(&b, "abcdef", 6)));
    ck_assert_int_eq(cv_buf_append(&b, "xyz", 3).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_buf_append_u32be(&b, 1).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_buf_append_str(&b, "123").err, CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 6);
    ck_assert_mem_eq(b.data, "abcdef", 6);
    ck_assert(cv_ok(cv_buf_append(&b, "gh", 2))); /* exactly the maximum */
    ck_assert_uint_eq(b.len, 8);
    ck_assert_int_eq(cv_buf_append_u8(&b, 'i').err, CV_ERR_TOO_LARGE);
    ck_assert_mem_eq(b.data, "abcdefgh", 8);
    ck_assert(cv_ok(cv_buf_terminate(&b))); /* the terminator does not count */
    ck_assert_str_eq((const char *)b.data, "abcdefgh");
    ck_assert_uint_eq(b.len, 8);
    cv_buf_free(&b);
}
END_TEST

START_TEST(append_overflowing_size_fails_unchanged)
{
    struct cv_buf b;
    cv_buf_init(&b, 64);
    ck_assert(cv_ok(cv_buf_append(&b, "ab", 2)));
    ck_assert_int_eq(cv_buf_reserve(&b, SIZE_MAX).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_buf_reserve(&b, SIZE_MAX - 1).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_buf_append(&b, "x", SIZE_MAX).err, CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_mem_eq(b.data, "ab", 2);
    cv_buf_free(&b);
}
END_TEST

START_TEST(zero_max_holds_nothing)
{
    struct cv_buf b;
    cv_buf_init(&b, 0);
    ck_assert_int_eq(cv_buf_append_u8(&b, 1).err, CV_ERR_TOO_LARGE);
    ck_assert(cv_ok(cv_buf_append(&b, NULL, 0)));
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    ck_assert_str_eq((const char *)b.data, "");
    cv_buf_free(&b);
}
END_TEST

START_TEST(unbounded_max_does_not_wrap)
{
    /* SIZE_MAX as the maximum once made the capacity clamp wrap to 0 */
    struct cv_buf b;
    cv_buf_init(&b, SIZE_MAX);
    for (int i = 0; i < 100; i++) ck_assert(cv_ok(cv_buf_append(&b, "0123456789", 10)));
    ck_assert_uint_eq(b.len, 1000);
    ck_assert(b.cap > b.len);
    ck_assert_mem_eq(b.data + 990, "0123456789", 10);
    cv_buf_free(&b);
}
END_TEST

START_TEST(read_past_end_fails_without_moving)
{
    struct cv_buf b;
    uint8_t out[8] = {0};
    uint32_t v = 7;
    cv_buf_init(&b, 64);
    ck_assert(cv_ok(cv_buf_append(&b, "\x00\x00\x01\x02\x03\x04\x05", 7)));
    ck_assert_int_eq(cv_buf_read(&b, out, 8).err, CV_ERR_INPUT);
    ck_assert_uint_eq(b.pos, 0);
    ck_assert(cv_ok(cv_buf_read_u32be(&b, &v)));
    ck_assert_uint_eq(v, 0x102);
    ck_assert_uint_eq(b.pos, 4);
    ck_assert_uint_eq(cv_buf_remaining(&b), 3);
    v = 7;
    ck_assert_int_eq(cv_buf_read_u32be(&b, &v).err, CV_ERR_INPUT); /* 3 left */
    ck_assert_uint_eq(v, 7);
    ck_assert_uint_eq(b.pos, 4);
    ck_assert_int_eq(cv_buf_read(&b, out, SIZE_MAX).err, CV_ERR_INPUT);
    ck_assert_uint_eq(b.pos, 4);
    ck_assert(cv_ok(cv_buf_read(&b, out, 3)));
    ck_assert_mem_eq(out, "\x03\x04\x05", 3);
    ck_assert_uint_eq(cv_buf_remaining(&b), 0);
    ck_assert(cv_ok(cv_buf_read(&b, out, 0)));
    ck_assert_int_eq(cv_buf_read(&b, out, 1).err, CV_ERR_INPUT);
    cv_buf_free(&b);
}
END_TEST

START_TEST(read_empty_buffer_fails)
{
    struct cv_buf b = CV_BUF_EMPTY;
    uint32_t v;
    ck_assert_int_eq(cv_buf_read_u32be(&b, &v).err, CV_ERR_INPUT);
    ck_assert(cv_ok(cv_buf_read(&b, NULL, 0)));
}
END_TEST

START_TEST(size_arithmetic_refuses_overflow)
{
    size_t out = 123;
    ck_assert_int_eq(cv_size_add(SIZE_MAX, 1, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_size_add(1, SIZE_MAX, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_size_add(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_size_mul(SIZE_MAX / 2 + 1, 2, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_size_mul(2, SIZE_MAX / 2 + 1, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_size_mul((size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4), &out).err,
                     CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(out, 123); /* untouched on failure */
    ck_assert(cv_ok(cv_size_add(SIZE_MAX - 1, 1, &out)));
    ck_assert_uint_eq(out, SIZE_MAX);
    ck_assert(cv_ok(cv_size_mul(SIZE_MAX, 1, &out)));
    ck_assert_uint_eq(out, SIZE_MAX);
    ck_assert(cv_ok(cv_size_mul(0, SIZE_MAX, &out)));
    ck_assert_uint_eq(out, 0);
    ck_assert(cv_ok(cv_size_mul(SIZE_MAX, 0, &out)));
    ck_assert_uint_eq(out, 0);
}
END_TEST

START_TEST(hex_decode_strict)
{
    uint8_t out[4];
    static const char *const bad[] = {"DEADBEEF", "deadBEEF", "deadbeeg", "deadbee ", " deadbee", "0xdeadbe",
                                      "dead-bee", "deadbe\xc3\xa9", "deadbe\0f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(cv_hex_decode(bad[i], 8, out, 4).err, CV_ERR_INPUT);
    /* lengths: odd, short, long, and a length whose double overflows */
    ck_assert_int_eq(cv_hex_decode("deadbee", 7, out, 4).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_hex_decode("deadbeef", 8, out, 3).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_hex_decode("deadbe", 6, out, 4).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_hex_decode("deadbeef00", 10, out, 4).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_hex_decode("", 0, out, SIZE_MAX / 2 + 1).err, CV_ERR_INPUT);
    ck_assert(cv_ok(cv_hex_decode("deadbeef", 8, out, 4)));
    ck_assert_mem_eq(out, "\xde\xad\xbe\xef", 4);
    ck_assert(cv_ok(cv_hex_decode("", 0, out, 0)));
}
END_TEST

START_TEST(hex_round_trip_every_byte)
{
    uint8_t in[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++) in[i] = (uint8_t)i;
    cv_hex_encode(in, sizeof(in), hex);
    ck_assert_uint_eq(strlen(hex), 512);
    ck_assert(strncmp(hex, "000102030405060708090a0b0c0d0e0f10", 34) == 0);
    ck_assert(strcmp(hex + 500, "fafbfcfdfeff") == 0);
    for (size_t i = 0; i < 512; i++) ck_assert(strchr("0123456789abcdef", hex[i]) != NULL);
    ck_assert(cv_ok(cv_hex_decode(hex, 512, back, sizeof(back))));
    ck_assert_mem_eq(in, back, sizeof(in));
    char empty[1] = {'x'};
    cv_hex_encode(in, 0, empty);
    ck_assert_int_eq(empty[0], '\0');
}
END_TEST

START_TEST(reset_wipes_and_keeps_allocation)
{
    struct cv_buf b;
    cv_buf_init(&b, 64);
    ck_assert(cv_ok(cv_buf_append(&b, "secret", 6)));
    uint8_t *data = b.data;
    uint32_t v;
    ck_assert(cv_ok(cv_buf_read(&b, &v, 4)));
    cv_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.pos, 0);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_mem_eq(b.data, "\0\0\0\0\0\0", 6);
    cv_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    cv_buf_free(&b); /* twice is harmless */
}
END_TEST

START_TEST(secret_buffer_grows_and_keeps_content)
{
    struct cv_buf b;
    cv_buf_init_secret(&b, 1 << 16);
    ck_assert_int_eq(b.secret, 1);
    for (int i = 0; i < 1000; i++) ck_assert(cv_ok(cv_buf_append(&b, "0123456789", 10)));
    ck_assert_uint_eq(b.len, 10000);
    ck_assert_mem_eq(b.data + 5000, "0123456789", 10);
    cv_buf_free(&b);
    ck_assert_int_eq(b.secret, 1);
}
END_TEST

START_TEST(growth_preserves_content_and_cursor)
{
    struct cv_buf b;
    cv_buf_init(&b, 1 << 20);
    ck_assert(cv_ok(cv_buf_append(&b, "abcd", 4)));
    char c;
    ck_assert(cv_ok(cv_buf_read(&b, &c, 1)));
    for (int i = 0; i < 10000; i++) ck_assert(cv_ok(cv_buf_append_u8(&b, (uint8_t)i)));
    ck_assert_uint_eq(b.pos, 1);
    ck_assert_mem_eq(b.data, "abcd", 4);
    ck_assert_uint_eq(b.data[4 + 9999], (uint8_t)9999);
    ck_assert(b.cap <= b.max + 1);
    cv_buf_free(&b);
}
END_TEST

START_TEST(u32be_layout)
{
    struct cv_buf b;
    cv_buf_init(&b, 64);
    ck_assert(cv_ok(cv_buf_append_u32be(&b, 0x01020304)));
    ck_assert(cv_ok(cv_buf_append_u32be(&b, 0xffffffffu)));
    ck_assert_mem_eq(b.data, "\x01\x02\x03\x04\xff\xff\xff\xff", 8);
    uint32_t v;
    ck_assert(cv_ok(cv_buf_read_u32be(&b, &v)));
    ck_assert_uint_eq(v, 0x01020304);
    ck_assert(cv_ok(cv_buf_read_u32be(&b, &v)));
    ck_assert_uint_eq(v, 0xffffffffu);
    cv_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_buf");
    TCase *neg = tcase_create("limits");
    tcase_add_test(neg, append_over_max_fails_unchanged);
    tcase_add_test(neg, append_overflowing_size_fails_unchanged);
    tcase_add_test(neg, zero_max_holds_nothing);
    tcase_add_test(neg, unbounded_max_does_not_wrap);
    tcase_add_test(neg, read_past_end_fails_without_moving);
    tcase_add_test(neg, read_empty_buffer_fails);
    tcase_add_test(neg, size_arithmetic_refuses_overflow);
    tcase_add_test(neg, hex_decode_strict);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_add_test(pos, hex_round_trip_every_byte);
    tcase_add_test(pos, reset_wipes_and_keeps_allocation);
    tcase_add_test(pos, secret_buffer_grows_and_keeps_content);
    tcase_add_test(pos, growth_preserves_content_and_cursor);
    tcase_add_test(pos, u32be_layout);
    suite_add_tcase(s, pos);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
