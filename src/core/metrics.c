/* The metrics registry: a fixed table of families, each a bounded open-
 * addressed array of series updated with atomics, and the Prometheus text
 * renderer. It must never block a request (a new series takes a mutex once)
 * and never hold a secret: labels are names and codes chosen by the callers. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/metrics.h"

#define KEY_MAX_BYTES (CV_METRICS_LABELS_MAX * (CV_METRICS_LABEL_VALUE_MAX_BYTES + 1) + 1)
#define SEP '\x1f' /* between label values in a series key; never in a value */

/* Seconds: from half a millisecond (a cached HSM call) to ten seconds (the
 * statement timeout is five). */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const char *const bucket_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                          "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
_Static_assert(sizeof(bucket_text) / sizeof(bucket_text[0]) == NBUCKETS, "one text per bucket");

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct family {
    const char *name;
    enum kind kind;
    const char *help;
    unsigned nlabels;
    const char *labels[CV_METRICS_LABELS_MAX];
    unsigned capacity; /* series; a power of two */
    /* label values made at 0 with the registry, NULL-terminated; several
     * labels joined by "\x1f": a rate() over them sees the first event */
    const char *const *known;
};

#define K2(a, b) a "\x1f" b
static const char *const known_rate_limited[] = {
    K2("read", "token"),         K2("read", "address"),  K2("read", "auth_failures"),
    K2("write", "token"),        K2("write", "address"), K2("write", "auth_failures"),
    K2("admin", "token"),        K2("admin", "address"), K2("admin", "auth_failures"), NULL};
static const char *const known_ok_error[] = {"ok", "error", NULL};
static const char *const known_ok_failed[] = {"ok", "failed", NULL};
/* the return values the HSM alert names (docs/operations.md) */
static const char *const known_rv[] = {"CKR_DEVICE_ERROR",   "CKR_DEVICE_MEMORY",          "CKR_DEVICE_REMOVED",
                                       "CKR_SESSION_CLOSED", "CKR_SESSION_HANDLE_INVALID", "CKR_TOKEN_NOT_PRESENT",
                                       NULL};
static const char *const known_durability[] = {"sync", "async", NULL};
static const char *const known_integrity[] = {"token", "record", NULL};
static const char *const known_checkpoints[] = {"ok", "unchanged", "error", NULL};
static const char *const known_db_errors[] = {"connect", "connection_lost", "unavailable", NULL};

