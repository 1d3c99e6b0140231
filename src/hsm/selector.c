/* Token selection by URI or label. Owns the parsed selector; never opens a
 * session or reads a PIN, and refuses URIs that try to carry one. */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "selector.h"

#define LABEL_BYTES 32

struct cv_hsm_selector {
    P11KitUri *uri;                  /* NULL for a bare label */
    unsigned char label[LABEL_BYTES]; /* blank padded, as the token reports it */
};

void cv_hsm_field_trim(const unsigned char *field, unsigned long len, char *out, unsigned long out_len)
{
    unsigned long n = len;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0')) n--;
    if (out_len == 0) return;
    if (n >= out_len) n = out_len - 1;
    memcpy(out, field, n);
    out[n] = '\0';
}

static cv_result parse_uri(const char *text, struct cv_hsm_selector *sel)
{
    sel->uri = p11_kit_uri_new();
    CV_ENSURE(sel->uri != NULL, CV_ERR_MEMORY, "out of memory");
    int rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_MODULE | P11_KIT_URI_FOR_SLOT | P11_KIT_URI_FOR_TOKEN,
                               sel->uri);
    if (rc != P11_KIT_URI_OK) {
        const char *why = p11_kit_uri_message(rc);
        return cv_fail(CV_ERR_INPUT, "token URI is not valid (%s)", why ? why : "parse error");
    }
    /* object=, id=, type= … name an object, not a token: a typo'd setting
     * must not silently select "any token". */
    CV_ENSURE(!p11_kit_uri_any_unrecognized(sel->uri), CV_ERR_INPUT,
              "token URI has attributes that do not name a token");
    /* A PIN inside a setting ends up in process listings and logs. */
    CV_ENSURE(p11_kit_uri_get_pin_value(sel->uri) == NULL && p11_kit_uri_get_pin_source(sel->uri) == NULL,
              CV_ERR_INPUT, "token URI must not carry a PIN; use CREDVAULT_HSM_PIN_FILE");
    CV_ENSURE(p11_kit_uri_get_module_path(sel->uri) == NULL && p11_kit_uri_get_module_name(sel->uri) == NULL,
              CV_ERR_INPUT, "token URI must not name a module; use CREDVAULT_PKCS11_MODULE");
    return CV_OK;
}

cv_result cv_hsm_selector_parse(const char *text, struct cv_hsm_selector **out)
{
    CV_ENSURE_REF(text);
    CV_ENSURE_REF(out);
    *out = NULL;
    struct cv_hsm_selector *sel = calloc(1, sizeof(*sel));
    CV_ENSURE(sel != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result res = CV_OK;
    if (strncmp(text, "pkcs11:", 7) == 0) {
        CV_GUARD_OUT(res, parse_uri(text, sel));
    } else {
        size_t n = strlen(text);
        if (n == 0 || n > LABEL_BYTES) {
            res = cv_fail(CV_ERR_INPUT, "token label must be 1 to %d bytes, or a pkcs11: URI", LABEL_BYTES);
            goto out;
        }
        memset(sel->label, ' ', sizeof(sel->label));
        memcpy(sel->label, text, n);
    }
    *out = sel;
    sel = NULL;
out:
    cv_hsm_selector_free(sel);
    return res;
}

void cv_hsm_selector_free(struct cv_hsm_selector *sel)
{
    if (!sel) return;
    if (sel->uri) p11_kit_uri_free(sel->uri);
    free(sel);
}

int cv_hsm_selector_matches(const struct cv_hsm_selector *sel, const struct cv_hsm_slot_fields *slot)
{
    if (!sel->uri) return memcmp(sel->label, slot->token_label, LABEL_BYTES) == 0;

    CK_INFO info;
    memset(&info, 0, sizeof(info));
    memcpy(info.manufacturerID, slot->library_manufacturer, sizeof(info.manufacturerID));
    memcpy(info.libraryDescription, slot->library_description, sizeof(info.libraryDescription));
    if (!p11_kit_uri_match_module_info(sel->uri, &info)) return 0;

    CK_SLOT_INFO si;
    memset(&si, 0, sizeof(si));
    memcpy(si.slotDescription, slot->slot_description, sizeof(si.slotDescription));
    memcpy(si.manufacturerID, slot->slot_manufacturer, sizeof(si.manufacturerID));
    if (!p11_kit_uri_match_slot_info(sel->uri, &si)) return 0;
    CK_SLOT_ID want = p11_kit_uri_get_slot_id(sel->uri);
    if (want != (CK_SLOT_ID)-1 && want != slot->slot_id) return 0;

    CK_TOKEN_INFO ti;
    memset(&ti, 0, sizeof(ti));
    memcpy(ti.label, slot->token_label, sizeof(ti.label));
    memcpy(ti.manufacturerID, slot->token_manufacturer, sizeof(ti.manufacturerID));
    memcpy(ti.model, slot->token_model, sizeof(ti.model));
    memcpy(ti.serialNumber, slot->token_serial, sizeof(ti.serialNumber));
    return p11_kit_uri_match_token_info(sel->uri, &ti);
}
