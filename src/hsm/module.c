/* Loading the PKCS#11 module and its process-wide life: dlopen,
 * C_GetFunctionList, C_Initialize with OS locking, C_Finalize. Never touches
 * sessions or keys; never passes the PIN. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

cv_result cv_hsm_module_load(struct cv_hsm *hsm)
{
    /* RTLD_LOCAL: the module's symbols (and its own OpenSSL) stay its own. */
    hsm->dl = dlopen(hsm->module_path, RTLD_NOW | RTLD_LOCAL);
    if (!hsm->dl) {
        const char *why = dlerror();
        return cv_fail(CV_ERR_UNAVAILABLE, "cannot load PKCS#11 module %s: %s (CKR_LIBRARY_LOAD_FAILED)",
                       hsm->module_path, why ? why : "unknown error");
    }
    CK_C_GetFunctionList get = NULL;
    /* dlsym returns an object pointer; copy it, as POSIX allows, to a function pointer. */
    void *sym = dlsym(hsm->dl, "C_GetFunctionList");
    memcpy(&get, &sym, sizeof(get));
    if (!get) {
        cv_hsm_module_unload(hsm);
        return cv_fail(CV_ERR_UNAVAILABLE, "%s is not a PKCS#11 module: no C_GetFunctionList (CKR_LIBRARY_LOAD_FAILED)",
                       hsm->module_path);
    }
    CK_RV rv = get(&hsm->f);
    if (rv != CKR_OK || !hsm->f) {
        cv_hsm_module_unload(hsm);
        return cv_fail(CV_ERR_UNAVAILABLE, "PKCS#11 module %s: C_GetFunctionList failed (%s)", hsm->module_path,
                       cv_hsm_rv_text(rv).s);
    }
    return CV_OK;
}

cv_result cv_hsm_module_initialize(struct cv_hsm *hsm, CK_RV *rv)
{
    /* Worker threads share the module: let it use the OS's locks. */
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    *rv = hsm->f->C_Initialize(&args);
    if (*rv == CKR_OK) {
        hsm->initialized = 1;
        return CV_OK;
    }
    /* Another user in this process (libp11) initialised it first; it owns C_Finalize. */
    if (*rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) return CV_OK;
    /* A bare CKR_GENERAL_ERROR at start is nearly always the module's own
     * settings: name them, so the operator knows where to look. */
    const char *conf = getenv("SOFTHSM2_CONF");
    char hint[700] = "";
    if (conf && *conf)
        snprintf(hint, sizeof(hint), "; SOFTHSM2_CONF=%.600s (readable? its directories.tokendir exists?)", conf);
    else if (strstr(hsm->module_path, "softhsm"))
        snprintf(hint, sizeof(hint), "; SOFTHSM2_CONF is not set: SoftHSM2 reads /etc/softhsm/softhsm2.conf");
    else
        snprintf(hint, sizeof(hint), "; check the module's own configuration and that its daemon or HSM is reachable");
    return cv_fail(CV_ERR_UNAVAILABLE, "PKCS#11 module %s: C_Initialize failed (%s)%s", hsm->module_path,
                   cv_hsm_rv_text(*rv).s, hint);
}

void cv_hsm_module_finalize(struct cv_hsm *hsm)
{
    if (!hsm->f) return;
    (void)hsm->f->C_Finalize(NULL);
    hsm->initialized = 0;
}

void cv_hsm_module_unload(struct cv_hsm *hsm)
{
    if (hsm->dl) dlclose(hsm->dl);
    hsm->dl = NULL;
    hsm->f = NULL;
}
