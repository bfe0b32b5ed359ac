/* A whole WASM call in one C call: store, limits, deadline, instance, call, store dropped.
 *
 * Through ctypes a call made ~20 transitions between Python and C (each store, limit, look-up,
 * the call, and per host call a ctypes callback and two memory look-ups), and they cost more
 * than wasmtime's own work (docs/performance.md). Here Callee.call does all of it with the GIL
 * released, and the hot imports (input_len, input_read, output, result_len, result_read) are C
 * functions, so a call like
 * greet.hello never enters Python between its start and its end. The other imports stay Python
 * (abi.py, ctypes callbacks, which take the GIL back themselves) and reach the call through
 * read/write/set_epoch_deadline below.
 *
 * Not linked against wasmtime: wasmtime-py ships libwasmtime, and sandboxes/wasm/capi.py hands
 * bind() the addresses of the functions used here, with the sizes and offsets of wasmtime-py's
 * ctypes declarations of the structures, which bind() checks against the ones declared here.
 *
 * The call's state (input, output, memory, store context) is a Frame on the C stack of the thread
 * running the call; the store's data pointer and a thread-local both point at it, and a C import
 * trusts a frame only when the two agree (a store made elsewhere, wasmtime-py's for one, has
 * other data: its import traps). The module's memory is read only through the live caller or the
 * live frame, and the frame is gone before its store is.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The structures of wasmtime 50's C API that cross this file (wasmtime.h), checked by bind(). */
typedef struct { uint64_t store_id; size_t private_; } wt_instance;
typedef struct { uint64_t store_id; void *private_; } wt_func;
typedef struct { struct { uint64_t store_id; uint32_t private1; } a; uint32_t private2; } wt_memory;
typedef struct { uint64_t store_id; uint32_t private1, private2, private3; } wt_global;
typedef union { wt_func func; wt_global global; wt_memory memory; void *sharedmemory; } wt_extern_union;
typedef struct { uint8_t kind; wt_extern_union of; } wt_extern;
typedef union { int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16]; uint32_t anyref; void *funcref; } wt_val_raw;
#define KIND_FUNC 0
#define KIND_MEMORY 3

typedef void wt_engine, wt_store, wt_context, wt_pre, wt_error, wt_trap, wt_caller, wt_wasi;

static struct {
    wt_store *(*store_new)(wt_engine *, void *, void (*)(void *));
    wt_context *(*store_context)(wt_store *);
    void (*store_delete)(wt_store *);
    void (*store_limiter)(wt_store *, int64_t, int64_t, int64_t, int64_t, int64_t);
    void (*set_epoch_deadline)(wt_context *, uint64_t);
    wt_error *(*set_fuel)(wt_context *, uint64_t);
    wt_error *(*set_wasi)(wt_context *, wt_wasi *);
    void (*wasi_config_delete)(wt_wasi *);
    void *(*get_data)(wt_context *);
    wt_error *(*instantiate)(wt_pre *, wt_context *, wt_instance *, wt_trap **);
    bool (*export_get)(wt_context *, const wt_instance *, const char *, size_t, wt_extern *);
    wt_error *(*call_unchecked)(wt_context *, const wt_func *, wt_val_raw *, size_t, wt_trap **);
    uint8_t *(*memory_data)(const wt_context *, const wt_memory *);
    size_t (*memory_data_size)(const wt_context *, const wt_memory *);
    wt_context *(*caller_context)(wt_caller *);
    bool (*caller_export_get)(wt_caller *, const char *, size_t, wt_extern *);
    wt_trap *(*trap_new)(const char *, size_t);
} api;

