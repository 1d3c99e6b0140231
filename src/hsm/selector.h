/* Which token to use: an RFC 7512 "pkcs11:" URI (parsed by p11-kit) or a
 * bare token label. Plain C types only, so it is unit-tested without a token. */
#ifndef CV_HSM_SELECTOR_H
#define CV_HSM_SELECTOR_H

#include "credvault/result.h"

struct cv_hsm_selector;

/* What a slot shows, as PKCS#11 returns it: fixed-size, blank padded. */
struct cv_hsm_slot_fields {
    unsigned long slot_id;
    unsigned char library_manufacturer[32];
    unsigned char library_description[32];
    unsigned char slot_description[64];
    unsigned char slot_manufacturer[32];
    unsigned char token_label[32];
    unsigned char token_manufacturer[32];
    unsigned char token_model[16];
    unsigned char token_serial[16];
};

/* CV_ERR_INPUT for a malformed URI, one naming an object or carrying a PIN or
 * module (the PIN and module come from their own settings), or a label that
 * is empty or longer than 32 bytes. */
CV_RESULT cv_hsm_selector_parse(const char *text, struct cv_hsm_selector **out);
void cv_hsm_selector_free(struct cv_hsm_selector *sel);
int cv_hsm_selector_matches(const struct cv_hsm_selector *sel, const struct cv_hsm_slot_fields *slot);

/* Copies a blank-padded PKCS#11 field into a C string without the padding. */
void cv_hsm_field_trim(const unsigned char *field, unsigned long len, char *out, unsigned long out_len);

#endif
