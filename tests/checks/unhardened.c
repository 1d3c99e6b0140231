/* A program built without the hardening (no PIE, no RELRO, lazy binding, an
 * executable stack, no stack protector, no _FORTIFY_SOURCE), for
 * checks.hardening_refuse: tests/checks/hardening must name every missing
 * property. Never run. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char buf[64];
    strcpy(buf, argc > 1 ? argv[1] : "");
    return puts(buf) < 0;
}
