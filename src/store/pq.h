/* Private to src/store, and the only header that includes libpq: the store
 * object, per-thread connections, statements, one-round-trip transactions
 * and result readers. Parameters always travel as parameters. */
#ifndef CV_STORE_PQ_H
#define CV_STORE_PQ_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#include "store/internal.h"

struct cv_conn;

struct cv_store {
    char *url;
    char *password; /* secret memory, or NULL */
    struct cv_store_params params;
    struct cv_conninfo ci;
    pthread_key_t key; /* this thread's struct cv_conn */
    pthread_mutex_t lock;
    struct cv_conn *conns; /* every live one, so close can finish them */
};

/* One thread's connection. `pg` NULL means "connect on next use". */
struct cv_conn {
    struct cv_store *st;
    PGconn *pg;
    uint64_t prepared; /* bit per enum cv_sql_id */
    int fatal;         /* the server said FATAL: it is closing this connection */
    struct cv_conn *prev, *next;
};

/* Every statement the store prepares; the SQL text sits next to its use. */
enum cv_sql_id {
    CV_SQL_SCOPE,
    CV_SQL_PING,
    CV_SQL_READY_ROLE,
    CV_SQL_READY_VERSIONS,
    CV_SQL_MASTER_INSERT,
    CV_SQL_MASTER_LIST,
    CV_SQL_MASTER_CURRENT,
    CV_SQL_TENANT_INSERT,
    CV_SQL_TENANT_KEY_INSERT,
    CV_SQL_TENANT_GET,
    CV_SQL_TENANT_LIST,
    CV_SQL_TENANT_KEY_GET,
    CV_SQL_TENANT_KEY_CURRENT,
    CV_SQL_TENANT_KEY_LIST,
    CV_SQL_TOKEN_INSERT,
    CV_SQL_TOKEN_LOOKUP,
    CV_SQL_TOKEN_REVOKE,
    CV_SQL_SERVER_INSERT,
    CV_SQL_SERVER_GET,
    CV_SQL_SERVER_LIST,
    CV_SQL_SERVER_UPDATE,
    CV_SQL_SERVER_DELETE,
    CV_SQL_AUDIT_INSERT,
    CV_SQL__COUNT
};
_Static_assert(CV_SQL__COUNT <= 64, "prepared-statement bitmask is 64 bits");

struct cv_sql {
    enum cv_sql_id id;
    const char *name; /* prepared statement name and log label */
    const char *text;
    int nparams;
};

/* SQL fragments: timestamps travel as epoch milliseconds. */
#define CV_SQL_MS(col) "floor(extract(epoch FROM " col ") * 1000)::int8"
#define CV_SQL_TS(param) "(to_timestamp(0) + " param "::int8 * interval '1 millisecond')"

/* One statement of a transaction: its parameters, then its result. */
#define CV_Q_MAX_PARAMS 16
struct cv_q {
    const struct cv_sql *sql;
    int n;
    const char *values[CV_Q_MAX_PARAMS];
    int lengths[CV_Q_MAX_PARAMS];
    int formats[CV_Q_MAX_PARAMS];
    char num[CV_Q_MAX_PARAMS][24];
    PGresult *res;
};
void cv_q_init(struct cv_q *q, const struct cv_sql *sql);
void cv_q_text(struct cv_q *q, const char *s);       /* NULL: SQL NULL */
void cv_q_text_opt(struct cv_q *q, const char *s);   /* NULL or "": SQL NULL */
void cv_q_i64(struct cv_q *q, int64_t v);
void cv_q_ms_opt(struct cv_q *q, int64_t ms);         /* 0: SQL NULL */
void cv_q_bytes(struct cv_q *q, const uint8_t *p, size_t n);
void cv_q_clear(struct cv_q *qs, size_t n);

/* How a transaction is scoped and what its errors mean to the caller. */
enum cv_scope { CV_SCOPE_TENANT, CV_SCOPE_PLATFORM, CV_SCOPE_NONE };
#define CV_TX_READ_ONLY 1u /* safe to run again after the connection dropped mid-call */
struct cv_tx {
    enum cv_scope scope;
    const char *tenant_id; /* CV_SCOPE_TENANT */
    unsigned flags;
    const char *conflict;  /* message for 23505; NULL: "already exists" */
    const char *fk;        /* message for 23503; NULL: "not found" */
    cv_err fk_err;         /* category for 23503; CV_ERR_NONE: not found */
};
/* Runs qs as one transaction in one round trip: a pipeline of set_config
 * (the scope), the statements (prepared on first use on this connection)
 * and a Sync, which commits; any error rolls all of it back. On success
 * every qs[i].res holds its result; the caller clears them. */
CV_RESULT cv_store_tx(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n);

/* conn.c */
CV_RESULT cv_conn_get(struct cv_store *st, struct cv_conn **out);
void cv_conn_reset(struct cv_conn *c);       /* finish; reconnect on next use */
void cv_conn_release(struct cv_conn *c);     /* unlink, finish and free */
/* connect.c: one connection with the store's parameters (also used by
 * migrate). `fatal` (may be NULL) is set when the server later sends FATAL. */
CV_RESULT cv_store_connect(const struct cv_conninfo *ci, PGconn **out, int *fatal);
void cv_store_log_result_error(const char *event, const char *what, const PGresult *res, int level);

/* result.c: readers that fail (CV_ERR_INTERNAL) rather than truncate or guess */
CV_RESULT cv_pq_expect(const PGresult *res, int nfields);
int cv_pq_null(const PGresult *res, int row, int col);
CV_RESULT cv_pq_text(const PGresult *res, int row, int col, char *dst, size_t cap);
CV_RESULT cv_pq_i64(const PGresult *res, int row, int col, int64_t *out);  /* NULL: 0 */
CV_RESULT cv_pq_u32(const PGresult *res, int row, int col, uint32_t *out); /* NULL: 0 */
CV_RESULT cv_pq_bool(const PGresult *res, int row, int col, int *out);
CV_RESULT cv_pq_dup(const PGresult *res, int row, int col, size_t max, char **out); /* NULL: NULL */
CV_RESULT cv_pq_hex(const PGresult *res, int row, int col, uint8_t *out, size_t min, size_t max, size_t *n);

#endif
