/*
 * spikeloc._native: the CPython face of the C ABI in spikeloc.h. No numerical code lives here.
 *
 * A wrapper states each argument once, as a typed local made by one of the argument macros
 * (kind, name, optional, writable, ...); `parse` hands them to PyArg_ParseTupleAndKeywords as
 * O& converters with cleanup (Py_CLEANUP_SUPPORTED, as CPython's and NumPy's parsers do),
 * `need` checks the element counts the header requires, and one epilogue (`finish`) releases
 * the arguments and maps the kernel's status to ValueError / TypeError / MemoryError with its
 * message (spk_last_error()). The GIL is released around every kernel call. ABI structs arrive
 * as tuples in the header's field order (the NamedTuples of spikeloc._abi).
 *
 * Limited API: built with Py_LIMITED_API = 3.10 (setup.py), one abi3 file serves every CPython
 * >= 3.10. The buffer protocol (PyObject_GetBuffer) joined the limited API only in 3.11, so
 * arrays are read through NumPy's documented array interface in its C form: `__array_struct__`,
 * a PyCapsule holding a PyArrayInterface (data pointer, type kind, item size, shape, and the
 * C-contiguous / not-swapped / writable flags). This one attribute lookup per array costs about
 * what PyObject_GetBuffer does (the dict of `__array_interface__` ~15x more), and the capsule
 * keeps the array, hence its memory, alive until the call returns. The package passes NumPy
 * arrays.
 *
 * Data the kernels index with (event lists, sample indices, labels) must not change between
 * the kernels' checks and their reads, even if another thread writes to the caller's array
 * while the GIL is released: such SNAPSHOT arrays are used in place when they live in memory
 * nobody can write (a read-only view of a `bytes` object, as SpikeEvents holds them: NumPy
 * refuses to make it writable again), and copied for the call otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spikeloc.h"

/* ---- NumPy's array interface (numpy/ndarraytypes.h; a documented, stable layout) ------- */

typedef struct {
    int two, nd;   /* two: 2 (a sanity check); nd: number of dimensions */
    char typekind; /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool, ... */
    int itemsize, flags;
    Py_intptr_t *shape, *strides;
    void *data;
    PyObject *descr;
} PyArrayInterface;

enum { AI_C_CONTIGUOUS = 0x1, AI_NOTSWAPPED = 0x200, AI_WRITEABLE = 0x400 };

/* ---- arguments ------------------------------------------------------------------------ */

enum { /* flags of an argument */
    OPTIONAL = 1, /* may be omitted (then None, or 0); the arguments after it are optional too */
    NONE_OK = 2,  /* may be None */
    OUTPUT = 4,   /* written by the kernel: must be writable */
    SNAPSHOT = 8, /* indexes memory: must not change during the call (see the file header) */
};

/* Kinds of scalars and struct fields; WIDTH(kind) is the C field's size in bytes. */
enum {
    SIZE = 8 << 4 | 1,    /* int64 >= 0 */
    COUNT = 8 << 4 | 2,   /* int64 >= 1 */
    INT = 8 << 4 | 3,     /* int64 */
    U64 = 8 << 4 | 4,     /* uint64 */
    REAL = 8 << 4 | 5,    /* double */
    I32 = 4 << 4 | 6,     /* int32 */
    FLAG = 4 << 4 | 7,    /* int32 from a bool or an int */
    THREADS = 4 << 4 | 8, /* int32 >= 0 (0: all cores); None: 0 */
    ARRAY = (int)sizeof(void *) << 4 | 9, /* struct field: pointer to an array (field.type) */
};
#define WIDTH(kind) ((kind) >> 4)

typedef enum { U8, U16, I64, F32, F64 } elem;
static const struct {
    const char *name;
    char kind, alias; /* NumPy type kinds it accepts ('b': bool for uint8) */
    int size;
} elems[] = {
    [U8] = {"uint8", 'u', 'b', 1}, [U16] = {"uint16", 'u', 0, 2}, [I64] = {"int64", 'i', 0, 8},
    [F32] = {"float32", 'f', 0, 4}, [F64] = {"float64", 'f', 0, 8},
};

/* The header of every argument: `convert` fills the value from an object (never NULL);
 * `release` (may be NULL) gives back what the conversion holds, and may be called again. */
typedef struct arg arg;
struct arg {
    const char *name;
    int (*convert)(PyObject *obj, arg *a);
    void (*release)(arg *a);
    unsigned flags;
};

typedef struct {
    arg h;
    int kind;
    union { int64_t i; uint64_t u; double d; int32_t i32; }; /* by kind */
} scalar;

typedef struct {
    arg h;
    elem type;
    PyObject *holder; /* the __array_struct__ capsule: keeps the array alive */
    PyObject *bytes;  /* the bytes object an immutable SNAPSHOT array lives in */
    void *copy;       /* a mutable SNAPSHOT array's private copy */
    void *p;          /* the elements; NULL for None */
    int64_t n;        /* number of elements */
} array;

typedef struct {
    const char *name; /* qualified, as in messages: "config.n_in" */
    int kind;
    size_t offset;
    elem type; unsigned flags; /* of ARRAY fields: element type, argument flags */
} field;

/* An ABI struct, from a tuple of its fields in the header's order. */
typedef struct {
    arg h;
    const field *fields;
    union { /* the struct */
        spk_stimulus_params stimulus; spk_net_config net; spk_events events;
        spk_eprop_config eprop; spk_network network;
    } c;
    array a[4]; /* its array fields, in order */
} record;

#define SCALAR(k, name) {.h = {name, convert_scalar, NULL, 0}, .kind = k}
#define THREADS_ARG {.h = {"threads", convert_scalar, NULL, OPTIONAL}, .kind = THREADS}
#define ARR(t, name, flags) {.h = {name, convert_array, release_array, flags}, .type = t}
#define IN(t, name) ARR(t, name, 0)
#define OUT(t, name) ARR(t, name, OUTPUT)
#define OPT_OUT(t, name) ARR(t, name, OUTPUT | OPTIONAL | NONE_OK)
#define INDEX_ARG ARR(I64, "index", NONE_OK | SNAPSHOT)
#define LABELS_ARG(flags) ARR(I64, "labels", SNAPSHOT | (flags))
#define RECORD(f, name) {.h = {name, convert_record, release_record, 0}, .fields = f}
#define EVENTS_ARG {.h = {"events", convert_events, release_record, 0}, .fields = events_fields}

