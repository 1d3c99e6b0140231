/* Metrics that every layer updates (counters, gauges and
 * histograms), rendered in the Prometheus text format 0.0.4 for GET /metrics.
 * Label values are methods, route patterns, status codes, CK_RV names and
 * categories: never a secret, a token, a request body or a raw path. Updates
 * are lock-free atomics; a new labelled series is made once under a lock, and
 * each family holds a bounded number of series (more are counted as dropped). */
#ifndef CREDVAULT_METRICS_H
#define CREDVAULT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/buf.h"
#include "credvault/result.h"

#define CV_METRICS_LABELS_MAX 3
#define CV_METRICS_LABEL_VALUE_MAX_BYTES 80 /* longer values are cut */
#define CV_METRICS_RENDER_MAX_BYTES (4 * 1024 * 1024)

/* Every family, in the order they are rendered. The table in
 * src/core/metrics.c gives each its name, type, help and label names. */
enum cv_metric {
    /* http */
    CV_M_HTTP_REQUESTS, /* counter {method, route, status} */
    CV_M_HTTP_DURATION, /* histogram {route}, seconds */
    CV_M_AUTH_FAILURES, /* counter */
    CV_M_RATE_LIMITED,  /* counter {class, scope} */
    /* hsm */
    CV_M_HSM_OPERATIONS,      /* counter {result} */
    CV_M_HSM_DURATION,        /* histogram, seconds per operation (retries included) */
    CV_M_HSM_ERRORS,          /* counter {rv}: every failed PKCS#11 call, by CK_RV name */
    CV_M_HSM_RECOVERIES,      /* counter {result} */
    CV_M_HSM_UP,              /* gauge: 1 while the token answers, 0 after a failed recovery */
    CV_M_KEY_CACHE_HITS,      /* counter */
    CV_M_KEY_CACHE_MISSES,    /* counter */
    CV_M_KEY_CACHE_EVICTIONS, /* counter */
    /* domain */
    CV_M_DECRYPT_FAILURES,      /* counter: records that did not open (tampered, wrong key, malformed) */
    CV_M_INTEGRITY_FAILURES,    /* counter {kind}: rows a database writer made or changed (token, record) */
    CV_M_AUDIT_EVENTS,          /* counter {durability} */
    CV_M_AUDIT_FAILURES,        /* counter: events that could not be written (the operation failed) */
    CV_M_AUDIT_CHECKPOINTS,     /* counter {result} */
    CV_M_AUDIT_CHECKPOINT_TIME, /* gauge: unix time of the last checkpoint this process signed */
    CV_M_AUDIT_BATCHES,         /* counter: group commits of lone events */
    CV_M_AUDIT_BATCHED_EVENTS,  /* counter: events written by them */
    CV_M_AUDIT_BATCH_LARGEST,   /* gauge: the most events one of them held */
    CV_M_AUDIT_BATCH_QUEUED,    /* gauge: events waiting for the next one */
    /* store */
    CV_M_DB_ERRORS,       /* counter {category}: statements that failed, connections lost */
    /* workers */
    CV_M_WORKER_RESTARTS, /* counter: worker processes started again by the supervisor */
    CV_M_METRICS_DROPPED, /* counter: updates to a series that did not fit its family */
    CV_M__COUNT
};

/* A registry: one per service object, so that two services in one process
 * share nothing. Every update below is a no-op on a NULL registry (a
 * command-line run, or a test that does not count). */
struct cv_metrics;
CV_RESULT cv_metrics_new(struct cv_metrics **out);
void cv_metrics_free(struct cv_metrics *reg);

/* Worker processes (CREDVAULT_WORKERS > 1). The supervisor makes one
 * registry in an anonymous MAP_SHARED mapping before it forks (robust,
 * process-shared lock; atomics), so a scrape served by any worker shows
 * every worker's counts. A worker adopts it after fork: its cv_metrics_new
 * then hands out that registry, and its updates land in slot `slot`. With a
 * shared registry, render gives process_* per worker (label worker="slot")
 * and credvault_worker_up / credvault_worker_requests_total. */
#define CV_METRICS_WORKERS_MAX 64
CV_RESULT cv_metrics_new_shared(unsigned workers, struct cv_metrics **out);
void cv_metrics_adopt(struct cv_metrics *reg, unsigned slot);
/* the supervisor: a process now fills `slot` (pid 0: none) */
void cv_metrics_worker_started(struct cv_metrics *reg, unsigned slot, int pid);
int cv_metrics_worker_pid(struct cv_metrics *reg, unsigned slot);
/* the supervisor: whether the slot's worker said it is ready; the age of
 * its last beat (INT64_MAX: none yet) and whether that beat was healthy */
int cv_metrics_worker_state(struct cv_metrics *reg, unsigned slot, int64_t *beat_age_ms, int *healthy);
/* the worker itself (no-ops outside a shared registry) */
void cv_metrics_worker_ready(struct cv_metrics *reg);
void cv_metrics_worker_beat(struct cv_metrics *reg, int healthy);
void cv_metrics_worker_request(struct cv_metrics *reg);

/* Unlabelled counters and gauges. */
void cv_metric_inc(struct cv_metrics *reg, enum cv_metric m);
void cv_metric_add(struct cv_metrics *reg, enum cv_metric m, uint64_t n);
void cv_metric_set(struct cv_metrics *reg, enum cv_metric m, int64_t v);
/* Labelled counter: one value per label the family declares (NULL is ""). */
void cv_metric_inc_l(struct cv_metrics *reg, enum cv_metric m, const char *l1, const char *l2, const char *l3);
/* Histogram observation (l1: the family's label, or NULL when it has none). */
void cv_metric_observe(struct cv_metrics *reg, enum cv_metric m, const char *l1, double value);

/* The current value of a series, for tests and the checkpoint logic
 * (histograms: the observation count). 0 when the series does not exist. */
uint64_t cv_metric_value(struct cv_metrics *reg, enum cv_metric m, const char *l1, const char *l2, const char *l3);

/* The build's identity, rendered as credvault_build_info{name="value",…} 1
 * (version, commit, build type, library versions). Copies the strings;
 * replaces what an earlier call set. At most CV_METRICS_INFO_MAX pairs. */
#define CV_METRICS_INFO_MAX 12
CV_RESULT cv_metrics_set_build_info(struct cv_metrics *reg, const char *const *names, const char *const *values,
                                    size_t n);

/* Appends every family to `out` (a buffer made with cv_buf_init): the build
 * info, the registry's families (labelled counters that alerts use exist at
 * 0 from the start, for their known label values) and the process_* ones. */
CV_RESULT cv_metrics_render(struct cv_metrics *reg, struct cv_buf *out);
/* process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds of the calling process (src/core/metrics_process.c). */
CV_RESULT cv_metrics_render_process(struct cv_buf *out);

/* For families computed elsewhere at scrape time (gauges read from the
 * database): the HELP/TYPE lines, then samples. Names must be
 * [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped here. */
CV_RESULT cv_metrics_write_family(struct cv_buf *out, const char *name, const char *type, const char *help);
CV_RESULT cv_metrics_write_sample(struct cv_buf *out, const char *name, const char *const *label_names,
                                  const char *const *label_values, size_t nlabels, double value);


#endif
