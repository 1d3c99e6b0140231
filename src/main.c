/* credvault: one binary, subcommands in src/cli. */
#include "cli/cli.h"
#include "credvault/json_alloc.h"

int main(int argc, char **argv)
{
    /* before any jansson call: documents hold tokens, PINs and plaintext */
    cv_json_alloc_install();
    return cv_cli_main(argc, argv);
}