/* Sets an exception and returns -1. */
static int fail(PyObject *type, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    PyErr_FormatV(type, format, ap);
    va_end(ap);
    return -1;
}

/* TypeError "<name> must be <expected>, got <type of obj>". */
static int wrong_type(const char *name, const char *expected, PyObject *obj) {
    PyObject *type_name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__name__");
    if (type_name != NULL)
        fail(PyExc_TypeError, "%s must be %s, got %S", name, expected, type_name);
    Py_XDECREF(type_name);
    return -1;
}

/* ---- scalars ---------------------------------------------------------------------------- */

/* Converts `obj` into the C value of `kind` at `out`. */
static int to_scalar(PyObject *obj, const char *name, int kind, void *out) {
    if ((kind == THREADS && obj == Py_None) || (kind == FLAG && PyBool_Check(obj))) {
        *(int32_t *)out = obj == Py_True;
        return 0;
    }
    if (kind == REAL) {
        double v = -1.0;
        if (PyBool_Check(obj) || !PyNumber_Check(obj) ||
            ((v = PyFloat_AsDouble(obj)) == -1.0 && PyErr_Occurred())) {
            PyErr_Clear();
            return wrong_type(name, "a real number", obj);
        }
        *(double *)out = v;
        return 0;
    }
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) return wrong_type(name, "an int", obj);
    PyObject *index = PyNumber_Index(obj);
    if (index == NULL) return -1;
    if (kind == U64) {
        unsigned long long v = PyLong_AsUnsignedLongLong(index);
        Py_DECREF(index);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return fail(PyExc_ValueError, "%s must be an integer in [0, 2**64)", name);
        }
        *(uint64_t *)out = v;
        return 0;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) return fail(PyExc_ValueError, "%s must fit in a signed 64-bit integer", name);
    long long least = kind == COUNT ? 1 : (kind == SIZE || kind == THREADS) ? 0 : LLONG_MIN;
    if (v < least)
        return fail(PyExc_ValueError, "%s must be >= %lld%s, got %lld", name, least,
                    kind == THREADS ? " (0: all cores)" : "", v);
    if (WIDTH(kind) == 8) {
        *(int64_t *)out = v;
        return 0;
    }
    if (v < INT32_MIN || v > INT32_MAX)
        return fail(PyExc_ValueError, "%s must fit in a signed 32-bit integer, got %lld", name, v);
    *(int32_t *)out = (int32_t)v;
    return 0;
}

static int convert_scalar(PyObject *obj, arg *h) {
    return to_scalar(obj, h->name, ((scalar *)h)->kind, &((scalar *)h)->i);
}

/* ---- arrays ------------------------------------------------------------------------------ */

/* Name of an array's element type, NumPy style ("float64", "bool", "byte-swapped int64"). */
static void describe(const PyArrayInterface *ai, char *out, size_t cap) {
    const char *swapped = (ai->flags & AI_NOTSWAPPED) ? "" : "byte-swapped ";
    const char *kind = ai->typekind == 'f' ? "float" : ai->typekind == 'i' ? "int"
                     : ai->typekind == 'u' ? "uint" : ai->typekind == 'c' ? "complex" : NULL;
    if (kind != NULL)
        snprintf(out, cap, "%s%s%d", swapped, kind, 8 * ai->itemsize);
    else if (ai->typekind == 'b')
        snprintf(out, cap, "%sbool", swapped);
    else
        snprintf(out, cap, "an array of NumPy kind '%c'", ai->typekind);
}

/* Does [data, data + nbytes) lie in the bytes object that is obj's `base`? Then the memory
 * can neither change nor go away while *bytes holds a reference to that object. */
static int in_bytes(PyObject *obj, const char *data, size_t nbytes, PyObject **bytes) {
    PyObject *base = PyObject_GetAttrString(obj, "base");
    const char *start = base != NULL && PyBytes_CheckExact(base) ? PyBytes_AsString(base) : NULL;
    PyErr_Clear(); /* an object without `base` is not known to be immutable */
    if (start != NULL && data >= start &&
        nbytes <= (size_t)PyBytes_Size(base) - (size_t)(data - start)) {
        *bytes = base;
        return 1;
    }
    Py_XDECREF(base);
    return 0;
}

/* "a [writable ]C-contiguous <type> array" (what the array argument must be), in buf. */
static const char *expected(const array *a, char buf[80]) {
    snprintf(buf, 80, "a %sC-contiguous %s array", (a->h.flags & OUTPUT) ? "writable " : "",
             elems[a->type].name);
    return buf;
}

