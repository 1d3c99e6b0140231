/* The two shapes of a credential value: a plain string, or {"file":"…"} for
 * one that reaches the workload as an in-memory file (credvault run). Only
 * this reader tells them apart; deploy, masking, integrations and delivery
 * all go through it, so a new shape cannot be half supported. */
#include <string.h>

#include "domain/domain.h"

const char *cv_env_value(json_t *v, size_t *len, int *is_file)
{
    if (is_file) *is_file = 0;
    if (json_is_string(v)) {
        *len = json_string_length(v);
        return json_string_value(v);
    }
    json_t *f = json_object_get(v, "file");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_string(f)) return NULL;
    if (is_file) *is_file = 1;
    *len = json_string_length(f);
    return json_string_value(f);
}
