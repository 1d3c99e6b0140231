/* Opening one connection, and logging what the server said. The client sees
 * only "database unavailable"; the log gets libpq's message and the SQLSTATE
 * (never a query's parameters, never an error DETAIL, which quotes rows).
 * The last failure to connect is kept for start-up messages. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "credvault/log.h"
#include "store/pq.h"

/* Also receives an ErrorResponse that arrives while the connection is idle:
 * the server's FATAL just before it closes (shutdown, terminated backend).
 * `arg`, when given, is set so the connection is not reused. */
static void notice_receiver(void *arg, const PGresult *res)
{
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (arg && sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) *(int *)arg = 1;
    int warn = sev && (strcmp(sev, "WARNING") == 0 || strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
    cv_log(warn ? CV_LOG_WARN : CV_LOG_DEBUG, "db_notice", "severity", sev ? sev : "",
           "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE),
           "message", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), NULL);
}

void cv_store_log_result_error(const char *event, const char *what, const PGresult *res, int level)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg && res) msg = PQresultErrorMessage(res);
    cv_log((enum cv_log_level)level, event, "statement", what, "sqlstate", state ? state : "",
           "message", msg ? msg : "", "constraint", res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL,
           NULL);
}

static struct cv_log_burst connect_burst; /* one line per outage, not per attempt */

/* libpq's reason names the host and port it tried (never the password: cut
 * out all the same); empty after a connection succeeds */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_failure[512];

void cv_store_connect_failure(char *buf, size_t n)
{
    if (n == 0) return;
    pthread_mutex_lock(&last_lock);
    snprintf(buf, n, "%s", last_failure);
    pthread_mutex_unlock(&last_lock);
}

static void remember(const struct cv_conninfo *ci, const char *message)
{
    char why[sizeof(last_failure)];
    cv_store_conninfo_reason(cv_store_conninfo_get(ci, "dbname"), cv_store_conninfo_get(ci, "password"), message,
                             why, sizeof(why));
    pthread_mutex_lock(&last_lock);
    memcpy(last_failure, why, sizeof(why));
    pthread_mutex_unlock(&last_lock);
}

cv_result cv_store_connect(const struct cv_conninfo *ci, PGconn **out, int *fatal)
{
    *out = NULL;
    PGconn *pg = PQconnectdbParams(ci->keys, ci->vals, 1);
    CV_ENSURE(pg != NULL, CV_ERR_MEMORY, "out of memory");
    if (PQstatus(pg) != CONNECTION_OK) {
        if (cv_log_burst_failed(&connect_burst, "db_connect_failed"))
            cv_log(CV_LOG_WARN, "db_connect_failed", "message", PQerrorMessage(pg), NULL);
        remember(ci, PQerrorMessage(pg));
        PQfinish(pg);
        CV_BAIL(CV_ERR_UNAVAILABLE, "database unavailable");
    }
    cv_log_burst_ok(&connect_burst, "db_connect_failed");
    remember(ci, "");
    if (fatal) *fatal = 0;
    PQsetNoticeReceiver(pg, notice_receiver, fatal);
    *out = pg;
    return CV_OK;
}