static int convert_array(PyObject *obj, arg *h) {
    array *a = (array *)h;
    const char *type = elems[a->type].name;
    char buf[80], got[48];
    if (obj == Py_None)
        return (h->flags & NONE_OK) ? 0 : fail(PyExc_TypeError, "%s must be %s, got None",
                                               h->name, expected(a, buf));
    if ((a->holder = PyObject_GetAttrString(obj, "__array_struct__")) == NULL) {
        PyErr_Clear();
        return wrong_type(h->name, expected(a, buf), obj);
    }
    PyArrayInterface *ai = PyCapsule_IsValid(a->holder, NULL)
                               ? (PyArrayInterface *)PyCapsule_GetPointer(a->holder, NULL) : NULL;
    if (ai == NULL || ai->two != 2 || ai->nd < 0 || (ai->nd > 0 && ai->shape == NULL))
        return fail(PyExc_TypeError, "%s must be %s (invalid __array_struct__)", h->name,
                    expected(a, buf));
    const int size = elems[a->type].size;
    if ((ai->typekind != elems[a->type].kind && ai->typekind != elems[a->type].alias) ||
        ai->itemsize != size || !(ai->flags & AI_NOTSWAPPED)) {
        describe(ai, got, sizeof got);
        return fail(PyExc_TypeError, "%s must be %s, got %s", h->name, expected(a, buf), got);
    }
    if (!(ai->flags & AI_C_CONTIGUOUS))
        return fail(PyExc_ValueError, "%s must be a C-contiguous %s array, got a non-contiguous "
                    "view (use numpy.ascontiguousarray)", h->name, type);
    if ((h->flags & OUTPUT) && !(ai->flags & AI_WRITEABLE))
        return fail(PyExc_ValueError, "%s must be a writable %s array, got a read-only one",
                    h->name, type);
    int64_t n = 1;
    for (int d = 0; d < ai->nd; d++) {
        if (ai->shape[d] < 0 || __builtin_mul_overflow(n, (int64_t)ai->shape[d], &n) ||
            n > INT64_MAX / size)
            return fail(PyExc_ValueError, "%s has an invalid shape", h->name);
    }
    if (n > 0 && ai->data == NULL)
        return fail(PyExc_TypeError, "%s has no data (invalid __array_struct__)", h->name);
    if (n > 0 && (uintptr_t)ai->data % (uintptr_t)size != 0)
        return fail(PyExc_ValueError, "%s must be an aligned %s array, got a misaligned one",
                    h->name, type);
    static int64_t empty; /* a present but empty array is never handed on as NULL */
    a->n = n;
    a->p = n > 0 ? ai->data : (void *)&empty;
    size_t nbytes = (size_t)n * (size_t)size;
    if (!(h->flags & SNAPSHOT) || n == 0 ||
        (!(ai->flags & AI_WRITEABLE) && in_bytes(obj, a->p, nbytes, &a->bytes)))
        return 0;
    if ((a->copy = PyMem_Malloc(nbytes)) == NULL)
        return fail(PyExc_MemoryError, "%s: no memory for a copy of %zu bytes", h->name, nbytes);
    a->p = memcpy(a->copy, a->p, nbytes);
    return 0;
}

static void release_array(arg *h) {
    array *a = (array *)h;
    Py_CLEAR(a->holder);
    Py_CLEAR(a->bytes);
    PyMem_Free(a->copy);
    a->copy = NULL;
}

/* x * y * z + extra without overflow, or ValueError naming `name`. */
static int product(const char *name, int64_t x, int64_t y, int64_t z, int64_t extra, int64_t *out) {
    if (x < 0 || y < 0 || z < 0 || __builtin_mul_overflow(x, y, out) ||
        __builtin_mul_overflow(*out, z, out) || __builtin_add_overflow(*out, extra, out))
        return fail(PyExc_ValueError, "%s: sizes too large (overflow)", name);
    return 0;
}

/* The array, if present, has n elements. */
static int need_n(const array *a, int64_t n) {
    if (a->p != NULL && a->n != n)
        return fail(PyExc_ValueError, "%s must have %lld elements, got %lld", a->h.name,
                    (long long)n, (long long)a->n);
    return 0;
}

/* The array, if present, has x * y * z elements. */
static int need(const array *a, int64_t x, int64_t y, int64_t z) {
    int64_t n = 0;
    return product(a->h.name, x, y, z, 0, &n) || need_n(a, n) ? -1 : 0;
}

/* The pointer array of an event list, if present, has x * y + 1 elements. */
static int need_ptr(const array *a, int64_t x, int64_t y) {
    int64_t n = 0;
    return product(a->h.name, x, y, 1, 1, &n) || need_n(a, n) ? -1 : 0;
}

/* ---- ABI structs ------------------------------------------------------------------------ */

/* Field m of struct S; a kind whose width is not the field's size does not compile. */
#define FIELD(S, prefix, m, kind, ...)                                                        \
    {prefix "." #m, kind,                                                                     \
     offsetof(S, m) + 0 * sizeof(char[sizeof(((S *)0)->m) == WIDTH(kind) ? 1 : -1]),          \
     __VA_ARGS__}

static const field stimulus_fields[] = {
#define F(m, kind) FIELD(spk_stimulus_params, "params", m, kind)
    F(dt, REAL), F(steps, COUNT), F(freq, REAL), F(anf_per_ear, COUNT), F(rate_max, REAL),
    F(envelope_power, REAL), F(null_phase_delays, FLAG), {NULL},
#undef F
};
static const field net_fields[] = {
#define F(m, kind) FIELD(spk_net_config, "config", m, kind)
    F(n_in, SIZE), F(n_hidden, SIZE), F(n_out, SIZE), F(steps, SIZE), F(dt, REAL),
    F(tau_hidden, REAL), F(tau_output, REAL), F(readout, I32), F(beta, REAL), {NULL},
#undef F
};
static const field events_fields[] = {
#define F(m, kind) FIELD(spk_events, "events", m, kind)
#define A(m, type) FIELD(spk_events, "events", m, ARRAY, type, SNAPSHOT)
    F(n_samples, SIZE), F(steps, SIZE), F(n_in, SIZE), F(n_events, SIZE), A(step_ptr, I64),
    A(step_events, U16), A(input_ptr, I64), A(input_events, U16), {NULL},
#undef F
#undef A
};
static const field eprop_fields[] = {
#define F(m, kind) FIELD(spk_eprop_config, "config", m, kind)
    F(n_in, SIZE), F(n_hidden, SIZE), F(n_out, SIZE), F(steps, SIZE), F(window, SIZE),
    F(dt, REAL), F(tau_m, REAL), F(tau_out, REAL), F(v_th, REAL), F(gamma, REAL),
    F(reg_c, REAL), F(f_target, REAL), F(loss, I32), F(recurrent, I32), {NULL},
#undef F
};

static const field network_fields[] = {
#define F(m, kind) FIELD(spk_network, "net", m, kind)
#define A(m, type) FIELD(spk_network, "net", m, ARRAY, type, NONE_OK | SNAPSHOT)
    F(n_in, SIZE), F(n_out, SIZE), F(steps, SIZE), F(n_layers, SIZE), A(hidden, I64),
    A(recurrent, U8), F(dt, REAL), F(beta, REAL), F(reset, I32), F(surrogate, I32),
    F(detach_reset, FLAG), F(adapt_tau, REAL), F(adapt_strength, REAL), F(readout, I32),
    F(window, SIZE), F(window_loss, I32), F(timing, I32), F(bias, FLAG), F(delays, I32),
    F(max_delay, SIZE), F(rate, I32), F(rate_c, REAL), F(rate_ref, REAL), F(dropout, REAL),
    F(dropout_seed, U64), {NULL},
#undef F
#undef A
};

