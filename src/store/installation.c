/* Reads the database's installation id (migration 0017). Read only: the
 * service never changes it. */
#include "credvault/store_installation.h"
#include "store/pq.h"

CV_SQL_DEF(installation_sql, INSTALLATION_GET, "SELECT id::text FROM installation", 0);

cv_result cv_store_installation_get(struct cv_store *st, char id[37])
{
    struct cv_q q;
    cv_q_init(&q, &installation_sql);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "the database holds no installation id");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, id, 37));
out:
    cv_q_clear(&q, 1);
    return r;
}
