/* Private to src/store, and the only header that includes libpq: the store
 * object, per-thread connections, statements, one-round-trip transactions
 * and result readers. Parameters always travel as parameters. */
#ifndef CV_STORE_PQ_H
#define CV_STORE_PQ_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "credvault/store_audit.h"
#include "store/internal.h"
#include "store/statements.h"

/* Every statement the store prepares comes from the registry. */
enum cv_sql_id {
#define CV_SQL_ENUM(id, name) CV_SQL_##id,
    CV_STORE_STATEMENTS(CV_SQL_ENUM)
#undef CV_SQL_ENUM
    CV_SQL__COUNT
};
#define CV_SQL_PREPARED_WORDS ((CV_SQL__COUNT + 63) / 64)

struct cv_conn;

struct cv_store {
    char *url;
    char *password; /* secret memory, or NULL */
    struct cv_store_params params;
    struct cv_conninfo ci;
    pthread_key_t key; /* this thread's struct cv_conn */
    pthread_mutex_t lock;
    struct cv_conn *conns; /* every live one, so close can finish them */
    struct cv_metrics *metrics; /* the service's, or NULL */
    unsigned deadline_ms;       /* one round trip, client side: statement_timeout + grace */
    /* circuit breaker (breaker.c): 0 closed, else calls fail until this time */
    _Atomic int64_t breaker_until;
    _Atomic int64_t breaker_since;
    _Atomic int64_t breaker_logged;
    _Atomic uint64_t breaker_refused;
    /* the HSM anchor of every audit event (store_audit.h), or NULL */
    cv_store_audit_mac_fn audit_mac;
    void *audit_mac_arg;
    /* the chain hash of an event (store_audit.h), set by the domain */
    cv_store_audit_hash_fn audit_hash;
    void *audit_hash_arg;
    /* the group-commit writer of lone events (audit_batch.c), made on first use */
    struct cv_audit_batcher *batcher;
};

int64_t cv_store_now_ms(void);
/* CV_ERR_UNAVAILABLE at once while the breaker is open (one caller per
 * interval is let through to probe). */
CV_RESULT cv_store_breaker_admit(struct cv_store *st);
/* The database was lost (connect failed, deadline passed, connection dropped). */
void cv_store_breaker_failed(struct cv_store *st);
/* The database answered. */
void cv_store_breaker_ok(struct cv_store *st);

struct cv_conn;
/* Flushes what was sent and waits until a result can be read without
 * blocking; 0 when the connection failed or `deadline` (cv_store_now_ms)
 * passed first. */
int cv_conn_wait_result(struct cv_conn *c, int64_t deadline);

/* One thread's connection. `pg` NULL means "connect on next use". */
struct cv_conn {
    struct cv_store *st;
    PGconn *pg;
    uint64_t prepared[CV_SQL_PREPARED_WORDS]; /* bit per enum cv_sql_id */
    int fatal;         /* the server said FATAL: it is closing this connection */
    int timed_out;     /* a round trip passed its deadline */
    /* audit writer chains (audit_chain.c): the slot this session holds (0:
     * none yet) and the heads of the chains it appended to */
    int slot;
    struct cv_chain_head *heads;
    size_t nheads, cap_heads;
    struct cv_conn *prev, *next;
};


struct cv_sql {
    enum cv_sql_id id;
    const char *text;
    int nparams;
};
/* Defines `var`, the one statement of registry entry ID; a second
 * definition of the same entry anywhere in the store fails the link. */
