/* Records bound to what decides their meaning (migration 0015): the HSM
 * binding stored beside each record, its check on every read, and the
 * one-time bind of rows written before bindings existed. */
#ifndef CREDVAULT_DOMAIN_RECORD_BIND_H
#define CREDVAULT_DOMAIN_RECORD_BIND_H

#include "domain/domain.h"

#define CV_RECORD_BINDING_CONTEXT "credvault.record.v1"
#define CV_INTEGRITY_ERROR_CODE "integrity_error"

/* HMAC in the token over tenant, server, revision, expiry and the credential
 * names (as canonical compact JSON) of `row`; into row->binding. */
CV_RESULT cv_record_binding_make(struct cv_hsm *hsm, struct cv_server_row *row);
/* CV_OK when row->binding matches. Otherwise logged, audited (for the
 * request of `p`, when not NULL), counted, and 500 integrity_error. */
CV_RESULT cv_record_binding_check(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row);
/* At start, after the key check: binds the rows written before bindings,
 * once per database (audited "credentials.bind"). */
CV_RESULT cv_records_bind_legacy(struct cv_app *app);

#endif
