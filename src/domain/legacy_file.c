/* The legacy table exported as JSON lines (row_to_json), for operators who
 * cannot reach the old database: one object per line with the table's
 * columns. Strict: known columns only, each of its type; a line that is not
 * such an object becomes a reported row, never a silent skip. Lines are
 * bounded, and nothing read here is ever logged. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "credvault/buf.h"
#include "domain/legacy.h"

struct legacy_file {
    FILE *f;
    char *line; /* CV_LEGACY_LINE_MAX_BYTES + 1 */
    uint64_t lineno;
};

static const char *const columns[] = {"id",          "server_id",  "template_id",
                                      "server_name", "encrypted_env", "configured_integrations",
                                      "created_at",  "created_by", "last_updated"};

/* Reads one line (without its newline) into lf->line. 1: a line, 0: end of
 * file. A line over the limit is consumed whole and *too_long set. */
static int read_line(struct legacy_file *lf, size_t *len, int *too_long)
{
    size_t n = 0;
    int c, any = 0;
    *too_long = 0;
    while ((c = getc(lf->f)) != EOF) {
        any = 1;
        if (c == '\n') break;
        if (n < CV_LEGACY_LINE_MAX_BYTES) lf->line[n++] = (char)c;
        else *too_long = 1;
    }
    if (!any) return 0;
    lf->lineno++;
    if (n > 0 && lf->line[n - 1] == '\r') n--;
    lf->line[n] = '\0';
    *len = n;
    return 1;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

static cv_result file_count(void *impl, uint64_t *n)
{
    struct legacy_file *lf = impl;
    CV_ENSURE(fseek(lf->f, 0, SEEK_SET) == 0, CV_ERR_INPUT, "cannot read the export file: %s", strerror(errno));
    lf->lineno = 0;
    uint64_t rows = 0;
    size_t len;
    int too_long;
    while (read_line(lf, &len, &too_long)) {
        if (too_long || !blank(lf->line, len)) rows++;
        CV_ENSURE(rows <= CV_LEGACY_ROWS_MAX, CV_ERR_TOO_LARGE, "the export has more than %u rows; split it",
                  CV_LEGACY_ROWS_MAX);
    }
    CV_ENSURE(!ferror(lf->f), CV_ERR_INPUT, "cannot read the export file");
    *n = rows;
    return CV_OK;
}

static cv_result file_rewind(void *impl)
{
    struct legacy_file *lf = impl;
    CV_ENSURE(fseek(lf->f, 0, SEEK_SET) == 0, CV_ERR_INPUT, "cannot read the export file: %s", strerror(errno));
    clearerr(lf->f);
    lf->lineno = 0;
    return CV_OK;
}

static void copy_string(json_t *v, const char *name, char *dst, size_t cap, int *present, int required,
                        struct cv_legacy_row *row)
{
    dst[0] = '\0';
    if (present) *present = 0;
    if (!v || json_is_null(v)) {
        if (required) cv_legacy_row_defect(row, "%s is missing", name);
        return;
    }
    if (!json_is_string(v)) {
        cv_legacy_row_defect(row, "%s must be a string", name);
        return;
    }
    size_t n = json_string_length(v);
    if (n >= cap) {
        cv_legacy_row_defect(row, "%s is longer than %zu bytes", name, cap - 1);
        return;
    }
    memcpy(dst, json_string_value(v), n + 1);
    if (present) *present = 1;
}

static void copy_time(json_t *v, const char *name, int64_t *ms, int *present, struct cv_legacy_row *row)
{
    *ms = 0;
    *present = 0;
    if (!v || json_is_null(v)) return;
    /* "2025-12-08T19:40:22.162", "2025-12-08 19:40:22.162+00:00", "…Z": a
     * database export; no zone means UTC */
    if (!json_is_string(v) || cv_failed(cv_time_parse(name, json_string_value(v), CV_TIME_OFFSET, ms))) {
        cv_legacy_row_defect(row, "%s is not a time such as 2025-12-08T19:40:22.162+00:00", name);
        return;
    }
    *present = 1;
}

/* A column that holds JSON or text: a string as it is, an array or object
 * as its compact JSON text (a jsonb column exports as JSON, a text one as a string). */
static cv_result json_text(json_t *v, const char *name, size_t max, int allow_structured, char **out,
                           struct cv_legacy_row *row)
{
    *out = NULL;
    if (!v || json_is_null(v)) return CV_OK;
    char *s = NULL;
    if (json_is_string(v)) {
        s = strdup(json_string_value(v));
    } else if (allow_structured && (json_is_array(v) || json_is_object(v))) {
        char *d = json_dumps(v, JSON_COMPACT);
        s = d ? strdup(d) : NULL;
        cv_json_free(d);
    } else {
        cv_legacy_row_defect(row, "%s has the wrong type", name);
        return CV_OK;
    }
    CV_ENSURE(s != NULL, CV_ERR_MEMORY, "out of memory");
    if (strlen(s) > max) {
        free(s);
        cv_legacy_row_defect(row, "%s is longer than %zu bytes", name, max);
        return CV_OK;
    }
    *out = s;
    return CV_OK;
}

static cv_result parse_line(const char *line, size_t len, struct cv_legacy_row *row)
{
    json_error_t jerr;
    /* jansson's message would quote the line: it is not passed on */
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        cv_legacy_row_defect(row, "the line is not one JSON object with distinct keys");
        return CV_OK;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int known = 0;
        for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) known |= strcmp(k, columns[i]) == 0;
        if (!known) cv_legacy_row_defect(row, "unknown column '%.64s'", k);
    }
    copy_string(json_object_get(o, "id"), "id", row->id, sizeof(row->id), NULL, 0, row);
    copy_string(json_object_get(o, "server_id"), "server_id", row->server_id, sizeof(row->server_id), NULL, 1, row);
    copy_string(json_object_get(o, "template_id"), "template_id", row->template_id, sizeof(row->template_id), NULL, 1,
                row);
    copy_string(json_object_get(o, "server_name"), "server_name", row->server_name, sizeof(row->server_name),
                &row->has_server_name, 0, row);
    copy_string(json_object_get(o, "created_by"), "created_by", row->created_by, sizeof(row->created_by),
                &row->has_created_by, 0, row);
    copy_time(json_object_get(o, "created_at"), "created_at", &row->created_at_ms, &row->has_created_at, row);
    copy_time(json_object_get(o, "last_updated"), "last_updated", &row->last_updated_ms, &row->has_last_updated, row);
    cv_result r;
    CV_GUARD_OUT(r, json_text(json_object_get(o, "encrypted_env"), "encrypted_env", CV_LEGACY_ENV_TEXT_MAX_BYTES, 1,
                              &row->encrypted_env, row));
    CV_GUARD_OUT(r, json_text(json_object_get(o, "configured_integrations"), "configured_integrations",
                              CV_LEGACY_INTEGRATIONS_MAX_BYTES, 1, &row->configured_integrations, row));
    if (!row->encrypted_env) cv_legacy_row_defect(row, "encrypted_env is missing");
