/* Building responses: the JSON envelope of DESIGN.md §6, error replies through
 * the one status table, text bodies and extra headers. A misuse (bad status,
 * bad header, a body that will not serialise) marks the response broken and
 * it is sent as a 500; it never sends half of what the handler meant. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "credvault/log.h"
#include "internal.h"

static const char json_media_type[] = "application/json";

struct cv_http_payload *cv_http_payload_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(struct cv_http_payload) - 1) return NULL;
    struct cv_http_payload *b = malloc(sizeof(*b) + len + 1);
    if (!b) return NULL;
    b->len = len;
    b->data[len] = '\0';
    return b;
}

void cv_http_payload_free(void *p)
{
    struct cv_http_payload *b = p;
    if (!b) return;
    cv_wipe(b, sizeof(*b) + b->len + 1);
    free(b);
}

static void mark_broken(struct cv_http_response *res, const char *why)
{
    res->broken = true;
    cv_log(CV_LOG_ERROR, "http_response_misuse", "request_id", res->request_id ? res->request_id : "", "reason",
           why, NULL);
}

static void set_body(struct cv_http_response *res, unsigned status, const char *content_type,
                     struct cv_http_payload *body)
{
    cv_http_payload_free(res->body);
    free(res->content_type_owned);
    res->content_type_owned = NULL;
    res->body = body;
    res->status = status;
    res->content_type = content_type;
}

/* Serialises and consumes `j`. */
static void set_json(struct cv_http_response *res, unsigned status, json_t *j)
{
    if (!j) {
        mark_broken(res, "could not build the JSON envelope");
        return;
    }
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    struct cv_http_payload *body = n ? cv_http_payload_new(n) : NULL;
    if (body && json_dumpb(j, body->data, n, JSON_COMPACT) != n) {
        cv_http_payload_free(body);
        body = NULL;
    }
    json_decref(j);
    if (!body) {
        mark_broken(res, "could not serialise the JSON body");
        return;
    }
    set_body(res, status, json_media_type, body);
}

static bool status_valid(unsigned status) { return status >= 200 && status <= 599; }

void cv_http_reply(struct cv_http_response *res, unsigned status, json_t *data)
{
    if (!status_valid(status)) {
        json_decref(data);
        mark_broken(res, "status out of range");
        return;
    }
    /* "o" steals `data`, also when packing fails */
    set_json(res, status, json_pack("{s:b,s:o}", "success", 1, "data", data ? data : json_null()));
}

void cv_http_reply_list(struct cv_http_response *res, unsigned status, json_t *items, json_t *meta)
{
    if (!status_valid(status) || !json_is_array(items) || !json_is_object(meta)) {
        json_decref(items);
        json_decref(meta);
        mark_broken(res, "a list reply needs an array and its paging");
        return;
    }
    set_json(res, status, json_pack("{s:b,s:o,s:o}", "success", 1, "data", items, "meta", meta));
}

void cv_http_reply_status_error(struct cv_http_response *res, unsigned status, const char *code,
                                const char *message)
{
    set_json(res, status,
             json_pack("{s:b,s:{s:s,s:s}}", "success", 0, "error", "code", code, "message", message));
}

void cv_http_reply_error(struct cv_http_response *res, cv_result r)
{
    cv_err err = r.err;
    /* the thread's last error belongs to this failure only if the category agrees */
    bool recorded = err != CV_ERR_NONE && cv_error_category() == err;
    const char *code = recorded ? cv_error_code() : cv_err_name(err);
    const char *message = recorded && cv_error_message()[0] ? cv_error_message() : cv_http_status_default_message(err);
    if (cv_http_status_hides_detail(err)) {
        cv_log(CV_LOG_ERROR, "http_request_failed", "request_id", res->request_id ? res->request_id : "",
               "category", err == CV_ERR_NONE ? "none" : cv_err_name(err), "code", code, "detail", message, NULL);
        /* stored data changed outside the service keeps its own code (never a detail) */
        int integrity = err == CV_ERR_INTERNAL && strcmp(code, "integrity_error") == 0;
        code = err == CV_ERR_CRYPTO ? cv_err_name(CV_ERR_CRYPTO) : integrity ? code : "internal_error";
        message = integrity ? "stored data failed its integrity check" : cv_http_status_default_message(err);
    }
    cv_http_reply_status_error(res, cv_http_status_for(err), code, message);
}

static bool has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

void cv_http_reply_text(struct cv_http_response *res, unsigned status, const char *content_type,
                        const char *text, size_t len)
{
    if (!status_valid(status) || !content_type || has_crlf(content_type) || (!text && len)) {
        mark_broken(res, "bad text reply");
        return;
    }
    char *ct = strdup(content_type);
    struct cv_http_payload *body = cv_http_payload_new(len);
    if (!ct || !body) {
        free(ct);
        cv_http_payload_free(body);
        mark_broken(res, "out of memory");
        return;
    }
    if (len) memcpy(body->data, text, len);
    set_body(res, status, NULL, body);
    res->content_type_owned = ct;
    res->content_type = ct;
}

static bool header_name_valid(const char *name)
{
    if (!name || !*name) return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {"Content-Type", "Content-Length", "Connection", "Transfer-Encoding",
                                           "X-Request-Id"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0) return true;
    return false;
}

void cv_http_header_add(struct cv_http_response *res, const char *name, const char *value)
{
    if (!header_name_valid(name) || header_reserved(name) || !value || has_crlf(value)) {
        mark_broken(res, "refused response header");
        return;
    }
    if (res->nheaders >= CV_HTTP_MAX_RESPONSE_HEADERS) {
        mark_broken(res, "too many response headers");
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        mark_broken(res, "out of memory");
        return;
    }
    res->headers[res->nheaders].name = n;
    res->headers[res->nheaders].value = v;
    res->nheaders++;
}

void cv_http_response_clear(struct cv_http_response *res)
{
    cv_http_payload_free(res->body);
    free(res->content_type_owned);
    for (size_t i = 0; i < res->nheaders; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    const char *rid = res->request_id;
    memset(res, 0, sizeof(*res));
    res->request_id = rid;
}