static void release_record(arg *h) {
    for (int k = 0; k < 4; k++) release_array(&((record *)h)->a[k].h);
}

static int convert_record(PyObject *obj, arg *h) {
    record *r = (record *)h;
    Py_ssize_t n = 0;
    while (r->fields[n].name) n++;
    if (!PyTuple_Check(obj) || PyTuple_Size(obj) != n)
        return fail(PyExc_TypeError, "%s must be a tuple of its %zd fields (spikeloc._abi)",
                    h->name, n);
    memset(&r->c, 0, sizeof r->c);
    array *slot = r->a;
    for (Py_ssize_t i = 0; i < n; i++) {
        const field *f = &r->fields[i];
        PyObject *item = PyTuple_GetItem(obj, i);
        char *dst = (char *)&r->c + f->offset;
        if (f->kind != ARRAY) {
            if (to_scalar(item, f->name, f->kind, dst) < 0) return -1;
            continue;
        }
        *slot = (array)ARR(f->type, f->name, f->flags);
        if (convert_array(item, &slot->h) < 0) return -1;
        memcpy(dst, &slot->p, sizeof slot->p);
        slot++;
    }
    return 0;
}

/* An spk_events tuple whose arrays have the lengths its sizes imply. */
static int convert_events(PyObject *obj, arg *h) {
    record *r = (record *)h;
    const spk_events *e = &r->c.events;
    return convert_record(obj, h) || need_ptr(&r->a[0], e->n_samples, e->steps) ||
                   need_n(&r->a[1], e->n_events) || need_ptr(&r->a[2], e->n_samples, e->n_in) ||
                   need_n(&r->a[3], e->n_events) ? -1 : 0;
}

/* ---- parsing and the epilogue ----------------------------------------------------------- */

enum { MAX_ARGS = 20 };
#define REFUSED INT32_MIN /* status of a call whose arguments were refused (exception set) */

/* The O& converter of every argument, with cleanup (called with obj NULL if the parsing
 * fails later). */
static int convert(PyObject *obj, void *address) {
    arg *a = address;
    if (obj != NULL && a->convert(obj, a) == 0) return Py_CLEANUP_SUPPORTED;
    if (a->release) a->release(a);
    return obj == NULL;
}

/* Parses (args, kw) into the NULL-terminated argument list `argv` of function `fname`. */
static int parse(PyObject *args, PyObject *kw, const char *fname, void **argv) {
    void *v[MAX_ARGS] = {0};
    char *kwlist[MAX_ARGS + 1] = {0}, format[2 * MAX_ARGS + 48], *f = format;
    for (int i = 0; argv[i] != NULL; i++) {
        const arg *a = v[i] = argv[i], *before = i ? argv[i - 1] : NULL;
        if ((a->flags & OPTIONAL) && !(before && (before->flags & OPTIONAL))) *f++ = '|';
        *f++ = 'O';
        *f++ = '&';
        kwlist[i] = (char *)a->name;
    }
    snprintf(f, sizeof format - (size_t)(f - format), ":%s", fname);
    /* The format consumes exactly as many (converter, address) pairs as there are arguments. */
#define C4(i) convert, v[i], convert, v[i + 1], convert, v[i + 2], convert, v[i + 3]
    return PyArg_ParseTupleAndKeywords(args, kw, format, kwlist, C4(0), C4(4), C4(8), C4(12),
                                       C4(16)) ? 0 : -1;
#undef C4
}

/* Releases every argument; returns the result (None, or the loss as a float) or NULL with the
 * exception the status code maps to, with the kernel's message (spk_last_error()). */
static PyObject *finish(void **argv, int32_t status, const char *kernel, const double *loss) {
    PyObject *result = NULL;
    if (status == SPK_OK) {
        result = loss ? PyFloat_FromDouble(*loss) : Py_NewRef(Py_None);
    } else if (status != REFUSED) {
        const char *message = spk_last_error();
        PyObject *type = status == SPK_ERR_VALUE    ? PyExc_ValueError
                         : status == SPK_ERR_TYPE   ? PyExc_TypeError
                         : status == SPK_ERR_MEMORY ? PyExc_MemoryError : PyExc_RuntimeError;
        if (message != NULL && message[0] != '\0')
            PyErr_SetString(type, message);
        else
            fail(type, "%s failed (status %d)", kernel, (int)status);
    }
    for (arg **a = (arg **)argv; *a != NULL; a++)
        if ((*a)->release) (*a)->release(*a);
    return result;
}

/* Evaluates the kernel call `call` with the GIL released; returns through the epilogue. */
#define RETURN_STATUS(argv, loss, kernel_name, call)                                          \
    do {                                                                                      \
        int32_t status_;                                                                      \
        Py_BEGIN_ALLOW_THREADS status_ = (call);                                              \
        Py_END_ALLOW_THREADS return finish(argv, status_, kernel_name, loss);                 \
    } while (0)
#define RETURN_KERNEL(argv, loss, fn, ...) RETURN_STATUS(argv, loss, #fn, fn(__VA_ARGS__))

#define RETURN_REFUSED(argv) return finish(argv, REFUSED, NULL, NULL)

/* Config vs events (steps, inputs) and the batch: `index` (batch entries) or, without it,
 * the first `batch` samples. */
static int check_batch(int64_t steps, int64_t n_in, const record *events, const array *index,
                       int64_t batch) {
    const spk_events *e = &events->c.events;
    if (steps != e->steps)
        return fail(PyExc_ValueError, "spikes have %lld time steps but the network config says "
                    "steps=%lld", (long long)e->steps, (long long)steps);
    if (n_in != e->n_in)
        return fail(PyExc_ValueError, "spikes have %lld inputs but the network has n_in=%lld",
                    (long long)e->n_in, (long long)n_in);
    if (index->p == NULL && batch > e->n_samples)
        return fail(PyExc_ValueError, "batch=%lld exceeds the %lld samples in spikes (index is "
                    "None)", (long long)batch, (long long)e->n_samples);
    return need_n(index, batch);
}