/* Each name bind() needs, with where its address goes. */
static const struct { const char *name; void **slot; } API[] = {
    {"wasmtime_store_new", (void **)&api.store_new},
    {"wasmtime_store_context", (void **)&api.store_context},
    {"wasmtime_store_delete", (void **)&api.store_delete},
    {"wasmtime_store_limiter", (void **)&api.store_limiter},
    {"wasmtime_context_set_epoch_deadline", (void **)&api.set_epoch_deadline},
    {"wasmtime_context_set_fuel", (void **)&api.set_fuel},
    {"wasmtime_context_set_wasi", (void **)&api.set_wasi},
    {"wasi_config_delete", (void **)&api.wasi_config_delete},
    {"wasmtime_context_get_data", (void **)&api.get_data},
    {"wasmtime_instance_pre_instantiate", (void **)&api.instantiate},
    {"wasmtime_instance_export_get", (void **)&api.export_get},
    {"wasmtime_func_call_unchecked", (void **)&api.call_unchecked},
    {"wasmtime_memory_data", (void **)&api.memory_data},
    {"wasmtime_memory_data_size", (void **)&api.memory_data_size},
    {"wasmtime_caller_context", (void **)&api.caller_context},
    {"wasmtime_caller_export_get", (void **)&api.caller_export_get},
    {"wasmtime_trap_new", (void **)&api.trap_new},
};
#define API_COUNT (sizeof(API) / sizeof(API[0]))
static int bound = 0;
static PyObject *abi_error = NULL; /* wasmtime.WasmtimeError: what read/write raise, as abi.py did */

/* One call's state, on the stack of the thread running it. */
typedef struct {
    wt_context *ctx;
    const char *input;
    size_t input_len;
    char *output; /* malloc'd: the last `output` wins */
    size_t output_len;
    int has_output;
    wt_memory memory; /* the instance's `memory` export, once instantiation has returned */
    int has_memory;
    PyObject *result; /* the last host call's result (bytes, set by set_result), or NULL */
    const char *result_data;
    size_t result_len;
} Frame;

static _Thread_local Frame *current = NULL;

static wt_trap *trap(const char *message) { return api.trap_new(message, strlen(message)); }

/* The frame of the call a host function was called from, or NULL (not one of ours). */
static Frame *frame_of(wt_caller *caller, wt_context **ctx) {
    *ctx = api.caller_context(caller);
    Frame *f = current;
    return f != NULL && api.get_data(*ctx) == (void *)f ? f : NULL;
}

/* The caller's memory: the frame's once known, else looked up (a start function's host call). */
static int memory_of(wt_caller *caller, Frame *f, wt_memory *out) {
    if (f != NULL && f->has_memory) {
        *out = f->memory;
        return 1;
    }
    wt_extern item;
    if (!api.caller_export_get(caller, "memory", 6, &item) || item.kind != KIND_MEMORY) return 0;
    *out = item.of.memory;
    return 1;
}

static const char NO_MEMORY[] = "gati ABI: the module exports no memory named \"memory\"";

/* Where [ptr, ptr+len) lies in the memory, or NULL with the ABI's message in `message`. */
static uint8_t *range(wt_context *ctx, const wt_memory *memory, int64_t ptr, int64_t len, char *message, size_t size) {
    uint64_t have = api.memory_data_size(ctx, memory);
    if (ptr < 0 || len < 0 || (uint64_t)(ptr + len) > have) {
        snprintf(message, size, "gati ABI: range %lld+%lld is outside the module's memory", (long long)ptr, (long long)len);
        return NULL;
    }
    return api.memory_data(ctx, memory) + ptr;
}

/* The C imports: wasmtime_func_unchecked_callback_t, i32 arguments and result as raw values. */
static wt_trap *outside(const char *name) {
    char message[128];
    snprintf(message, sizeof message, "gati ABI: %s was called outside a gati call", name);
    return trap(message);
}

static wt_trap *import_input_len(void *env, wt_caller *caller, wt_val_raw *values, size_t count) {
    (void)env, (void)count;
    wt_context *ctx;
    Frame *f = frame_of(caller, &ctx);
    if (f == NULL) return outside("input_len");
    values[0].i32 = (int32_t)f->input_len;
    return NULL;
}

