/* Helpers for API tests, on top of the cv_test_http client: a request that
 * fails the test on a transport error, status and envelope checks, JSON
 * lookups by dotted path, the fixtures most tests make (tenant, token,
 * deployed server, unique ids) and SQL as the cluster's superuser.
 * Every cv_t_ helper asserts with check and names its caller's file and
 * line, so call them only inside a test case or a fixture that check runs. */
#ifndef CV_TEST_API_H
#define CV_TEST_API_H

#include <jansson.h>
#include <stddef.h>

#include "cv_test_http.h"

/* ---- requests ---- */

/* METHOD path with an optional bearer token, JSON body and extra headers
 * (NULL-terminated "Name: value"). Always cv_test_response_free the result. */
#define cv_t_request(c, method, path, token, body)                                                                     \
    cv_t_request_at(__FILE__, __LINE__, (c), (method), (path), (token), (body), NULL)
#define cv_t_request_h(c, method, path, token, body, headers)                                                          \
    cv_t_request_at(__FILE__, __LINE__, (c), (method), (path), (token), (body), (headers))

/* The status, then the envelope: {"success":false,"error":{"code","message"}}
 * for every error (with error.code equal to `code` unless it is NULL), and
 * {"success":true,"data":…} for a success that is JSON (a success in another
 * media type, such as /metrics, is checked by status only). */
#define cv_t_expect_status(r, status, code) cv_t_expect_status_at(__FILE__, __LINE__, (r), (status), (code))

/* Request, cv_t_expect_status, free. */
#define cv_t_expect_call(c, method, path, token, body, status, code)                                                   \
    cv_t_expect_call_at(__FILE__, __LINE__, (c), (method), (path), (token), (body), NULL, (status), (code))
#define cv_t_expect_call_h(c, method, path, token, body, headers, status, code)                                        \
    cv_t_expect_call_at(__FILE__, __LINE__, (c), (method), (path), (token), (body), (headers), (status), (code))

/* ---- the JSON of a response ---- */

/* The value at a dotted path: "data.id", "error.code", "data.servers.0.id"
 * (a number indexes an array). NULL when any step is missing. */
json_t *cv_t_json_at(json_t *root, const char *path);
json_t *cv_t_json(const struct cv_test_response *r, const char *path);
/* The string at `path`, or NULL when absent or not a string. */
const char *cv_t_json_str(const struct cv_test_response *r, const char *path);
/* r->json's "data", and its error code (NULL on success). */
json_t *cv_t_data(const struct cv_test_response *r);
const char *cv_t_error_code(const struct cv_test_response *r);

#define cv_t_expect_json_str(r, path, want) cv_t_expect_json_str_at(__FILE__, __LINE__, (r), (path), (want))
#define cv_t_expect_json_int(r, path, want) cv_t_expect_json_int_at(__FILE__, __LINE__, (r), (path), (want))
#define cv_t_expect_json_bool(r, path, want) cv_t_expect_json_bool_at(__FILE__, __LINE__, (r), (path), (want))
/* The integer at `path`; fails the test when it is not an integer. */
#define cv_t_json_int(r, path) cv_t_json_int_at(__FILE__, __LINE__, (r), (path))

/* ---- fixtures made through the API ---- */

/* POST /api/tenants {"id","name":id} as `admin`; expects 201. */
#define cv_t_tenant_create(c, admin, id) cv_t_tenant_create_at(__FILE__, __LINE__, (c), (admin), (id))
/* POST /api/tokens as `by`; tenant and server may be NULL. The new token
 * goes into out. */
#define cv_t_token_mint(c, by, name, role, tenant, server, out, out_len)                                               \
    cv_t_token_mint_at(__FILE__, __LINE__, (c), (by), (name), (role), (tenant), (server), (out), (out_len))
/* POST /api/mcp/templates/<tmpl>/deploy; expects 201; the server id into id. */
#define cv_t_deploy(c, token, tmpl, body, id, id_len)                                                                  \
    cv_t_deploy_at(__FILE__, __LINE__, (c), (token), (tmpl), (body), (id), (id_len))

/* "<prefix>-<pid>-<n>": unique in this run, valid as a tenant id when the
 * prefix is (lowercase letters, digits, '-'). For what a case makes itself. */
