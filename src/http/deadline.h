/* The whole-request deadline: a connection must deliver each request (line,
 * headers and body) within a fixed time of opening or of its previous
 * response, however steadily it trickles bytes. */
#ifndef CREDVAULT_HTTP_DEADLINE_H
#define CREDVAULT_HTTP_DEADLINE_H

#include <microhttpd.h>

#include "credvault/result.h"

struct cv_http_deadline;

/* Starts the watchdog thread; deadline_ms >= 100. */
CV_RESULT cv_http_deadline_start(unsigned deadline_ms, struct cv_http_deadline **out);
/* Stops and joins it; call after MHD_stop_daemon (every connection is closed). */
void cv_http_deadline_stop(struct cv_http_deadline *d);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback; cls is the deadline. */
void cv_http_deadline_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                    enum MHD_ConnectionNotificationCode toe);
/* The request on `conn` is whole (being handled or answered): not subject
 * to the deadline until its response completes. */
void cv_http_deadline_request_whole(struct MHD_Connection *conn);
/* Its response is done: the next request's clock starts now. */
void cv_http_deadline_request_done(struct MHD_Connection *conn);

#endif