/* Copy len bytes of the host's into the module's memory at ptr (input_read, result_read). */
static wt_trap *copy_in(wt_caller *caller, wt_context *ctx, Frame *f, int32_t ptr, const void *data, size_t len) {
    wt_memory memory;
    if (!memory_of(caller, f, &memory)) return trap(NO_MEMORY);
    char message[128];
    uint8_t *at = range(ctx, &memory, ptr, (int64_t)len, message, sizeof message);
    if (at == NULL) return trap(message);
    if (len) memcpy(at, data, len);
    return NULL;
}

static wt_trap *import_input_read(void *env, wt_caller *caller, wt_val_raw *values, size_t count) {
    (void)env, (void)count;
    wt_context *ctx;
    Frame *f = frame_of(caller, &ctx);
    if (f == NULL) return outside("input_read");
    return copy_in(caller, ctx, f, values[0].i32, f->input, f->input_len);
}

static wt_trap *import_output(void *env, wt_caller *caller, wt_val_raw *values, size_t count) {
    (void)env, (void)count;
    wt_context *ctx;
    Frame *f = frame_of(caller, &ctx);
    if (f == NULL) return outside("output");
    wt_memory memory;
    if (!memory_of(caller, f, &memory)) return trap(NO_MEMORY);
    char message[128];
    int64_t len = values[1].i32;
    uint8_t *at = range(ctx, &memory, values[0].i32, len, message, sizeof message);
    if (at == NULL) return trap(message);
    /* Copied now, as the module may reuse the buffer; made a bytes object once the GIL is back. */
    char *copy = malloc(len ? (size_t)len : 1);
    if (copy == NULL) {
        snprintf(message, sizeof message, "gati ABI: no host memory for an output of %lld bytes", (long long)len);
        return trap(message);
    }
    memcpy(copy, at, (size_t)len);
    free(f->output);
    f->output = copy, f->output_len = (size_t)len, f->has_output = 1;
    return NULL;
}

static wt_trap *import_result_len(void *env, wt_caller *caller, wt_val_raw *values, size_t count) {
    (void)env, (void)count;
    wt_context *ctx;
    Frame *f = frame_of(caller, &ctx);
    if (f == NULL) return outside("result_len");
    values[0].i32 = (int32_t)f->result_len;
    return NULL;
}

static wt_trap *import_result_read(void *env, wt_caller *caller, wt_val_raw *values, size_t count) {
    (void)env, (void)count;
    wt_context *ctx;
    Frame *f = frame_of(caller, &ctx);
    if (f == NULL) return outside("result_read");
    return copy_in(caller, ctx, f, values[0].i32, f->result_data, f->result_len); /* the frame holds the bytes object: no GIL needed */
}

/* Callee: one module's call, its constants bound once (at start). */
typedef struct {
    PyObject_HEAD
    PyObject *owner; /* what keeps the engine and the InstancePre alive */
    wt_engine *engine;
    wt_pre *pre;
    int64_t limits[5]; /* memory_size, table_elements, instances, tables, memories */
    uint64_t fuel;
    int initialize;
} Callee;

static int Callee_init(Callee *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"owner", "engine", "pre", "memory_size", "table_elements", "instances", "tables", "memories", "fuel", "initialize", NULL};
    PyObject *owner;
    unsigned long long engine, pre, fuel;
    long long limits[5];
    int initialize;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKLLLLLKp", names, &owner, &engine, &pre, &limits[0], &limits[1], &limits[2], &limits[3], &limits[4], &fuel, &initialize))
        return -1;
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "_callpath.bind() was not called (sandboxes/wasm/capi.py does it at import)");
        return -1;
    }
    if (!engine || !pre) {
        PyErr_SetString(PyExc_ValueError, "Callee needs an engine and an InstancePre");
        return -1;
    }
    Py_INCREF(owner);
    Py_XSETREF(self->owner, owner);
    self->engine = (wt_engine *)(uintptr_t)engine, self->pre = (wt_pre *)(uintptr_t)pre;
    for (int i = 0; i < 5; i++) self->limits[i] = limits[i];
    self->fuel = fuel, self->initialize = initialize;
    return 0;
}

