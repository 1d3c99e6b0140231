/* CREDVAULT_LISTEN parsing and the loopback test (src/http/listen.c). */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>

#include "http/internal.h"

START_TEST(bad_addresses_refused)
{
    static const char *const bad[] = {"",          ":8443",        "8443",          "127.0.0.1",     "127.0.0.1:",
                                      "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:84a3", "127.0.0.1:123456",
                                      "localhost:8443",  "::1:8443",     "[::1]8443",     "[::1]",         "[]:1",
                                      "[127.0.0.1]:1",   "1.2.3:80",     "[::1]:",        " 127.0.0.1:1",  "[::1:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cv_http_listen_addr a;
        ck_assert_msg(cv_http_listen_parse(bad[i], &a).err == CV_ERR_INPUT, "accepted '%s'", bad[i]);
    }
    struct cv_http_listen_addr a;
    ck_assert_int_eq(cv_http_listen_parse(NULL, &a).err, CV_ERR_INPUT);
}
END_TEST

START_TEST(addresses_parsed)
{
    struct cv_http_listen_addr a;
    ck_assert(cv_ok(cv_http_listen_parse("127.0.0.1:8443", &a)));
    ck_assert_int_eq(a.family, AF_INET);
    ck_assert_uint_eq(a.port, 8443);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 8443);
    ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in));
    ck_assert(cv_ok(cv_http_listen_parse("[::1]:0", &a)));
    ck_assert_int_eq(a.family, AF_INET6);
    ck_assert_uint_eq(a.port, 0);
    ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in6));
    ck_assert(cv_ok(cv_http_listen_parse("0.0.0.0:65535", &a)));
    ck_assert_uint_eq(a.port, 65535);
}
END_TEST

START_TEST(loopback_only_where_it_is)
{
    static const struct {
        const char *addr;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:1", true},     {"127.255.255.254:1", true}, {"127.1.2.3:1", true},
        {"[::1]:1", true},         {"[::ffff:127.0.0.1]:1", true}, {"0.0.0.0:1", false},
        {"128.0.0.1:1", false},    {"126.255.255.255:1", false}, {"10.0.0.1:1", false},
        {"[::]:1", false},         {"[::2]:1", false},          {"[::ffff:10.0.0.1]:1", false},
        {"[fe80::1]:1", false},    {"[::127.0.0.1]:1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cv_http_listen_addr a;
        ck_assert(cv_ok(cv_http_listen_parse(cases[i].addr, &a)));
        ck_assert_msg(cv_http_listen_is_loopback(&a) == cases[i].loopback, "%s", cases[i].addr);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_listen");
    TCase *tc = tcase_create("listen");
    tcase_add_test(tc, bad_addresses_refused);
    tcase_add_test(tc, addresses_parsed);
    tcase_add_test(tc, loopback_only_where_it_is);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
