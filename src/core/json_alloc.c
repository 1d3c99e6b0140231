/* Installs secret memory as jansson's allocator. The only file of core that
 * includes jansson, and only for json_set_alloc_funcs: JSON documents are the
 * domain's and the HTTP layer's business, the memory they hold plaintext in is
 * core's. */
#include <jansson.h>

#include "credvault/buf.h"
#include "credvault/json_alloc.h"

int cv_json_alloc_installed(void)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    return m == cv_secret_alloc && f == cv_secret_free;
}

void cv_json_alloc_install(void)
{
    if (!cv_json_alloc_installed()) json_set_alloc_funcs(cv_secret_alloc, cv_secret_free);
}

void cv_json_free(void *p)
{
    json_free_t f;
    json_get_alloc_funcs(NULL, &f);
    f(p);
}
