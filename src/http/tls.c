/* Loads the server's PEM certificate chain and private key for GnuTLS (through
 * libmicrohttpd). The key is read by the one secret-file reader into secret
 * memory and the caller wipes it as soon as the daemon has started; neither
 * is ever logged. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "credvault/isotime.h"
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

/* What an operator must fix, said before the server starts: a key that is
 * not the certificate's, or a certificate outside its validity period. The
 * first certificate of the chain is the server's. */
static cv_result check_pair(const char *cert_file, const char *key_file, const struct cv_buf *cert,
                            const struct cv_buf *key)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t pk = NULL;
    cv_result r = CV_OK;
    const gnutls_datum_t cd = {cert->data, (unsigned)cert->len};
    const gnutls_datum_t kd = {key->data, (unsigned)key->len};
    if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_privkey_init(&pk) < 0) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    if (gnutls_x509_crt_import(crt, &cd, GNUTLS_X509_FMT_PEM) < 0) {
        r = cv_fail(CV_ERR_INPUT, "the TLS certificate file %s holds no certificate GnuTLS can read", cert_file);
        goto out;
    }
    if (gnutls_x509_privkey_import(pk, &kd, GNUTLS_X509_FMT_PEM) < 0) {
        r = cv_fail(CV_ERR_INPUT, "the TLS key file %s holds no unencrypted private key GnuTLS can read", key_file);
        goto out;
    }
    unsigned char cid[64], kid[64];
    size_t cn = sizeof(cid), kn = sizeof(kid);
    if (gnutls_x509_crt_get_key_id(crt, 0, cid, &cn) < 0 || gnutls_x509_privkey_get_key_id(pk, 0, kid, &kn) < 0 ||
        cn != kn || memcmp(cid, kid, cn) != 0) {
        r = cv_fail(CV_ERR_INPUT,
                    "the TLS key %s is not the key of the certificate %s: use the key the certificate was issued "
                    "for, or issue a certificate for this key",
                    key_file, cert_file);
        goto out;
    }
    time_t now = time(NULL), from = gnutls_x509_crt_get_activation_time(crt),
           until = gnutls_x509_crt_get_expiration_time(crt);
    char when[CV_TIME_TEXT_BYTES];
    if (from != (time_t)-1 && now < from) {
        cv_time_iso8601((int64_t)from * 1000, when);
        r = cv_fail(CV_ERR_INPUT, "the TLS certificate %s is not valid before %s: check this machine's clock",
                    cert_file, when);
    } else if (until != (time_t)-1 && now > until) {
        cv_time_iso8601((int64_t)until * 1000, when);
        r = cv_fail(CV_ERR_INPUT, "the TLS certificate %s expired on %s: renew it", cert_file, when);
    }
out:
    if (pk) gnutls_x509_privkey_deinit(pk); /* deinit wipes the key material */
    if (crt) gnutls_x509_crt_deinit(crt);
    return r;
}

cv_result cv_http_tls_load(const char *cert_file, const char *key_file, struct cv_buf *cert, struct cv_buf *key)
{
    cv_buf_init(cert, CV_HTTP_TLS_CERT_MAX_BYTES);
    cv_buf_init_secret(key, CV_HTTP_TLS_KEY_MAX_BYTES);
    CV_GUARD(read_pem("certificate", cert_file, cert));
    cv_result r = read_key(key_file, key);
    if (cv_ok(r)) r = check_pair(cert_file, key_file, cert, key);
    if (cv_failed(r)) {
        cv_buf_free(cert);
        cv_buf_free(key);
    }
    return r;
}
