/* `hetrun tokenize [--bpe VOCAB] -o OUT.tok CORPUS...`: pre-tokenises UTF-8 text files, byte
 * by byte (vocabulary 256) or with byte-pair merges trained on them (text/bpe.h), into one
 * token file (workloads/tokens.h) that every rank of a `model: gpt` train job memory-maps. Exit 3
 * when a corpus file is missing, empty or not UTF-8 (nothing is written), 2 on a bad command line,
 * 1 when the output cannot be written. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/exitcodes.h"
#include "workloads/tokens.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hetrun tokenize [--bpe VOCAB] -o OUT.tok CORPUS...\n\n"
                 "Tokenises UTF-8 text files (concatenated, in order) byte by byte, or with\n"
                 "byte-pair merges trained on them, into a token file for `train` with\n"
                 "`model: gpt` (text.tokens).\n\n"
                 "options:\n"
                 "  -o, --output FILE    the token file to write (atomically)\n"
                 "  -b, --bpe VOCAB      train byte-pair merges up to VOCAB tokens (257..65536)\n"
                 "  -h, --help           this text\n"
                 "exit codes: 0 ok, 2 usage, 3 a corpus file is missing, empty or not UTF-8\n"
                 "            (nothing written), 1 the token file could not be written\n");
}

int hetrun_cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"bpe", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    long vocab = 256;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:b:h", opts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'b') {
            char *end;
            vocab = strtol(optarg, &end, 10);
            if (*end || vocab < 257 || vocab > 65536) {
                fprintf(stderr, "hetrun tokenize: --bpe %s: want a vocabulary of 257..65536\n",
                        optarg);
                return HETRUN_EXIT_USAGE;
            }
        } else if (c == 'h') {
            usage(stdout);
            return HETRUN_EXIT_OK;
        } else {
            usage(stderr);
            return HETRUN_EXIT_USAGE;
        }
    }
    if (!out || optind >= argc) {
        fprintf(stderr, "hetrun tokenize: %s\n",
                !out ? "-o OUT.tok is required" : "no corpus file");
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    /* Input errors are found before anything is written: check every file first. */
    for (int i = optind; i < argc; i++)
        if (access(argv[i], R_OK) != 0) {
            fprintf(stderr, "hetrun tokenize: corpus %s: cannot open\n", argv[i]);
            return HETRUN_EXIT_INVALID_SPEC;
        }
    char err[1536];
    uint64_t count = 0;
    uint32_t got = 0;
    if (hetrun_tokens_write((const char *const *)argv + optind, argc - optind, out, (uint32_t)vocab,
                            &count, &got, err, sizeof err) != 0) {
        fprintf(stderr, "hetrun tokenize: %s\n", err);
        return strncmp(err, "corpus ", 7) == 0 ? HETRUN_EXIT_INVALID_SPEC : HETRUN_EXIT_FAILED;
    }
    printf("%s: %llu tokens (%s, vocabulary %u) from %d file(s)\n", out, (unsigned long long)count,
           vocab == 256 ? "bytes" : "bpe", got, argc - optind);
    return HETRUN_EXIT_OK;
}
