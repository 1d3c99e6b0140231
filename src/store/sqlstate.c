/* SQLSTATE to error category, in one table. Only the category and a fixed
 * message reach the caller; the server's text goes to the log, never to a
 * client (it can quote row values). */
#include <string.h>

#include "store/internal.h"

static int is_class(const char *s, const char *cls) { return strncmp(s, cls, 2) == 0; }

int cv_store_sqlstate_drops(const char *s)
{
    if (!s || strlen(s) != 5) return 1; /* libpq's own errors: connection trouble */
    if (is_class(s, "08")) return 1;     /* connection exception */
    /* admin_shutdown, crash_shutdown, cannot_connect_now; a read-only
     * transaction means we reached a standby after a failover */
    return strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
           strcmp(s, "25006") == 0;
}

cv_err cv_store_sqlstate_err(const char *s, cv_err on_fk)
{
    if (cv_store_sqlstate_drops(s)) return CV_ERR_UNAVAILABLE;
    if (strcmp(s, "23505") == 0) return CV_ERR_CONFLICT;
    if (strcmp(s, "23503") == 0) return on_fk != CV_ERR_NONE ? on_fk : CV_ERR_NOT_FOUND;
    if (strcmp(s, "23514") == 0 || is_class(s, "22")) return CV_ERR_INPUT; /* check, data exception */
    if (is_class(s, "53") ||                                                /* out of resources */
        strcmp(s, "57014") == 0 ||                                          /* statement timeout */
        strcmp(s, "55P03") == 0 ||                                          /* lock not available */
        strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)                /* serialization, deadlock */
        return CV_ERR_UNAVAILABLE;
    return CV_ERR_INTERNAL;
}
