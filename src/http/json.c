/* JSON request bodies: the Content-Type check and strict parsing (one object,
 * no duplicate keys, no trailing data). Parsed bodies hold plaintext, so they
 * live in the secret memory core installs as jansson's allocator
 * (credvault/json_alloc.h). Error messages give a position only: jansson's
 * own text quotes the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* application/json, any case, optionally with parameters; a charset, if
 * given, must be UTF-8 (RFC 8259 §8.1). */
static bool content_type_is_json(const char *ct)
{
    static const char media[] = "application/json";
    if (!ct) return false;
    while (is_space(*ct)) ct++;
    size_t m = sizeof(media) - 1;
    if (strncasecmp(ct, media, m) != 0) return false;
    const char *p = ct + m;
    while (is_space(*p)) p++;
    if (*p == '\0') return true;
    if (*p != ';') return false;
    for (;;) {
        p++;
        while (is_space(*p)) p++;
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        while (n && is_space(p[n - 1])) n--;
        if (n >= 8 && strncasecmp(p, "charset=", 8) == 0) {
            const char *v = p + 8;
            size_t vn = n - 8;
            if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                v++;
                vn -= 2;
            }
            if (!((vn == 5 && strncasecmp(v, "utf-8", 5) == 0) || (vn == 4 && strncasecmp(v, "utf8", 4) == 0)))
                return false;
        }
        if (!semi) return true;
        p = semi;
    }
}

cv_result cv_http_json_body(struct cv_http_request *req, json_t **out)
{
    *out = NULL;
    CV_ENSURE(content_type_is_json(cv_http_header(req, "Content-Type")), CV_ERR_MEDIA,
              "the request body must be application/json");
    const struct cv_buf *b = &req->body;
    if (b->len == 0) return cv_fail_code(CV_ERR_INPUT, "invalid_json", "the request body is empty");
    json_error_t jerr;
    json_t *j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    int line = jerr.line, column = jerr.column;
    bool duplicate = j == NULL && json_error_code(&jerr) == json_error_duplicate_key;
    cv_wipe(&jerr, sizeof(jerr)); /* its text quotes the body */
    if (duplicate) return cv_fail_code(CV_ERR_INPUT, "invalid_json", "the JSON object has a duplicate key");
    if (!j)
        return cv_fail_code(CV_ERR_INPUT, "invalid_json", "the request body is not valid JSON (line %d, column %d)",
                            line, column);
    if (!json_is_object(j)) {
        json_decref(j);
        return cv_fail_code(CV_ERR_INPUT, "invalid_json", "the request body must be a JSON object");
    }
    *out = j;
    return CV_OK;
}
