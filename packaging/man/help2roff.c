/* help2roff: renders a command's --help text (stdin) as a man page (stdout), so the man
 * pages and `--help` come from the same text and never drift apart.
 *
 * The help texts follow one shape (launcher/main.c, launcher/cli/cmd_*.c):
 *   usage: LINE              SYNOPSIS, with indented continuation lines
 *   paragraphs               DESCRIPTION; indented lines are kept as they are
 *   name: [text]             a section ("options:", "exit codes: ...", "environment: ...")
 *     -x, --opt ARG  text    an item of a list section (options, commands)
 *
 * usage: help2roff --name hetrun-run --summary TEXT --version TEXT [--see-also TEXT]
 * Exit 0, or 2 (usage, a text too long) with the reason on stderr. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 512
#define MAX_LINE 512

static char lines[MAX_LINES][MAX_LINE];
static int nlines;

static int indent_of(const char *s) {
    int i = 0;
    while (s[i] == ' ')
        i++;
    return i;
}

static int is_blank(const char *s) {
    return s[indent_of(s)] == '\0';
}

/* Writes text with roff escapes: backslashes, '-' as \- (options stay copyable), `code`
 * in bold, and a leading '.' or '\'' protected. */
static void put_text(const char *s) {
    if (*s == '.' || *s == '\'') fputs("\\&", stdout);
    int code = 0;
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else if (*s == '`') {
            fputs(code ? "\\fR" : "\\fB", stdout);
            code = !code;
        } else
            putchar(*s);
    }
    if (code) fputs("\\fR", stdout);
}

static void put_line(const char *s) {
    put_text(s);
    putchar('\n');
}

/* A section header: lower-case words then ':' at column 0 ("exit codes: 0 ok, ..."). Returns
 * the length of the name, 0 when the line is not a header. */
static size_t header_len(const char *s) {
    size_t i = 0;
    if (!islower((unsigned char)s[0])) return 0;
    while (islower((unsigned char)s[i]) || s[i] == ' ')
        i++;
    return s[i] == ':' && (s[i + 1] == ' ' || s[i + 1] == '\0') ? i : 0;
}

static void put_section_title(const char *name, size_t len) {
    char title[64];
    if (len >= sizeof title) len = sizeof title - 1;
    for (size_t i = 0; i < len; i++)
        title[i] = (char)toupper((unsigned char)name[i]);
    title[len] = '\0';
    if (strcmp(title, "EXIT CODES") == 0) snprintf(title, sizeof title, "EXIT STATUS");
    printf(".SH %s\n", title);
}

/* Splits an item line ("  -b, --backend NAME   text") into its tag and its text: at the
 * first run of two spaces, else after the leading option words and metavariables. */
