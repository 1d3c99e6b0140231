/* The real server as a child process, for integration tests. Only the
 * process this file started is ever signalled, by its pid. */
#include "cv_test_service.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bin(void)
{
    const char *b = getenv("CREDVAULT_BIN");
    return b ? b : "credvault";
}

static const char *tmpdir(void)
{
    const char *t = getenv("CV_TEST_TMP");
    return t ? t : "/tmp";
}

int cv_test_sh(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

char *cv_test_sh_output(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    pclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

int cv_test_cli(const char *args, char *out, size_t out_len)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s %s", bin(), args);
    if (!out) return cv_test_sh(cmd);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == '\n') out[--n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static int prepare(struct cv_test_service *s)
{
    char path[1024];
    snprintf(s->dir, sizeof(s->dir), "%.200s/service", tmpdir());
    snprintf(path, sizeof(path), "%s/admin-token", s->dir);
    snprintf(s->ca_file, sizeof(s->ca_file), "%s/tls/ca.crt", s->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fgets(s->admin_token, sizeof(s->admin_token), f) != NULL;
        fclose(f);
        s->admin_token[strcspn(s->admin_token, "\n")] = '\0';
        return ok ? 0 : -1;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && '%s/scripts/make-cert' '%s/tls' >/dev/null", s->dir,
             getenv("CV_SOURCE_DIR"), s->dir);
    if (cv_test_sh(cmd) != 0) return -1;
    if (cv_test_cli("migrate >/dev/null", NULL, 0) != 0) return -1;
    if (cv_test_cli("hsm init >/dev/null", NULL, 0) != 0) return -1;
    if (cv_test_cli("token create --name platform-admin --role admin", s->admin_token, sizeof(s->admin_token)) != 0)
        return -1;
    f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", s->admin_token);
    fclose(f);
    return 0;
}

int cv_test_service_start(struct cv_test_service *s, const char *const *extra_env)
{
    if (prepare(s) != 0) {
        fprintf(stderr, "cv_test_service: preparing the instance failed\n");
        return -1;
    }
    s->port = free_port();
    snprintf(s->base_url, sizeof(s->base_url), "https://127.0.0.1:%u", s->port);
    static unsigned n;
    snprintf(s->log_file, sizeof(s->log_file), "%s/serve-%u.log", s->dir, n++);
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        char v[1024];
        snprintf(v, sizeof(v), "127.0.0.1:%u", s->port);
        setenv("CREDVAULT_LISTEN", v, 1);
        snprintf(v, sizeof(v), "%s/tls/server.crt", s->dir);
        setenv("CREDVAULT_TLS_CERT", v, 1);
        snprintf(v, sizeof(v), "%s/tls/server.key", s->dir);
        setenv("CREDVAULT_TLS_KEY", v, 1);
        for (size_t i = 0; extra_env && extra_env[i]; i++) putenv((char *)extra_env[i]);
        int fd = open(s->log_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin(), bin(), "serve", (char *)NULL);
        _exit(127);
    }
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null --max-time 2 --cacert '%s' '%s/healthz'", s->ca_file,
             s->base_url);
    for (int i = 0; i < 200; i++) {
        if (cv_test_sh(cmd) == 0) return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "cv_test_service: the server exited during start; log %s\n", s->log_file);
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "cv_test_service: the server did not answer /healthz\n");
    cv_test_service_stop(s);
    return -1;
}

int cv_test_service_stop(struct cv_test_service *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

int cv_test_service_log_contains(const struct cv_test_service *s, const char *needle)
{
    FILE *f = fopen(s->log_file, "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}
