/* `credvault run`: fetches one server's credential map over HTTPS (libcurl:
 * here and in the JWKS fetch) with a workload token, then execs the command
 * with the credentials in its environment and the token variables removed.
 * A file-shaped value becomes a sealed in-memory file named by
 * /proc/self/fd/N. No HSM, no database, nothing written to disk, no value or
 * token ever printed; exec, not fork, so the command's exit status is what
 * the caller sees. */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include <ctype.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "credvault/buf.h"
#include "credvault/envname.h"
#include "credvault/ids.h"
#include "credvault/secret_file.h"

extern char **environ;

/* Exit statuses of `credvault run` itself (the command's own pass through).
 * 64–78 are the BSD sysexits values, 126/127 what shells use. */
#define RUN_EXIT_USAGE 2            /* bad options, no command, no token configured */
#define RUN_EXIT_FORBIDDEN_NAME 65  /* the map holds a name that changes how programs load or run */
#define RUN_EXIT_SERVER_UNKNOWN 68  /* 404: no such server, or not the token's server */
#define RUN_EXIT_UNREACHABLE 69     /* no answer, TLS failure, 503 or 429 */
#define RUN_EXIT_FAILED 70          /* the service answered but did not deliver a usable map */
#define RUN_EXIT_TOKEN_REFUSED 77   /* 401/403: the token is unknown, revoked, expired or not a workload token */
#define RUN_EXIT_NOT_EXECUTABLE 126 /* the command exists but cannot be executed */
#define RUN_EXIT_NOT_FOUND 127      /* the command is not found */

#define RUN_DEFAULT_ADDR "https://127.0.0.1:8443"
#define RUN_ADDR_MAX_BYTES 1024
#define RUN_TOKEN_MAX_BYTES 128
#define RUN_TOKEN_FILE_MAX_BYTES 4096
#define RUN_RESPONSE_MAX_BYTES ((size_t)4 * 1024 * 1024)
#define RUN_MAX_CREDENTIALS 1024
#define RUN_CONNECT_TIMEOUT_S 10L
#define RUN_TIMEOUT_S 30L
#define RUN_PATH_MAX_BYTES 4096
#define RUN_FILE_MAX_BYTES (1024 * 1024) /* a file value; the service's own limit is far lower */
#define RUN_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

static const char *const token_vars[] = {"CREDVAULT_TOKEN", "CREDVAULT_TOKEN_FILE"};

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("credvault run: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static int is_token_var(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(token_vars) / sizeof(token_vars[0]); i++)
        if (strlen(token_vars[i]) == len && memcmp(token_vars[i], name, len) == 0) return 1;
    return 0;
}

/* ---- the token ---- */

static int token_shape_ok(const char *t, size_t n)
{
    if (n == 0 || n > RUN_TOKEN_MAX_BYTES) return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~') return 0; /* it goes into a header line */
    return 1;
}

/* From CREDVAULT_TOKEN_FILE (preferred) or CREDVAULT_TOKEN, into secret
 * memory; the variable's own copy in this process is wiped and removed. */