static void Callee_dealloc(Callee *self) {
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* call(method: bytes, input: bytes, ticks: int, wasi: int) -> (status, output, error, trap, memory_size)
 *
 * status is the method's i32, or None when the call failed: then error (a wasmtime_error_t *) or
 * trap (a wasm_trap_t *) is an address the caller now owns (capi.py wraps it), and memory_size is
 * the instance's memory size when it failed (-1: not instantiated), for the memory-limit verdict.
 * output is the last `output` import's bytes, or None. wasi, when not 0, is a wasi_config_t *
 * handed over (set on the store, or deleted). */
static PyObject *Callee_call(Callee *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "call(method: bytes, input: bytes, ticks: int, wasi: int)");
        return NULL;
    }
    unsigned long long ticks = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long wasi = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    const char *method = PyBytes_AS_STRING(args[0]);
    size_t method_len = (size_t)PyBytes_GET_SIZE(args[0]);

    Frame frame = {0};
    frame.input = PyBytes_AS_STRING(args[1]); /* immutable, and args holds it for the call */
    frame.input_len = (size_t)PyBytes_GET_SIZE(args[1]);
    wt_error *error = NULL;
    wt_trap *failed = NULL;
    int32_t status = 0;
    long long memory_size = -1;
    const char *missing = NULL; /* an export validate.py promised, not found */

    Py_BEGIN_ALLOW_THREADS
    wt_store *store = api.store_new(self->engine, &frame, NULL);
    wt_context *ctx = frame.ctx = api.store_context(store);
    Frame *outer = current;
    current = &frame;
    api.store_limiter(store, self->limits[0], self->limits[1], self->limits[2], self->limits[3], self->limits[4]);
    api.set_epoch_deadline(ctx, ticks);
    if (wasi) error = api.set_wasi(ctx, (wt_wasi *)(uintptr_t)wasi); /* takes it, even on error */
    if (!error && self->fuel) error = api.set_fuel(ctx, self->fuel);
    wt_instance instance;
    if (!error) error = api.instantiate(self->pre, ctx, &instance, &failed);
    if (!error && !failed) {
        wt_extern item;
        if (api.export_get(ctx, &instance, "memory", 6, &item) && item.kind == KIND_MEMORY)
            frame.memory = item.of.memory, frame.has_memory = 1;
        wt_val_raw value[1];
        if (self->initialize) {
            if (api.export_get(ctx, &instance, "_initialize", 11, &item) && item.kind == KIND_FUNC)
                error = api.call_unchecked(ctx, &item.of.func, value, 0, &failed);
            else
                missing = "_initialize";
        }
        if (!error && !failed && !missing) {
            if (api.export_get(ctx, &instance, method, method_len, &item) && item.kind == KIND_FUNC) {
                error = api.call_unchecked(ctx, &item.of.func, value, 1, &failed);
                status = value[0].i32;
            } else
                missing = method;
        }
        if (frame.has_memory) memory_size = (long long)api.memory_data_size(ctx, &frame.memory);
    }
    current = outer;
    api.store_delete(store); /* nothing reads the memory past here: the frame's is dropped with it */
    Py_END_ALLOW_THREADS
    Py_XDECREF(frame.result);

    PyObject *output = Py_None;
    Py_INCREF(Py_None);
    if (frame.has_output) {
        Py_DECREF(Py_None);
        output = PyBytes_FromStringAndSize(frame.output, (Py_ssize_t)frame.output_len);
        free(frame.output);
        if (output == NULL) {
            /* the call's outcome is lost with it: free what the caller would have owned */
            return NULL;
        }
    }
    if (missing) {
        Py_DECREF(output);
        /* validate.py checked every method and _initialize before the module started */
        return PyErr_Format(PyExc_RuntimeError, "gati: the instance exports no function %s", missing);
    }
    if (error || failed)
        return Py_BuildValue("(ONKKL)", Py_None, output, (unsigned long long)(uintptr_t)error, (unsigned long long)(uintptr_t)failed, memory_size);
    return Py_BuildValue("(iNiiL)", (int)status, output, 0, 0, memory_size);
}