#define CV_SQL_DEF(var, ID, text, n)                                                                                  \
    extern const char cv_sql_defined_##ID;                                                                         \
    const char cv_sql_defined_##ID = 1;                                                                            \
    static const struct cv_sql var = {CV_SQL_##ID, text, n}
/* The prepared statement's name, also its label in logs. */
const char *cv_sql_name(const struct cv_sql *sql);

/* SQL fragments: timestamps travel as epoch milliseconds. */
#define CV_SQL_MS(col) "floor(extract(epoch FROM " col ") * 1000)::int8"
/* A tenant key's columns that a decrypt needs (alias k), read by
 * cv_store_key_ref_read: tenant_keys.c and the keyed server read share them. */
#define CV_STORE_KEY_REF_COLS                                                                             \
    "k.tenant_id, k.version, k.master_version, encode(k.wrapped_key, 'hex'), encode(k.binding, 'hex'), k.state"
#define CV_STORE_KEY_REF_NCOLS 6
CV_RESULT cv_store_key_ref_read(const PGresult *res, int i, int c, struct cv_tenant_key_row *row);
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

/* ---- the transaction engine (tx.c): the only way the store runs SQL ----
 *
 * A transaction is described by struct cv_tx: its scope, what its errors
 * mean to the caller, and the audit events that record it. Those events are
 * appended inside the transaction (credvault_audit_append, migration 0010),
 * so a change commits with its events or not at all; no event waits in
 * thread-local state. Every statement goes through the same pipeline, is
 * prepared once per connection from the registry, and fails through the
 * same SQLSTATE mapping. */
enum cv_scope { CV_SCOPE_TENANT, CV_SCOPE_PLATFORM, CV_SCOPE_NONE };
#define CV_TX_READ_ONLY 1u /* safe to run again after the connection dropped mid-call */
/* The events are written only if the transaction's statements changed a row
 * (an update whose revision had moved, a delete that found nothing): no
 * event claims a change that did not happen. One round trip only. */
#define CV_TX_EVENTS_IF_CHANGED 2u
/* The events need not wait for the WAL flush (reads, refusals). */
#define CV_TX_EVENTS_ASYNC 4u
#define CV_TX_MAX_EVENTS 4
#define CV_AUDIT_BATCH_MAX 64 /* events of one group commit (audit_batch.c) */
struct cv_tx {
    enum cv_scope scope;
    const char *tenant_id; /* CV_SCOPE_TENANT */
    unsigned flags;
    const char *conflict;  /* message for 23505; NULL: "already exists" */
    const char *fk;        /* message for 23503; NULL: "not found" */
    cv_err fk_err;         /* category for 23503; CV_ERR_NONE: not found */
    const struct cv_audit_event *events; /* committed with the change */
    size_t nevents;
};

/* One round trip: a pipeline of the scope (set_config, transaction-local),
 * the statements, the events and a Sync, which commits; any error rolls all
 * of it back. On success every qs[i].res holds its result; the caller
 * clears them. n may be 0 when the transaction is only its events. */
CV_RESULT cv_store_tx(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n);

/* Several round trips, for the key lifecycle: a rotation holds its lock
 * while the token makes a key, a rewrap batch holds its row locks while the
 * token re-encrypts. BEGIN and the scope, then statements one at a time;
 * commit appends tx->events and COMMIT in one round trip. Nothing else may
 * use this thread's connection until commit or abort (detected:
 * CV_ERR_INTERNAL). A failure rolls back and closes the transaction. */
struct cv_tx_open {
    struct cv_store *st;
    const struct cv_tx *tx;
    struct cv_conn *c;
    PGconn *pg; /* the connection the transaction began on */
    int open;
};
CV_RESULT cv_tx_begin(struct cv_store *st, const struct cv_tx *tx, struct cv_tx_open *o);
/* q->res holds the result on success (the caller clears it); `msgs`, when
 * not NULL, gives this statement's messages for 23505 and 23503. */
CV_RESULT cv_tx_exec(struct cv_tx_open *o, struct cv_q *q, const struct cv_tx *msgs);
/* A statement that must return exactly one row of `ncols` columns. */
CV_RESULT cv_tx_exec_row(struct cv_tx_open *o, struct cv_q *q, const struct cv_tx *msgs, int ncols);
/* Appends an event now, inside the transaction; with version > 0 its target
 * is ev->target followed by the version (chosen inside the transaction). */
CV_RESULT cv_tx_audit(struct cv_tx_open *o, const struct cv_audit_event *ev, uint32_t version);
/* Appends a key event and its NOTIFY, delivered at commit, so a listener
 * never hears of a change it cannot read yet. */
CV_RESULT cv_tx_key_event(struct cv_tx_open *o, const char *kind, const char *tenant_id, uint32_t version);
CV_RESULT cv_tx_commit(struct cv_tx_open *o);
/* Rolls back if still open; safe to call twice. */
void cv_tx_abort(struct cv_tx_open *o);

/* An event as it is stored: the actor's token id first in its detail (the
 * hash and the anchor cover the text exactly as written), and its anchor. */
struct cv_sealed_event {
    struct cv_audit_event ev;
    char *detail; /* owned, or NULL */
    uint8_t mac[32];
    int has_mac;
};
CV_RESULT cv_store_seal_event(struct cv_store *st, const struct cv_audit_event *ev, const char *target,
                              struct cv_sealed_event *out);
void cv_store_sealed_free(struct cv_sealed_event *se, size_t n);
CV_RESULT cv_store_check_event(const struct cv_audit_event *ev);
/* One transaction of already sealed events (up to CV_AUDIT_BATCH_MAX), as
 * cv_store_tx: the group-commit writer's. */
CV_RESULT cv_store_tx_sealed(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n,
                             struct cv_sealed_event *sealed, size_t nsealed);
/* One pipelined round trip on c, outside or inside an open transaction:
 * CV_OK, or the mapped error (the connection is reset when it was lost). */
CV_RESULT cv_store_run(struct cv_conn *c, struct cv_q *all[], size_t n);

/* ---- writer chains (audit_chain.c, migration 0019) ----
 * Events go to the chain '<tenant or _platform>:<slot>' of the connection's
 * slot, whose head this connection alone moves and so keeps in memory. A
 * plan binds one append statement per chain, hashes computed here. */
struct cv_chain_head {
    char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    int64_t seq;
    uint8_t hash[CV_AUDIT_HASH_BYTES];
};
struct cv_chain_run {
    char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    const char *tenant_id; /* NULL: the platform */
    int64_t first_seq;
    uint8_t prev[CV_AUDIT_HASH_BYTES], last[CV_AUDIT_HASH_BYTES];
    size_t n;
    char *arrays[10]; /* the array parameters, owned */
    struct cv_q q;
};
struct cv_chain_plan {
    struct cv_chain_run *runs;
    size_t nruns;
    /* unconditional events: one statement appends every run (0021) */
    int multi;
    char *arrays[15]; /* its array parameters, owned */
    struct cv_q q;
};
/* Claims c's slot and reads the heads it does not know yet (round trips of
 * their own, in tx's scope), then binds the appends of se[0..n). */
CV_RESULT cv_chain_plan_make(struct cv_conn *c, const struct cv_tx *tx, const struct cv_sealed_event *se, size_t n,
                             int durable, int if_changed, struct cv_chain_plan *plan);
/* The append statements to run, into out (room for plan->nruns); their count. */
size_t cv_chain_plan_statements(struct cv_chain_plan *plan, struct cv_q **out);
/* After the append statements succeeded: the heads move as they said. */
void cv_chain_plan_applied(struct cv_conn *c, const struct cv_chain_plan *plan);
void cv_chain_plan_free(struct cv_chain_plan *plan);
/* After any failure: the heads are read again on next use. */
void cv_chain_forget(struct cv_conn *c);

/* A chain name: a tenant id or '_platform', optionally ':<slot>'. */
int cv_store_chain_valid(const char *chain);
/* ... and one of this tenant's ("" or NULL: the platform's). */
int cv_store_chain_of(const char *chain, const char *tenant_id);

/* audit_batch.c: stops the group-commit writer (cv_store_close) */
void cv_audit_batcher_stop(struct cv_store *st);

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
