/* A stand-alone `hetrun validate` (the same hetrun_cmd_validate as the real binary), so the
 * spec tests need neither MPI nor backends nor the rest of the executable. */
#include <string.h>

#include "cli/commands.h"

int main(int argc, char **argv) {
    /* Accept `TOOL validate ARGS` like `hetrun validate ARGS`. */
    if (argc > 1 && strcmp(argv[1], "validate") == 0)
        return hetrun_cmd_validate(argc - 1, argv + 1);
    return hetrun_cmd_validate(argc, argv);
}
