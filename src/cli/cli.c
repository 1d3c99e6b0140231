#include <stdio.h>
#include "cli/cli.h"
int cv_cli_main(int argc, char **argv) { (void)argc; (void)argv; puts("credvault"); return 0; }
