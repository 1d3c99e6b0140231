/* Root is given up, not kept: `serve` started as root (outside systemd, whose
 * unit sets User=) becomes CREDVAULT_USER once it listens and has read its
 * key files: supplementary groups, then gid, then uid, all three ids each,
 * then a check that none of them can become root again. glibc applies the
 * set*id calls to every thread, so the workers already started follow. */
#define _GNU_SOURCE /* setresuid, getresuid and their gid twins */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "credvault/log.h"

cv_result cv_cli_privileges_plan(const char *user_opt, int allow_root, struct cv_cli_privileges *out)
{
    memset(out, 0, sizeof(*out));
    int root = geteuid() == 0 || getuid() == 0;
    const char *user = user_opt ? user_opt : "";
    if (!*user) {
        if (root && !allow_root)
            return cv_fail(CV_ERR_INPUT,
                           "refusing to serve as root: name the user to become with --user or CREDVAULT_USER "
                           "(it must read the token's files), or allow root with --allow-root or "
                           "CREDVAULT_ALLOW_ROOT=on");
        return CV_OK;
    }
    CV_ENSURE(strlen(user) < sizeof(out->user), CV_ERR_INPUT, "CREDVAULT_USER is longer than %zu bytes",
              sizeof(out->user) - 1);
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = size > 0 ? (size_t)size : 16384;
    char *buf = malloc(len);
    CV_ENSURE(buf != NULL, CV_ERR_MEMORY, "out of memory");
    struct passwd pw, *found = NULL;
    int e = getpwnam_r(user, &pw, buf, len, &found);
    cv_result r = CV_OK;
    if (e != 0 || !found) {
        r = cv_fail(CV_ERR_INPUT, "CREDVAULT_USER=%s: no such user%s%s", user, e ? ": " : "", e ? strerror(e) : "");
    } else if (pw.pw_uid == 0) {
        r = cv_fail(CV_ERR_INPUT, "CREDVAULT_USER=%s is root: name an unprivileged user", user);
    } else if (!root) {
        /* nothing to drop; only the user it already is makes sense */
        if (pw.pw_uid != getuid())
            r = cv_fail(CV_ERR_INPUT, "CREDVAULT_USER=%s needs serve to start as root (it runs as uid %u)", user,
                        (unsigned)getuid());
    } else {
        out->drop = 1;
        out->uid = pw.pw_uid;
        out->gid = pw.pw_gid;
        snprintf(out->user, sizeof(out->user), "%s", user);
    }
    free(buf);
    return r;
}

cv_result cv_cli_privileges_drop(const struct cv_cli_privileges *p)
{
    if (!p->drop) return CV_OK;
    /* the user's own groups (a token folder's group such as softhsm), nothing of root's */
    CV_ENSURE(initgroups(p->user, p->gid) == 0, CV_ERR_INTERNAL, "initgroups(%s): %s", p->user, strerror(errno));
    CV_ENSURE(setresgid(p->gid, p->gid, p->gid) == 0, CV_ERR_INTERNAL, "setresgid(%u): %s", (unsigned)p->gid,
              strerror(errno));
    CV_ENSURE(setresuid(p->uid, p->uid, p->uid) == 0, CV_ERR_INTERNAL, "setresuid(%u): %s", (unsigned)p->uid,
              strerror(errno));
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    CV_ENSURE(getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0, CV_ERR_INTERNAL,
              "could not read back the process ids");
    CV_ENSURE(ru == p->uid && eu == p->uid && su == p->uid && rg == p->gid && eg == p->gid && sg == p->gid,
              CV_ERR_INTERNAL, "the ids did not all change to %u:%u", (unsigned)p->uid, (unsigned)p->gid);
    /* the proof: a process that could become root again has dropped nothing */
    CV_ENSURE(setuid(0) != 0 && seteuid(0) != 0 && setgid(0) != 0 && setegid(0) != 0, CV_ERR_INTERNAL,
              "still able to become root after switching to %s", p->user);
    char uid[16], gid[16];
    snprintf(uid, sizeof(uid), "%u", (unsigned)p->uid);
    snprintf(gid, sizeof(gid), "%u", (unsigned)p->gid);
    cv_log(CV_LOG_INFO, "privileges_dropped", "user", p->user, "uid", uid, "gid", gid, NULL);
    return CV_OK;
}
