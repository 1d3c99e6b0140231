/* Hooks for tests and the benchmark only; never used by the service. They
 * reach under the HSM boundary (PKCS#11 types, raw handles, raw key import
 * for published test vectors), which is why they live here and not in
 * include/. */
#ifndef CV_HSM_TESTING_H
#define CV_HSM_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "credvault/hsm.h"

/* The module's function list and our slot, to act on the token behind the
 * layer's back (close its sessions, read attributes). */
CK_FUNCTION_LIST_PTR cv_hsm_testing_functions(struct cv_hsm *hsm);
CK_SLOT_ID cv_hsm_testing_slot(struct cv_hsm *hsm);
/* Bumped by every recovery. */
uint64_t cv_hsm_testing_generation(struct cv_hsm *hsm);

/* Imports raw AES key bytes as a session object of the owner session, usable
 * for encrypt/decrypt only (known-answer tests). */
CV_RESULT cv_hsm_testing_import_aes(struct cv_hsm *hsm, const uint8_t *key, size_t len, CK_OBJECT_HANDLE *out);
CV_RESULT cv_hsm_testing_destroy(struct cv_hsm *hsm, CK_OBJECT_HANDLE object);
/* GCM with a raw handle and, on caller-IV tokens, the given IV. */
CV_RESULT cv_hsm_testing_gcm_encrypt(struct cv_hsm *hsm, CK_OBJECT_HANDLE key, const uint8_t iv[CV_GCM_IV_BYTES],
                                     const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                                     uint8_t *ct, uint8_t tag[CV_GCM_TAG_BYTES]);
CV_RESULT cv_hsm_testing_gcm_decrypt(struct cv_hsm *hsm, CK_OBJECT_HANDLE key, const uint8_t iv[CV_GCM_IV_BYTES],
                                     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                                     const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt);
/* Secret-key session objects the application has in the token now. */
CV_RESULT cv_hsm_testing_count_session_keys(struct cv_hsm *hsm, unsigned long *count);
/* Recomputes ref->binding for its current fields: a forger who could use the
 * binding key, to reach the checks behind the binding. */
CV_RESULT cv_hsm_testing_bind(struct cv_hsm *hsm, struct cv_key_ref *ref);
/* The handle of credvault-master-<version>, or of the binding key (version 0). */
CV_RESULT cv_hsm_testing_key_handle(struct cv_hsm *hsm, uint32_t version, CK_OBJECT_HANDLE *out);

#endif