static PyMethodDef Callee_methods[] = {
    {"call", (PyCFunction)(void (*)(void))Callee_call, METH_FASTCALL, "call(method, input, ticks, wasi) -> (status, output, error, trap, memory_size)"},
    {NULL},
};

static PyTypeObject CalleeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sandboxes.wasm._callpath.Callee",
    .tp_basicsize = sizeof(Callee),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One WASM module's call: Callee(owner, engine, pre, memory_size, table_elements, instances, tables, memories, fuel, initialize)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Callee_init,
    .tp_dealloc = (destructor)Callee_dealloc,
    .tp_methods = Callee_methods,
};

/* For the Python imports (abi.py), called from their ctypes callbacks: the caller's memory. */
static int caller_memory(PyObject *caller_obj, wt_context **ctx, wt_memory *memory) {
    wt_caller *caller = PyLong_AsVoidPtr(caller_obj);
    if (caller == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no caller");
        return 0;
    }
    Frame *f = frame_of(caller, ctx);
    if (!memory_of(caller, f, memory)) {
        PyErr_SetString(abi_error, NO_MEMORY);
        return 0;
    }
    return 1;
}

static PyObject *py_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "read(caller, ptr, length)");
    long long ptr = PyLong_AsLongLong(args[1]), len = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    wt_context *ctx;
    wt_memory memory;
    if (!caller_memory(args[0], &ctx, &memory)) return NULL;
    char message[128];
    uint8_t *at = range(ctx, &memory, ptr, len, message, sizeof message);
    if (at == NULL) {
        PyErr_SetString(abi_error, message);
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)at, (Py_ssize_t)len);
}

static PyObject *py_write(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[2])) return PyErr_Format(PyExc_TypeError, "write(caller, ptr, data: bytes)");
    long long ptr = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    wt_context *ctx;
    wt_memory memory;
    if (!caller_memory(args[0], &ctx, &memory)) return NULL;
    char message[128];
    Py_ssize_t len = PyBytes_GET_SIZE(args[2]);
    uint8_t *at = range(ctx, &memory, ptr, len, message, sizeof message);
    if (at == NULL) {
        PyErr_SetString(abi_error, message);
        return NULL;
    }
    memcpy(at, PyBytes_AS_STRING(args[2]), (size_t)len);
    Py_RETURN_NONE;
}

/* set_epoch_deadline(ticks): the deadline of the call running on this thread (CallState.commit). */
static PyObject *py_set_epoch_deadline(PyObject *module, PyObject *arg) {
    unsigned long long ticks = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (current == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_epoch_deadline: no WASM call is running on this thread");
        return NULL;
    }
    api.set_epoch_deadline(current->ctx, ticks);
    Py_RETURN_NONE;
}

/* set_result(data: bytes): the result buffer of the call running on this thread (abi.py's host calls). */
static PyObject *py_set_result(PyObject *module, PyObject *arg) {
    if (!PyBytes_Check(arg)) return PyErr_Format(PyExc_TypeError, "set_result takes bytes, not %s", Py_TYPE(arg)->tp_name);
    if (current == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_result: no WASM call is running on this thread");
        return NULL;
    }
    Py_INCREF(arg);
    Py_XSETREF(current->result, arg);
    current->result_data = PyBytes_AS_STRING(arg);
    current->result_len = (size_t)PyBytes_GET_SIZE(arg);
    Py_RETURN_NONE;
}

