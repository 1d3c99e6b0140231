/* Environment variable names a credential may be delivered under: the one
 * syntax check and the one list of names that change how a program is
 * loaded or run. Deploy, update, legacy import, delivery and `credvault run`
 * all ask here, so the rule cannot differ between them. */
#ifndef CREDVAULT_ENVNAME_H
#define CREDVAULT_ENVNAME_H

/* 1 when `s` is [A-Za-z_][A-Za-z0-9_]* (ASCII only, not empty). */
int cv_env_name_valid(const char *s);

/* When `name` is one that makes the program it reaches load or run code,
 * change its search paths or its shell's behaviour (LD_*, SHELLOPTS, PS4,
 * PYTHON*, NODE_*, PATH, …): a short description of its family, for an error
 * message. NULL for an ordinary name. Such a name is refused whatever a
 * template says. The list is in docs/workload.md. */
const char *cv_env_name_forbidden(const char *name);

#endif