static int read_token(char **out)
{
    *out = NULL;
    const char *file = getenv("CREDVAULT_TOKEN_FILE");
    char *tok = NULL;
    size_t n = 0;
    const char *from;
    if (file && *file) {
        from = "CREDVAULT_TOKEN_FILE";
        if (cv_failed(cv_secret_file_read(from, file, RUN_TOKEN_FILE_MAX_BYTES, &tok, &n)))
            return fail(RUN_EXIT_USAGE, "%s", cv_error_message());
    } else {
        const char *v = getenv("CREDVAULT_TOKEN");
        if (!v || !*v) return fail(RUN_EXIT_USAGE, "no workload token: set CREDVAULT_TOKEN_FILE (preferred) or CREDVAULT_TOKEN");
        from = "CREDVAULT_TOKEN";
        n = strnlen(v, RUN_TOKEN_FILE_MAX_BYTES + 1);
        if (n > RUN_TOKEN_FILE_MAX_BYTES) return fail(RUN_EXIT_TOKEN_REFUSED, "the token in %s is not a credvault token", from);
        if (!(tok = cv_secret_alloc(n + 1))) return fail(CV_EXIT_FAIL, "out of memory");
        memcpy(tok, v, n);
        /* a value captured with its newline, e.g. $(cat file) in some shells */
        while (n > 0 && isspace((unsigned char)tok[n - 1])) n--;
        tok[n] = '\0';
    }
    if (!token_shape_ok(tok, n)) {
        cv_secret_free(tok);
        return fail(RUN_EXIT_TOKEN_REFUSED, "the token in %s is not a credvault token", from);
    }
    /* the process's own copies go: the command must never see them */
    for (size_t i = 0; i < sizeof(token_vars) / sizeof(token_vars[0]); i++) {
        char *v = getenv(token_vars[i]);
        if (v) cv_wipe(v, strlen(v));
        unsetenv(token_vars[i]);
    }
    *out = tok;
    return 0;
}

/* ---- the address ---- */

/* host[:port] is 127.x.y.z, [::1] or localhost: literally, so that a name
 * such as 127.example.net does not pass for one. */
static int loopback_host(const char *host, size_t hlen)
{
    size_t name_len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    if (name_len > hlen) name_len = hlen;
    const char *port = host + name_len;
    if (port < host + hlen && *port != ':') return 0;
    if (name_len == 5 && strncmp(host, "[::1]", 5) == 0) return 1;
    if (name_len == 9 && strncmp(host, "localhost", 9) == 0) return 1;
    unsigned a, b, c, d;
    char tail;
    char name[16];
    if (name_len >= sizeof(name)) return 0;
    memcpy(name, host, name_len);
    name[name_len] = '\0';
    return sscanf(name, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 &&
           d < 256;
}

/* https:// anywhere; http:// only to a loopback address, since the token
 * and the credentials cross this connection. No user info, query or fragment. */
static int check_addr(const char *addr, char *out, size_t cap)
{
    size_t n = strlen(addr);
    if (n == 0 || n > RUN_ADDR_MAX_BYTES) return fail(RUN_EXIT_USAGE, "--addr must be 1 to %d bytes", RUN_ADDR_MAX_BYTES);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)addr[i] <= ' ' || addr[i] == 0x7f)
            return fail(RUN_EXIT_USAGE, "--addr holds a space or control character");
    const char *host;
    int https = strncmp(addr, "https://", 8) == 0;
    if (https) host = addr + 8;
    else if (strncmp(addr, "http://", 7) == 0) host = addr + 7;
    else return fail(RUN_EXIT_USAGE, "--addr must start with https:// (or http:// for a loopback address)");
    size_t hlen = strcspn(host, "/");
    if (hlen == 0 || memchr(host, '@', hlen) || strpbrk(addr, "?#"))
        return fail(RUN_EXIT_USAGE, "--addr must be scheme://host[:port][/prefix], without user, query or fragment");
    if (!https && !loopback_host(host, hlen))
        return fail(RUN_EXIT_USAGE, "plain http:// is allowed to a loopback address only; use https://");
    while (n > 0 && addr[n - 1] == '/' && n > (size_t)(host - addr) + hlen) n--;
    if (n >= cap) return fail(RUN_EXIT_USAGE, "--addr is too long");
    memcpy(out, addr, n);
    out[n] = '\0';
    return 0;
}

/* ---- the command ---- */

/* Finds the command in this process's PATH before anything is fetched, so a
 * typo costs no credential read. 0, or the exit status to use. */
