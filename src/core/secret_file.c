/* The one reader of secret files (include/credvault/secret_file.h). The
 * checks are made on the opened descriptor, not the path, so the file that
 * was checked is the file that is read. Content goes straight into secret
 * memory and is never quoted in an error. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credvault/buf.h"
#include "credvault/secret_file.h"

static cv_result check_owner_and_mode(const char *what, const char *path, int fd)
{
    struct stat sb;
    CV_ENSURE(fstat(fd, &sb) == 0, CV_ERR_INPUT, "%s: cannot inspect %s: %s", what, path, strerror(errno));
    CV_ENSURE(S_ISREG(sb.st_mode), CV_ERR_INPUT, "%s: %s is not a regular file", what, path);
    uid_t me = geteuid();
    CV_ENSURE(sb.st_uid == me, CV_ERR_INPUT, "%s: %s is owned by uid %u, not by the user credvault runs as (uid %u)",
              what, path, (unsigned)sb.st_uid, (unsigned)me);
    /* readable by others leaks it; writable by others lets them choose it */
    CV_ENSURE((sb.st_mode & (S_IRWXG | S_IRWXO)) == 0, CV_ERR_INPUT,
              "%s: %s is open to group or others (mode %04o); it must be 0600 or 0400", what, path,
              (unsigned)(sb.st_mode & 07777));
    return CV_OK;
}

static cv_result read_all(const char *what, const char *path, int fd, char *s, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        ssize_t r = read(fd, s + *n, max + 1 - *n);
        if (r < 0 && errno == EINTR) continue;
        CV_ENSURE(r >= 0, CV_ERR_INPUT, "%s: cannot read %s: %s", what, path, strerror(errno));
        if (r == 0) return CV_OK;
        *n += (size_t)r;
        CV_ENSURE(*n <= max, CV_ERR_INPUT, "%s: %s is larger than %zu bytes", what, path, max);
    }
}

cv_result cv_secret_file_read(const char *what, const char *path, size_t max, char **out, size_t *len)
{
    CV_ENSURE_REF(what);
    CV_ENSURE_REF(out);
    *out = NULL;
    CV_ENSURE(path && *path, CV_ERR_INPUT, "%s names no file", what);
    CV_ENSURE(max >= 1 && max < SIZE_MAX - 1, CV_ERR_INTERNAL, "%s: invalid limit", what);
    /* O_NONBLOCK: a FIFO or device named by mistake must not hang start-up */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "%s: cannot open %s: %s", what, path, strerror(errno));
    char *s = NULL;
    size_t n = 0;
    cv_result r;
    CV_GUARD_OUT(r, check_owner_and_mode(what, path, fd));
    s = cv_secret_alloc(max + 1);
    if (!s) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    CV_GUARD_OUT(r, read_all(what, path, fd, s, max, &n));
    /* the one newline rule: a single trailing LF or CRLF is not the secret's */
    if (n > 0 && s[n - 1] == '\n' && --n > 0 && s[n - 1] == '\r') n--;
    s[n] = '\0';
    if (n == 0 || memchr(s, '\0', n)) {
        r = cv_fail(CV_ERR_INPUT, "%s: %s is empty or holds a NUL byte", what, path);
        goto out;
    }
    *out = s;
    s = NULL;
    if (len) *len = n;
out:
    close(fd);
    cv_secret_free(s); /* wipes whatever was read */
    return r;
}
