/* Tokenizes each line of a file with a tokenizer.json and prints the ids, one line per input
 * line (for the reference comparison and for debugging a mismatch by hand).
 * usage: hetrun_tokenize TOKENIZER_JSON SENTENCES_FILE [MAX_LEN] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/wordpiece.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON SENTENCES_FILE [MAX_LEN]\n", argv[0]);
        return 2;
    }
    int32_t max_len = argc > 3 ? atoi(argv[3]) : 512;
    hetrun_wordpiece *t;
    char err[512];
    if (hetrun_wordpiece_load(argv[1], &t, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *fp = fopen(argv[2], "rb");
    if (!fp) {
        perror(argv[2]);
        return 1;
    }
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    for (long lineno = 1; ids && (n = getline(&line, &cap, fp)) >= 0; lineno++) {
        if (n > 0 && line[n - 1] == '\n') n--;
        int32_t count;
        int truncated;
        if (hetrun_wordpiece_encode(t, line, (size_t)n, max_len, ids, &count, &truncated, err,
                                    sizeof err) != 0) {
            fprintf(stderr, "%s:%ld: %s\n", argv[2], lineno, err);
            rc = 1;
            printf("error\n");
            continue;
        }
        for (int32_t i = 0; i < count; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(line);
    free(ids);
    fclose(fp);
    hetrun_wordpiece_free(t);
    return rc;
}
