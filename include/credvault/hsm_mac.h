/* HMAC-SHA256 under the token's binding key (CV_HSM_BINDING_LABEL), for
 * anything the database keeps that a database writer must not be able to
 * make or change: token verifiers, audit anchors, the installation id. The
 * key never leaves the token; each use names its own context, so a MAC made
 * for one purpose is never valid for another, nor for a key binding. */
#ifndef CREDVAULT_HSM_MAC_H
#define CREDVAULT_HSM_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/hsm.h"
#include "credvault/result.h"

#define CV_HSM_MAC_BYTES 32
#define CV_HSM_MAC_INPUT_MAX_BYTES 4096

/* HMAC over `context` (a "credvault.<purpose>.v<n>" string, not the key
 * binding's), one zero byte, then `data`. CV_ERR_UNAVAILABLE when the token
 * does not answer or the binding key is missing. */
CV_RESULT cv_hsm_mac(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                     uint8_t out[CV_HSM_MAC_BYTES]);
/* Computes and compares in constant time: CV_OK when `mac` matches,
 * CV_ERR_CRYPTO "integrity check failed" when not. */
CV_RESULT cv_hsm_mac_check(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                           const uint8_t mac[CV_HSM_MAC_BYTES]);

#endif
