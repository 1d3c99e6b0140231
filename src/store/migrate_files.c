/* The migration folder: NNNN_verb_object.sql files in version order. Reads
 * files only; never talks to the database. A name that looks like a
 * migration but is malformed is refused rather than skipped, so a typo
 * cannot silently leave a change unapplied. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

#ifndef CV_MIGRATIONS_DIR
#define CV_MIGRATIONS_DIR "migrations"
#endif

const char *cv_store_migrations_dir(const char *dir) { return dir && *dir ? dir : CV_MIGRATIONS_DIR; }

/* "0007_create_things.sql" -> version 7, name "0007_create_things" */
static int parse_name(const char *file, uint32_t *version, char name[CV_MIGRATION_NAME_MAX_BYTES + 1])
{
    size_t n = strlen(file);
    if (n < 10 || n - 4 > CV_MIGRATION_NAME_MAX_BYTES || strcmp(file + n - 4, ".sql") != 0) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (file[i] < '0' || file[i] > '9') return 0;
        v = v * 10 + (uint32_t)(file[i] - '0');
    }
    if (v == 0 || file[4] != '_') return 0;
    for (size_t i = 5; i < n - 4; i++) {
        char c = file[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    *version = v;
    memcpy(name, file, n - 4);
    name[n - 4] = '\0';
    return 1;
}

static int by_version(const void *a, const void *b)
{
    uint32_t x = ((const struct cv_migration *)a)->version, y = ((const struct cv_migration *)b)->version;
    return x < y ? -1 : x > y;
}

static cv_result add(struct cv_migration_set *set, const char *dir, const char *file, uint32_t version,
                     const char *name)
{
    CV_ENSURE(set->count < CV_MIGRATIONS_MAX, CV_ERR_INPUT, "more than %d migration files", CV_MIGRATIONS_MAX);
    struct cv_migration *items = realloc(set->items, (set->count + 1) * sizeof(*items));
    CV_ENSURE(items != NULL, CV_ERR_MEMORY, "out of memory");
    set->items = items;
    struct cv_migration *m = &items[set->count];
    memset(m, 0, sizeof(*m));
    size_t len = strlen(dir) + 1 + strlen(file) + 1;
    m->path = malloc(len);
    CV_ENSURE(m->path != NULL, CV_ERR_MEMORY, "out of memory");
    snprintf(m->path, len, "%s/%s", dir, file);
    m->version = version;
    snprintf(m->name, sizeof(m->name), "%s", name);
    set->count++;
    return CV_OK;
}

cv_result cv_store_migrations_list(const char *dir, struct cv_migration_set *out)
{
    memset(out, 0, sizeof(*out));
    dir = cv_store_migrations_dir(dir);
    DIR *d = opendir(dir);
    CV_ENSURE(d != NULL, CV_ERR_INPUT, "cannot open the migrations folder %s: %s", dir, strerror(errno));
    cv_result r = CV_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".sql") != 0) continue; /* READMEs and the like */
        uint32_t version;
        char name[CV_MIGRATION_NAME_MAX_BYTES + 1];
        if (!parse_name(e->d_name, &version, name)) {
            r = cv_fail(CV_ERR_INPUT, "migration file %.128s is not named NNNN_verb_object.sql", e->d_name);
            goto out;
        }
        CV_GUARD_OUT(r, add(out, dir, e->d_name, version, name));
    }
    if (out->count == 0) {
        r = cv_fail(CV_ERR_INPUT, "no migration files in %s", dir);
        goto out;
    }
    qsort(out->items, out->count, sizeof(out->items[0]), by_version);
    for (size_t i = 1; i < out->count; i++) {
        if (out->items[i].version == out->items[i - 1].version) {
            r = cv_fail(CV_ERR_INPUT, "two migration files have version %04u", out->items[i].version);
            goto out;
        }
    }
out:
    closedir(d);
    if (cv_failed(r)) cv_store_migrations_free(out);
    return r;
}

void cv_store_migrations_free(struct cv_migration_set *set)
{
    for (size_t i = 0; i < set->count; i++) free(set->items[i].path);
    free(set->items);
    memset(set, 0, sizeof(*set));
}

cv_result cv_store_migration_read(const struct cv_migration *m, char **sql)
{
    *sql = NULL;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "cannot open %s: %s", m->path, strerror(errno));
    cv_result r = CV_OK;
    char *buf = malloc(CV_MIGRATION_MAX_BYTES + 1);
    if (!buf) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, CV_MIGRATION_MAX_BYTES + 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            r = cv_fail(CV_ERR_INPUT, "cannot read %s: %s", m->path, strerror(errno));
            goto out;
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n > CV_MIGRATION_MAX_BYTES) {
            r = cv_fail(CV_ERR_INPUT, "%s is larger than %zu bytes", m->path, CV_MIGRATION_MAX_BYTES);
            goto out;
        }
    }
    if (memchr(buf, '\0', n)) {
        r = cv_fail(CV_ERR_INPUT, "%s holds a NUL byte", m->path);
        goto out;
    }
    buf[n] = '\0';
    *sql = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}
