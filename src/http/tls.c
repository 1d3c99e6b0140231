/* Loads the server's PEM certificate chain and private key for GnuTLS (through
 * libmicrohttpd). The key is read by the one secret-file reader into secret
 * memory and the caller wipes it as soon as the daemon has started; neither
 * is ever logged. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "credvault/secret_file.h"
#include "tls.h"

static cv_result read_pem(const char *what, const char *path, struct cv_buf *out)
{
    CV_ENSURE(path && *path, CV_ERR_INPUT, "TLS is on but no %s file is set", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "cannot open the TLS %s file %s: %s", what, path, strerror(errno));
    cv_result r = CV_OK;
    for (;;) {
        size_t room = out->max - out->len;
        if (room == 0) {
            char extra;
            ssize_t n = read(fd, &extra, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n != 0) r = cv_fail(CV_ERR_INPUT, "the TLS %s file %s is too large or unreadable", what, path);
            break;
        }
        CV_GUARD_OUT(r, cv_buf_reserve(out, room < 4096 ? room : 4096));
        ssize_t n = read(fd, out->data + out->len, out->cap - 1 - out->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r = cv_fail(CV_ERR_INPUT, "cannot read the TLS %s file %s: %s", what, path, strerror(errno));
            break;
        }
        if (n == 0) break;
        out->len += (size_t)n;
    }
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_buf_terminate(out));
    if (out->len == 0 || memchr(out->data, '\0', out->len) || !strstr((const char *)out->data, "-----BEGIN "))
        r = cv_fail(CV_ERR_INPUT, "the TLS %s file %s is not PEM", what, path);
out:
    close(fd);
    if (cv_failed(r)) cv_buf_free(out);
    return r;
}

/* The key is a secret file like any other: the owner, mode and size rules are
 * cv_secret_file_read's. */
static cv_result read_key(const char *path, struct cv_buf *out)
{
    CV_ENSURE(path && *path, CV_ERR_INPUT, "TLS is on but no key file is set");
    char *pem = NULL;
    size_t n = 0;
    CV_GUARD(cv_secret_file_read("CREDVAULT_TLS_KEY", path, CV_HTTP_TLS_KEY_MAX_BYTES, &pem, &n));
    cv_result r = cv_buf_append(out, pem, n);
    if (cv_ok(r)) r = cv_buf_terminate(out);
    if (cv_ok(r) && !strstr((const char *)out->data, "-----BEGIN "))
        r = cv_fail(CV_ERR_INPUT, "the TLS key file %s is not PEM", path);
    cv_secret_free(pem);
    if (cv_failed(r)) cv_buf_free(out);
    return r;
}

cv_result cv_http_tls_load(const char *cert_file, const char *key_file, struct cv_buf *cert, struct cv_buf *key)
{
    cv_buf_init(cert, CV_HTTP_TLS_CERT_MAX_BYTES);
    cv_buf_init_secret(key, CV_HTTP_TLS_KEY_MAX_BYTES);
    CV_GUARD(read_pem("certificate", cert_file, cert));
    cv_result r = read_key(key_file, key);
    if (cv_failed(r)) cv_buf_free(cert);
    return r;
}