/* ---- random numbers and the stimulus ---------------------------------------------------- */

static PyObject *py_uniform53(PyObject *module, PyObject *args, PyObject *kw) {
    scalar seed = SCALAR(U64, "seed"), first = SCALAR(INT, "first_index");
    scalar word = SCALAR(U64, "word");
    array out = OUT(F64, "out");
    void *argv[] = {&seed, &first, &word, &out, NULL};
    if (parse(args, kw, "uniform53", argv)) RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_uniform53, seed.u, first.i, word.u, out.n, out.p);
}

static PyObject *py_stimulus_noisy(PyObject *module, PyObject *args, PyObject *kw) {
    record params = RECORD(stimulus_fields, "params");
    array ipd = IN(F64, "ipd"), phase = IN(F64, "phase"), spikes = OUT(U8, "spikes");
    scalar seed = SCALAR(U64, "seed"), first = SCALAR(INT, "first_index");
    scalar noise = SCALAR(REAL, "delay_noise"), threads = THREADS_ARG;
    void *argv[] = {&params, &ipd, &phase, &seed, &first, &noise, &spikes, &threads, NULL};
    const spk_stimulus_params *p = &params.c.stimulus;
    int64_t n_in = 0;
    if (parse(args, kw, "stimulus_noisy", argv) || need_n(&phase, ipd.n) ||
        product("spikes", 2, p->anf_per_ear, 1, 0, &n_in) || need(&spikes, ipd.n, p->steps, n_in))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_stimulus_noisy, p, ipd.p, phase.p, ipd.n, seed.u, first.i,
                  noise.d, spikes.p, threads.i32);
}

/* ---- event lists -------------------------------------------------------------------------- */

static PyObject *py_events_to_dense(PyObject *module, PyObject *args, PyObject *kw) {
    record events = EVENTS_ARG;
    array x = OUT(U8, "x");
    scalar threads = THREADS_ARG;
    void *argv[] = {&events, &x, &threads, NULL};
    const spk_events *e = &events.c.events;
    if (parse(args, kw, "events_to_dense", argv) || need(&x, e->n_samples, e->steps, e->n_in))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_events_to_dense, e, x.p, threads.i32);
}

/* Event lists the kernels build (spk_alloc): four new bytes objects, written by the kernel
 * before anyone else sees them, returned as (step_ptr, step_events, input_ptr, input_events). */
typedef struct { PyObject *b[4]; int k; } built;

static void *new_bytes(void *context, int64_t size) {
    built *o = context;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *b = o->k < 4 && size >= 0 && size <= PY_SSIZE_T_MAX ?
                  PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size) : NULL;
    char *p = b != NULL ? PyBytes_AsString((o->b[o->k++] = b)) : NULL;
    PyErr_Clear(); /* the kernel reports the missing memory */
    PyGILState_Release(gil);
    return p;
}

#define RETURN_BUILT(argv, out, fn, ...)                                                      \
    do {                                                                                      \
        int32_t status_;                                                                      \
        Py_BEGIN_ALLOW_THREADS status_ = fn(__VA_ARGS__, new_bytes, &out, threads.i32);       \
        Py_END_ALLOW_THREADS PyObject *done_ = finish(argv, status_, #fn, NULL), *r_ = NULL;  \
        if (done_ != NULL && out.k == 4) r_ = PyTuple_Pack(4, out.b[0], out.b[2], out.b[1], out.b[3]); \
        for (int k_ = 0; k_ < out.k; k_++) Py_DECREF(out.b[k_]);                              \
        Py_XDECREF(done_);                                                                    \
        return r_;                                                                            \
    } while (0)

static PyObject *py_stimulus_events(PyObject *module, PyObject *args, PyObject *kw) {
    record params = RECORD(stimulus_fields, "params");
    array ipd = IN(F64, "ipd"), phase = IN(F64, "phase");
    scalar seed = SCALAR(U64, "seed"), first = SCALAR(INT, "first_index");
    scalar noise = SCALAR(REAL, "delay_noise"), threads = THREADS_ARG;
    void *argv[] = {&params, &ipd, &phase, &seed, &first, &noise, &threads, NULL};
    built out = {{NULL}, 0};
    if (parse(args, kw, "stimulus_events", argv) || need_n(&phase, ipd.n)) RETURN_REFUSED(argv);
    RETURN_BUILT(argv, out, spk_stimulus_events, &params.c.stimulus, ipd.p, phase.p, ipd.n,
                 seed.u, first.i, noise.d);
}

static PyObject *py_events_from_dense(PyObject *module, PyObject *args, PyObject *kw) {
    array x = IN(U8, "x");
    scalar n = SCALAR(SIZE, "n"), steps = SCALAR(SIZE, "steps"), n_in = SCALAR(SIZE, "n_in");
    scalar threads = THREADS_ARG;
    void *argv[] = {&x, &n, &steps, &n_in, &threads, NULL};
    built out = {{NULL}, 0};
    if (parse(args, kw, "events_from_dense", argv) || need(&x, n.i, steps.i, n_in.i))
        RETURN_REFUSED(argv);
    RETURN_BUILT(argv, out, spk_events_from_dense, x.p, n.i, steps.i, n_in.i);
}

/* ---- networks ------------------------------------------------------------------------------ */

/* The arrays of a call of the tutorial's network (spk_snn_*) against its config; with
 * n_hidden 0 (the membrane-only network) w2's rows are the inputs. */
static int check_network(const spk_net_config *c, const record *events, const array *index,
                         int64_t batch, const array *w1, const array *w2, const array *logits) {
    return check_batch(c->steps, c->n_in, events, index, batch) ||
           need(w1, c->n_in, c->n_hidden, 1) ||
           need(w2, c->n_hidden ? c->n_hidden : c->n_in, c->n_out, 1) ||
           need(logits, batch, c->n_out, 1) ? -1 : 0;
}

static PyObject *py_snn_forward(PyObject *module, PyObject *args, PyObject *kw) {
    record config = RECORD(net_fields, "config"), events = EVENTS_ARG;
    array index = INDEX_ARG, w1 = IN(F32, "w1"), w2 = IN(F32, "w2"), logits = OUT(F32, "logits");
    array hidden = OPT_OUT(U8, "hidden_spikes"), membrane = OPT_OUT(F32, "output_membrane");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&config, &events, &index, &batch, &w1, &w2, &logits, &hidden, &membrane,
                    &threads, NULL};
    const spk_net_config *c = &config.c.net;
    if (parse(args, kw, "snn_forward", argv) ||
        check_network(c, &events, &index, batch.i, &w1, &w2, &logits) ||
        need(&hidden, batch.i, c->steps, c->n_hidden) ||
        need(&membrane, batch.i, c->steps, c->n_out))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_snn_forward, c, &events.c.events, index.p, batch.i, w1.p, w2.p,
                  logits.p, hidden.p, membrane.p, threads.i32);
}

