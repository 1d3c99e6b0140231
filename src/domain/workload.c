/* Workload delivery: the full credential map of one server, to a workload
 * token bound to exactly that server and to no other principal. The only
 * result that holds plaintext values: never logged, never in an error, never
 * for another role or server. Every attempt is audited, refusals included,
 * and a failed audit write fails the fetch. */
#include <stdio.h>
#include <string.h>

#include "domain/domain.h"
#include "domain/seal.h"
#include "domain/workload.h"

#define ACTION "credentials.read_full"

/* Names that make the process they reach run other code: glibc's loader and
 * allocator (and Darwin's dyld) by prefix, and the interpreters an MCP server
 * is commonly written in (Node, Python, Perl, Ruby, the JVM, shells) by name.
 * A stored value under one of them would take over the MCP server. */
static const char *const loader_prefixes[] = {"LD_", "DYLD_", "GCONV_PATH", "MALLOC_", "GLIBC_TUNABLES"};
static const char *const interpreter_names[] = {"NODE_OPTIONS", "NODE_PATH", "PYTHONPATH", "PYTHONSTARTUP",
                                                "PYTHONHOME", "PERL5OPT", "PERL5LIB", "RUBYOPT", "RUBYLIB",
                                                "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "BASH_ENV", "ENV"};

int cv_workload_loader_name(const char *name)
{
    for (size_t i = 0; i < sizeof(loader_prefixes) / sizeof(loader_prefixes[0]); i++)
        if (strncmp(name, loader_prefixes[i], strlen(loader_prefixes[i])) == 0) return 1;
    for (size_t i = 0; i < sizeof(interpreter_names) / sizeof(interpreter_names[0]); i++)
        if (strcmp(name, interpreter_names[i]) == 0) return 1;
    return 0;
}

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

/* Defence in depth: deploy refuses loader names unless the template allows
 * them, but the catalog may have changed since, or the row may have been
 * written by another path. The refusal names the key, never a value. */
static cv_result check_delivered_names(struct cv_app *app, const struct cv_server_row *row, json_t *env)
{
    json_t *tmpl = cv_catalog_template(app->catalog, row->template_id);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        if (cv_workload_loader_name(k) && !cv_catalog_allows_name(tmpl, k))
            return cv_fail(CV_ERR_CONFLICT,
                           "the stored credentials hold '%.64s', which would change how programs are loaded, and "
                           "template %.64s does not allow it; update the server's credentials",
                           k, row->template_id);
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
    memset(&row, 0, sizeof(row));
    cv_result r = cv_store_server_get(app->store, p->tenant_id, p->server_id, 1, &row);
    if (r.err == CV_ERR_NOT_FOUND) {
        cv_server_row_free(&row);
        return refuse(app, p, server_id, cv_fail(CV_ERR_NOT_FOUND, "server not found"));
    }
    json_t *env = NULL;
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_open_env(app, p, &row, &env));
    r = check_delivered_names(app, &row, env);
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