out:
    json_decref(o);
    return r;
}

static cv_result file_next(void *impl, struct cv_legacy_row *row, int *done)
{
    struct legacy_file *lf = impl;
    cv_legacy_row_free(row);
    *done = 0;
    size_t len;
    int too_long;
    for (;;) {
        if (!read_line(lf, &len, &too_long)) {
            CV_ENSURE(!ferror(lf->f), CV_ERR_INPUT, "cannot read the export file");
            *done = 1;
            return CV_OK;
        }
        if (too_long || !blank(lf->line, len)) break;
    }
    row->ordinal = lf->lineno;
    if (too_long) {
        cv_legacy_row_defect(row, "the line is longer than %zu bytes", CV_LEGACY_LINE_MAX_BYTES);
        return CV_OK;
    }
    cv_result r = parse_line(lf->line, len, row);
    cv_wipe(lf->line, len);
    if (cv_failed(r)) cv_legacy_row_free(row);
    return r;
}

static void file_close(void *impl)
{
    struct legacy_file *lf = impl;
    if (!lf) return;
    if (lf->f) fclose(lf->f);
    if (lf->line) cv_secret_free(lf->line);
    free(lf);
}

cv_result cv_legacy_source_file(const char *path, struct cv_legacy_source *out)
{
    /* a regular file: the import reads it twice (key check, then import) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        CV_BAIL(CV_ERR_INPUT, "%s is not a regular file", path);
    }
    struct legacy_file *lf = calloc(1, sizeof(*lf));
    if (lf) lf->line = cv_secret_alloc(CV_LEGACY_LINE_MAX_BYTES + 1);
    if (lf) lf->f = fdopen(fd, "r");
    if (!lf || !lf->line || !lf->f) {
        if (!lf || !lf->f) close(fd);
        file_close(lf);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    *out = (struct cv_legacy_source){.impl = lf, .count = file_count, .rewind = file_rewind, .next = file_next,
                                     .close = file_close};
    return CV_OK;
}