static int resolve_command(const char *cmd, char *out, size_t cap)
{
    struct stat sb;
    if (strchr(cmd, '/')) {
        if (strlen(cmd) >= cap) return fail(RUN_EXIT_NOT_FOUND, "%s: path too long", cmd);
        if (stat(cmd, &sb) != 0) return fail(RUN_EXIT_NOT_FOUND, "%s: command not found", cmd);
        if (!S_ISREG(sb.st_mode) || access(cmd, X_OK) != 0)
            return fail(RUN_EXIT_NOT_EXECUTABLE, "%s: not an executable file", cmd);
        snprintf(out, cap, "%s", cmd);
        return 0;
    }
    if (*cmd == '\0') return fail(RUN_EXIT_NOT_FOUND, "empty command name");
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    int denied = 0;
    for (const char *p = path;;) {
        size_t dn = strcspn(p, ":");
        int k = dn ? snprintf(out, cap, "%.*s/%s", (int)dn, p, cmd) : snprintf(out, cap, "./%s", cmd);
        if (k > 0 && (size_t)k < cap && stat(out, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (access(out, X_OK) == 0) return 0;
            denied = 1;
        }
        if (p[dn] == '\0') break;
        p += dn + 1;
    }
    out[0] = '\0';
    if (denied) return fail(RUN_EXIT_NOT_EXECUTABLE, "%s: permission denied", cmd);
    return fail(RUN_EXIT_NOT_FOUND, "%s: command not found", cmd);
}

/* ---- the fetch ---- */

struct response {
    struct cv_buf body; /* secret memory: it holds the credentials */
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (cv_failed(cv_buf_append(&r->body, p, n))) {
        cv_error_clear();
        return 0; /* CURLE_WRITE_ERROR: over RUN_RESPONSE_MAX_BYTES */
    }
    return n;
}

static const char *error_message(json_t *doc)
{
    const char *m = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    return m ? m : "no message";
}

static int error_code_is(json_t *doc, const char *code)
{
    const char *c = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    return c && strcmp(c, code) == 0;
}

/* GET <addr>/api/mcp/servers/<id>/env. 0 with *doc set on 200, else the exit status. */
static int fetch(const char *addr, const char *cacert, const char *server, const char *token, json_t **doc)
{
    *doc = NULL;
    int rc = 0;
    struct response resp;
    cv_buf_init_secret(&resp.body, RUN_RESPONSE_MAX_BYTES);
    struct curl_slist *headers = NULL;
    char *auth = NULL, *url = NULL, *escaped = NULL;
    CURL *c = curl_easy_init();
    if (!c) return fail(CV_EXIT_FAIL, "cannot start the HTTP client");

    escaped = curl_easy_escape(c, server, 0);
    size_t url_len = strlen(addr) + (escaped ? strlen(escaped) : 0) + 64;
    url = malloc(url_len);
    size_t auth_len = strlen("Authorization: Bearer ") + strlen(token) + 1;
    auth = cv_secret_alloc(auth_len);
    if (!escaped || !url || !auth) {
        rc = fail(CV_EXIT_FAIL, "out of memory");
        goto out;
    }
    snprintf(url, url_len, "%s/api/mcp/servers/%s/env", addr, escaped);
    snprintf(auth, auth_len, "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
    struct curl_slist *h2 = headers ? curl_slist_append(headers, "Accept: application/json") : NULL;
    if (!h2) {
        rc = fail(CV_EXIT_FAIL, "out of memory");
        goto out;
    }
    headers = h2;

    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect must not carry the token elsewhere */
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cacert) curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, RUN_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, RUN_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "credvault-run/" CV_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_WRITE_ERROR)
            rc = fail(RUN_EXIT_FAILED, "the response is larger than %zu bytes", RUN_RESPONSE_MAX_BYTES);
        else if (cc == CURLE_SSL_CACERT_BADFILE)
            rc = fail(RUN_EXIT_USAGE, "cannot use the CA file: %s", why);
        else if (cc == CURLE_PEER_FAILED_VERIFICATION)
            rc = fail(RUN_EXIT_UNREACHABLE, "the service at %s is not trusted (give its CA with --cacert): %s", addr,
                      why);
        else
            rc = fail(RUN_EXIT_UNREACHABLE, "cannot reach the service at %s: %s", addr, why);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)resp.body.data, resp.body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (status == 200 && json_is_true(json_object_get(j, "success"))) {
        *doc = j;
        goto out;
    }
    if (status == 401 || status == 403)
        rc = fail(RUN_EXIT_TOKEN_REFUSED, "the token was refused (%ld): %s", status, error_message(j));
    else if (status == 404)
        rc = fail(RUN_EXIT_SERVER_UNKNOWN, "server %s is unknown, or not the one this token is bound to", server);
    else if (status == 409 && error_code_is(j, "env_name_forbidden"))
        rc = fail(RUN_EXIT_FORBIDDEN_NAME, "the service refused to deliver the credentials: %s", error_message(j));
    else if (status == 429 || status == 503)
        rc = fail(RUN_EXIT_UNREACHABLE, "the service is unavailable (%ld): %s", status, error_message(j));
    else
        rc = fail(RUN_EXIT_FAILED, "the service did not deliver the credentials (%ld): %s", status,
                  j ? error_message(j) : "the response is not JSON");
    json_decref(j);
