/* A stand-alone `hetrun validate` (the same hetrun_cmd_validate as the real binary), so the
 * spec tests need neither MPI nor backends nor the rest of the executable. */
#include "cli/commands.h"

int main(int argc, char **argv) {
    return hetrun_cmd_validate(argc, argv);
}