static PyObject *py_snn_loss_grad(PyObject *module, PyObject *args, PyObject *kw) {
    record config = RECORD(net_fields, "config"), events = EVENTS_ARG;
    array index = INDEX_ARG, labels = LABELS_ARG(0), w1 = IN(F32, "w1"), w2 = IN(F32, "w2");
    array g1 = OUT(F32, "grad_w1"), g2 = OUT(F32, "grad_w2"), logits = OPT_OUT(F32, "logits");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&config, &events, &index, &batch, &labels, &w1, &w2, &g1, &g2, &logits,
                    &threads, NULL};
    const spk_net_config *c = &config.c.net;
    double loss = 0.0;
    if (parse(args, kw, "snn_loss_grad", argv) ||
        check_network(c, &events, &index, batch.i, &w1, &w2, &logits) ||
        need_n(&labels, batch.i) || need_n(&g1, w1.n) || need_n(&g2, w2.n))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, &loss, spk_snn_loss_grad, c, &events.c.events, index.p, batch.i,
                  labels.p, w1.p, w2.p, &loss, g1.p, g2.p, logits.p, threads.i32);
}

/* ---- optimisers ------------------------------------------------------------------------------ */

static PyObject *py_adam_step(PyObject *module, PyObject *args, PyObject *kw) {
    array w = OUT(F32, "w"), grad = IN(F32, "grad"), m = OUT(F32, "m"), v = OUT(F32, "v");
    scalar lr = SCALAR(REAL, "lr"), beta1 = SCALAR(REAL, "beta1"), beta2 = SCALAR(REAL, "beta2");
    scalar eps = SCALAR(REAL, "eps"), step = SCALAR(INT, "step");
    void *argv[] = {&w, &grad, &m, &v, &lr, &beta1, &beta2, &eps, &step, NULL};
    if (parse(args, kw, "adam_step", argv) || need_n(&grad, w.n) || need_n(&m, w.n) ||
        need_n(&v, w.n))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_adam_step, w.p, grad.p, m.p, v.p, w.n, lr.d, beta1.d, beta2.d,
                  eps.d, step.i);
}

static PyObject *py_sgd_step(PyObject *module, PyObject *args, PyObject *kw) {
    array w = OUT(F32, "w"), grad = IN(F32, "grad");
    scalar lr = SCALAR(REAL, "lr");
    void *argv[] = {&w, &grad, &lr, NULL};
    if (parse(args, kw, "sgd_step", argv) || need_n(&grad, w.n)) RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_sgd_step, w.p, grad.p, w.n, lr.d);
}

/* ---- e-prop ---------------------------------------------------------------------------------- */

/* The arrays of an e-prop call against its config; w_rec only with a recurrent layer (the
 * kernel refuses a missing one). */
static int check_eprop(const spk_eprop_config *c, const record *events, const array *index,
                       int64_t batch, const array *w_in, const array *w_rec, const array *w_out,
                       const array *b, const array *feedback, const array *logits) {
    return check_batch(c->steps, c->n_in, events, index, batch) ||
           need(w_in, c->n_in, c->n_hidden, 1) ||
           (c->recurrent && need(w_rec, c->n_hidden, c->n_hidden, 1)) ||
           need(w_out, c->n_hidden, c->n_out, 1) || need_n(b, c->n_out) ||
           need_n(feedback, w_out->n) || need(logits, batch, c->n_out, 1) ? -1 : 0;
}

static PyObject *py_eprop_forward(PyObject *module, PyObject *args, PyObject *kw) {
    record config = RECORD(eprop_fields, "config"), events = EVENTS_ARG;
    array index = INDEX_ARG, labels = LABELS_ARG(NONE_OK), w_in = IN(F32, "w_in");
    array w_rec = ARR(F32, "w_rec", NONE_OK), w_out = IN(F32, "w_out"), b = IN(F32, "b");
    array feedback = ARR(F32, "feedback", NONE_OK), logits = OUT(F32, "logits");
    array voltage = OPT_OUT(F32, "voltage"), spikes = OPT_OUT(U8, "spikes");
    array psi = OPT_OUT(F32, "psi"), signal = OPT_OUT(F32, "learning_signal");
    array readout = OPT_OUT(F32, "readout");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&config, &events, &index, &batch, &labels, &w_in, &w_rec, &w_out, &b,
                    &feedback, &logits, &voltage, &spikes, &psi, &signal, &readout, &threads, NULL};
    const spk_eprop_config *c = &config.c.eprop;
    if (parse(args, kw, "eprop_forward", argv) ||
        check_eprop(c, &events, &index, batch.i, &w_in, &w_rec, &w_out, &b, &feedback, &logits) ||
        need_n(&labels, batch.i) || need(&voltage, batch.i, c->steps, c->n_hidden) ||
        need(&spikes, batch.i, c->steps, c->n_hidden) ||
        need(&psi, batch.i, c->steps, c->n_hidden) ||
        need(&signal, batch.i, c->steps, c->n_hidden) ||
        need(&readout, batch.i, c->steps, c->n_out))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_eprop_forward, c, &events.c.events, index.p, batch.i, labels.p,
                  w_in.p, c->recurrent ? w_rec.p : NULL, w_out.p, b.p, feedback.p, logits.p,
                  voltage.p, spikes.p, psi.p, signal.p, readout.p, threads.i32);
}

