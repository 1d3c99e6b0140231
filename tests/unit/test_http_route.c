/* Route tables (src/http/route.c): malformed tables refused at start, then
 * matching by pattern and method, parameters, 405 allow lists, table order. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

static void h(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    (void)res;
}

START_TEST(bad_tables_refused)
{
    static const struct cv_http_route bad[][1] = {
        {{NULL, "/a", h}},        {{"", "/a", h}},          {{"get", "/a", h}},      {{"GET ", "/a", h}},
        {{"GET", NULL, h}},       {{"GET", "", h}},         {{"GET", "a", h}},       {{"GET", "/a//b", h}},
        {{"GET", "/a/", h}},      {{"GET", "/:", h}},       {{"GET", "/:a-b", h}},   {{"GET", "/a%20b", h}},
        {{"GET", "/a b", h}},     {{"GET", "/a?b", h}},     {{"VERYLONGMETHODNAME", "/a", h}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(cv_http_routes_check(bad[i], 1).err == CV_ERR_INTERNAL, "accepted table %zu", i);
    static const struct cv_http_route many[] = {{"GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", h}};
    ck_assert(cv_failed(cv_http_routes_check(many, 1)));
    ck_assert(cv_failed(cv_http_routes_check(NULL, 1)));
    ck_assert(cv_ok(cv_http_routes_check(NULL, 0)));
    static const struct cv_http_route good[] = {
        {"GET", "/", h}, {"GET", "/api/mcp/servers/:serverId/credentials", h}, {"DELETE", "/:a/:b/:c/:d/:e/:f/:g/:h", NULL}};
    ck_assert(cv_ok(cv_http_routes_check(good, 3)));
}
END_TEST

static bool match(const char *pattern, const char *path, struct cv_http_params *params)
{
    static struct cv_http_path p; /* params point into it */
    ck_assert(cv_ok(cv_http_path_parse(path, &p)));
    return cv_http_pattern_match(pattern, &p, params);
}

START_TEST(patterns_match_exactly)
{
    struct cv_http_params pr;
    ck_assert(!match("/api/ping", "/api/ping/", &pr));
    ck_assert(!match("/api/ping", "/api", &pr));
    ck_assert(!match("/api/ping", "/api/ping/x", &pr));
    ck_assert(!match("/api/ping", "/API/ping", &pr));
    ck_assert(!match("/api/:id", "/api/", &pr)); /* a parameter is never empty */
    ck_assert(!match("/api/:id", "/api", &pr));
    ck_assert(!match("/", "/a", &pr));
    ck_assert(!match("/a/b", "/a%2Fb", &pr));
    ck_assert(match("/", "/", &pr));
    ck_assert(match("/api/ping", "/api/ping", &pr));
    ck_assert(match("/api/servers/:serverId/credentials", "/api/servers/a%2Fb/credentials", &pr));
    ck_assert_uint_eq(pr.n, 1);
    ck_assert_uint_eq(pr.name_len[0], strlen("serverId"));
    ck_assert(memcmp(pr.name[0], "serverId", pr.name_len[0]) == 0);
    ck_assert_str_eq(pr.value[0], "a/b");
    ck_assert(match("/t/:tenant/s/:server", "/t/acme/s/s1", &pr));
    ck_assert_uint_eq(pr.n, 2);
    ck_assert_str_eq(pr.value[0], "acme");
    ck_assert_str_eq(pr.value[1], "s1");
}
END_TEST

START_TEST(lookup_by_method)
{
    static const struct cv_http_route rt[] = {
        {"GET", "/api/servers/search", h},
        {"GET", "/api/servers/:id", h},
        {"DELETE", "/api/servers/:id", h},
        {"POST", "/api/servers/:id/validate", h},
    };
    struct cv_http_path p;
    const struct cv_http_route *r;
    struct cv_http_params pr;
    char allow[64];
    ck_assert(cv_ok(cv_http_path_parse("/api/servers/search", &p)));
    ck_assert_int_eq(cv_http_route_find(rt, 4, "GET", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_FOUND);
    ck_assert_ptr_eq(r, &rt[0]); /* table order wins */
    ck_assert_uint_eq(pr.n, 0);
    ck_assert_int_eq(cv_http_route_find(rt, 4, "DELETE", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_FOUND);
    ck_assert_ptr_eq(r, &rt[2]);
    ck_assert_str_eq(pr.value[0], "search");
    ck_assert(cv_ok(cv_http_path_parse("/api/servers/s1", &p)));
    ck_assert_int_eq(cv_http_route_find(rt, 4, "HEAD", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_FOUND);
    ck_assert_ptr_eq(r, &rt[1]);
    ck_assert_int_eq(cv_http_route_find(rt, 4, "PUT", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_NO_METHOD);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(allow, "GET, HEAD, DELETE");
    ck_assert_int_eq(cv_http_route_find(rt, 4, "post", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_NO_METHOD);
    ck_assert(cv_ok(cv_http_path_parse("/api/servers/s1/validate", &p)));
    ck_assert_int_eq(cv_http_route_find(rt, 4, "GET", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_NO_METHOD);
    ck_assert_str_eq(allow, "POST");
    ck_assert(cv_ok(cv_http_path_parse("/api/other", &p)));
    ck_assert_int_eq(cv_http_route_find(rt, 4, "GET", &p, &r, &pr, allow, sizeof(allow)), CV_HTTP_ROUTE_NO_PATH);
    /* a too-small allow buffer truncates at a whole method, never mid-name */
    ck_assert(cv_ok(cv_http_path_parse("/api/servers/s1", &p)));
    char tiny[10];
    ck_assert_int_eq(cv_http_route_find(rt, 4, "PUT", &p, &r, &pr, tiny, sizeof(tiny)), CV_HTTP_ROUTE_NO_METHOD);
    ck_assert_str_eq(tiny, "GET, HEAD");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, bad_tables_refused);
    tcase_add_test(tc, patterns_match_exactly);
    tcase_add_test(tc, lookup_by_method);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
