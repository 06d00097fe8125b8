/* Sentence files: one sentence per line (CR dropped, empty lines kept so rows match line
 * numbers, a last line without newline counted), refusals naming file:line and byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/sentences.h"

static int failures;
static char dir[] = "/tmp/hetrun-sent-XXXXXX";

static const char *write_text(const char *name, const char *bytes, size_t n) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) exit(1);
    fwrite(bytes, 1, n, fp);
    fclose(fp);
    return path;
}

static void check(int cond, const char *what, const char *err) {
    printf("%s %s%s%s\n", cond ? "ok  " : "FAIL", what, err && *err ? ": " : "", err ? err : "");
    if (!cond) failures++;
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    hetrun_sentences s;
    char err[512] = "";
    const char text[] = "first line\r\n\nthird: caf\xc3\xa9 \xe4\xb8\xad\nno newline";
    int rc =
        hetrun_sentences_read(write_text("ok.txt", text, sizeof text - 1), &s, err, sizeof err);
    check(rc == 0 && s.count == 4, "4 lines (an empty one included)", err);
    if (rc == 0) {
        check(strcmp(s.text[0], "first line") == 0 && s.len[0] == 10, "CR dropped", NULL);
        check(s.len[1] == 0, "empty line is an empty sentence", NULL);
        check(strcmp(s.text[2], "third: caf\xc3\xa9 \xe4\xb8\xad") == 0, "UTF-8 kept", NULL);
        check(strcmp(s.text[3], "no newline") == 0, "last line without newline", NULL);
        hetrun_sentences_free(&s);
    }
    const char *p = write_text("empty.txt", "", 0);
    rc = hetrun_sentences_read(p, &s, err, sizeof err);
    check(rc != 0 && strstr(err, p) && strstr(err, "no sentences"), "empty file refused", err);
    const char bad[] = "fine\nalso fine\nbad \xff here\n";
    p = write_text("bad.txt", bad, sizeof bad - 1);
    rc = hetrun_sentences_read(p, &s, err, sizeof err);
    char want[300];
    snprintf(want, sizeof want, "%s:3: invalid UTF-8 at byte 5", p);
    check(rc != 0 && strstr(err, want), "invalid UTF-8: file:line and byte", err);
    const char surrogate[] = "\xed\xa0\x80\n";
    p = write_text("surrogate.txt", surrogate, sizeof surrogate - 1);
    rc = hetrun_sentences_read(p, &s, err, sizeof err);
    check(rc != 0 && strstr(err, ":1: invalid UTF-8 at byte 1"), "encoded surrogate refused", err);
    rc = hetrun_sentences_read("/nonexistent/s.txt", &s, err, sizeof err);
    check(rc != 0 && strstr(err, "/nonexistent/s.txt: cannot open"), "missing file named", err);
    const char *items[] = {"ok", "bad \xc3"};
    rc = hetrun_sentences_from(items, 2, &s, err, sizeof err);
    check(rc != 0 && strstr(err, "sentences[1]: invalid UTF-8 at byte 5"), "list: index named",
          err);
    rc = hetrun_sentences_from(items, 1, &s, err, sizeof err);
    check(rc == 0 && s.count == 1 && strcmp(s.text[0], "ok") == 0, "list copied", err);
    hetrun_sentences_free(&s);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