void cv_t_unique_id(const char *prefix, char *out, size_t out_len);

/* ---- SQL as the superuser (an attacker with database access, or a check) ---- */

/* Runs `sql` with psql against the URL in environment variable `url_var`
 * (CV_PG_SUPERUSER_URL when NULL), from a file, so quotes need no shell
 * escaping. Returns the first line of the output, errors included
 * (malloc'ed; never NULL), and psql's exit status in *status. */
char *cv_t_psql_run(const char *url_var, const char *sql, int *status);
/* Asserts that psql succeeded; the first line of its output (malloc'ed). */
#define cv_t_psql(sql) cv_t_psql_at(__FILE__, __LINE__, NULL, (sql))
#define cv_t_psql_on(url_var, sql) cv_t_psql_at(__FILE__, __LINE__, (url_var), (sql))
/* Asserts that psql succeeded with an integer as its first line. */
#define cv_t_psql_int(sql) cv_t_psql_int_at(__FILE__, __LINE__, (sql))
/* Flips the first hex digit of one member ("encrypted", "authTag", "iv") of
 * a server's stored record, as someone with write access to the table could. */
#define cv_t_record_flip(server_id, member) cv_t_record_flip_at(__FILE__, __LINE__, (server_id), (member))

/* Asserts that a call answers `status` within `within_ms`, each answer
 * before it being 503 with Retry-After: recovery after a fault is awaited,
 * never assumed to be at once (probes run on their own interval). */
#define cv_t_expect_recovery(c, method, path, token, status, within_ms)                                            \
    cv_t_expect_recovery_at(__FILE__, __LINE__, (c), (method), (path), (token), (status), (within_ms))

/* Polls METHOD path (every 10 ms) until it answers `status`, which must come
 * within `within_ms`; meanwhile only `before` may come. Returns the ms it
 * took (for a propagation delay the test asserts). */
#define cv_t_expect_status_within(c, method, path, token, before, status, within_ms)                                   \
    cv_t_expect_status_within_at(__FILE__, __LINE__, (c), (method), (path), (token), (before), (status), (within_ms))

/* ---- what the macros call ---- */

struct cv_test_response cv_t_request_at(const char *file, int line, struct cv_test_client *c, const char *method,
                                        const char *path, const char *token, const char *body,
                                        const char *const *headers);
void cv_t_expect_status_at(const char *file, int line, const struct cv_test_response *r, long status, const char *code);
void cv_t_expect_call_at(const char *file, int line, struct cv_test_client *c, const char *method, const char *path,
                         const char *token, const char *body, const char *const *headers, long status,
                         const char *code);
void cv_t_expect_recovery_at(const char *file, int line, struct cv_test_client *c, const char *method,
                             const char *path, const char *token, long status, long within_ms);
long cv_t_expect_status_within_at(const char *file, int line, struct cv_test_client *c, const char *method,
                                  const char *path, const char *token, long before, long status, long within_ms);
void cv_t_expect_json_str_at(const char *file, int line, const struct cv_test_response *r, const char *path,
                             const char *want);
void cv_t_expect_json_int_at(const char *file, int line, const struct cv_test_response *r, const char *path,
                             json_int_t want);
void cv_t_expect_json_bool_at(const char *file, int line, const struct cv_test_response *r, const char *path, int want);
json_int_t cv_t_json_int_at(const char *file, int line, const struct cv_test_response *r, const char *path);
void cv_t_tenant_create_at(const char *file, int line, struct cv_test_client *c, const char *admin, const char *id);
void cv_t_token_mint_at(const char *file, int line, struct cv_test_client *c, const char *by, const char *name,
                        const char *role, const char *tenant, const char *server, char *out, size_t out_len);
void cv_t_deploy_at(const char *file, int line, struct cv_test_client *c, const char *token, const char *tmpl,
                    const char *body, char *id, size_t id_len);
char *cv_t_psql_at(const char *file, int line, const char *url_var, const char *sql);
long long cv_t_psql_int_at(const char *file, int line, const char *sql);
void cv_t_record_flip_at(const char *file, int line, const char *server_id, const char *member);

#endif