/* one family per entry reads better than one field per line */
/* clang-format off */
static const struct family families[CV_M__COUNT] = {
    [CV_M_HTTP_REQUESTS] = {"credvault_http_requests_total", COUNTER,
                            "HTTP requests answered, by method, matched route pattern and status", 3,
                            {"method", "route", "status"}, 1024},
    [CV_M_HTTP_DURATION] = {"credvault_http_request_duration_seconds", HISTOGRAM,
                            "time from the first byte of a request to its completion, by route pattern", 1,
                            {"route"}, 128},
    [CV_M_AUTH_FAILURES] = {"credvault_auth_failures_total", COUNTER,
                            "requests refused because the bearer token was missing, unknown, revoked or expired",
                            0, {NULL}, 1},
    [CV_M_RATE_LIMITED] = {"credvault_rate_limited_total", COUNTER,
                           "requests answered 429, by limit class (read, write, admin) and scope (token, address, "
                           "auth_failures)", 2, {"class", "scope"}, 16, known_rate_limited},
    [CV_M_HSM_OPERATIONS] = {"credvault_hsm_operations_total", COUNTER,
                             "HSM operations (each with its retries), by result", 1, {"result"}, 4, known_ok_error},
    [CV_M_HSM_DURATION] = {"credvault_hsm_operation_duration_seconds", HISTOGRAM,
                           "time per HSM operation, retries and recovery included", 0, {NULL}, 1},
    [CV_M_HSM_ERRORS] = {"credvault_hsm_errors_total", COUNTER, "failed PKCS#11 calls, by CK_RV name", 1, {"rv"},
                         64, known_rv},
    [CV_M_HSM_RECOVERIES] = {"credvault_hsm_recoveries_total", COUNTER,
                             "module re-initialisations after a session or device failure, by result", 1,
                             {"result"}, 4, known_ok_failed},
    [CV_M_HSM_UP] = {"credvault_hsm_up", GAUGE, "1 while the HSM answers, 0 after a recovery failed", 0, {NULL}, 1},
    [CV_M_KEY_CACHE_HITS] = {"credvault_key_cache_hits_total", COUNTER,
                             "tenant-key lookups answered by an unwrapped key already in the token", 0, {NULL}, 1},
    [CV_M_KEY_CACHE_MISSES] = {"credvault_key_cache_misses_total", COUNTER,
                               "tenant-key lookups that had to unwrap the key", 0, {NULL}, 1},
    [CV_M_KEY_CACHE_EVICTIONS] = {"credvault_key_cache_evictions_total", COUNTER,
                                  "unwrapped tenant keys destroyed to make room (CREDVAULT_KEY_CACHE_SIZE)", 0,
                                  {NULL}, 1},
    [CV_M_DECRYPT_FAILURES] = {"credvault_decrypt_failures_total", COUNTER,
                               "stored records that failed to decrypt (tampered, moved, malformed or wrong key)", 0,
                               {NULL}, 1},
    [CV_M_INTEGRITY_FAILURES] = {"credvault_integrity_failures_total", COUNTER,
                                 "rows refused because their HSM binding does not match (made or changed in the "
                                 "database), by kind", 1, {"kind"}, 8, known_integrity},
    [CV_M_AUDIT_EVENTS] = {"credvault_audit_events_total", COUNTER,
                           "audit events written, by durability (sync: waited for the WAL flush)", 1,
                           {"durability"}, 4, known_durability},
    [CV_M_AUDIT_FAILURES] = {"credvault_audit_write_failures_total", COUNTER,
                             "audit events that could not be written; each failed its operation", 0, {NULL}, 1},
    [CV_M_AUDIT_CHECKPOINTS] = {"credvault_audit_checkpoints_total", COUNTER,
                                "signed audit checkpoints attempted by this process, by result", 1, {"result"}, 8,
                                known_checkpoints},
    [CV_M_AUDIT_CHECKPOINT_TIME] = {"credvault_audit_last_checkpoint_timestamp_seconds", GAUGE,
                                    "unix time of the last audit checkpoint this process signed", 0, {NULL}, 1},
    [CV_M_AUDIT_BATCHES] = {"credvault_audit_batches_total", COUNTER,
                            "group commits of lone audit events (reads, refusals), failed ones included", 0, {NULL}, 1},
    [CV_M_AUDIT_BATCHED_EVENTS] = {"credvault_audit_batched_events_total", COUNTER,
                                   "audit events those group commits held", 0, {NULL}, 1},
    [CV_M_AUDIT_BATCH_LARGEST] = {"credvault_audit_batch_largest_events", GAUGE,
                                  "the most audit events one group commit of this process held", 0, {NULL}, 1},
    [CV_M_AUDIT_BATCH_QUEUED] = {"credvault_audit_batch_queued_events", GAUGE,
                                 "audit events waiting for the next group commit", 0, {NULL}, 1},
    [CV_M_DB_ERRORS] = {"credvault_db_errors_total", COUNTER,
                        "database statements that failed and connections lost, by category", 1, {"category"}, 16,
                        known_db_errors},
    [CV_M_WORKER_RESTARTS] = {"credvault_worker_restarts_total", COUNTER,
                              "worker processes the supervisor started again after one exited or was killed", 0,
                              {NULL}, 1},
    [CV_M_METRICS_DROPPED] = {"credvault_metrics_series_dropped_total", COUNTER,
                              "metric updates dropped because their family had no room for another series", 0,
                              {NULL}, 1},
};
/* clang-format on */

struct series {
    _Atomic int ready; /* 0 empty, 1 in use; set once, under `grow`, after the key */
    uint64_t hash;
    char key[KEY_MAX_BYTES];
    _Atomic uint64_t value;            /* counter, gauge (int64 bits) or observation count */
    _Atomic uint64_t sum_ns;           /* histogram: sum of observations in nanounits */
    _Atomic uint64_t bucket[NBUCKETS]; /* histogram: observations per bucket, not cumulative */
};

