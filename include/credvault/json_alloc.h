/* jansson's allocator, owned by core: every JSON value the process makes —
 * parsed request bodies, decrypted credential maps, documents holding tokens —
 * lives in secret memory (locked, out of core dumps, wiped on free). */
#ifndef CREDVAULT_JSON_ALLOC_H
#define CREDVAULT_JSON_ALLOC_H

/* Every entry point (main of the binary, each test program) calls this first,
 * before any jansson call and before any thread starts: jansson's allocator
 * is process-wide, and a value allocated before would be freed into the
 * wrong heap. Idempotent. */
void cv_json_alloc_install(void);
/* 1 when jansson allocates from secret memory; the HTTP server refuses to
 * start otherwise. */
int cv_json_alloc_installed(void);
/* Frees what jansson allocated itself (json_dumps output): with the
 * allocator installed it is secret memory, not malloc's. */
void cv_json_free(void *p);

#endif