out:
    if (headers)
        for (struct curl_slist *h = headers; h; h = h->next) cv_wipe(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    curl_free(escaped);
    free(url);
    if (auth) cv_secret_free(auth);
    curl_easy_cleanup(c);
    cv_buf_free(&resp.body);
    return rc;
}

/* ---- the environment ---- */

/* The memfds made for file-shaped values, kept close-on-exec until the very
 * exec, so that nothing else this process might start inherits them. */
struct memfds {
    int fd[RUN_MAX_CREDENTIALS];
    size_t n;
};

static void memfds_close(struct memfds *m)
{
    for (size_t i = 0; i < m->n; i++) close(m->fd[i]);
    m->n = 0;
}

/* Writes `text` into an anonymous in-memory file, rewinds it and seals it
 * against any change; the fd stays close-on-exec for now. */
static int memfd_of(const char *name, const char *text, size_t len, struct memfds *m, int *out)
{
    char label[RUN_PATH_MAX_BYTES];
    snprintf(label, sizeof(label), "credvault:%.200s", name); /* shows in /proc/<pid>/fd; never the value */
    int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return fail(CV_EXIT_FAIL, "cannot make an in-memory file for %.64s: %s", name, strerror(errno));
    m->fd[m->n++] = fd;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail(CV_EXIT_FAIL, "cannot fill the in-memory file for %.64s: %s", name, strerror(errno));
        off += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || fcntl(fd, F_ADD_SEALS, RUN_SEALS) != 0)
        return fail(CV_EXIT_FAIL, "cannot seal the in-memory file for %.64s: %s", name, strerror(errno));
    *out = fd;
    return 0;
}

/* Wipes and frees the strings build_env made (from `first_own` on). */
static void free_env(char **envp, size_t first_own)
{
    if (!envp) return;
    for (char **p = envp + first_own; *p; p++) cv_secret_free(*p);
    free(envp);
}

/* environ without the token variables and without names the map sets, then
 * the map's NAME=value strings (secret memory: they live until exec). A
 * file-shaped value's string is NAME=/proc/self/fd/N: the path the command
 * (the same process after exec) opens to read it. */
