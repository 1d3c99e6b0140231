/* Workload delivery: the full credential map of one server, to a workload
 * token bound to exactly that server and to no other principal. The only
 * result that holds plaintext values: never logged, never in an error, never
 * for another role or server. Every attempt is audited, refusals included,
 * and a failed audit write fails the fetch. */
#include <stdio.h>
#include <string.h>

#include "credvault/envname.h"
#include "domain/domain.h"
#include "domain/seal.h"
#include "domain/workload.h"

#define ACTION "credentials.read_full"

/* Records the refusal, then returns it: the refusal wins unless the audit
 * write itself failed, in which case that failure is returned. */
static cv_result refuse(struct cv_app *app, const struct cv_principal *p, const char *server_id, cv_result why)
{
    char code[64], message[256];
    snprintf(code, sizeof(code), "%s", cv_error_code());
    snprintf(message, sizeof(message), "%s", cv_error_message());
    cv_result a = cv_audit(app, p, p->tenant_id, ACTION, server_id, "denied");
    if (cv_failed(a)) return a;
    return cv_fail_code(why.err, code, "%s", message);
}

/* Defence in depth: deploy refuses every name of the forbidden family, but
 * the row may have been written before that rule or by another path. The
 * refusal names the key, never a value. Names outside the template's
 * allow-list are delivered: they passed the rule of their time, and the
 * catalog may since have changed. */
static cv_result check_delivered_names(const struct cv_server_row *row, json_t *env)
{
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        const char *why = cv_env_name_forbidden(k);
        if (why)
            return cv_fail_code(CV_ERR_CONFLICT, "env_name_forbidden",
                                "the stored credentials of %.128s hold '%.64s', which %s; delivery is refused until "
                                "the name is removed (PUT ?merge=true with null)",
                                row->server_id, k, why);
    }
    return CV_OK;
}

cv_result cv_workload_env(struct cv_app *app, const struct cv_principal *p, const char *server_id, json_t **data)
{
    *data = NULL;
    if (p->role != CV_ROLE_WORKLOAD)
        return refuse(app, p, server_id,
                      cv_fail(CV_ERR_FORBIDDEN, "only a workload token bound to this server may fetch its credentials"));
    /* A workload token learns nothing about servers other than its own: any
     * other id, existing or not, is the same 404. */
    if (p->tenant_id[0] == '\0' || p->server_id[0] == '\0' || strcmp(server_id, p->server_id) != 0)
        return refuse(app, p, server_id, cv_fail(CV_ERR_NOT_FOUND, "server not found"));

    struct cv_server_row row;
    struct cv_tenant_key_row key;
    int has_key = 0;
    memset(&row, 0, sizeof(row));
    /* row, tenant key and scope in one round trip */
    cv_result r = cv_store_server_get_keyed(app->store, p->tenant_id, p->server_id, 1, &row, &key, &has_key);
    if (r.err == CV_ERR_NOT_FOUND) {
        cv_server_row_free(&row);
        return refuse(app, p, server_id, cv_fail(CV_ERR_NOT_FOUND, "server not found"));
    }
    json_t *env = NULL;
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_open_env_keyed(app, p, &row, has_key ? &key : NULL, &env));
    r = check_delivered_names(&row, env);
    if (cv_failed(r)) {
        r = refuse(app, p, server_id, r);
        goto out;
    }
    /* audited before anything leaves: no audit, no values */
    CV_GUARD_OUT(r, cv_audit(app, p, p->tenant_id, ACTION, server_id, "success"));
    char expires[32] = "";
    if (row.expires_at_ms) cv_time_iso8601(row.expires_at_ms, expires);
    *data = json_pack("{s:s, s:I, s:s?, s:o}", "serverId", row.server_id, "revision", (json_int_t)row.revision,
                      "expiresAt", row.expires_at_ms ? expires : NULL, "env", env);
    env = NULL; /* stolen by json_pack, even when it fails */
    if (!*data) r = cv_fail(CV_ERR_MEMORY, "out of memory");
out:
    json_decref(env);
    cv_server_row_free(&row);
    return r;
}
