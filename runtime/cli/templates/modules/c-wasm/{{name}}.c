/* {{name}}: a gati WebAssembly module in C (wasm32-wasi reactor, ABI v1, docs/wasm-abi.md).
 *
 * hello: input any JSON value X; output {"message":"hello from C","input":X}
 */
#include <stdlib.h>
#include <string.h>

#define GATI_IMPORT(name) __attribute__((import_module("gati"), import_name(name)))
GATI_IMPORT("input_len") int gati_input_len(void);
GATI_IMPORT("input_read") void gati_input_read(char *ptr);
GATI_IMPORT("output") void gati_output(const char *ptr, int len);
GATI_IMPORT("error") void gati_error(const char *ptr, int len);

static const char PREFIX[] = "{\"message\":\"hello from C\",\"input\":";

__attribute__((export_name("hello"))) int hello(void) {
    size_t n = (size_t)gati_input_len();
    size_t prefix = sizeof PREFIX - 1;
    char *out = malloc(prefix + n + 1);
    if (!out) {
        static const char oom[] = "out of memory";
        gati_error(oom, sizeof oom - 1);
        return 1;
    }
    memcpy(out, PREFIX, prefix);
    gati_input_read(out + prefix); /* the input is JSON already: it goes in as it came */
    out[prefix + n] = '}';
    gati_output(out, (int)(prefix + n + 1));
    free(out);
    return 0;
}
