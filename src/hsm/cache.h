/* Bounded LRU of unwrapped tenant keys: a key ref maps to the token handle
 * of its unwrapped copy. Pure bookkeeping (handles are plain numbers): the
 * caller destroys in the token every handle this hands back. */
#ifndef CV_HSM_CACHE_H
#define CV_HSM_CACHE_H

#include <stddef.h>

#include "credvault/hsm.h"
#include "credvault/result.h"

struct cv_hsm_cache;
struct cv_hsm_cache_entry;

/* Handles the caller must destroy now; 0 marks an empty slot. */
struct cv_hsm_cache_doomed {
    unsigned long handle[2];
};

/* Where hits, misses and evictions are counted (NULL: nowhere). */
void cv_hsm_cache_count_into(struct cv_hsm_cache *c, struct cv_metrics *reg);
CV_RESULT cv_hsm_cache_new(unsigned capacity, struct cv_hsm_cache **out);
/* Entries still present are forgotten, not returned: call after
 * cv_hsm_cache_forget or after detaching everything. */
void cv_hsm_cache_free(struct cv_hsm_cache *c);

/* Pins and returns the entry whose tenant, versions, wrapped bytes and
 * binding all equal ref's, or NULL: a changed ref never meets a stale handle. */
struct cv_hsm_cache_entry *cv_hsm_cache_get(struct cv_hsm_cache *c, const struct cv_key_ref *ref);
unsigned long cv_hsm_cache_handle(const struct cv_hsm_cache_entry *e);

/* Adds ref → handle, pinned, and returns it in *pinned. When an equal entry
 * arrived meanwhile, that one is pinned instead and `handle` comes back in
 * *doomed. Evicts the least recently used entry past capacity: its handle
 * comes back in *doomed, or, while another thread has it pinned, on that
 * thread's last unpin. */
CV_RESULT cv_hsm_cache_put(struct cv_hsm_cache *c, const struct cv_key_ref *ref, unsigned long handle,
                           struct cv_hsm_cache_entry **pinned, struct cv_hsm_cache_doomed *doomed);
/* Unpins; returns a handle to destroy when this was the last pin of an
 * evicted entry, else 0. */
unsigned long cv_hsm_cache_unpin(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e);

/* Detaches one entry (of `tenant_id`, or any when NULL): returns 1 and sets
 * *handle to destroy now, or 0 when its destruction waits for the last unpin;
 * returns 0 when nothing matches. */
int cv_hsm_cache_detach_next(struct cv_hsm_cache *c, const char *tenant_id, unsigned long *handle);
/* Drops every entry without handing back handles: after the module was
 * re-initialised they name nothing, or worse, a new object. */
void cv_hsm_cache_forget(struct cv_hsm_cache *c);
unsigned cv_hsm_cache_count(struct cv_hsm_cache *c);

#endif
