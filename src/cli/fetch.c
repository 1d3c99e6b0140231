/* The HTTP GET the OIDC issuer's JWKS comes through (libcurl: here and in
 * `credvault run`). https anywhere, http only to a loopback address, no
 * redirects, peer verified with the system's trust store, answers bounded in
 * size and time so that a slow issuer costs a request seconds, not minutes. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define FETCH_CONNECT_TIMEOUT_S 5L
#define FETCH_TIMEOUT_S 10L

struct sink {
    char *data;
    size_t len, max;
    int over;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n > s->max) {
        s->over = 1;
        return 0;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return n;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int loopback_http(const char *url)
{
    static const char *const ok[] = {"http://127.0.0.1:", "http://127.0.0.1/", "http://[::1]:", "http://[::1]/",
                                     "http://localhost:", "http://localhost/"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strncmp(url, ok[i], strlen(ok[i])) == 0) return 1;
    return 0;
}

cv_result cv_cli_fetch_url(void *arg, const char *url, size_t max_bytes, char **body, size_t *len)
{
    (void)arg;
    *body = NULL;
    *len = 0;
    CV_ENSURE(strncmp(url, "https://", 8) == 0 || loopback_http(url), CV_ERR_INPUT,
              "%.200s: an issuer's keys are fetched over https (http only from a loopback address)", url);
    pthread_once(&once, global_init);
    CV_ENSURE(global_rc == CURLE_OK, CV_ERR_UNAVAILABLE, "cannot start the HTTP client");
    struct sink s = {.data = malloc(max_bytes + 1), .max = max_bytes};
    CURL *c = curl_easy_init();
    if (!s.data || !c) {
        free(s.data);
        curl_easy_cleanup(c);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "credvault/" CV_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    cv_result r = CV_OK;
    if (s.over) r = cv_fail(CV_ERR_UNAVAILABLE, "%.200s answered more than %zu bytes", url, max_bytes);
    else if (cc != CURLE_OK)
        r = cv_fail(CV_ERR_UNAVAILABLE, "cannot fetch %.200s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (status != 200) r = cv_fail(CV_ERR_UNAVAILABLE, "%.200s answered %ld", url, status);
    if (cv_failed(r)) {
        free(s.data);
        return r;
    }
    s.data[s.len] = '\0';
    *body = s.data;
    *len = s.len;
    return CV_OK;
}