#define INFO_NAME_BYTES 64
#define INFO_VALUE_BYTES 160

/* One worker process's slot in a shared registry: written by that worker
 * (requests, beat, descriptors) and by the supervisor (pid). */
struct worker_slot {
    _Atomic int pid; /* 0: no process in this slot */
    _Atomic int ready;
    _Atomic int healthy;
    _Atomic int64_t beat_ms; /* CLOCK_MONOTONIC, the same clock in every process */
    _Atomic int64_t open_fds;
    /* the worker's own /proc/self figures as of its last beat: a sibling's
     * /proc entry is hidden where /proc is mounted hidepid=invisible (the
     * unit's ProtectProc=) and the worker is not dumpable */
    _Atomic int64_t cpu_us, rss_bytes, vsize_bytes, start_ms;
    _Atomic uint64_t requests;
};

/* One per service object: two services in one process share no series. A
 * shared registry (CREDVAULT_WORKERS > 1) is one anonymous MAP_SHARED
 * mapping made before fork, holding the tables too, so every pointer in it
 * is valid in every worker and nothing in it points into a process's heap. */
struct cv_metrics {
    struct series *tables[CV_M__COUNT];
    pthread_mutex_t grow; /* also guards the build info; robust when shared */
    size_t ninfo;
    char info[CV_METRICS_INFO_MAX][2][INFO_VALUE_BYTES]; /* name, value */
    int shared;
    size_t map_bytes;
    unsigned nworkers;
    struct worker_slot workers[CV_METRICS_WORKERS_MAX];
};

/* A worker's own registry and slot: set once after fork, read by this
 * process only. */
static struct cv_metrics *adopted;
static int self_slot = -1;

/* A worker killed while holding the lock leaves it to the next taker. */
static void grow_lock(struct cv_metrics *reg)
{
    if (pthread_mutex_lock(&reg->grow) == EOWNERDEAD) pthread_mutex_consistent(&reg->grow);
}

static struct series *probe(struct series *t, unsigned cap, uint64_t h, const char *key, int claim);
static uint64_t fnv(const char *s);

cv_result cv_metrics_new(struct cv_metrics **out)
{
    if (adopted) {
        *out = adopted;
        return CV_OK;
    }
    struct cv_metrics *reg = calloc(1, sizeof(*reg));
    CV_ENSURE(reg != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&reg->grow, NULL);
    for (unsigned m = 0; m < CV_M__COUNT; m++) {
        reg->tables[m] = calloc(families[m].capacity, sizeof(struct series));
        if (!reg->tables[m]) {
            cv_metrics_free(reg);
            CV_BAIL(CV_ERR_MEMORY, "out of memory");
        }
        for (const char *const *k = families[m].known; k && *k; k++)
            (void)probe(reg->tables[m], families[m].capacity, fnv(*k), *k, 1);
    }
    *out = reg;
    return CV_OK;
}

cv_result cv_metrics_new_shared(unsigned workers, struct cv_metrics **out)
{
    CV_ENSURE(workers >= 1 && workers <= CV_METRICS_WORKERS_MAX, CV_ERR_INPUT, "workers must be 1 to %d",
              CV_METRICS_WORKERS_MAX);
    size_t bytes = sizeof(struct cv_metrics);
    size_t offsets[CV_M__COUNT];
    for (unsigned m = 0; m < CV_M__COUNT; m++) {
        bytes = (bytes + 63) & ~(size_t)63;
        offsets[m] = bytes;
        bytes += (size_t)families[m].capacity * sizeof(struct series);
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CV_ENSURE(p != MAP_FAILED, CV_ERR_MEMORY, "cannot map %zu bytes for shared metrics: %s", bytes, strerror(errno));
    struct cv_metrics *reg = p; /* zero-filled by mmap */
    reg->shared = 1;
    reg->map_bytes = bytes;
    reg->nworkers = workers;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&reg->grow, &a);
    pthread_mutexattr_destroy(&a);
    for (unsigned m = 0; m < CV_M__COUNT; m++) {
        reg->tables[m] = (struct series *)((char *)p + offsets[m]);
        for (const char *const *k = families[m].known; k && *k; k++)
            (void)probe(reg->tables[m], families[m].capacity, fnv(*k), *k, 1);
    }
    *out = reg;
    return CV_OK;
}

