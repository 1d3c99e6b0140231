/* Shared by the fakes' own files: the gate every fake function passes
 * (counts the call, returns an armed failure) and the fake objects'
 * constructors. Not for tests. */
#ifndef CV_TEST_FAKES_INTERNAL_H
#define CV_TEST_FAKES_INTERNAL_H

#include "credvault/hsm.h"
#include "credvault/result.h"
#include "credvault/store.h"

/* Counts a call of `fn`; CV_OK, or the failure armed for it (recorded as
 * the thread's error, as a real layer would). */
CV_RESULT cv_fake_enter(const char *fn);
/* Counts a call that cannot fail (void and int functions). */
void cv_fake_count(const char *fn);
void cv_fake_reset(void);

struct cv_store *cv_fake_store_new(void);
struct cv_hsm *cv_fake_hsm_new(void);

#endif
