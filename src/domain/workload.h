/* Workload delivery of full credentials: the one use case whose answer holds
 * plaintext values. Called by the HTTP route only. */
#ifndef CREDVAULT_DOMAIN_WORKLOAD_H
#define CREDVAULT_DOMAIN_WORKLOAD_H

#include "domain/domain.h"

/* The full credential map of `server_id`, for a workload token bound to that
 * very server: {"serverId","revision","expiresAt"?,"env":{…}}. Any other role
 * is CV_ERR_FORBIDDEN; a workload token bound to another server (or to one
 * that no longer exists) is CV_ERR_NOT_FOUND, so ids cannot be probed. A
 * stored map that holds a name cv_env_name_forbidden refuses (LD_PRELOAD,
 * SHELLOPTS, …) is refused (CV_ERR_CONFLICT, code env_name_forbidden): deploy
 * refuses such names, and delivery checks again. Every call is audited, refusals too;
 * values go nowhere but into *data. */
CV_RESULT cv_workload_env(struct cv_app *app, const struct cv_principal *p, const char *server_id, json_t **data);

#endif
