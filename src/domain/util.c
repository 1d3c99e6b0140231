/* Small helpers shared by the use cases: roles, time formats and paging
 * parameters (cv_audit lives in audit.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/domain.h"

static const char *const role_names[CV_ROLE__COUNT] = {"admin", "tenant-admin", "auditor", "workload"};

const char *cv_role_name(enum cv_role r) { return (unsigned)r < CV_ROLE__COUNT ? role_names[r] : "unknown"; }

int cv_role_parse(const char *s, enum cv_role *out)
{
    for (unsigned i = 0; i < CV_ROLE__COUNT; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum cv_role)i;
            return 0;
        }
    }
    return -1;
}

void cv_principal_cli(struct cv_principal *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "cli");
    p->role = CV_ROLE_ADMIN;
    p->request_id = "cli";
}

int64_t cv_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cv_result cv_parse_uint_param(const char *s, unsigned def, unsigned max, const char *name, unsigned *out)
{
    if (!s) {
        *out = def;
        return CV_OK;
    }
    CV_ENSURE(*s >= '0' && *s <= '9' && strlen(s) <= 9, CV_ERR_INPUT, "%s must be a whole number", name);
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    CV_ENSURE(errno == 0 && *end == '\0' && v <= max, CV_ERR_INPUT, "%s must be a whole number up to %u", name, max);
    *out = (unsigned)v;
    return CV_OK;
}

char *cv_json_dump_malloc(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return NULL;
    char *d = strdup(s);
    cv_json_free(s);
    return d;
}

cv_result cv_page_params(const char *limit, const char *offset, unsigned *lim, unsigned *off)
{
    CV_GUARD(cv_parse_uint_param(limit, CV_LIST_DEFAULT_LIMIT, CV_LIST_MAX_LIMIT, "limit", lim));
    return cv_parse_uint_param(offset, 0, 1000000000u, "offset", off);
}

cv_result cv_page_doc(const char *key, json_t *items, uint64_t total, unsigned lim, unsigned off, json_t **out)
{
    *out = json_pack("{s:o, s:I, s:I, s:I}", key, items, "total", (json_int_t)total, "limit", (json_int_t)lim,
                     "offset", (json_int_t)off);
    CV_ENSURE(*out != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

cv_result cv_page_meta(json_t *items, uint64_t total, unsigned lim, unsigned off, json_t **items_out,
                       json_t **meta)
{
    *items_out = NULL;
    *meta = json_pack("{s:I, s:I, s:I}", "total", (json_int_t)total, "limit", (json_int_t)lim, "offset",
                      (json_int_t)off);
    if (!*meta) {
        json_decref(items);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    *items_out = items;
    return CV_OK;
}

cv_result cv_check_fields(json_t *body, const char *const *known, size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        int ok = 0;
        for (size_t i = 0; i < n; i++) ok |= strcmp(k, known[i]) == 0;
        CV_ENSURE(ok, CV_ERR_INPUT, "unknown field '%.64s'", k);
    }
    return CV_OK;
}
