/* hetrun-conformance: the name the conformance tool had before it became `hetrun conform`
 * (launcher/conform/); same options, same certificate, same exit codes. Kept so scripts and
 * tests that call it keep working. */
#include "cli/commands.h"

int main(int argc, char **argv) {
    argv[0] = "conform";
    return hetrun_cmd_conform(argc, argv);
}