static int build_env(json_t *env, struct memfds *m, char ***out, size_t *first_own)
{
    *out = NULL;
    size_t n = 0;
    for (char **e = environ; *e; e++) n++;
    char **envp = calloc(n + json_object_size(env) + 1, sizeof(char *));
    if (!envp) return fail(CV_EXIT_FAIL, "out of memory");
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        size_t len = strcspn(*e, "=");
        char name[RUN_PATH_MAX_BYTES];
        if (is_token_var(*e, len)) continue;
        if (len < sizeof(name)) {
            memcpy(name, *e, len);
            name[len] = '\0';
            if (json_object_get(env, name)) continue; /* the credential wins */
        }
        envp[k++] = *e;
    }
    *first_own = k;
    envp[k] = NULL;
    const char *name;
    json_t *v;
    json_object_foreach(env, name, v) {
        if (is_token_var(name, strlen(name))) {
            fprintf(stderr, "credvault run: credential %s not passed: the name is reserved for the token\n", name);
            continue;
        }
        json_t *file = json_object_get(v, "file");
        char path[64];
        const char *text = json_string_value(file ? file : v);
        size_t vl = json_string_length(file ? file : v);
        if (file) {
            int fd = -1, rc = memfd_of(name, text, vl, m, &fd);
            if (rc) {
                free_env(envp, *first_own);
                return rc;
            }
            snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
            text = path;
            vl = strlen(path);
        }
        size_t nl = strlen(name);
        char *s = cv_secret_alloc(nl + vl + 2);
        if (!s) {
            free_env(envp, *first_own);
            return fail(CV_EXIT_FAIL, "out of memory");
        }
        memcpy(s, name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, text, vl);
        s[nl + 1 + vl] = '\0';
        envp[k++] = s;
        envp[k] = NULL;
    }
    *out = envp;
    return 0;
}

/* The document's env for this server: under valid names, each value a string
 * an environment can carry, or {"file":"<content>"}. */
static int check_map(json_t *doc, const char *server, json_t **env)
{
    json_t *data = json_object_get(doc, "data");
    const char *sid = json_string_value(json_object_get(data, "serverId"));
    *env = json_object_get(data, "env");
    if (!sid || strcmp(sid, server) != 0 || !json_is_object(*env))
        return fail(RUN_EXIT_FAILED, "the service's answer is not a credential map for server %s", server);
    if (json_object_size(*env) > RUN_MAX_CREDENTIALS)
        return fail(RUN_EXIT_FAILED, "the credential map has more than %d entries", RUN_MAX_CREDENTIALS);
    const char *k;
    json_t *v;
    json_object_foreach(*env, k, v) {
        if (!cv_env_name_valid(k))
            return fail(RUN_EXIT_FAILED, "the credential map holds a name that is not an environment variable name");
        /* whatever the service delivered: this launcher is the last place
         * before the command, and an older or foreign service may not check */
        const char *why = cv_env_name_forbidden(k);
        if (why)
            return fail(RUN_EXIT_FORBIDDEN_NAME, "credential %.64s %s; refused, nothing was run (remove it from the "
                        "server's credentials)", k, why);
        json_t *file = json_object_get(v, "file");
        if (json_is_object(v)) {
            if (json_object_size(v) != 1 || !json_is_string(file) || json_string_length(file) > RUN_FILE_MAX_BYTES)
                return fail(RUN_EXIT_FAILED, "credential %.64s is not a file this launcher can make", k);
            continue;
        }
        /* an environment string ends at its first NUL */
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return fail(RUN_EXIT_FAILED, "credential %.64s is not a value an environment can carry", k);
    }
    return 0;
}