static void split_item(const char *s, char *tag, size_t taglen, const char **text) {
    const char *gap = strstr(s, "  ");
    if (!gap) {
        const char *p = s;
        for (;;) {
            const char *w = p;
            while (*w == ' ')
                w++;
            const char *e = w;
            while (*e && *e != ' ')
                e++;
            int opt = *w == '-';
            int meta = e > w;
            for (const char *c = w; c < e; c++)
                if (!(isupper((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' ||
                      *c == '.' || *c == ','))
                    meta = 0;
            if (e == w || (!opt && !meta)) break;
            p = e;
        }
        gap = p;
    }
    size_t n = (size_t)(gap - s);
    if (n >= taglen) n = taglen - 1;
    memcpy(tag, s, n);
    tag[n] = '\0';
    *text = gap + indent_of(gap);
}

/* Renders lines [from, to) of a section: list items as .TP, other text as paragraphs. */
static void put_section_body(int from, int to, const char *first_text) {
    int item_indent = -1;
    if (first_text && *first_text) put_line(first_text);
    for (int i = from; i < to; i++) {
        const char *s = lines[i];
        if (is_blank(s)) {
            printf(".PP\n");
            item_indent = -1;
            continue;
        }
        int ind = indent_of(s);
        if (ind > 0 && (item_indent < 0 || ind <= item_indent) && !first_text) {
            char tag[128];
            const char *text;
            split_item(s + ind, tag, sizeof tag, &text);
            item_indent = ind;
            printf(".TP\n.B ");
            put_line(tag);
            if (*text) put_line(text);
        } else {
            put_line(s + ind);
        }
    }
}

static int read_input(void) {
    char buf[MAX_LINE];
    while (fgets(buf, sizeof buf, stdin)) {
        if (nlines == MAX_LINES) {
            fprintf(stderr, "help2roff: help text longer than %d lines\n", MAX_LINES);
            return -1;
        }
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(lines[nlines++], MAX_LINE, "%s", buf);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *name = NULL, *summary = NULL, *version = NULL, *see_also = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--summary") == 0)
            summary = argv[i + 1];
        else if (strcmp(argv[i], "--version") == 0)
            version = argv[i + 1];
        else if (strcmp(argv[i], "--see-also") == 0)
            see_also = argv[i + 1];
        else {
            fprintf(stderr, "help2roff: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!name || !summary || !version || argc % 2 == 0) {
        fprintf(stderr, "usage: help2roff --name NAME --summary TEXT --version TEXT "
                        "[--see-also TEXT] < HELP\n");
        return 2;
    }
    if (read_input() != 0) return 2;
    int i = 0;
    while (i < nlines && is_blank(lines[i]))
        i++;
    /* A text of another shape still gets a page (and the install test names the command):
     * a merged command must not break the build over its help text. */
    int has_usage = i < nlines && strncmp(lines[i], "usage: ", 7) == 0;
    if (!has_usage)
        fprintf(stderr,
                "help2roff: warning: %s: the help text does not start with 'usage: '; the "
                "synopsis is the command's name only\n",
                name);

    char command[128]; /* hetrun-run -> hetrun run */
    snprintf(command, sizeof command, "%s", name);
    char *dash = strchr(command, '-');
    if (dash) *dash = ' ';
    char upper[64];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof upper; n++)
        upper[n] = (char)toupper((unsigned char)name[n]);
    upper[n] = '\0';
    printf(".\\\" Generated by help2roff from '%s --help'; edit the help text, not this file.\n",
           command);
    printf(".TH %s 1 \"\" \"hetrun %s\" \"User Commands\"\n", upper, version);
    printf(".SH NAME\n");
    put_text(name);
    fputs(" \\- ", stdout);
    put_line(summary);

    printf(".SH SYNOPSIS\n.nf\n");
    if (!has_usage)
        put_line(command);
    else
        put_line(lines[i++] + 7);
    for (; i < nlines && !is_blank(lines[i]) && indent_of(lines[i]) > 0; i++) {
        const char *s = lines[i] + indent_of(lines[i]);
        if (*s == '[' || *s == '-') fputs("    ", stdout); /* wrapped arguments, not a form */
        put_line(s);
    }
    printf(".fi\n");

    /* Description: everything before the first section header. */
    int start = i;
    while (i < nlines && !header_len(lines[i]))
        i++;
    int described = 0, para = 0, pre = 0;
    for (int j = start; j < i; j++) {
        const char *s = lines[j];
        if (is_blank(s)) {
            if (pre) printf(".fi\n.RE\n");
            pre = para = 0;
            continue;
        }
        if (!described)
            printf(".SH DESCRIPTION\n");
        else if (!para)
            printf(".PP\n");
        described = para = 1;
        if (indent_of(s) > 0 && !pre) { /* an example line: kept as it is */
            printf(".RS\n.nf\n");
            pre = 1;
        } else if (indent_of(s) == 0 && pre) {
            printf(".fi\n.RE\n");
            pre = 0;
        }
        put_line(s + indent_of(s));
    }
    if (pre) printf(".fi\n.RE\n");

    /* Sections, each up to the next header. */
    while (i < nlines) {
        size_t len = header_len(lines[i]);
        put_section_title(lines[i], len);
        const char *rest = lines[i] + len + 1;
        rest += indent_of(rest);
        int from = ++i;
        while (i < nlines && !header_len(lines[i]))
            i++;
        int to = i;
        while (to > from && is_blank(lines[to - 1]))
            to--;
        put_section_body(from, to, *rest ? rest : NULL);
    }
    if (see_also && *see_also) {
        printf(".SH SEE ALSO\n");
        put_line(see_also);
    }
    return 0;
}
