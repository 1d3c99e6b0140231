/* Subcommands of the one binary. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef CREDVAULT_CLI_H
#define CREDVAULT_CLI_H

#define CV_EXIT_OK 0
#define CV_EXIT_FAIL 1
#define CV_EXIT_USAGE 2

int cv_cli_main(int argc, char **argv);

#endif