static PyObject *py_eprop_loss_grad(PyObject *module, PyObject *args, PyObject *kw) {
    record config = RECORD(eprop_fields, "config"), events = EVENTS_ARG;
    array index = INDEX_ARG, labels = LABELS_ARG(0), w_in = IN(F32, "w_in");
    array w_rec = ARR(F32, "w_rec", NONE_OK), w_out = IN(F32, "w_out"), b = IN(F32, "b");
    array feedback = IN(F32, "feedback"), mask_in = ARR(U8, "mask_in", NONE_OK);
    array mask_rec = ARR(U8, "mask_rec", NONE_OK), mask_out = ARR(U8, "mask_out", NONE_OK);
    array g_in = OUT(F32, "grad_w_in"), g_rec = ARR(F32, "grad_w_rec", OUTPUT | NONE_OK);
    array g_out = OUT(F32, "grad_w_out"), g_b = OUT(F32, "grad_b"), logits = OPT_OUT(F32, "logits");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&config, &events, &index, &batch, &labels, &w_in, &w_rec, &w_out, &b,
                    &feedback, &mask_in, &mask_rec, &mask_out, &g_in, &g_rec, &g_out, &g_b,
                    &logits, &threads, NULL};
    const spk_eprop_config *c = &config.c.eprop;
    double loss = 0.0;
    if (parse(args, kw, "eprop_loss_grad", argv) ||
        check_eprop(c, &events, &index, batch.i, &w_in, &w_rec, &w_out, &b, &feedback, &logits) ||
        need_n(&labels, batch.i) || need_n(&mask_in, w_in.n) || need_n(&mask_out, w_out.n) ||
        (c->recurrent && (need_n(&mask_rec, w_rec.n) || need_n(&g_rec, w_rec.n))) ||
        need_n(&g_in, w_in.n) || need_n(&g_out, w_out.n) || need_n(&g_b, b.n))
        RETURN_REFUSED(argv);
    const void *rec = c->recurrent ? w_rec.p : NULL, *m_rec = c->recurrent ? mask_rec.p : NULL;
    RETURN_KERNEL(argv, &loss, spk_eprop_loss_grad, c, &events.c.events, index.p, batch.i,
                  labels.p, w_in.p, rec, w_out.p, b.p, feedback.p, mask_in.p, m_rec, mask_out.p,
                  &loss, g_in.p, c->recurrent ? g_rec.p : NULL, g_out.p, g_b.p, logits.p,
                  threads.i32);
}

/* ---- the general network: delays, recurrence, depth ---------------------------------------- */

/* An spk_network tuple whose layer arrays have n_layers entries (snapshotted: the sizes the
 * output checks below use are the sizes the kernel reads). */
static int convert_network(PyObject *obj, arg *h) {
    record *r = (record *)h;
    const spk_network *n = &r->c.network;
    return convert_record(obj, h) || need_n(&r->a[0], n->n_layers) ||
                   need_n(&r->a[1], n->n_layers) ? -1 : 0;
}
#define NETWORK_ARG {.h = {"net", convert_network, release_record, 0}, .fields = network_fields}

/* Units of all hidden layers (the last axis of the hidden spikes), or -1 with an exception. */
static int64_t hidden_units(const spk_network *n) {
    int64_t total = 0;
    for (int64_t l = 0; n->hidden != NULL && l < n->n_layers; l++)
        if (n->hidden[l] < 0 || __builtin_add_overflow(total, n->hidden[l], &total))
            return fail(PyExc_ValueError, "net.hidden: layer sizes must be >= 0 (and not "
                        "overflow)");
    return total;
}

static PyObject *py_network_forward(PyObject *module, PyObject *args, PyObject *kw) {
    record net = NETWORK_ARG, events = EVENTS_ARG;
    array index = INDEX_ARG, params = IN(F32, "params"), signs = ARR(F32, "signs", NONE_OK);
    array logits = OUT(F32, "logits"), hidden = OPT_OUT(U8, "hidden_spikes");
    array membrane = OPT_OUT(F32, "output_membrane");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&net, &events, &index, &batch, &params, &signs, &logits, &hidden, &membrane,
                    &threads, NULL};
    const spk_network *n = &net.c.network;
    int64_t units = 0;
    if (parse(args, kw, "network_forward", argv) ||
        check_batch(n->steps, n->n_in, &events, &index, batch.i) ||
        need(&logits, batch.i, n->n_out, 1) || (units = hidden_units(n)) < 0 ||
        need(&hidden, batch.i, n->steps, units) || need(&membrane, batch.i, n->steps, n->n_out))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, NULL, spk_network_forward, n, &events.c.events, index.p, batch.i,
                  params.p, params.n, signs.p, signs.n, logits.p, hidden.p, membrane.p,
                  threads.i32);
}

static PyObject *py_network_loss_grad(PyObject *module, PyObject *args, PyObject *kw) {
    record net = NETWORK_ARG, events = EVENTS_ARG;
    array index = INDEX_ARG, labels = LABELS_ARG(0), params = IN(F32, "params");
    array signs = ARR(F32, "signs", NONE_OK), grads = OUT(F32, "grads");
    array logits = OPT_OUT(F32, "logits");
    scalar batch = SCALAR(SIZE, "batch"), threads = THREADS_ARG;
    void *argv[] = {&net, &events, &index, &batch, &labels, &params, &signs, &grads, &logits,
                    &threads, NULL};
    const spk_network *n = &net.c.network;
    double loss = 0.0;
    if (parse(args, kw, "network_loss_grad", argv) ||
        check_batch(n->steps, n->n_in, &events, &index, batch.i) || need_n(&labels, batch.i) ||
        need_n(&grads, params.n) || need(&logits, batch.i, n->n_out, 1))
        RETURN_REFUSED(argv);
    RETURN_KERNEL(argv, &loss, spk_network_loss_grad, n, &events.c.events, index.p, batch.i,
                  labels.p, params.p, params.n, signs.p, signs.n, &loss, grads.p, logits.p,
                  threads.i32);
}

