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
    int full; /* something did not fit: nothing more is added */
};

/* Room left before the closing "}\n". */
static size_t room(const struct line *l) { return sizeof(l->buf) - 2 - l->len; }

/* All or nothing, so a line never ends inside an escape or a character. */
static int put(struct line *l, const char *s, size_t n)
{
    if (l->full || n > room(l)) {
        l->full = 1;
        return 0;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return 1;
}

/* Length of the well-formed UTF-8 character at s (RFC 3629: shortest form,
 * no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n <= 1) return n;
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string that is valid UTF-8 whatever bytes `s` holds (a request path
 * is the client's choice): control characters and DEL escaped, a byte that
 * starts no well-formed character written as U+FFFD. Cut short, never cut
 * inside a character, when the line is full; `keep` bytes stay free after
 * the closing quote. */
static void put_string(struct line *l, const char *s, size_t keep)
{
    if (l->full || room(l) < 2 + keep) {
        l->full = 1;
        return;
    }
    l->buf[l->len++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        const char *out = esc;
        size_t n = utf8_char(p), adv = n ? n : 1;
        if (*p == '"' || *p == '\\') {
            out = *p == '"' ? "\\\"" : "\\\\";
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            n = 6;
        } else if (n == 0) {
            memcpy(esc, "\\ufffd", 6);
            n = 6;
        } else {
            out = (const char *)p;
        }
        if (n + 1 + keep > room(l)) {
            l->full = 1;
            break;
        }
        memcpy(l->buf + l->len, out, n);
        l->len += n;
        p += adv;
    }
    l->buf[l->len++] = '"';
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
    put_string(&l, when, 0);
    put(&l, ",\"level\":", 9);
    put_string(&l, level_names[level], 0);
    put(&l, ",\"event\":", 9);
    put_string(&l, event, 0);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        /* a pair is written whole or not at all: the key with at least an
         * empty value (keys are plain names, never escaped) */
        if (l.full || room(&l) < strlen(k) + 6) {
            l.full = 1;
            break;
        }
        put(&l, ",", 1);
        put_string(&l, k, 3);
        put(&l, ":", 1);
        put_string(&l, v ? v : "", 0);
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
