/* JSON-lines logger on stderr. One write(2) per line so lines from worker
 * threads never interleave. Values are escaped; callers never pass secrets. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "credvault/log.h"

#define LOG_LINE_MAX_BYTES 2048

static enum cv_log_level current = CV_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cv_log_set_level(enum cv_log_level level) { current = level; }
int cv_log_enabled(enum cv_log_level level) { return level <= current; }

int cv_log_level_parse(const char *s, enum cv_log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum cv_log_level)i;
            return 0;
        }
    }
    return -1;
}

struct line {
    char buf[LOG_LINE_MAX_BYTES];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    /* leave room for the closing "}\n" */
    if (l->len + n > sizeof(l->buf) - 2) n = sizeof(l->buf) - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_string(struct line *l, const char *s)
{
    put(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

void cv_log(enum cv_log_level level, const char *event, ...)
{
    if (!cv_log_enabled(level)) return;
    struct line l = {.len = 0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    put(&l, "{\"time\":", 8);
    put_string(&l, when);
    put(&l, ",\"level\":", 9);
    put_string(&l, level_names[level]);
    put(&l, ",\"event\":", 9);
    put_string(&l, event);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        put(&l, ",", 1);
        put_string(&l, k);
        put(&l, ":", 1);
        put_string(&l, v ? v : "");
    }
    va_end(ap);
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}

/* ---- bursts of one failure ---- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cv_log_burst_failed(struct cv_log_burst *b, const char *event)
{
    long long now = mono_ms();
    int was = 0;
    if (atomic_compare_exchange_strong(&b->failing, &was, 1)) {
        atomic_store(&b->since_ms, now);
        atomic_store(&b->window_ms, now);
        atomic_store(&b->count, 0);
        return 1;
    }
    atomic_fetch_add(&b->count, 1);
    long long w = atomic_load(&b->window_ms);
    if (now - w >= CV_LOG_BURST_INTERVAL_MS && atomic_compare_exchange_strong(&b->window_ms, &w, now)) {
        char name[96], n[24], s[24];
        snprintf(name, sizeof(name), "%s_repeated", event);
        snprintf(n, sizeof(n), "%llu", atomic_exchange(&b->count, 0));
        snprintf(s, sizeof(s), "%lld", (now - w) / 1000);
        cv_log(CV_LOG_WARN, name, "count", n, "interval_s", s, (char *)NULL);
    }
    return 0;
}

void cv_log_burst_ok(struct cv_log_burst *b, const char *event)
{
    if (!atomic_load(&b->failing) || !atomic_exchange(&b->failing, 0)) return;
    char name[96], n[24], ms[24];
    snprintf(name, sizeof(name), "%s_recovered", event);
    snprintf(n, sizeof(n), "%llu", atomic_exchange(&b->count, 0));
    snprintf(ms, sizeof(ms), "%lld", mono_ms() - atomic_load(&b->since_ms));
    cv_log(CV_LOG_INFO, name, "after_ms", ms, "repeats", n, (char *)NULL);
}
