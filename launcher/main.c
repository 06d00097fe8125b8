/* hetrun: one YAML job spec, any accelerator. Dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "hetrun/backend.h"
#include "util/exitcodes.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", hetrun_cmd_run, "run a job spec on this node's devices (under mpirun/srun or alone)"},
    {"validate", hetrun_cmd_validate, "check job specs without running them"},
    {"backends", hetrun_cmd_backends, "list backend modules and their devices"},
    {"topo", hetrun_cmd_topo, "show the node's devices with PCI id, NUMA node and nearest cores"},
    {"plan", hetrun_cmd_plan, "print the rank -> device -> cpus plan for a job, without running"},
    {"usage", hetrun_cmd_usage, "sum compute usage records over reports, for accounting"},
    {"tokenize", hetrun_cmd_tokenize, "pre-tokenise UTF-8 text into a token file (train gpt)"},
    {"conform", hetrun_cmd_conform, "certify a backend module: ops, ABI contract, all devices"},
};

static void print_help(FILE *out) {
    fprintf(out, "usage: hetrun <command> [options]\n"
                 "       mpirun -np N hetrun run JOB.yaml\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'hetrun <command> --help' describes a command's options.\n"
                 "options: --help, --version\n"
                 "environment: HETRUN_BACKEND_PATH (module search path), HETRUN_LOG "
                 "(error|warn|info|debug), HETRUN_CACHE_DIR\n"
                 "exit codes: 0 ok, 1 job failed, 2 usage, 3 invalid spec, 4 backend/config, "
                 "124 timeout, 128+N signal (docs/exit-codes.md)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return HETRUN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return HETRUN_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("hetrun %s (backend ABI %d.%d)\n", HETRUN_VERSION, HETRUN_ABI_MAJOR,
               HETRUN_ABI_MINOR);
        return HETRUN_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hetrun: unknown command '%s' (see 'hetrun --help')\n", argv[1]);
    return HETRUN_EXIT_USAGE;
}
