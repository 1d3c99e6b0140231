/* TLS material for the daemon: PEM files read whole, the key in secret memory. */
#ifndef CREDVAULT_HTTP_TLS_H
#define CREDVAULT_HTTP_TLS_H

#include "credvault/buf.h"

#define CV_HTTP_TLS_CERT_MAX_BYTES (1024 * 1024)
#define CV_HTTP_TLS_KEY_MAX_BYTES (64 * 1024)

/* GnuTLS priorities: TLS 1.3 and 1.2 only, and in 1.2 only ECDHE key exchange
 * (forward secrecy) with AEAD ciphers; no CBC, no static RSA, no SHA-1 MACs. */
#define CV_HTTP_TLS_PRIORITIES                                                                      \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

/* On success both buffers are NUL-terminated PEM text; the caller frees both
 * (cv_buf_free wipes the key). On failure neither holds anything. */
CV_RESULT cv_http_tls_load(const char *cert_file, const char *key_file, struct cv_buf *cert, struct cv_buf *key);

#endif
