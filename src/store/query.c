/* Statement parameters. Text parameters point at the caller's strings (they
 * outlive the call); numbers are formatted into the statement's own storage;
 * byte strings go in binary format, so no escaping exists anywhere. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/pq.h"

void cv_q_init(struct cv_q *q, const struct cv_sql *sql)
{
    memset(q, 0, sizeof(*q));
    q->sql = sql;
}

static int slot(struct cv_q *q)
{
    /* a statement with more parameters than CV_Q_MAX_PARAMS is a bug; the
     * count check in cv_store_tx catches it before anything is sent */
    if (q->n >= CV_Q_MAX_PARAMS) {
        q->n = CV_Q_MAX_PARAMS + 1;
        return -1;
    }
    return q->n++;
}

void cv_q_text(struct cv_q *q, const char *s)
{
    int i = slot(q);
    if (i < 0) return;
    q->values[i] = s;
}

void cv_q_text_opt(struct cv_q *q, const char *s) { cv_q_text(q, s && *s ? s : NULL); }

void cv_q_i64(struct cv_q *q, int64_t v)
{
    int i = slot(q);
    if (i < 0) return;
    snprintf(q->num[i], sizeof(q->num[i]), "%" PRId64, v);
    q->values[i] = q->num[i];
}

void cv_q_ms_opt(struct cv_q *q, int64_t ms)
{
    if (ms == 0) cv_q_text(q, NULL);
    else cv_q_i64(q, ms);
}

void cv_q_bytes(struct cv_q *q, const uint8_t *p, size_t n)
{
    int i = slot(q);
    if (i < 0) return;
    q->values[i] = (const char *)p;
    q->lengths[i] = (int)n;
    q->formats[i] = 1;
}

void cv_q_clear(struct cv_q *qs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        PQclear(qs[i].res);
        qs[i].res = NULL;
    }
}