/* bind(functions: {name: address}, layout: {name: size or offset}, abi_error: type) */
static PyObject *py_bind(PyObject *module, PyObject *args) {
    PyObject *functions, *layout, *error_type;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyDict_Type, &functions, &PyDict_Type, &layout, &error_type)) return NULL;
    const struct { const char *name; size_t here; } expected[] = {
        {"wasmtime_instance_t", sizeof(wt_instance)},
        {"wasmtime_func_t", sizeof(wt_func)},
        {"wasmtime_memory_t", sizeof(wt_memory)},
        {"wasmtime_extern_t", sizeof(wt_extern)},
        {"wasmtime_extern_t.of", offsetof(wt_extern, of)},
        {"wasmtime_val_raw_t", sizeof(wt_val_raw)},
        {"WASMTIME_EXTERN_FUNC", KIND_FUNC},
        {"WASMTIME_EXTERN_MEMORY", KIND_MEMORY},
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        PyObject *theirs = PyDict_GetItemString(layout, expected[i].name);
        if (theirs == NULL)
            return PyErr_Format(PyExc_RuntimeError, "gati's WASM call path: bind() was not told %s (sandboxes/wasm/capi.py)", expected[i].name);
        size_t value = PyLong_AsSize_t(theirs);
        if (PyErr_Occurred()) return NULL;
        if (value != expected[i].here)
            return PyErr_Format(PyExc_RuntimeError,
                                "gati's WASM call path does not match this wasmtime: %s is %zu in wasmtime-py, %zu in sandboxes/wasm/_callpath.c "
                                "(written for wasmtime 50); update the C declarations to the new wasmtime.h",
                                expected[i].name, value, expected[i].here);
    }
    void *addresses[API_COUNT];
    for (size_t i = 0; i < API_COUNT; i++) {
        PyObject *address = PyDict_GetItemString(functions, API[i].name);
        addresses[i] = address ? PyLong_AsVoidPtr(address) : NULL;
        if (PyErr_Occurred()) return NULL;
        if (addresses[i] == NULL) return PyErr_Format(PyExc_RuntimeError, "gati's WASM call path: libwasmtime has no %s", API[i].name);
    }
    for (size_t i = 0; i < API_COUNT; i++) *API[i].slot = addresses[i];
    Py_INCREF(error_type);
    Py_XSETREF(abi_error, error_type);
    bound = 1;
    Py_RETURN_NONE;
}

/* imports() -> {name: address} of the C imports, for wasmtime_linker_define_func_unchecked. */
static PyObject *py_imports(PyObject *module, PyObject *unused) {
    return Py_BuildValue("{sNsNsNsNsN}", "input_len", PyLong_FromVoidPtr((void *)import_input_len), "input_read",
                         PyLong_FromVoidPtr((void *)import_input_read), "output", PyLong_FromVoidPtr((void *)import_output),
                         "result_len", PyLong_FromVoidPtr((void *)import_result_len), "result_read",
                         PyLong_FromVoidPtr((void *)import_result_read));
}

static PyMethodDef module_methods[] = {
    {"bind", py_bind, METH_VARARGS, "bind(functions, layout, abi_error): libwasmtime's addresses and layout, checked"},
    {"imports", py_imports, METH_NOARGS, "imports() -> {name: address} of the imports written in C"},
    {"read", (PyCFunction)(void (*)(void))py_read, METH_FASTCALL, "read(caller, ptr, length) -> bytes of the caller's memory"},
    {"write", (PyCFunction)(void (*)(void))py_write, METH_FASTCALL, "write(caller, ptr, data): into the caller's memory"},
    {"set_epoch_deadline", py_set_epoch_deadline, METH_O, "set_epoch_deadline(ticks) of the call running on this thread"},
    {"set_result", py_set_result, METH_O, "set_result(data: bytes): what result_len/result_read give the call running on this thread"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_callpath", "A whole WASM call in one C call (sandboxes/wasm/_callpath.c).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__callpath(void) {
    if (PyType_Ready(&CalleeType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&CalleeType);
    if (PyModule_AddObject(module, "Callee", (PyObject *)&CalleeType) < 0) {
        Py_DECREF(&CalleeType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
