/* credvault: one binary, subcommands in src/cli. */
#include "cli/cli.h"

int main(int argc, char **argv) { return cv_cli_main(argc, argv); }
