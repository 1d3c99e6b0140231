/* The installation id in the token: a data object labelled
 * CV_HSM_INSTALLATION_LABEL holding the id (a UUID) of the one database this
 * token belongs to, so that a token and a database that were not made for
 * each other refuse each other at start. */
#ifndef CREDVAULT_HSM_INSTALLATION_H
#define CREDVAULT_HSM_INSTALLATION_H

#include "credvault/hsm.h"
#include "credvault/result.h"

#define CV_HSM_INSTALLATION_LABEL "credvault-installation"
#define CV_INSTALLATION_ID_BYTES 36

/* *found = 0 when the token holds none. CV_ERR_CONFLICT when it holds two
 * that disagree. */
CV_RESULT cv_hsm_installation_get(struct cv_hsm *hsm, char id[CV_INSTALLATION_ID_BYTES + 1], int *found);
/* Writes the id as a private, unmodifiable token object. */
CV_RESULT cv_hsm_installation_set(struct cv_hsm *hsm, const char *id);

#endif
