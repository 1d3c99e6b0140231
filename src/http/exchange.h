/* Between server.c (the daemon) and exchange.c (one request's life): the
 * server state the request path reads, and the two libmicrohttpd callbacks.
 * Only the files of src/http include this, as it names libmicrohttpd types. */
#ifndef CREDVAULT_HTTP_EXCHANGE_H
#define CREDVAULT_HTTP_EXCHANGE_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "deadline.h"
#include "internal.h"
#include "proxy.h"

struct cv_http_server {
    struct MHD_Daemon *daemon;
    const struct cv_http_route *routes;
    size_t nroutes;
    void *app;
    size_t max_body_bytes;
    struct cv_metrics *metrics;
    unsigned port;
    atomic_size_t in_flight; /* requests between first callback and completion */
    atomic_bool stopping;    /* answer with Connection: close while draining */
    struct cv_http_deadline *deadline;
    struct cv_http_proxies proxies; /* peers believed about X-Forwarded-For */
    int shared_listen;              /* a worker's SO_REUSEPORT socket (cv_http_listen_shared) */
};

enum MHD_Result cv_http_on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls);
void cv_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe);

#endif
