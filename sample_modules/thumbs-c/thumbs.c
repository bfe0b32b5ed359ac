/* thumbs: a gati WebAssembly module written in C (wasm32-wasi reactor, ABI version 1).
 *
 * Methods
 *   resize    input {"width":W,"height":H,"max":M}  ->  {"width":w,"height":h,"scale":s}
 *             The thumbnail fits in an M x M box and keeps the aspect ratio: the
 *             longer side becomes M, the shorter one is rounded (never below 1).
 *             Images already inside the box are not enlarged (scale 1). W, H and M
 *             must be whole numbers from 1 to 1000000000; anything else is reported
 *             through gati `error` and the method returns 1.
 *   describe  input ignored  ->  ["jpeg", "png", ...]
 *             the non-empty lines of /data/formats.txt, read through WASI stdio
 *             (the manifest grants the module's data/ directory read-only).
 *
 * No JSON library: the input is scanned by hand for the three top-level keys.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATI_IMPORT(name) __attribute__((import_module("gati"), import_name(name)))
GATI_IMPORT("input_len") int gati_input_len(void);
GATI_IMPORT("input_read") void gati_input_read(char *ptr);
GATI_IMPORT("output") void gati_output(const char *ptr, int len);
GATI_IMPORT("error") void gati_error(const char *ptr, int len);

#define MAX_SIDE 1000000000.0

static int fail(const char *fmt, const char *arg) {
    char msg[256];
    int n = snprintf(msg, sizeof msg, fmt, arg);
    if (n < 0) n = 0;
    if (n >= (int)sizeof msg) n = sizeof msg - 1;
    gati_error(msg, n);
    return 1;
}

static int fail_oom(void) {
    static const char msg[] = "out of memory";
    gati_error(msg, sizeof msg - 1);
    return 1;
}

/* The call's input as a NUL-terminated string (NULL when out of memory). */
static char *read_input(size_t *len_out) {
    int len = gati_input_len();
    if (len < 0) len = 0;
    char *buf = malloc((size_t)len + 1);
    if (!buf) return NULL;
    if (len > 0) gati_input_read(buf);
    buf[len] = '\0';
    *len_out = (size_t)len;
    return buf;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p points just past an opening quote; returns the closing quote or end. */
static const char *string_end(const char *p, const char *end) {
    while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
    return p < end ? p : end;
}

/* Parse one JSON number at p (strict JSON grammar). Returns the byte after it, or
 * NULL when p does not start a JSON number. */
static const char *parse_number(const char *p, const char *end, double *out) {
    const char *s = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        const char *d = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    char tmp[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof tmp) { /* absurdly long literal: let strtod see the original */
        char *copy = strndup(s, n);
        if (!copy) return NULL;
        *out = strtod(copy, NULL);
        free(copy);
    } else {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        *out = strtod(tmp, NULL);
    }
    return p;
}

enum { FIELD_OK, FIELD_MISSING, FIELD_NOT_NUMBER, NOT_OBJECT };

/* Look up a key of the top-level JSON object in [json, end) and read its value as
 * a number. Keys are compared as written (no unescaping); a later duplicate key
 * wins, as in most JSON parsers. */
static int get_number(const char *json, const char *end, const char *key, double *out) {
    const char *p = skip_ws(json, end);
    if (p >= end || *p != '{') return NOT_OBJECT;
    size_t klen = strlen(key);
    int depth = 0, found = FIELD_MISSING;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            const char *s = p + 1, *e = string_end(s, end);
            if (e >= end) break;
            p = e + 1;
            if (depth == 1 && (size_t)(e - s) == klen && memcmp(s, key, klen) == 0) {
                const char *v = skip_ws(p, end);
                if (v < end && *v == ':') {
                    v = skip_ws(v + 1, end);
                    double d;
                    const char *after = parse_number(v, end, &d);
                    after = after ? skip_ws(after, end) : NULL;
                    if (after && after < end && (*after == ',' || *after == '}')) {
                        *out = d;
                        found = FIELD_OK;
                    } else {
                        found = FIELD_NOT_NUMBER;
                    }
                    p = v; /* keep scanning from the value: it may be an object */
                }
            }
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        p++;
    }
    return found;
}

/* Read a required dimension; on failure reports the error and returns 0. */
static int get_dimension(const char *json, const char *end, const char *key, double *out) {
    switch (get_number(json, end, key, out)) {
    case NOT_OBJECT:
        fail("input must be a JSON object like {\"width\":1920,\"height\":1080,\"max\":128}%s", "");
        return 0;
    case FIELD_MISSING:
        fail("missing field \"%s\" (a positive whole number)", key);
        return 0;
    case FIELD_NOT_NUMBER:
        fail("field \"%s\" must be a number", key);
        return 0;
    }
    if (!(*out > 0)) {
        fail("field \"%s\" must be positive", key);
        return 0;
    }
    if (*out != floor(*out) || *out > MAX_SIDE) {
        fail("field \"%s\" must be a whole number of pixels from 1 to 1000000000", key);
        return 0;
    }
    return 1;
}

/* Shortest "%.Ng" that reads back as the same double (like Python's repr). */
static void format_double(char *buf, size_t size, double d) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

__attribute__((export_name("resize"))) int resize(void) {
    size_t len;
    char *in = read_input(&len);
    if (!in) return fail_oom();
    const char *end = in + len;
    double width, height, max;
    int ok = get_dimension(in, end, "width", &width) && get_dimension(in, end, "height", &height) &&
             get_dimension(in, end, "max", &max);
    free(in);
    if (!ok) return 1;

    double longest = width > height ? width : height;
    double scale = longest > max ? max / longest : 1.0;
    double w = width, h = height;
    if (scale < 1.0) { /* the longer side becomes exactly max */
        w = width >= height ? max : round(width * scale);
        h = height >= width ? max : round(height * scale);
    }
    if (w < 1) w = 1;
    if (h < 1) h = 1;

    char s[32], out[128];
    format_double(s, sizeof s, scale);
    int n = snprintf(out, sizeof out, "{\"width\":%.0f,\"height\":%.0f,\"scale\":%s}", w, h, s);
    gati_output(out, n);
    return 0;
}

/* Append text to a growing buffer; returns 0 when out of memory. */
struct buf { char *data; size_t len, cap; };

static int put(struct buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) return 0;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 1;
}

/* Append s as a JSON string literal. */
static int put_json_string(struct buf *b, const char *s, size_t n) {
    if (!put(b, "\"", 1)) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (!put(b, esc, 2)) return 0;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            if (!put(b, esc, 6)) return 0;
        } else if (!put(b, (const char *)&s[i], 1)) {
            return 0;
        }
    }
    return put(b, "\"", 1);
}

#define FORMATS_PATH "/data/formats.txt"

__attribute__((export_name("describe"))) int describe(void) {
    FILE *f = fopen(FORMATS_PATH, "r");
    if (!f) return fail("cannot open " FORMATS_PATH ": %s", strerror(errno));
    struct buf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ok = put(&out, "[", 1), first = 1;
    while (ok && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        ok = (first || put(&out, ",", 1)) && put_json_string(&out, line, (size_t)n);
        first = 0;
    }
    int read_error = ferror(f);
    free(line);
    fclose(f);
    if (!ok || !put(&out, "]", 1)) {
        free(out.data);
        return fail_oom();
    }
    if (read_error) {
        free(out.data);
        return fail("error reading " FORMATS_PATH "%s", "");
    }
    gati_output(out.data, (int)out.len);
    free(out.data);
    return 0;
}