/* ---- the module ---------------------------------------------------------------------------- */

static PyObject *py_abi_version(PyObject *module, PyObject *unused) {
    return PyLong_FromLong((long)spk_abi_version());
}

static PyObject *py_default_threads(PyObject *module, PyObject *unused) {
    return PyLong_FromLong((long)spk_default_threads());
}

static PyObject *py_last_error(PyObject *module, PyObject *unused) {
    const char *message = spk_last_error();
    return PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
}

/* Docstrings: the signature, then the kernel (spikeloc.h documents shapes and units). Struct
 * arguments are the NamedTuples of spikeloc._abi. */
#define KERNEL_FN(name, signature)                                                            \
    {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS,             \
     #name signature "\n--\n\nspk_" #name " of spikeloc.h; returns None, the mean loss or the " \
     "(step_ptr, step_events, input_ptr, input_events) bytes of built event lists."}

static PyMethodDef methods[] = {
    {"abi_version", py_abi_version, METH_NOARGS, "spk_abi_version(): ABI version of the kernels."},
    {"default_threads", py_default_threads, METH_NOARGS,
     "spk_default_threads(): worker threads used for threads=0."},
    {"last_error", py_last_error, METH_NOARGS,
     "spk_last_error(): message of the last failing kernel call on this thread."},
    KERNEL_FN(uniform53, "(seed, first_index, word, out)"),
    KERNEL_FN(stimulus_noisy, "(params, ipd, phase, seed, first_index, delay_noise, spikes, "
                              "threads=0)"),
    KERNEL_FN(events_to_dense, "(events, x, threads=0)"),
    KERNEL_FN(stimulus_events, "(params, ipd, phase, seed, first_index, delay_noise, threads=0)"),
    KERNEL_FN(events_from_dense, "(x, n, steps, n_in, threads=0)"),
    KERNEL_FN(snn_forward, "(config, events, index, batch, w1, w2, logits, hidden_spikes=None, "
                           "output_membrane=None, threads=0)"),
    KERNEL_FN(snn_loss_grad, "(config, events, index, batch, labels, w1, w2, grad_w1, grad_w2, "
                             "logits=None, threads=0)"),
    KERNEL_FN(adam_step, "(w, grad, m, v, lr, beta1, beta2, eps, step)"),
    KERNEL_FN(sgd_step, "(w, grad, lr)"),
    KERNEL_FN(eprop_forward, "(config, events, index, batch, labels, w_in, w_rec, w_out, b, "
                             "feedback, logits, voltage=None, spikes=None, psi=None, "
                             "learning_signal=None, readout=None, threads=0)"),
    KERNEL_FN(eprop_loss_grad, "(config, events, index, batch, labels, w_in, w_rec, w_out, b, "
                               "feedback, mask_in, mask_rec, mask_out, grad_w_in, grad_w_rec, "
                               "grad_w_out, grad_b, logits=None, threads=0)"),
    KERNEL_FN(network_forward, "(net, events, index, batch, params, signs, logits, "
                               "hidden_spikes=None, output_membrane=None, threads=0)"),
    KERNEL_FN(network_loss_grad, "(net, events, index, batch, labels, params, signs, grads, "
                                 "logits=None, threads=0)"),
    {NULL, NULL, 0, NULL},
};

/* The header's codes, exported without the SPK_ prefix (spikeloc._abi groups them). */
#define CODE(name) {#name + 4, name}
static const struct {
    const char *name;
    long long value;
} codes[] = {
    CODE(SPK_OK), CODE(SPK_ERR_VALUE), CODE(SPK_ERR_TYPE), CODE(SPK_ERR_MEMORY),
    CODE(SPK_ABI_VERSION), CODE(SPK_WORD_IPD), CODE(SPK_WORD_PHASE), CODE(SPK_SET_INDEX),
    CODE(SPK_WORD_EPOCH_PHASE), CODE(SPK_WORD_DELAY_NOISE), CODE(SPK_READOUT_MEAN),
    CODE(SPK_READOUT_SUM), CODE(SPK_READOUT_MAX), CODE(SPK_READOUT_SPIKE_COUNT),
    CODE(SPK_RESET_DELAYED), CODE(SPK_RESET_SAME_STEP), CODE(SPK_RESET_SUBTRACTIVE),
    CODE(SPK_SURROGATE_SIGMOID), CODE(SPK_SURROGATE_FAST_SIGMOID), CODE(SPK_SURROGATE_ARCTAN),
    CODE(SPK_SURROGATE_PIECEWISE_LINEAR), CODE(SPK_EPROP_CROSS_ENTROPY), CODE(SPK_EPROP_MSE),
    CODE(SPK_READOUT_WINDOW), CODE(SPK_TIMING_SEEDS), CODE(SPK_TIMING_EPROP),
    CODE(SPK_DELAYS_NONE), CODE(SPK_DELAYS_INPUT), CODE(SPK_DELAYS_SYNAPSE), CODE(SPK_RATE_NONE),
    CODE(SPK_RATE_UPPER), CODE(SPK_RATE_TARGET), CODE(SPK_RESET_ZERO),
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "spikeloc._native", .m_size = -1, .m_methods = methods,
    .m_doc = "The C ABI of the spikeloc kernels (spikeloc.h). Use the spikeloc package instead.",
};

PyMODINIT_FUNC PyInit__native(void) {
    if (spk_abi_version() != SPK_ABI_VERSION) {
        fail(PyExc_ImportError, "spikeloc._native was built for kernels of ABI version %d, but "
             "the loaded libSpikeLocKernels has version %d: rebuild the package",
             (int)SPK_ABI_VERSION, (int)spk_abi_version());
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    int status = module != NULL ? 0 : -1;
    for (size_t i = 0; status == 0 && i < sizeof codes / sizeof codes[0]; i++) {
        PyObject *value = PyLong_FromLongLong(codes[i].value);
        status = value != NULL ? PyModule_AddObjectRef(module, codes[i].name, value) : -1;
        Py_XDECREF(value);
    }
    if (status < 0) Py_CLEAR(module);
    return module;
}
