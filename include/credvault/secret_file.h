/* The one reader of secret files: HSM PIN, database password, bearer tokens,
 * the legacy key, the TLS private key. Every such file obeys the same rules,
 * stated here once (docs/operations.md repeats them for operators). */
#ifndef CREDVAULT_SECRET_FILE_H
#define CREDVAULT_SECRET_FILE_H

#include <stddef.h>

#include "credvault/result.h"

#define CV_SECRET_FILE_MAX_BYTES 4096 /* a PIN, password, token or passphrase */

/* Reads `path` into secret memory (cv_secret_alloc; the caller frees it with
 * cv_secret_free), NUL-terminated, its length in `*len` (may be NULL).
 *
 * The file must be a regular file (a symbolic link to one is followed, as
 * secret mounts use them), owned by the user the process runs as, with no
 * permission for group or others (mode 0600 or 0400): a secret another user
 * can read or replace is refused, never used. It must hold 1 to `max` bytes,
 * none of them NUL. One trailing newline (LF or CRLF) is not part of the
 * secret — editors and `echo` end files that way; nothing else is trimmed.
 *
 * Errors are CV_ERR_INPUT (CV_ERR_MEMORY when allocation fails) naming
 * `what` (the setting or option) and the path, never the content. */
CV_RESULT cv_secret_file_read(const char *what, const char *path, size_t max, char **out, size_t *len);

#endif