void cv_metrics_adopt(struct cv_metrics *reg, unsigned slot)
{
    adopted = reg;
    self_slot = reg && reg->shared && slot < reg->nworkers ? (int)slot : -1;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct worker_slot *slot_at(struct cv_metrics *reg, unsigned slot)
{
    return reg && reg->shared && slot < reg->nworkers ? &reg->workers[slot] : NULL;
}

void cv_metrics_worker_started(struct cv_metrics *reg, unsigned slot, int pid)
{
    struct worker_slot *w = slot_at(reg, slot);
    if (!w) return;
    atomic_store(&w->ready, 0);
    atomic_store(&w->healthy, 0);
    atomic_store(&w->beat_ms, 0);
    atomic_store(&w->open_fds, 0);
    atomic_store(&w->pid, pid);
}

int cv_metrics_worker_state(struct cv_metrics *reg, unsigned slot, int64_t *beat_age_ms, int *healthy)
{
    struct worker_slot *w = slot_at(reg, slot);
    if (!w) return 0;
    int64_t beat = atomic_load(&w->beat_ms);
    if (beat_age_ms) *beat_age_ms = beat ? mono_ms() - beat : INT64_MAX;
    if (healthy) *healthy = atomic_load(&w->healthy);
    return atomic_load(&w->ready);
}

int cv_metrics_worker_pid(struct cv_metrics *reg, unsigned slot)
{
    struct worker_slot *w = slot_at(reg, slot);
    return w ? atomic_load(&w->pid) : 0;
}

struct proc_figures {
    double cpu, vsize, rss, start;
};
static void proc_figures_of(const char *stat_path, struct proc_figures *f);

static int64_t count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    int64_t n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void cv_metrics_worker_ready(struct cv_metrics *reg)
{
    struct worker_slot *w = self_slot >= 0 ? slot_at(reg, (unsigned)self_slot) : NULL;
    if (w) atomic_store(&w->ready, 1);
}

static void publish_figures(struct worker_slot *w)
{
    atomic_store(&w->open_fds, count_open_fds());
    struct proc_figures pf;
    proc_figures_of("/proc/self/stat", &pf);
    atomic_store(&w->cpu_us, (int64_t)(pf.cpu * 1e6));
    atomic_store(&w->rss_bytes, (int64_t)pf.rss);
    atomic_store(&w->vsize_bytes, (int64_t)pf.vsize);
    atomic_store(&w->start_ms, (int64_t)(pf.start * 1e3));
}

void cv_metrics_worker_beat(struct cv_metrics *reg, int healthy)
{
    struct worker_slot *w = self_slot >= 0 ? slot_at(reg, (unsigned)self_slot) : NULL;
    if (!w) return;
    publish_figures(w);
    atomic_store(&w->healthy, healthy);
    atomic_store(&w->beat_ms, mono_ms());
}

void cv_metrics_worker_request(struct cv_metrics *reg)
{
    struct worker_slot *w = self_slot >= 0 ? slot_at(reg, (unsigned)self_slot) : NULL;
    if (w) atomic_fetch_add_explicit(&w->requests, 1, memory_order_relaxed);
}

cv_result cv_metrics_set_build_info(struct cv_metrics *reg, const char *const *names, const char *const *values,
                                    size_t n)
{
    CV_ENSURE_REF(reg);
    CV_ENSURE(n <= CV_METRICS_INFO_MAX, CV_ERR_INTERNAL, "too many build-info labels");
    grow_lock(reg);
    for (size_t i = 0; i < n; i++) {
        snprintf(reg->info[i][0], INFO_NAME_BYTES, "%s", names[i]);
        snprintf(reg->info[i][1], INFO_VALUE_BYTES, "%s", values[i] ? values[i] : "");
    }
    reg->ninfo = n;
    pthread_mutex_unlock(&reg->grow);
    return CV_OK;
}

void cv_metrics_free(struct cv_metrics *reg)
{
    if (!reg) return;
    if (reg->shared) {
        /* other processes still use it: this one only lets go of its view,
         * and a worker's own service never does (the process exits) */
        if (reg != adopted) munmap(reg, reg->map_bytes);
        return;
    }
    for (unsigned m = 0; m < CV_M__COUNT; m++) free(reg->tables[m]);
    pthread_mutex_destroy(&reg->grow);
    free(reg);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Label values joined by SEP, each cut and stripped of control bytes, so a
 * value can neither alias another series nor break a rendered line. */
static void make_key(const struct family *f, const char *const l[CV_METRICS_LABELS_MAX], char key[KEY_MAX_BYTES])
{
    size_t n = 0;
    for (unsigned i = 0; i < f->nlabels; i++) {
        if (i) key[n++] = SEP;
        const char *v = l[i] ? l[i] : "";
        for (size_t k = 0; k < CV_METRICS_LABEL_VALUE_MAX_BYTES && v[k]; k++) {
            unsigned char c = (unsigned char)v[k];
            key[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    key[n] = '\0';
}

static struct series *probe(struct series *t, unsigned cap, uint64_t h, const char *key, int claim)
{
    for (unsigned i = 0; i < cap; i++) {
        struct series *s = &t[(h + i) & (cap - 1)];
        if (atomic_load_explicit(&s->ready, memory_order_acquire)) {
            if (s->hash == h && strcmp(s->key, key) == 0) return s;
            continue;
        }
        if (!claim) return NULL; /* the first empty slot ends the chain: absent */
        s->hash = h;
        memcpy(s->key, key, strlen(key) + 1);
        atomic_store_explicit(&s->ready, 1, memory_order_release);
        return s;
    }
    return NULL;
}

static struct series *series_of(struct cv_metrics *reg, enum cv_metric m, const char *const l[CV_METRICS_LABELS_MAX],
                                int create)
{
    if (!reg || (unsigned)m >= CV_M__COUNT) return NULL;
    const struct family *f = &families[m];
    char key[KEY_MAX_BYTES];
    make_key(f, l, key);
    uint64_t h = fnv(key);
    struct series *s = probe(reg->tables[m], f->capacity, h, key, 0);
    if (s || !create) return s;
    /* Rare: a new series. Probe again under the lock, so two threads adding
     * the same labels end in the same slot. */
    grow_lock(reg);
    s = probe(reg->tables[m], f->capacity, h, key, 1);
    pthread_mutex_unlock(&reg->grow);
    if (!s && m != CV_M_METRICS_DROPPED) cv_metric_inc(reg, CV_M_METRICS_DROPPED);
    return s;
}

void cv_metric_add(struct cv_metrics *reg, enum cv_metric m, uint64_t n)
{
    const char *none[CV_METRICS_LABELS_MAX] = {NULL, NULL, NULL};
    struct series *s = series_of(reg, m, none, 1);
    if (s) atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void cv_metric_inc(struct cv_metrics *reg, enum cv_metric m)
{
    cv_metric_add(reg, m, 1);
}

void cv_metric_set(struct cv_metrics *reg, enum cv_metric m, int64_t v)
{
    const char *none[CV_METRICS_LABELS_MAX] = {NULL, NULL, NULL};
    struct series *s = series_of(reg, m, none, 1);
    if (s) atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
}

void cv_metric_inc_l(struct cv_metrics *reg, enum cv_metric m, const char *l1, const char *l2, const char *l3)
{
    const char *l[CV_METRICS_LABELS_MAX] = {l1, l2, l3};
    struct series *s = series_of(reg, m, l, 1);
    if (s) atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void cv_metric_observe(struct cv_metrics *reg, enum cv_metric m, const char *l1, double value)
{
    if ((unsigned)m >= CV_M__COUNT || families[m].kind != HISTOGRAM) return;
    const char *l[CV_METRICS_LABELS_MAX] = {l1, NULL, NULL};
    struct series *s = series_of(reg, m, l, 1);
    if (!s) return;
    if (!(value >= 0)) value = 0; /* NaN and negatives (a clock step) count as zero */
    size_t b = 0;
    while (b < NBUCKETS && value > buckets[b])
        b++;
    if (b < NBUCKETS) atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    double ns = value * 1e9;
    atomic_fetch_add_explicit(&s->sum_ns, ns < 1.8e19 ? (uint64_t)ns : UINT64_C(18000000000000000000),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

uint64_t cv_metric_value(struct cv_metrics *reg, enum cv_metric m, const char *l1, const char *l2, const char *l3)
{
    const char *l[CV_METRICS_LABELS_MAX] = {l1, l2, l3};
    struct series *s = series_of(reg, m, l, 0);
    return s ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

/* ---- rendering ---- */

static cv_result put(struct cv_buf *out, const char *s)
{
    return cv_buf_append_str(out, s);
}

static cv_result put_escaped(struct cv_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\')
            CV_GUARD(put(out, "\\\\"));
        else if (c == '"')
            CV_GUARD(put(out, "\\\""));
        else if (c == '\n')
            CV_GUARD(put(out, "\\n"));
        else
            CV_GUARD(cv_buf_append(out, &c, 1));
    }
    return CV_OK;
}

static int name_ok(const char *s)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

cv_result cv_metrics_write_family(struct cv_buf *out, const char *name, const char *type, const char *help)
{
    CV_ENSURE(name_ok(name), CV_ERR_INTERNAL, "bad metric name");
    CV_GUARD(put(out, "# HELP "));
    CV_GUARD(put(out, name));
    CV_GUARD(put(out, " "));
    /* HELP text escapes backslash and newline only */
    for (const char *p = help; p && *p; p++) {
        if (*p == '\\')
            CV_GUARD(put(out, "\\\\"));
        else if (*p == '\n')
            CV_GUARD(put(out, "\\n"));
        else
            CV_GUARD(cv_buf_append(out, p, 1));
    }
    CV_GUARD(put(out, "\n# TYPE "));
    CV_GUARD(put(out, name));
    CV_GUARD(put(out, " "));
    CV_GUARD(put(out, type));
    return put(out, "\n");
}

/* name{l1="v1",…,extra="x"} — the key holds the values, SEP-separated. */
static cv_result put_labels(struct cv_buf *out, const struct family *f, const char *key, const char *extra_name,
                            const char *extra_value)
{
    if (f->nlabels == 0 && !extra_name) return CV_OK;
    CV_GUARD(put(out, "{"));
    const char *v = key;
    for (unsigned i = 0; i < f->nlabels; i++) {
        const char *end = strchr(v, SEP);
        size_t n = end ? (size_t)(end - v) : strlen(v);
        if (i) CV_GUARD(put(out, ","));
        CV_GUARD(put(out, f->labels[i]));
        CV_GUARD(put(out, "=\""));
        CV_GUARD(put_escaped(out, v, n));
        CV_GUARD(put(out, "\""));
        v = end ? end + 1 : v + n;
    }
    if (extra_name) {
        if (f->nlabels) CV_GUARD(put(out, ","));
        CV_GUARD(put(out, extra_name));
        CV_GUARD(put(out, "=\""));
        CV_GUARD(put(out, extra_value));
        CV_GUARD(put(out, "\""));
    }
    return put(out, "}");
}

static cv_result put_u64(struct cv_buf *out, uint64_t v)
{
    char n[32];
    snprintf(n, sizeof(n), " %llu\n", (unsigned long long)v);
    return put(out, n);
}

static cv_result render_histogram(struct cv_buf *out, const struct family *f, struct series *s)
{
    char name[128];
    uint64_t cumulative = 0;
    snprintf(name, sizeof(name), "%s_bucket", f->name);
    for (size_t b = 0; b < NBUCKETS; b++) {
        cumulative += atomic_load_explicit(&s->bucket[b], memory_order_relaxed);
        CV_GUARD(put(out, name));
        CV_GUARD(put_labels(out, f, s->key, "le", bucket_text[b]));
        CV_GUARD(put_u64(out, cumulative));
    }
    uint64_t count = atomic_load_explicit(&s->value, memory_order_relaxed);
    if (count < cumulative) count = cumulative; /* a scrape raced an observation */
    CV_GUARD(put(out, name));
    CV_GUARD(put_labels(out, f, s->key, "le", "+Inf"));
    CV_GUARD(put_u64(out, count));
    snprintf(name, sizeof(name), "%s_sum", f->name);
    CV_GUARD(put(out, name));
    CV_GUARD(put_labels(out, f, s->key, NULL, NULL));
    char sum[48];
    snprintf(sum, sizeof(sum), " %.9f\n", (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9);
    CV_GUARD(put(out, sum));
    snprintf(name, sizeof(name), "%s_count", f->name);
    CV_GUARD(put(out, name));
    CV_GUARD(put_labels(out, f, s->key, NULL, NULL));
    return put_u64(out, count);
}

/* CPU seconds, virtual and resident bytes and start time of the calling
 * worker, from its /proc/self/stat; 0 when unreadable. */
static void proc_figures_of(const char *path, struct proc_figures *f)
{
    memset(f, 0, sizeof(*f));
    char buf[1024];
    FILE *fp = fopen(path, "r");
    if (!fp) return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return;
    unsigned long long ut = 0, st = 0, start = 0, vsize = 0;
    long long rss = 0;
    /* after ')': state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24 */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
               &ut, &st, &start, &vsize, &rss) != 5)
        return;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) return;
    unsigned long long btime = 0;
    FILE *bf = fopen("/proc/stat", "r");
    if (bf) {
        char line[256];
        while (fgets(line, sizeof(line), bf))
            if (sscanf(line, "btime %llu", &btime) == 1) break;
        fclose(bf);
    }
    f->cpu = (double)(ut + st) / (double)hz;
    f->vsize = (double)vsize;
    f->rss = (double)rss * (double)sysconf(_SC_PAGESIZE);
    f->start = btime ? (double)btime + (double)start / (double)hz : 0;
}

/* Several workers: the process_* families carry a worker label (the slot,
 * stable across restarts), one series per live worker as of its last beat
 * (at most a second old; the answering worker's own is fresh), plus each
 * worker's request count and whether it is up. */
static cv_result render_workers(struct cv_metrics *reg, struct cv_buf *out)
{
    static const char *const lname[] = {"worker"};
    struct {
        const char *name, *type, *help;
    } fams[] = {
        {"credvault_worker_up", "gauge", "1 while the worker process in this slot is serving"},
        {"credvault_worker_requests_total", "counter", "requests answered by the worker in this slot"},
        {"process_cpu_seconds_total", "counter", "user and system CPU time spent, in seconds"},
        {"process_resident_memory_bytes", "gauge", "resident memory size in bytes"},
        {"process_virtual_memory_bytes", "gauge", "virtual memory size in bytes"},
        {"process_open_fds", "gauge", "open file descriptors"},
        {"process_max_fds", "gauge", "the limit of open file descriptors (RLIMIT_NOFILE)"},
        {"process_start_time_seconds", "gauge", "start time of the process since the unix epoch, in seconds"},
    };
    int pids[CV_METRICS_WORKERS_MAX];
    /* this worker's own figures fresh; the others' as of their last beat */
    if (self_slot >= 0 && (unsigned)self_slot < reg->nworkers) publish_figures(&reg->workers[self_slot]);
    for (unsigned i = 0; i < reg->nworkers; i++) {
        pids[i] = atomic_load(&reg->workers[i].pid);
        /* a worker that has not beaten yet has no figures to show */
        if (!atomic_load(&reg->workers[i].beat_ms)) pids[i] = 0;
    }
    struct rlimit rl;
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (double)rl.rlim_cur : 0;
    for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
        CV_GUARD(cv_metrics_write_family(out, fams[k].name, fams[k].type, fams[k].help));
        for (unsigned i = 0; i < reg->nworkers; i++) {
            const struct worker_slot *w = &reg->workers[i];
            /* the slot's own counters survive a restart; a process's figures exist while it does */
            if (k >= 2 && pids[i] <= 0) continue;
            char slot[12];
            snprintf(slot, sizeof(slot), "%u", i);
            const char *lv[] = {slot};
            double v = 0;
            switch (k) {
            case 0: v = pids[i] > 0 && atomic_load(&w->ready); break;
            case 1: v = (double)atomic_load(&w->requests); break;
            case 2: v = (double)atomic_load(&w->cpu_us) / 1e6; break;
            case 3: v = (double)atomic_load(&w->rss_bytes); break;
            case 4: v = (double)atomic_load(&w->vsize_bytes); break;
            case 5: v = (double)atomic_load(&w->open_fds); break;
            case 6: v = max_fds; break;
            default: v = (double)atomic_load(&w->start_ms) / 1e3; break;
            }
            CV_GUARD(cv_metrics_write_sample(out, fams[k].name, lname, lv, 1, v));
        }
    }
    return CV_OK;
}

cv_result cv_metrics_render(struct cv_metrics *reg, struct cv_buf *out)
{
    CV_ENSURE_REF(reg);
    static const char *const kind_names[] = {"counter", "gauge", "histogram"};
    CV_GUARD(cv_metrics_write_family(out, "credvault_build_info", "gauge",
                                     "always 1; the labels name the version, commit, build type and libraries"));
    grow_lock(reg);
    const char *names[CV_METRICS_INFO_MAX], *values[CV_METRICS_INFO_MAX];
    size_t ninfo = reg->ninfo;
    for (size_t i = 0; i < ninfo; i++) {
        names[i] = reg->info[i][0];
        values[i] = reg->info[i][1];
    }
    cv_result r = cv_metrics_write_sample(out, "credvault_build_info", names, values, ninfo, 1);
    pthread_mutex_unlock(&reg->grow);
    CV_GUARD(r);
    for (unsigned m = 0; m < CV_M__COUNT; m++) {
        const struct family *f = &families[m];
        /* an unlabelled family always shows, at 0 until it moves, so alerts
         * see the series before the first event */
        if (f->nlabels == 0) {
            const char *none[CV_METRICS_LABELS_MAX] = {NULL, NULL, NULL};
            (void)series_of(reg, (enum cv_metric)m, none, 1);
        }
        CV_GUARD(cv_metrics_write_family(out, f->name, kind_names[f->kind], f->help));
        for (unsigned i = 0; i < f->capacity; i++) {
            struct series *s = &reg->tables[m][i];
            if (!atomic_load_explicit(&s->ready, memory_order_acquire)) continue;
            if (f->kind == HISTOGRAM) {
                CV_GUARD(render_histogram(out, f, s));
                continue;
            }
            CV_GUARD(put(out, f->name));
            CV_GUARD(put_labels(out, f, s->key, NULL, NULL));
            uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
            if (f->kind == GAUGE) {
                char n[32];
                snprintf(n, sizeof(n), " %lld\n", (long long)(int64_t)v);
                CV_GUARD(put(out, n));
            } else {
                CV_GUARD(put_u64(out, v));
            }
        }
    }
    if (reg->shared) return render_workers(reg, out);
    return cv_metrics_render_process(out);
}

cv_result cv_metrics_write_sample(struct cv_buf *out, const char *name, const char *const *label_names,
                                  const char *const *label_values, size_t nlabels, double value)
{
    CV_ENSURE(name_ok(name), CV_ERR_INTERNAL, "bad metric name");
    for (size_t i = 0; i < nlabels; i++)
        CV_ENSURE(name_ok(label_names[i]), CV_ERR_INTERNAL, "bad label name");
    CV_GUARD(put(out, name));
    if (nlabels) {
        CV_GUARD(put(out, "{"));
        for (size_t i = 0; i < nlabels; i++) {
            const char *v = label_values[i] ? label_values[i] : "";
            size_t n = strnlen(v, CV_METRICS_LABEL_VALUE_MAX_BYTES);
            if (i) CV_GUARD(put(out, ","));
            CV_GUARD(put(out, label_names[i]));
            CV_GUARD(put(out, "=\""));
            for (size_t k = 0; k < n; k++) {
                char c = (unsigned char)v[k] < 0x20 ? '?' : v[k];
                CV_GUARD(put_escaped(out, &c, 1));
            }
            CV_GUARD(put(out, "\""));
        }
        CV_GUARD(put(out, "}"));
    }
    char n[48];
    if (value == (double)(int64_t)value)
        snprintf(n, sizeof(n), " %lld\n", (long long)(int64_t)value);
    else
        snprintf(n, sizeof(n), " %.9g\n", value);
    return put(out, n);
}
