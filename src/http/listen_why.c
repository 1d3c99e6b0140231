/* Why the server could not listen, in words an operator can act on: the
 * address is taken (and by which process, when /proc lets us see it), is
 * not this machine's, or needs privileges. Reads /proc only; never binds
 * for longer than the probe. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* The inode of the socket listening on `port` (state 0A), or 0. */
static unsigned long listening_inode(const char *table, unsigned port)
{
    FILE *f = fopen(table, "r");
    if (!f) return 0;
    char line[512];
    unsigned long inode = 0;
    if (!fgets(line, sizeof(line), f)) line[0] = '\0'; /* the header */
    while (!inode && fgets(line, sizeof(line), f)) {
        char local[64];
        unsigned st;
        unsigned long ino;
        if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*d %*d %lu", local, &st, &ino) != 3) continue;
        const char *colon = strrchr(local, ':');
        if (colon && st == 0x0A && strtoul(colon + 1, NULL, 16) == port) inode = ino;
    }
    fclose(f);
    return inode;
}

/* "pid 1234 (nginx)" for the process holding socket `inode`, or "". */
static void owner_of(unsigned long inode, char *out, size_t n)
{
    out[0] = '\0';
    char want[48];
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *proc = opendir("/proc");
    if (!proc) return;
    const struct dirent *p;
    while (!out[0] && (p = readdir(proc)) != NULL) {
        if (p->d_name[0] < '1' || p->d_name[0] > '9') continue;
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/%.16s/fd", p->d_name);
        DIR *fds = opendir(dir); /* another user's: not ours to see, skipped */
        if (!fds) continue;
        const struct dirent *fd;
        while ((fd = readdir(fds)) != NULL) {
            char link[128], target[64];
            snprintf(link, sizeof(link), "%s/%.32s", dir, fd->d_name);
            ssize_t len = readlink(link, target, sizeof(target) - 1);
            if (len <= 0) continue;
            target[len] = '\0';
            if (strcmp(target, want) != 0) continue;
            char comm_path[64], comm[32] = "?";
            snprintf(comm_path, sizeof(comm_path), "/proc/%.16s/comm", p->d_name);
            FILE *c = fopen(comm_path, "r");
            if (c) {
                if (fgets(comm, sizeof(comm), c)) comm[strcspn(comm, "\n")] = '\0';
                fclose(c);
            }
            snprintf(out, n, "pid %.16s (%.31s)", p->d_name, comm);
            break;
        }
        closedir(fds);
    }
    closedir(proc);
}

void cv_http_listen_why(const struct cv_http_listen_addr *la, const char *listen, char *out, size_t n)
{
    int s = socket(la->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        snprintf(out, n, "cannot make a socket for %.80s: %s", listen, strerror(errno));
        return;
    }
    int one = 1;
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(s, (const struct sockaddr *)&la->ss, la->len);
    int err = errno;
    close(s);
    if (rc == 0) {
        snprintf(out, n, "cannot serve on %.80s: GnuTLS refused the certificate or key (the log line before this one "
                         "says why)",
                 listen);
        return;
    }
    if (err == EADDRINUSE) {
        char who[64] = "";
        unsigned long inode = listening_inode(la->family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp", la->port);
        if (!inode && la->family == AF_INET6) inode = listening_inode("/proc/net/tcp", la->port);
        if (inode) owner_of(inode, who, sizeof(who));
        snprintf(out, n, "cannot serve on %.80s: the address is in use%s%s; stop that process or set CREDVAULT_LISTEN "
                         "to another port",
                 listen, who[0] ? " by " : " by another process", who);
    } else if (err == EADDRNOTAVAIL) {
        snprintf(out, n, "cannot serve on %.80s: it is not an address of this machine (CREDVAULT_LISTEN)", listen);
    } else if (err == EACCES) {
        snprintf(out, n, "cannot serve on %.80s: ports below 1024 need CAP_NET_BIND_SERVICE", listen);
    } else {
        snprintf(out, n, "cannot serve on %.80s: %s", listen, strerror(err));
    }
}
