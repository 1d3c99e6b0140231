/* Response building (src/http/response.c): misuse first (it must end as a
 * 500, never half a response), then the envelopes and what they may reveal. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "credvault/json_alloc.h"

static json_t *body_json(const struct cv_http_response *res)
{
    ck_assert_ptr_nonnull(res->body);
    json_error_t e;
    json_t *j = json_loadb(res->body->data, res->body->len, JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(misuse_marks_broken)
{
    static const char *const bad[][2] = {{"X-A", "a\r\nSet-Cookie: x"}, {"X-A", "a\nb"},       {"X A", "v"},
                                         {"X:A", "v"},                  {"", "v"},             {"Content-Type", "x"},
                                         {"content-length", "1"},      {"Connection", "close"}, {"X-Request-Id", "1"},
                                         {"Transfer-Encoding", "x"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cv_http_response res = {0};
        cv_http_header_add(&res, bad[i][0], bad[i][1]);
        ck_assert_msg(res.broken, "accepted header %s", bad[i][0]);
        cv_http_response_clear(&res);
    }
    struct cv_http_response res = {0};
    cv_http_header_add(&res, "X-A", NULL);
    ck_assert(res.broken);
    cv_http_response_clear(&res);
    for (int i = 0; i < CV_HTTP_MAX_RESPONSE_HEADERS; i++) cv_http_header_add(&res, "X-Many", "v");
    ck_assert(!res.broken);
    cv_http_header_add(&res, "X-Many", "v");
    ck_assert(res.broken);
    cv_http_response_clear(&res);
    cv_http_reply(&res, 99, json_string("x")); /* data is still consumed */
    ck_assert(res.broken);
    cv_http_response_clear(&res);
    cv_http_reply(&res, 600, NULL);
    ck_assert(res.broken);
    cv_http_response_clear(&res);
    cv_http_reply_text(&res, 200, "text/plain\r\nX: y", "a", 1);
    ck_assert(res.broken);
    cv_http_response_clear(&res);
    ck_assert(!res.broken);
}
END_TEST

START_TEST(error_envelope_hides_internal_detail)
{
    static const cv_err hidden[] = {CV_ERR_INTERNAL, CV_ERR_MEMORY, CV_ERR_CRYPTO};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        struct cv_http_response res = {0};
        cv_http_reply_error(&res, cv_fail_code(hidden[i], "unwrap_failed", "tenant key v3 of acme: CKR_GENERAL_ERROR"));
        ck_assert_uint_eq(res.status, 500);
        json_t *j = body_json(&res);
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        ck_assert_str_eq(code, hidden[i] == CV_ERR_CRYPTO ? "decrypt_failed" : "internal_error");
        ck_assert(strstr(res.body->data, "CKR_") == NULL);
        ck_assert(strstr(res.body->data, "unwrap_failed") == NULL);
        json_decref(j);
        cv_http_response_clear(&res);
    }
}
END_TEST

START_TEST(error_envelope_carries_code_and_message)
{
    struct cv_http_response res = {0};
    cv_http_reply_error(&res, cv_fail_code(CV_ERR_CONFLICT, "server_exists", "server s1 exists"));
    ck_assert_uint_eq(res.status, 409);
    ck_assert_str_eq(res.content_type, "application/json");
    json_t *j = body_json(&res);
    ck_assert(json_is_false(json_object_get(j, "success")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "server_exists");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "server s1 exists");
    ck_assert_uint_eq(json_object_size(j), 2);
    json_decref(j);
    /* a failure whose record was overwritten falls back to the category's defaults */
    cv_error_clear();
    cv_http_reply_error(&res, (cv_result){CV_ERR_NOT_FOUND});
    ck_assert_uint_eq(res.status, 404);
    j = body_json(&res);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "not_found");
    json_decref(j);
    /* replying "success" with an error is a bug: 500 */
    cv_http_reply_error(&res, CV_OK);
    ck_assert_uint_eq(res.status, 500);
    cv_http_response_clear(&res);
}
END_TEST

START_TEST(success_envelope)
{
    struct cv_http_response res = {0};
    cv_http_reply(&res, 201, json_pack("{s:s}", "id", "s1"));
    ck_assert_uint_eq(res.status, 201);
    ck_assert_str_eq(res.body->data, "{\"success\":true,\"data\":{\"id\":\"s1\"}}");
    cv_http_reply(&res, 200, NULL); /* replaces the first */
    ck_assert_str_eq(res.body->data, "{\"success\":true,\"data\":null}");
    ck_assert(cv_json_alloc_installed());
    cv_http_reply_text(&res, 200, "text/plain; version=0.0.4", "a 1\n", 4);
    ck_assert_str_eq(res.content_type, "text/plain; version=0.0.4");
    ck_assert_uint_eq(res.body->len, 4);
    cv_http_response_clear(&res);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* before any jansson call, as every entry point */
    Suite *s = suite_create("http_response");
    TCase *tc = tcase_create("response");
    tcase_add_test(tc, misuse_marks_broken);
    tcase_add_test(tc, error_envelope_hides_internal_detail);
    tcase_add_test(tc, error_envelope_carries_code_and_message);
    tcase_add_test(tc, success_envelope);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
