/* The installation id in the database (migration 0017): the row that the
 * token's installation object must match (hsm_installation.h). */
#ifndef CREDVAULT_STORE_INSTALLATION_H
#define CREDVAULT_STORE_INSTALLATION_H

#include "credvault/result.h"
#include "credvault/store.h"

/* CV_ERR_NOT_FOUND when the database holds none. */
CV_RESULT cv_store_installation_get(struct cv_store *st, char id[37]);

#endif
