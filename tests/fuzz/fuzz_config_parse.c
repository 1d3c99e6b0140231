/* Fuzzes cv_config_parse_text. Inputs that name a *_FILE setting are skipped:
 * they would make the parser open whatever path the fuzzer spells (a FIFO or
 * a device blocks). Accepted input must leave every number within its range. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memmem(data, size, "_FILE", 5) != NULL) return 0;
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    cv_result r = cv_config_parse_text(&cfg, (const char *)data, size);
    if (cv_ok(r)) {
        if (cfg.hsm_sessions < 1 || cfg.hsm_sessions > 1024) abort();
        if (cfg.threads < 1 || cfg.threads > 256) abort();
        if (cfg.max_body_bytes < 256 || cfg.max_body_bytes > 16777216) abort();
        if (cfg.key_max_encryptions < 1 || cfg.key_max_encryptions > 4294967296ULL) abort();
        if (cfg.tls != 0 && cfg.tls != 1) abort();
        if (!cfg.listen || !cfg.log_level || !cfg.key_residency || !cfg.pkcs11_module) abort();
    }
    cv_config_free(&cfg);
    cv_error_clear();
    return 0;
}