int cv_cli_run(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx; /* a client: no configuration file, no HSM, no database */
    const char *server = NULL, *addr_opt = NULL, *cacert = NULL;
    struct cv_cli_option opts[] = {
        {"--server", 1, "the server id whose credentials to fetch (the workload token's server)", &server},
        {"--addr", 1, "the service's URL (default: CREDVAULT_ADDR, else " RUN_DEFAULT_ADDR ")", &addr_opt},
        {"--cacert", 1, "PEM file of the CA that signed the service's certificate (default: CREDVAULT_CACERT, "
                        "else the system's)", &cacert},
    };
    const char *usage = "credvault run --server ID [--addr URL] [--cacert FILE] -- COMMAND [ARG...]";
    /* options end at "--" or at the first word that is not an option */
    int k = 1;
    while (k < argc && strcmp(argv[k], "--") != 0 && argv[k][0] == '-') {
        int takes_value = 0;
        for (size_t o = 0; o < sizeof(opts) / sizeof(opts[0]); o++)
            takes_value |= strcmp(argv[k], opts[o].name) == 0;
        k += takes_value ? 2 : 1;
    }
    if (k > argc) k = argc;
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(k, argv, usage,
                          "Fetches the server's credentials with the workload token in CREDVAULT_TOKEN_FILE\n"
                          "(preferred) or CREDVAULT_TOKEN, removes those two variables, adds the credentials\n"
                          "to the environment and executes COMMAND in place of itself. A file-shaped value\n"
                          "becomes a sealed in-memory file and its variable the path /proc/self/fd/N.\n"
                          "Nothing is written to disk and no value is printed.\n\n"
                          "exit status: the command's own; or 2 usage, 65 a credential name that changes\n"
                          "how programs load or run (LD_*, SHELLOPTS, PS4, NODE_OPTIONS, …), 68 server\n"
                          "unknown, 69 service unreachable, 70 no usable answer, 77 token refused,\n"
                          "126 command not executable, 127 command not found",
                          opts, sizeof(opts) / sizeof(opts[0]), pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : RUN_EXIT_USAGE;
    int cmd = k < argc && strcmp(argv[k], "--") == 0 ? k + 1 : k;
    if (!server || !*server) return fail(RUN_EXIT_USAGE, "--server is required\nusage: %s", usage);
    if (cmd >= argc) return fail(RUN_EXIT_USAGE, "no command given\nusage: %s", usage);
    if (strlen(server) > CV_SERVER_ID_MAX_BYTES)
        return fail(RUN_EXIT_USAGE, "--server must be at most %d bytes", CV_SERVER_ID_MAX_BYTES);

    char addr[RUN_ADDR_MAX_BYTES + 1];
    const char *a = addr_opt ? addr_opt : getenv("CREDVAULT_ADDR");
    if ((rc = check_addr(a && *a ? a : RUN_DEFAULT_ADDR, addr, sizeof(addr))) != 0) return rc;
    if (!cacert) cacert = getenv("CREDVAULT_CACERT");
    if (cacert && !*cacert) cacert = NULL;
    if (cacert && access(cacert, R_OK) != 0)
        return fail(RUN_EXIT_USAGE, "cannot read the CA file %s: %s", cacert, strerror(errno));

    char path[RUN_PATH_MAX_BYTES];
    if ((rc = resolve_command(argv[cmd], path, sizeof(path))) != 0) return rc;

    char *token = NULL;
    if ((rc = read_token(&token)) != 0) return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cv_secret_free(token);
        return fail(CV_EXIT_FAIL, "cannot start the HTTP client");
    }
    json_t *doc = NULL, *env = NULL;
    char **envp = NULL;
    size_t first_own = 0;
    static struct memfds files; /* static: RUN_MAX_CREDENTIALS fds is too much for the stack */
    rc = fetch(addr, cacert, server, token, &doc);
    cv_secret_free(token);
    if (rc == 0) rc = check_map(doc, server, &env);
    if (rc == 0) rc = build_env(env, &files, &envp, &first_own);
    /* what is left of the answer is wiped (the wiping allocator) before the
     * new image replaces this one; only envp's strings and the sealed
     * in-memory files remain until exec */
    json_decref(doc);
    curl_global_cleanup();
    if (rc != 0) {
        memfds_close(&files);
        return rc;
    }

    /* the command is this process after exec: only now may its files survive exec */
    for (size_t i = 0; i < files.n; i++) {
        if (fcntl(files.fd[i], F_SETFD, 0) != 0) {
            int e = errno;
            memfds_close(&files);
            free_env(envp, first_own);
            return fail(CV_EXIT_FAIL, "cannot pass an in-memory file to the command: %s", strerror(e));
        }
    }
    execve(path, argv + cmd, envp);
    /* execve returned: the command did not start, and its credentials go */
    int e = errno;
    memfds_close(&files);
    free_env(envp, first_own);
    return fail(e == ENOENT ? RUN_EXIT_NOT_FOUND : RUN_EXIT_NOT_EXECUTABLE, "cannot execute %s: %s", argv[cmd],
                strerror(e));
}
