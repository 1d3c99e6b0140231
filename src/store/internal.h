/* Private to src/store: limits, input checks, value parsing, SQLSTATE
 * mapping, connection parameters and the migration file list. Nothing here
 * names a libpq type, so unit tests include it without libpq's headers. */
#ifndef CV_STORE_INTERNAL_H
#define CV_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"
#include "credvault/store.h"

#define CV_STORE_ENV_MAX_BYTES ((size_t)4 * 1024 * 1024) /* one encrypted_env record */
#define CV_STORE_JSON_MAX_BYTES ((size_t)256 * 1024) /* configured_integrations, credential_names */
#define CV_STORE_AUDIT_DETAIL_MAX_BYTES ((size_t)16 * 1024)
#define CV_STORE_AUDIT_ACTION_MAX_BYTES 64
#define CV_STORE_AUDIT_TARGET_MAX_BYTES 256
#define CV_STORE_REQUEST_ID_MAX_BYTES 128
#define CV_STORE_LIST_MAX 1000
#define CV_STORE_OFFSET_MAX 100000000u
#define CV_STORE_TIME_MAX_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define CV_STORE_CONNECT_TIMEOUT_S 3
#define CV_STORE_STATEMENT_TIMEOUT_MS 5000
/* the client's deadline of one round trip is the statement timeout plus
 * this: a live server cancels first and says so; a frozen one says nothing */
#define CV_STORE_DEADLINE_GRACE_MS 1000
#define CV_STORE_BREAKER_MS 500      /* an open breaker refuses calls this long, then one probes */
#define CV_STORE_BREAKER_LOG_MS 10000 /* while open, one line with the count per interval */
#define CV_STORE_MIGRATE_LOCK_TIMEOUT_MS 30000
#define CV_STORE_URL_MAX_BYTES 4096
#define CV_MIGRATION_MAX_BYTES ((size_t)1024 * 1024)
#define CV_MIGRATIONS_MAX 1000
#define CV_MIGRATION_NAME_MAX_BYTES 128

/* ---- validate.c: inputs are checked before anything is sent ---- */
int cv_store_uuid_ok(const char *s);
int cv_store_token_role_ok(const char *s);
int cv_store_key_state_ok(const char *s);    /* active, retired, destroyed */
int cv_store_master_state_ok(const char *s); /* active, retired */
int cv_store_outcome_ok(const char *s);      /* success, denied, error */
/* A C string held in a fixed array of `cap` bytes: NUL-terminated inside it. */
int cv_store_fixed_ok(const char *s, size_t cap);
/* Length in [min, max] bytes; `what` names the field in the message. */
CV_RESULT cv_store_check_len(const char *what, const char *s, size_t min, size_t max);
CV_RESULT cv_store_check_ms(const char *what, int64_t ms);
/* Tenant terminated, versions in int4 range, wrapped bytes 1..CV_WRAPPED_KEY_MAX_BYTES. */
CV_RESULT cv_store_check_key_ref(const char *what, const struct cv_key_ref *ref);

/* ---- values.c: strict parsing of what the database returns ---- */
CV_RESULT cv_store_parse_i64(const char *s, size_t len, int64_t *out);
CV_RESULT cv_store_parse_u32(const char *s, size_t len, uint32_t *out);
/* Copies len bytes and a NUL into dst[cap]; fails rather than truncate. */
CV_RESULT cv_store_copy_text(char *dst, size_t cap, const char *src, size_t len);
/* Lowercase hex of min..max bytes into out; *n gets the byte count. */
CV_RESULT cv_store_parse_hex(const char *s, size_t len, uint8_t *out, size_t min, size_t max, size_t *n);

/* ---- sqlstate.c ---- */
/* Category of a server error. 23503 gives `on_fk` (the caller knows whether
 * a missing parent means "not found" or a dependent row means "conflict"). */
cv_err cv_store_sqlstate_err(const char *sqlstate, cv_err on_fk);
/* The connection is gone or must not be reused (08*, 57P01-57P03, 25006). */
int cv_store_sqlstate_drops(const char *sqlstate);

/* ---- conninfo.c: libpq keywords, built once per store ---- */
struct cv_store_params {
    const char *url;
    const char *password;          /* NULL: the URL's or a passfile's */
    unsigned connect_timeout_s;    /* 0: the URL's, else 3 */
    unsigned statement_timeout_ms; /* 0: none */
    unsigned lock_timeout_ms;      /* 0: none */
    const char *application_name;
};

#define CV_CONNINFO_MAX 16
struct cv_conninfo {
    const char *keys[CV_CONNINFO_MAX + 1];
    const char *vals[CV_CONNINFO_MAX + 1];
    size_t n;
    char connect_timeout[16];
    char *options; /* heap: the URL's options plus ours */
};
/* Defaults first, then the URL (expanded by libpq), then what must win. */
CV_RESULT cv_store_conninfo_init(struct cv_conninfo *ci, const struct cv_store_params *p);
/* libpq's message on one line, with `password` (may be NULL), the password
 * of `url` (URI userinfo or password=) and a bare word libpq quotes as a
 * missing "=" cut out. */
void cv_store_conninfo_reason(const char *url, const char *password, const char *libpq_message, char *out,
                              size_t n);
void cv_store_conninfo_free(struct cv_conninfo *ci);
/* The value libpq will use for `key` (last one wins; the URL is not parsed). */
const char *cv_store_conninfo_get(const struct cv_conninfo *ci, const char *key);

/* ---- migrate_files.c ---- */
struct cv_migration {
    uint32_t version;
    char name[CV_MIGRATION_NAME_MAX_BYTES + 1]; /* file name without ".sql" */
    char *path;
};
struct cv_migration_set {
    struct cv_migration *items; /* ascending version */
    size_t count;
};
/* Lists NNNN_verb_object.sql files; other names ending in .sql, duplicate
 * versions and version 0 are refused (CV_ERR_INPUT); an empty folder too. */
CV_RESULT cv_store_migrations_list(const char *dir, struct cv_migration_set *out);
void cv_store_migrations_free(struct cv_migration_set *set);
/* Reads one file (at most CV_MIGRATION_MAX_BYTES, no NUL) into a heap string. */
CV_RESULT cv_store_migration_read(const struct cv_migration *m, char **sql);
const char *cv_store_migrations_dir(const char *dir); /* NULL: CV_MIGRATIONS_DIR */

#endif
