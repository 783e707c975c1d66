/*
 * spikeloc._native: a thin CPython wrapper around the C ABI in spikeloc.h.
 *
 * One Python function per ABI function. No numerical code lives here: the extension only
 *   - takes arrays through the buffer protocol and checks C-contiguity, element type
 *     (format and itemsize), alignment, writability of outputs and the number of elements
 *     the header requires, raising TypeError / ValueError that name the argument;
 *   - releases the GIL around every kernel call;
 *   - maps status codes to exceptions (SPK_ERR_VALUE -> ValueError, SPK_ERR_TYPE -> TypeError,
 *     SPK_ERR_MEMORY -> MemoryError) with the kernel's message from spk_last_error().
 *
 * Outputs are allocated by the caller (Python allocates, Swift computes). Structs are passed as
 * plain tuples, in the order of the header's fields:
 *   stimulus params: (dt, steps, freq, anf_per_ear, rate_max, envelope_power, null_phase_delays)
 *   net config:      (n_in, n_hidden, n_out, steps, dt, tau_hidden, tau_output, readout, beta)
 *   events:          (n_samples, steps, n_in, n_events, step_ptr, step_events, input_ptr,
 *                     input_events)
 * Optional outputs (and `index`) may be None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "spikeloc.h"

/* ---- element kinds ------------------------------------------------------------------- */

typedef enum { K_U8 = 0, K_F32, K_F64, K_I64, K_U16 } kind_t;

static const char *const kind_names[] = {"uint8", "float32", "float64", "int64", "uint16"};
static const Py_ssize_t kind_sizes[] = {1, 4, 8, 8, 2};

/* A held buffer; `held` says whether PyBuffer_Release must be called. */
typedef struct {
    Py_buffer view;
    int held;
    void *ptr;       /* NULL for an omitted optional argument */
    int64_t count;   /* number of elements */
} arg_buf;

#define MAX_BUFS 24

typedef struct {
    arg_buf b[MAX_BUFS];
    int n;
} buf_set;

static void bufs_release(buf_set *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->b[i].held) {
            PyBuffer_Release(&s->b[i].view);
            s->b[i].held = 0;
        }
    }
    s->n = 0;
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Human-readable name of a buffer's element type, numpy style where possible. */
static void describe_format(const char *fmt, Py_ssize_t itemsize, char *out, size_t cap) {
    if (fmt == NULL) fmt = "B";
    const char *f = fmt;
    if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') f++;
    const char *name = NULL;
    char tmp[32];
    if (f[0] != '\0' && f[1] == '\0') {
        switch (f[0]) {
        case '?': name = "bool"; break;
        case 'e': name = "float16"; break;
        case 'f': name = "float32"; break;
        case 'd': name = "float64"; break;
        case 'g': name = "longdouble"; break;
        case 'b': case 'h': case 'i': case 'l': case 'q': case 'n':
            snprintf(tmp, sizeof tmp, "int%d", (int)(8 * itemsize));
            name = tmp;
            break;
        case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N':
            snprintf(tmp, sizeof tmp, "uint%d", (int)(8 * itemsize));
            name = tmp;
            break;
        case 'c': name = "bytes"; break;
        default: break;
        }
    } else if (f[0] == 'Z' && f[1] != '\0' && f[2] == '\0') {
        snprintf(tmp, sizeof tmp, "complex%d", (int)(8 * itemsize));
        name = tmp;
    }
    if (name != NULL) {
        snprintf(out, cap, "%s", name);
    } else {
        snprintf(out, cap, "buffer format '%.40s'", fmt);
    }
}

/* Does the buffer format/itemsize match the wanted kind? */
static int format_matches(const char *fmt, Py_ssize_t itemsize, kind_t kind) {
    if (fmt == NULL) fmt = "B";
    const char *f = fmt;
    if (*f == '@' || *f == '=') {
        f++;
    } else if (*f == '<') {
        if (!host_is_little_endian()) return 0;
        f++;
    } else if (*f == '>' || *f == '!') {
        if (host_is_little_endian()) return 0;
        f++;
    }
    if (f[0] == '\0' || f[1] != '\0') return 0;
    if (itemsize != kind_sizes[kind]) return 0;
    switch (kind) {
    case K_U8: return f[0] == 'B' || f[0] == '?';
    case K_F32: return f[0] == 'f';
    case K_F64: return f[0] == 'd';
    case K_I64: return f[0] == 'q' || f[0] == 'l' || f[0] == 'n';
    case K_U16: return f[0] == 'H';
    }
    return 0;
}

/*
 * Take a buffer from `obj` into the next slot of `s`.
 * expected < 0: any number of elements; otherwise exactly `expected`.
 * Returns the slot, or NULL with an exception set.
 */
static arg_buf *get_array(buf_set *s, PyObject *obj, const char *name, kind_t kind,
                          int writable, int optional, int64_t expected) {
    if (s->n >= MAX_BUFS) {
        PyErr_SetString(PyExc_SystemError, "spikeloc._native: too many buffers");
        return NULL;
    }
    arg_buf *a = &s->b[s->n];
    memset(a, 0, sizeof *a);
    const char *what = writable ? "writable C-contiguous" : "C-contiguous";
    if (obj == NULL || obj == Py_None) {
        if (optional) {
            s->n++;
            return a;
        }
        PyErr_Format(PyExc_TypeError, "%s must be a %s %s array, got None", name, what,
                     kind_names[kind]);
        return NULL;
    }
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a %s %s array, got %.80s", name, what,
                     kind_names[kind], Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &a->view, PyBUF_RECORDS_RO) < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *msg = value ? PyObject_Str(value) : NULL;
        PyErr_Format(PyExc_TypeError, "%s must be a %s %s array (cannot read its buffer: %S)",
                     name, what, kind_names[kind], msg ? msg : Py_None);
        Py_XDECREF(msg);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    a->held = 1;
    s->n++; /* from here on, bufs_release() releases it */
    if (!format_matches(a->view.format, a->view.itemsize, kind)) {
        char got[64];
        describe_format(a->view.format, a->view.itemsize, got, sizeof got);
        PyErr_Format(PyExc_TypeError, "%s must be a %s %s array, got %s", name, what,
                     kind_names[kind], got);
        return NULL;
    }
    if (!PyBuffer_IsContiguous(&a->view, 'C')) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a C-contiguous %s array, got a non-contiguous view "
                     "(use numpy.ascontiguousarray)",
                     name, kind_names[kind]);
        return NULL;
    }
    if (writable && a->view.readonly) {
        PyErr_Format(PyExc_ValueError, "%s must be a writable %s array, got a read-only one",
                     name, kind_names[kind]);
        return NULL;
    }
    if (a->view.len > 0 && ((uintptr_t)a->view.buf % (uintptr_t)kind_sizes[kind]) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be an aligned %s array, got a misaligned one",
                     name, kind_names[kind]);
        return NULL;
    }
    a->count = (int64_t)(a->view.len / kind_sizes[kind]);
    if (expected >= 0 && a->count != expected) {
        PyErr_Format(PyExc_ValueError, "%s must have %lld elements, got %lld", name,
                     (long long)expected, (long long)a->count);
        return NULL;
    }
    /* Never hand a NULL pointer for a present (possibly empty) array. */
    a->ptr = a->view.buf;
    if (a->ptr == NULL) {
        static char empty[8];
        a->ptr = empty;
    }
    return a;
}

/* ---- integers and sizes --------------------------------------------------------------- */

static int to_i64(PyObject *obj, const char *name, int64_t *out) {
    if (obj == NULL || PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.80s", name,
                     obj ? Py_TYPE(obj)->tp_name : "nothing");
        return -1;
    }
    PyObject *idx = PyNumber_Index(obj);
    if (idx == NULL) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) {
        PyErr_Format(PyExc_ValueError, "%s must fit in a signed 64-bit integer", name);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int to_size(PyObject *obj, const char *name, int64_t *out) {
    if (to_i64(obj, name, out) < 0) return -1;
    if (*out < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %lld", name, (long long)*out);
        return -1;
    }
    return 0;
}

static int to_i32(PyObject *obj, const char *name, int32_t *out) {
    int64_t v;
    if (to_i64(obj, name, &v) < 0) return -1;
    if (v < INT32_MIN || v > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must fit in a signed 32-bit integer, got %lld", name,
                     (long long)v);
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

static int to_threads(PyObject *obj, int32_t *out) {
    if (obj == NULL || obj == Py_None) {
        *out = 0;
        return 0;
    }
    if (to_i32(obj, "threads", out) < 0) return -1;
    if (*out < 0) {
        PyErr_Format(PyExc_ValueError, "threads must be >= 0 (0: all cores), got %d", (int)*out);
        return -1;
    }
    return 0;
}

static int to_u64_checked(PyObject *obj, const char *name, uint64_t *out) {
    if (obj == NULL || PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.80s", name,
                     obj ? Py_TYPE(obj)->tp_name : "nothing");
        return -1;
    }
    PyObject *idx = PyNumber_Index(obj);
    if (idx == NULL) return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be an integer in [0, 2**64)", name);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static int to_double(PyObject *obj, const char *name, double *out) {
    if (obj == NULL || PyBool_Check(obj) ||
        !(PyFloat_Check(obj) || PyLong_Check(obj) || PyNumber_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %.80s", name,
                     obj ? Py_TYPE(obj)->tp_name : "nothing");
        return -1;
    }
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %.80s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = v;
    return 0;
}

/* a * b with overflow and sign checks; returns -1 with ValueError naming `what`. */
static int mul_size(int64_t a, int64_t b, const char *what, int64_t *out) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
        PyErr_Format(PyExc_ValueError, "%s: sizes too large (overflow)", what);
        return -1;
    }
    *out = r;
    return 0;
}

static int mul3_size(int64_t a, int64_t b, int64_t c, const char *what, int64_t *out) {
    int64_t t;
    if (mul_size(a, b, what, &t) < 0) return -1;
    return mul_size(t, c, what, out);
}

static int add1_size(int64_t a, const char *what, int64_t *out) {
    if (a < 0 || a == INT64_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: sizes too large (overflow)", what);
        return -1;
    }
    *out = a + 1;
    return 0;
}

/* ---- status codes -> exceptions ------------------------------------------------------- */

static PyObject *status_error(int32_t status, const char *fn) {
    const char *msg = spk_last_error();
    char fallback[128];
    if (msg == NULL || msg[0] == '\0') {
        snprintf(fallback, sizeof fallback, "%s failed (status %d)", fn, (int)status);
        msg = fallback;
    }
    PyObject *type;
    switch (status) {
    case SPK_ERR_VALUE: type = PyExc_ValueError; break;
    case SPK_ERR_TYPE: type = PyExc_TypeError; break;
    case SPK_ERR_MEMORY: type = PyExc_MemoryError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, msg);
    return NULL;
}

#define CALL_KERNEL(status, expr)                                                             \
    do {                                                                                      \
        Py_BEGIN_ALLOW_THREADS status = (expr);                                               \
        Py_END_ALLOW_THREADS                                                                  \
    } while (0)

/* ---- struct parsers ------------------------------------------------------------------ */

static int parse_stimulus_params(PyObject *t, spk_stimulus_params *p) {
    static const char *usage =
        "params must be a tuple (dt, steps, freq, anf_per_ear, rate_max, envelope_power, "
        "null_phase_delays)";
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 7) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    int32_t null_delays;
    if (to_double(PyTuple_GET_ITEM(t, 0), "params.dt", &p->dt) < 0) return -1;
    if (to_i64(PyTuple_GET_ITEM(t, 1), "params.steps", &p->steps) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 2), "params.freq", &p->freq) < 0) return -1;
    if (to_i64(PyTuple_GET_ITEM(t, 3), "params.anf_per_ear", &p->anf_per_ear) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 4), "params.rate_max", &p->rate_max) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 5), "params.envelope_power", &p->envelope_power) < 0)
        return -1;
    PyObject *nd = PyTuple_GET_ITEM(t, 6);
    if (PyBool_Check(nd)) {
        null_delays = (nd == Py_True);
    } else if (to_i32(nd, "params.null_phase_delays", &null_delays) < 0) {
        return -1;
    }
    p->null_phase_delays = null_delays;
    if (p->steps < 1) {
        PyErr_Format(PyExc_ValueError, "params.steps must be >= 1, got %lld", (long long)p->steps);
        return -1;
    }
    if (p->anf_per_ear < 1) {
        PyErr_Format(PyExc_ValueError, "params.anf_per_ear must be >= 1, got %lld",
                     (long long)p->anf_per_ear);
        return -1;
    }
    return 0;
}

static int parse_net_config(PyObject *t, spk_net_config *c) {
    static const char *usage =
        "config must be a tuple (n_in, n_hidden, n_out, steps, dt, tau_hidden, tau_output, "
        "readout, beta)";
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 9) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (to_size(PyTuple_GET_ITEM(t, 0), "config.n_in", &c->n_in) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 1), "config.n_hidden", &c->n_hidden) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 2), "config.n_out", &c->n_out) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 3), "config.steps", &c->steps) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 4), "config.dt", &c->dt) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 5), "config.tau_hidden", &c->tau_hidden) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 6), "config.tau_output", &c->tau_output) < 0) return -1;
    if (to_i32(PyTuple_GET_ITEM(t, 7), "config.readout", &c->readout) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 8), "config.beta", &c->beta) < 0) return -1;
    return 0;
}

/* Parses the events tuple into `ev`, holding its four arrays in `s`. */
static int parse_events(buf_set *s, PyObject *t, spk_events *ev) {
    static const char *usage =
        "events must be a tuple (n_samples, steps, n_in, n_events, step_ptr, step_events, "
        "input_ptr, input_events)";
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    memset(ev, 0, sizeof *ev);
    if (to_size(PyTuple_GET_ITEM(t, 0), "events.n_samples", &ev->n_samples) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 1), "events.steps", &ev->steps) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 2), "events.n_in", &ev->n_in) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 3), "events.n_events", &ev->n_events) < 0) return -1;
    int64_t n_step_ptr, n_input_ptr;
    if (mul_size(ev->n_samples, ev->steps, "events", &n_step_ptr) < 0) return -1;
    if (add1_size(n_step_ptr, "events", &n_step_ptr) < 0) return -1;
    if (mul_size(ev->n_samples, ev->n_in, "events", &n_input_ptr) < 0) return -1;
    if (add1_size(n_input_ptr, "events", &n_input_ptr) < 0) return -1;
    arg_buf *a;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 4), "events.step_ptr", K_I64, 0, 0, n_step_ptr)))
        return -1;
    ev->step_ptr = (const int64_t *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 5), "events.step_events", K_U16, 0, 0,
                        ev->n_events)))
        return -1;
    ev->step_events = (const uint16_t *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 6), "events.input_ptr", K_I64, 0, 0,
                        n_input_ptr)))
        return -1;
    ev->input_ptr = (const int64_t *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 7), "events.input_events", K_U16, 0, 0,
                        ev->n_events)))
        return -1;
    ev->input_events = (const uint16_t *)a->ptr;
    return 0;
}

/* Shared checks of a network call: config vs events, batch, index, labels. */
static int check_batch(buf_set *s, const spk_net_config *c, const spk_events *ev,
                       PyObject *index_obj, int64_t batch, const int64_t **index) {
    if (c->steps != ev->steps) {
        PyErr_Format(PyExc_ValueError,
                     "spikes have %lld time steps but the network config says steps=%lld",
                     (long long)ev->steps, (long long)c->steps);
        return -1;
    }
    if (c->n_in != ev->n_in) {
        PyErr_Format(PyExc_ValueError, "spikes have %lld inputs but the network has n_in=%lld",
                     (long long)ev->n_in, (long long)c->n_in);
        return -1;
    }
    if (index_obj == NULL || index_obj == Py_None) {
        *index = NULL;
        if (batch > ev->n_samples) {
            PyErr_Format(PyExc_ValueError,
                         "batch=%lld exceeds the %lld samples in spikes (index is None)",
                         (long long)batch, (long long)ev->n_samples);
            return -1;
        }
    } else {
        arg_buf *a = get_array(s, index_obj, "index", K_I64, 0, 0, batch);
        if (!a) return -1;
        *index = (const int64_t *)a->ptr;
    }
    return 0;
}

/* ---- module functions ---------------------------------------------------------------- */

static PyObject *py_abi_version(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromLong((long)spk_abi_version());
}

static PyObject *py_default_threads(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromLong((long)spk_default_threads());
}

static PyObject *py_last_error(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyUnicode_DecodeUTF8(spk_last_error(), (Py_ssize_t)strlen(spk_last_error()),
                                "replace");
}

PyDoc_STRVAR(uniform53_doc,
             "uniform53(seed, first_index, word, out)\n\n"
             "out[b] = uniform53(key(seed, first_index + b), word) for b < len(out);\n"
             "out: writable float64 array.");

static PyObject *py_uniform53(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"seed", "first_index", "word", "out", NULL};
    PyObject *o_seed, *o_first, *o_word, *o_out;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO:uniform53", kwlist, &o_seed, &o_first,
                                     &o_word, &o_out))
        return NULL;
    uint64_t seed, word;
    int64_t first;
    if (to_u64_checked(o_seed, "seed", &seed) < 0) return NULL;
    if (to_i64(o_first, "first_index", &first) < 0) return NULL;
    if (to_u64_checked(o_word, "word", &word) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *out = get_array(&s, o_out, "out", K_F64, 1, 0, -1);
    if (!out) goto done;
    int32_t st;
    double *p = (double *)out->ptr;
    int64_t n = out->count;
    CALL_KERNEL(st, spk_uniform53(seed, first, word, n, p));
    if (st != SPK_OK) {
        status_error(st, "spk_uniform53");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(stimulus_uniforms_doc,
             "stimulus_uniforms(seed, index, out)\n\n"
             "out[e] = U of stimulus element e of sample `index` (float32), e < len(out).");

static PyObject *py_stimulus_uniforms(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"seed", "index", "out", NULL};
    PyObject *o_seed, *o_index, *o_out;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO:stimulus_uniforms", kwlist, &o_seed,
                                     &o_index, &o_out))
        return NULL;
    uint64_t seed;
    int64_t index;
    if (to_u64_checked(o_seed, "seed", &seed) < 0) return NULL;
    if (to_i64(o_index, "index", &index) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *out = get_array(&s, o_out, "out", K_F32, 1, 0, -1);
    if (!out) goto done;
    int32_t st;
    float *p = (float *)out->ptr;
    int64_t n = out->count;
    CALL_KERNEL(st, spk_stimulus_uniforms(seed, index, n, p));
    if (st != SPK_OK) {
        status_error(st, "spk_stimulus_uniforms");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(stimulus_doc,
             "stimulus(params, ipd, phase, seed, first_index, spikes, threads=0)\n\n"
             "params: (dt, steps, freq, anf_per_ear, rate_max, envelope_power, "
             "null_phase_delays).\n"
             "ipd, phase: float64 (n,); spikes: writable uint8 (n * steps * 2 * anf_per_ear).");

static PyObject *py_stimulus(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"params", "ipd", "phase", "seed", "first_index", "spikes",
                             "threads", NULL};
    PyObject *o_params, *o_ipd, *o_phase, *o_seed, *o_first, *o_spikes, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|O:stimulus", kwlist, &o_params, &o_ipd,
                                     &o_phase, &o_seed, &o_first, &o_spikes, &o_threads))
        return NULL;
    spk_stimulus_params params;
    uint64_t seed;
    int64_t first;
    int32_t threads;
    if (parse_stimulus_params(o_params, &params) < 0) return NULL;
    if (to_u64_checked(o_seed, "seed", &seed) < 0) return NULL;
    if (to_i64(o_first, "first_index", &first) < 0) return NULL;
    if (to_threads(o_threads, &threads) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *ipd = get_array(&s, o_ipd, "ipd", K_F64, 0, 0, -1);
    if (!ipd) goto done;
    int64_t n = ipd->count;
    arg_buf *phase = get_array(&s, o_phase, "phase", K_F64, 0, 0, n);
    if (!phase) goto done;
    int64_t n_in, total;
    if (mul_size(2, params.anf_per_ear, "spikes", &n_in) < 0) goto done;
    if (mul3_size(n, params.steps, n_in, "spikes", &total) < 0) goto done;
    arg_buf *spikes = get_array(&s, o_spikes, "spikes", K_U8, 1, 0, total);
    if (!spikes) goto done;
    int32_t st;
    const double *pi = (const double *)ipd->ptr, *pp = (const double *)phase->ptr;
    uint8_t *ps = (uint8_t *)spikes->ptr;
    CALL_KERNEL(st, spk_stimulus(&params, pi, pp, n, seed, first, ps, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_stimulus");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(events_index_doc,
             "events_index(x, n, steps, n_in, step_ptr, input_ptr, threads=0)\n\n"
             "x: uint8/bool (n * steps * n_in); step_ptr: writable int64 (n * steps + 1);\n"
             "input_ptr: writable int64 (n * n_in + 1).");

static PyObject *py_events_index(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"x", "n", "steps", "n_in", "step_ptr", "input_ptr", "threads",
                             NULL};
    PyObject *o_x, *o_n, *o_steps, *o_nin, *o_sp, *o_ip, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|O:events_index", kwlist, &o_x, &o_n,
                                     &o_steps, &o_nin, &o_sp, &o_ip, &o_threads))
        return NULL;
    int64_t n, steps, n_in;
    int32_t threads;
    if (to_size(o_n, "n", &n) < 0 || to_size(o_steps, "steps", &steps) < 0 ||
        to_size(o_nin, "n_in", &n_in) < 0 || to_threads(o_threads, &threads) < 0)
        return NULL;
    int64_t total, nsp, nip;
    if (mul3_size(n, steps, n_in, "x", &total) < 0) return NULL;
    if (mul_size(n, steps, "step_ptr", &nsp) < 0 || add1_size(nsp, "step_ptr", &nsp) < 0)
        return NULL;
    if (mul_size(n, n_in, "input_ptr", &nip) < 0 || add1_size(nip, "input_ptr", &nip) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *x = get_array(&s, o_x, "x", K_U8, 0, 0, total);
    if (!x) goto done;
    arg_buf *sp = get_array(&s, o_sp, "step_ptr", K_I64, 1, 0, nsp);
    if (!sp) goto done;
    arg_buf *ip = get_array(&s, o_ip, "input_ptr", K_I64, 1, 0, nip);
    if (!ip) goto done;
    int32_t st;
    const uint8_t *px = (const uint8_t *)x->ptr;
    int64_t *psp = (int64_t *)sp->ptr, *pip = (int64_t *)ip->ptr;
    CALL_KERNEL(st, spk_events_index(px, n, steps, n_in, psp, pip, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_events_index");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(events_fill_doc,
             "events_fill(x, n, steps, n_in, step_ptr, input_ptr, step_events, input_events, "
             "threads=0)\n\n"
             "step_events, input_events: writable uint16 arrays of n_events = step_ptr[-1]\n"
             "elements each (the last entries of step_ptr and input_ptr must agree).");

static PyObject *py_events_fill(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"x", "n", "steps", "n_in", "step_ptr", "input_ptr",
                             "step_events", "input_events", "threads", NULL};
    PyObject *o_x, *o_n, *o_steps, *o_nin, *o_sp, *o_ip, *o_se, *o_ie, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOO|O:events_fill", kwlist, &o_x, &o_n,
                                     &o_steps, &o_nin, &o_sp, &o_ip, &o_se, &o_ie, &o_threads))
        return NULL;
    int64_t n, steps, n_in;
    int32_t threads;
    if (to_size(o_n, "n", &n) < 0 || to_size(o_steps, "steps", &steps) < 0 ||
        to_size(o_nin, "n_in", &n_in) < 0 || to_threads(o_threads, &threads) < 0)
        return NULL;
    int64_t total, nsp, nip;
    if (mul3_size(n, steps, n_in, "x", &total) < 0) return NULL;
    if (mul_size(n, steps, "step_ptr", &nsp) < 0 || add1_size(nsp, "step_ptr", &nsp) < 0)
        return NULL;
    if (mul_size(n, n_in, "input_ptr", &nip) < 0 || add1_size(nip, "input_ptr", &nip) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *x = get_array(&s, o_x, "x", K_U8, 0, 0, total);
    if (!x) goto done;
    arg_buf *sp = get_array(&s, o_sp, "step_ptr", K_I64, 0, 0, nsp);
    if (!sp) goto done;
    arg_buf *ip = get_array(&s, o_ip, "input_ptr", K_I64, 0, 0, nip);
    if (!ip) goto done;
    /* The kernel sizes its output from the pointer arrays: check them against the outputs. */
    const int64_t *psp = (const int64_t *)sp->ptr, *pip = (const int64_t *)ip->ptr;
    int64_t n_events = psp[nsp - 1];
    if (psp[0] != 0 || pip[0] != 0 || n_events < 0 || pip[nip - 1] != n_events) {
        PyErr_SetString(PyExc_ValueError,
                        "step_ptr and input_ptr must start at 0 and end at the same "
                        "n_events (run events_index first)");
        goto done;
    }
    arg_buf *se = get_array(&s, o_se, "step_events", K_U16, 1, 0, n_events);
    if (!se) goto done;
    arg_buf *ie = get_array(&s, o_ie, "input_events", K_U16, 1, 0, n_events);
    if (!ie) goto done;
    int32_t st;
    const uint8_t *px = (const uint8_t *)x->ptr;
    uint16_t *pse = (uint16_t *)se->ptr, *pie = (uint16_t *)ie->ptr;
    CALL_KERNEL(st, spk_events_fill(px, n, steps, n_in, psp, pip, pse, pie, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_events_fill");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(events_to_dense_doc,
             "events_to_dense(events, x, threads=0)\n\n"
             "events: (n_samples, steps, n_in, n_events, step_ptr, step_events, input_ptr,\n"
             "input_events); x: writable uint8 (n_samples * steps * n_in).");

static PyObject *py_events_to_dense(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"events", "x", "threads", NULL};
    PyObject *o_ev, *o_x, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:events_to_dense", kwlist, &o_ev, &o_x,
                                     &o_threads))
        return NULL;
    int32_t threads;
    if (to_threads(o_threads, &threads) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    int64_t total;
    if (mul3_size(ev.n_samples, ev.steps, ev.n_in, "x", &total) < 0) goto done;
    arg_buf *x = get_array(&s, o_x, "x", K_U8, 1, 0, total);
    if (!x) goto done;
    int32_t st;
    uint8_t *px = (uint8_t *)x->ptr;
    CALL_KERNEL(st, spk_events_to_dense(&ev, px, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_events_to_dense");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(snn_forward_doc,
             "snn_forward(config, events, index, batch, w1, w2, logits, hidden_spikes=None, "
             "output_membrane=None, threads=0)\n\n"
             "config: (n_in, n_hidden, n_out, steps, dt, tau_hidden, tau_output, readout, beta).\n"
             "index: int64 (batch,) or None; w1: float32 (n_in * n_hidden); w2: float32\n"
             "(n_hidden * n_out); logits: writable float32 (batch * n_out); hidden_spikes:\n"
             "writable uint8 (batch * steps * n_hidden) or None; output_membrane: writable\n"
             "float32 (batch * steps * n_out) or None.");

static PyObject *py_snn_forward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "w1", "w2", "logits",
                             "hidden_spikes", "output_membrane", "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_w1, *o_w2, *o_logits;
    PyObject *o_hs = Py_None, *o_om = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|OOO:snn_forward", kwlist, &o_cfg, &o_ev,
                                     &o_index, &o_batch, &o_w1, &o_w2, &o_logits, &o_hs, &o_om,
                                     &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    int64_t nw1, nw2, nlog, nhs, nom;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_hidden, "w1", &nw1) < 0 ||
        mul_size(c.n_hidden, c.n_out, "w2", &nw2) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0 ||
        mul3_size(batch, c.steps, c.n_hidden, "hidden_spikes", &nhs) < 0 ||
        mul3_size(batch, c.steps, c.n_out, "output_membrane", &nom) < 0)
        goto done;
    arg_buf *w1 = get_array(&s, o_w1, "w1", K_F32, 0, 0, nw1);
    if (!w1) goto done;
    arg_buf *w2 = get_array(&s, o_w2, "w2", K_F32, 0, 0, nw2);
    if (!w2) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 0, nlog);
    if (!lg) goto done;
    arg_buf *hs = get_array(&s, o_hs, "hidden_spikes", K_U8, 1, 1, nhs);
    if (!hs) goto done;
    arg_buf *om = get_array(&s, o_om, "output_membrane", K_F32, 1, 1, nom);
    if (!om) goto done;
    int32_t st;
    const float *pw1 = (const float *)w1->ptr, *pw2 = (const float *)w2->ptr;
    float *plg = (float *)lg->ptr, *pom = (float *)om->ptr;
    uint8_t *phs = (uint8_t *)hs->ptr;
    CALL_KERNEL(st, spk_snn_forward(&c, &ev, index, batch, pw1, pw2, plg, phs, pom, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_snn_forward");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(snn_loss_grad_doc,
             "snn_loss_grad(config, events, index, batch, labels, w1, w2, grad_w1, grad_w2, "
             "logits=None, threads=0) -> loss\n\n"
             "labels: int64 (batch,); grad_w1, grad_w2: writable float32 shaped like w1, w2;\n"
             "logits: writable float32 (batch * n_out) or None. Returns the mean loss (float).");

static PyObject *py_snn_loss_grad(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "labels", "w1", "w2",
                             "grad_w1", "grad_w2", "logits", "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_labels, *o_w1, *o_w2, *o_g1, *o_g2;
    PyObject *o_logits = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO|OO:snn_loss_grad", kwlist, &o_cfg,
                                     &o_ev, &o_index, &o_batch, &o_labels, &o_w1, &o_w2, &o_g1,
                                     &o_g2, &o_logits, &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    int64_t nw1, nw2, nlog;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_hidden, "w1", &nw1) < 0 ||
        mul_size(c.n_hidden, c.n_out, "w2", &nw2) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0)
        goto done;
    arg_buf *lb = get_array(&s, o_labels, "labels", K_I64, 0, 0, batch);
    if (!lb) goto done;
    arg_buf *w1 = get_array(&s, o_w1, "w1", K_F32, 0, 0, nw1);
    if (!w1) goto done;
    arg_buf *w2 = get_array(&s, o_w2, "w2", K_F32, 0, 0, nw2);
    if (!w2) goto done;
    arg_buf *g1 = get_array(&s, o_g1, "grad_w1", K_F32, 1, 0, nw1);
    if (!g1) goto done;
    arg_buf *g2 = get_array(&s, o_g2, "grad_w2", K_F32, 1, 0, nw2);
    if (!g2) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 1, nlog);
    if (!lg) goto done;
    int32_t st;
    double loss = 0.0;
    const int64_t *plb = (const int64_t *)lb->ptr;
    const float *pw1 = (const float *)w1->ptr, *pw2 = (const float *)w2->ptr;
    float *pg1 = (float *)g1->ptr, *pg2 = (float *)g2->ptr, *plg = (float *)lg->ptr;
    CALL_KERNEL(st, spk_snn_loss_grad(&c, &ev, index, batch, plb, pw1, pw2, &loss, pg1, pg2,
                                      plg, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_snn_loss_grad");
        goto done;
    }
    result = PyFloat_FromDouble(loss);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(mo_forward_doc,
             "mo_forward(config, events, index, batch, w, logits, output_membrane=None, "
             "threads=0)\n\n"
             "Membrane-only network; w: float32 (n_in * n_out).");

static PyObject *py_mo_forward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "w", "logits",
                             "output_membrane", "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_w, *o_logits;
    PyObject *o_om = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|OO:mo_forward", kwlist, &o_cfg, &o_ev,
                                     &o_index, &o_batch, &o_w, &o_logits, &o_om, &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    int64_t nw, nlog, nom;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_out, "w", &nw) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0 ||
        mul3_size(batch, c.steps, c.n_out, "output_membrane", &nom) < 0)
        goto done;
    arg_buf *w = get_array(&s, o_w, "w", K_F32, 0, 0, nw);
    if (!w) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 0, nlog);
    if (!lg) goto done;
    arg_buf *om = get_array(&s, o_om, "output_membrane", K_F32, 1, 1, nom);
    if (!om) goto done;
    int32_t st;
    const float *pw = (const float *)w->ptr;
    float *plg = (float *)lg->ptr, *pom = (float *)om->ptr;
    CALL_KERNEL(st, spk_mo_forward(&c, &ev, index, batch, pw, plg, pom, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_mo_forward");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(mo_loss_grad_doc,
             "mo_loss_grad(config, events, index, batch, labels, w, grad_w, logits=None, "
             "threads=0) -> loss");

static PyObject *py_mo_loss_grad(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "labels", "w", "grad_w",
                             "logits", "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_labels, *o_w, *o_g;
    PyObject *o_logits = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|OO:mo_loss_grad", kwlist, &o_cfg, &o_ev,
                                     &o_index, &o_batch, &o_labels, &o_w, &o_g, &o_logits,
                                     &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    int64_t nw, nlog;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_out, "w", &nw) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0)
        goto done;
    arg_buf *lb = get_array(&s, o_labels, "labels", K_I64, 0, 0, batch);
    if (!lb) goto done;
    arg_buf *w = get_array(&s, o_w, "w", K_F32, 0, 0, nw);
    if (!w) goto done;
    arg_buf *g = get_array(&s, o_g, "grad_w", K_F32, 1, 0, nw);
    if (!g) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 1, nlog);
    if (!lg) goto done;
    int32_t st;
    double loss = 0.0;
    const int64_t *plb = (const int64_t *)lb->ptr;
    const float *pw = (const float *)w->ptr;
    float *pg = (float *)g->ptr, *plg = (float *)lg->ptr;
    CALL_KERNEL(st, spk_mo_loss_grad(&c, &ev, index, batch, plb, pw, &loss, pg, plg, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_mo_loss_grad");
        goto done;
    }
    result = PyFloat_FromDouble(loss);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(adam_step_doc,
             "adam_step(w, grad, m, v, lr, beta1, beta2, eps, step)\n\n"
             "In place: w, m, v writable float32 arrays, grad float32, all of the same size;\n"
             "step >= 1 is the step being taken.");

static PyObject *py_adam_step(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"w", "grad", "m", "v", "lr", "beta1", "beta2", "eps", "step",
                             NULL};
    PyObject *o_w, *o_g, *o_m, *o_v, *o_lr, *o_b1, *o_b2, *o_eps, *o_step;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO:adam_step", kwlist, &o_w, &o_g, &o_m,
                                     &o_v, &o_lr, &o_b1, &o_b2, &o_eps, &o_step))
        return NULL;
    double lr, b1, b2, eps;
    int64_t step;
    if (to_double(o_lr, "lr", &lr) < 0 || to_double(o_b1, "beta1", &b1) < 0 ||
        to_double(o_b2, "beta2", &b2) < 0 || to_double(o_eps, "eps", &eps) < 0 ||
        to_i64(o_step, "step", &step) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *w = get_array(&s, o_w, "w", K_F32, 1, 0, -1);
    if (!w) goto done;
    int64_t n = w->count;
    arg_buf *g = get_array(&s, o_g, "grad", K_F32, 0, 0, n);
    if (!g) goto done;
    arg_buf *m = get_array(&s, o_m, "m", K_F32, 1, 0, n);
    if (!m) goto done;
    arg_buf *v = get_array(&s, o_v, "v", K_F32, 1, 0, n);
    if (!v) goto done;
    int32_t st;
    float *pw = (float *)w->ptr, *pm = (float *)m->ptr, *pv = (float *)v->ptr;
    const float *pg = (const float *)g->ptr;
    CALL_KERNEL(st, spk_adam_step(pw, pg, pm, pv, n, lr, b1, b2, eps, step));
    if (st != SPK_OK) {
        status_error(st, "spk_adam_step");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(sgd_step_doc, "sgd_step(w, grad, lr)\n\nIn place: w -= lr * grad (float32).");

static PyObject *py_sgd_step(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"w", "grad", "lr", NULL};
    PyObject *o_w, *o_g, *o_lr;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO:sgd_step", kwlist, &o_w, &o_g, &o_lr))
        return NULL;
    double lr;
    if (to_double(o_lr, "lr", &lr) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *w = get_array(&s, o_w, "w", K_F32, 1, 0, -1);
    if (!w) goto done;
    int64_t n = w->count;
    arg_buf *g = get_array(&s, o_g, "grad", K_F32, 0, 0, n);
    if (!g) goto done;
    int32_t st;
    float *pw = (float *)w->ptr;
    const float *pg = (const float *)g->ptr;
    CALL_KERNEL(st, spk_sgd_step(pw, pg, n, lr));
    if (st != SPK_OK) {
        status_error(st, "spk_sgd_step");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

/* ---- data options (issue 4 item 8): stimulus with phase-delay noise -------------------- */

PyDoc_STRVAR(stimulus_noisy_doc,
             "stimulus_noisy(params, ipd, phase, seed, first_index, delay_noise, spikes, "
             "threads=0)\n\n"
             "spk_stimulus with phase-delay noise of standard deviation delay_noise (rad);\n"
             "arguments as for stimulus().");

static PyObject *py_stimulus_noisy(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"params", "ipd", "phase", "seed", "first_index", "delay_noise",
                             "spikes", "threads", NULL};
    PyObject *o_params, *o_ipd, *o_phase, *o_seed, *o_first, *o_noise, *o_spikes,
        *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|O:stimulus_noisy", kwlist, &o_params,
                                     &o_ipd, &o_phase, &o_seed, &o_first, &o_noise, &o_spikes,
                                     &o_threads))
        return NULL;
    spk_stimulus_params params;
    uint64_t seed;
    int64_t first;
    int32_t threads;
    double noise;
    if (parse_stimulus_params(o_params, &params) < 0) return NULL;
    if (to_u64_checked(o_seed, "seed", &seed) < 0) return NULL;
    if (to_i64(o_first, "first_index", &first) < 0) return NULL;
    if (to_double(o_noise, "delay_noise", &noise) < 0) return NULL;
    if (to_threads(o_threads, &threads) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *ipd = get_array(&s, o_ipd, "ipd", K_F64, 0, 0, -1);
    if (!ipd) goto done;
    int64_t n = ipd->count;
    arg_buf *phase = get_array(&s, o_phase, "phase", K_F64, 0, 0, n);
    if (!phase) goto done;
    int64_t n_in, total;
    if (mul_size(2, params.anf_per_ear, "spikes", &n_in) < 0) goto done;
    if (mul3_size(n, params.steps, n_in, "spikes", &total) < 0) goto done;
    arg_buf *spikes = get_array(&s, o_spikes, "spikes", K_U8, 1, 0, total);
    if (!spikes) goto done;
    int32_t st;
    const double *pi = (const double *)ipd->ptr, *pp = (const double *)phase->ptr;
    uint8_t *ps = (uint8_t *)spikes->ptr;
    CALL_KERNEL(st, spk_stimulus_noisy(&params, pi, pp, n, seed, first, noise, ps, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_stimulus_noisy");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(delay_noise_normals_doc,
             "delay_noise_normals(seed, index, out)\n\n"
             "out[i] = standard normal of input i's phase-delay noise in sample `index`;\n"
             "out: writable float64 array.");

static PyObject *py_delay_noise_normals(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"seed", "index", "out", NULL};
    PyObject *o_seed, *o_index, *o_out;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO:delay_noise_normals", kwlist, &o_seed,
                                     &o_index, &o_out))
        return NULL;
    uint64_t seed;
    int64_t index;
    if (to_u64_checked(o_seed, "seed", &seed) < 0) return NULL;
    if (to_i64(o_index, "index", &index) < 0) return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    arg_buf *out = get_array(&s, o_out, "out", K_F64, 1, 0, -1);
    if (!out) goto done;
    int32_t st;
    double *p = (double *)out->ptr;
    int64_t n = out->count;
    CALL_KERNEL(st, spk_delay_noise_normals(seed, index, n, p));
    if (st != SPK_OK) {
        status_error(st, "spk_delay_noise_normals");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

/* ---- research variants (spk_variant_*) ------------------------------------------------ */
/*
 * options: (reset, surrogate, adapt_tau, adapt_strength, tau_hidden, tau_output, sign_w1,
 *           sign_w2, rate_c, rate_max, dropout, dropout_seed); the four arrays are float32
 *           (n_hidden, n_out, n_in, n_hidden elements) or None. Held in their own buf_set.
 */
static int parse_variant_options(buf_set *s, PyObject *t, const spk_net_config *c,
                                 spk_variant_options *o) {
    static const char *usage =
        "options must be a tuple (reset, surrogate, adapt_tau, adapt_strength, tau_hidden, "
        "tau_output, sign_w1, sign_w2, rate_c, rate_max, dropout, dropout_seed)";
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 12) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    memset(o, 0, sizeof *o);
    if (to_i32(PyTuple_GET_ITEM(t, 0), "options.reset", &o->reset) < 0) return -1;
    if (to_i32(PyTuple_GET_ITEM(t, 1), "options.surrogate", &o->surrogate) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 2), "options.adapt_tau", &o->adapt_tau) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 3), "options.adapt_strength", &o->adapt_strength) < 0)
        return -1;
    arg_buf *a;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 4), "options.tau_hidden", K_F32, 0, 1,
                        c->n_hidden)))
        return -1;
    o->tau_hidden = (const float *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 5), "options.tau_output", K_F32, 0, 1, c->n_out)))
        return -1;
    o->tau_output = (const float *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 6), "options.sign_w1", K_F32, 0, 1, c->n_in)))
        return -1;
    o->sign_w1 = (const float *)a->ptr;
    if (!(a = get_array(s, PyTuple_GET_ITEM(t, 7), "options.sign_w2", K_F32, 0, 1, c->n_hidden)))
        return -1;
    o->sign_w2 = (const float *)a->ptr;
    if (to_double(PyTuple_GET_ITEM(t, 8), "options.rate_c", &o->rate_c) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 9), "options.rate_max", &o->rate_max) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 10), "options.dropout", &o->dropout) < 0) return -1;
    if (to_u64_checked(PyTuple_GET_ITEM(t, 11), "options.dropout_seed", &o->dropout_seed) < 0)
        return -1;
    return 0;
}

PyDoc_STRVAR(variant_forward_doc,
             "variant_forward(config, options, events, index, batch, w1, w2, logits, "
             "hidden_spikes=None, output_membrane=None, threads=0)\n\n"
             "The general network (spk_variant_forward); config as snn_forward with readout 3 =\n"
             "spike count; options: see parse_variant_options in _native.c.");

static PyObject *py_variant_forward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "options", "events", "index", "batch", "w1", "w2",
                             "logits", "hidden_spikes", "output_membrane", "threads", NULL};
    PyObject *o_cfg, *o_opt, *o_ev, *o_index, *o_batch, *o_w1, *o_w2, *o_logits;
    PyObject *o_hs = Py_None, *o_om = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOO|OOO:variant_forward", kwlist, &o_cfg,
                                     &o_opt, &o_ev, &o_index, &o_batch, &o_w1, &o_w2, &o_logits,
                                     &o_hs, &o_om, &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0}, so = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    spk_variant_options opt;
    const int64_t *index;
    int64_t nw1, nw2, nlog, nhs, nom;
    if (parse_variant_options(&so, o_opt, &c, &opt) < 0) goto done;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_hidden, "w1", &nw1) < 0 ||
        mul_size(c.n_hidden, c.n_out, "w2", &nw2) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0 ||
        mul3_size(batch, c.steps, c.n_hidden, "hidden_spikes", &nhs) < 0 ||
        mul3_size(batch, c.steps, c.n_out, "output_membrane", &nom) < 0)
        goto done;
    arg_buf *w1 = get_array(&s, o_w1, "w1", K_F32, 0, 0, nw1);
    if (!w1) goto done;
    arg_buf *w2 = get_array(&s, o_w2, "w2", K_F32, 0, 0, nw2);
    if (!w2) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 0, nlog);
    if (!lg) goto done;
    arg_buf *hs = get_array(&s, o_hs, "hidden_spikes", K_U8, 1, 1, nhs);
    if (!hs) goto done;
    arg_buf *om = get_array(&s, o_om, "output_membrane", K_F32, 1, 1, nom);
    if (!om) goto done;
    int32_t st;
    const float *pw1 = (const float *)w1->ptr, *pw2 = (const float *)w2->ptr;
    float *plg = (float *)lg->ptr, *pom = (float *)om->ptr;
    uint8_t *phs = (uint8_t *)hs->ptr;
    CALL_KERNEL(st, spk_variant_forward(&c, &opt, &ev, index, batch, pw1, pw2, plg, phs, pom,
                                        threads));
    if (st != SPK_OK) {
        status_error(st, "spk_variant_forward");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    bufs_release(&so);
    return result;
}

PyDoc_STRVAR(variant_loss_grad_doc,
             "variant_loss_grad(config, options, events, index, batch, labels, w1, w2, grad_w1, "
             "grad_w2, grad_tau_hidden=None, grad_tau_output=None, logits=None, threads=0) -> "
             "loss\n\n"
             "grad_tau_hidden: writable float32 (n_hidden) or None; grad_tau_output: (n_out) or\n"
             "None. Weight gradients are with respect to the raw weights (Dale's law applied).");

static PyObject *py_variant_loss_grad(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "options", "events", "index", "batch", "labels", "w1",
                             "w2", "grad_w1", "grad_w2", "grad_tau_hidden", "grad_tau_output",
                             "logits", "threads", NULL};
    PyObject *o_cfg, *o_opt, *o_ev, *o_index, *o_batch, *o_labels, *o_w1, *o_w2, *o_g1, *o_g2;
    PyObject *o_gth = Py_None, *o_gto = Py_None, *o_logits = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOO|OOOO:variant_loss_grad", kwlist,
                                     &o_cfg, &o_opt, &o_ev, &o_index, &o_batch, &o_labels, &o_w1,
                                     &o_w2, &o_g1, &o_g2, &o_gth, &o_gto, &o_logits, &o_threads))
        return NULL;
    spk_net_config c;
    int64_t batch;
    int32_t threads;
    if (parse_net_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0}, so = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    spk_variant_options opt;
    const int64_t *index;
    int64_t nw1, nw2, nlog;
    if (parse_variant_options(&so, o_opt, &c, &opt) < 0) goto done;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_hidden, "w1", &nw1) < 0 ||
        mul_size(c.n_hidden, c.n_out, "w2", &nw2) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0)
        goto done;
    arg_buf *lb = get_array(&s, o_labels, "labels", K_I64, 0, 0, batch);
    if (!lb) goto done;
    arg_buf *w1 = get_array(&s, o_w1, "w1", K_F32, 0, 0, nw1);
    if (!w1) goto done;
    arg_buf *w2 = get_array(&s, o_w2, "w2", K_F32, 0, 0, nw2);
    if (!w2) goto done;
    arg_buf *g1 = get_array(&s, o_g1, "grad_w1", K_F32, 1, 0, nw1);
    if (!g1) goto done;
    arg_buf *g2 = get_array(&s, o_g2, "grad_w2", K_F32, 1, 0, nw2);
    if (!g2) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 1, nlog);
    if (!lg) goto done;
    arg_buf *gth = get_array(&so, o_gth, "grad_tau_hidden", K_F32, 1, 1, c.n_hidden);
    if (!gth) goto done;
    arg_buf *gto = get_array(&so, o_gto, "grad_tau_output", K_F32, 1, 1, c.n_out);
    if (!gto) goto done;
    int32_t st;
    double loss = 0.0;
    const int64_t *plb = (const int64_t *)lb->ptr;
    const float *pw1 = (const float *)w1->ptr, *pw2 = (const float *)w2->ptr;
    float *pg1 = (float *)g1->ptr, *pg2 = (float *)g2->ptr, *plg = (float *)lg->ptr;
    float *pgth = (float *)gth->ptr, *pgto = (float *)gto->ptr;
    CALL_KERNEL(st, spk_variant_loss_grad(&c, &opt, &ev, index, batch, plb, pw1, pw2, &loss, pg1,
                                          pg2, pgth, pgto, plg, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_variant_loss_grad");
        goto done;
    }
    result = PyFloat_FromDouble(loss);
done:
    bufs_release(&s);
    bufs_release(&so);
    return result;
}

/* ---- e-prop (spikeloc.h, section "e-prop") -------------------------------------------- */
/*
 * eprop config tuple: (n_in, n_hidden, n_out, steps, window, dt, tau_m, tau_out, v_th, gamma,
 *                      reg_c, f_target, loss, recurrent)
 */
static int parse_eprop_config(PyObject *t, spk_eprop_config *c) {
    static const char *usage =
        "config must be a tuple (n_in, n_hidden, n_out, steps, window, dt, tau_m, tau_out, "
        "v_th, gamma, reg_c, f_target, loss, recurrent)";
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 14) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (to_size(PyTuple_GET_ITEM(t, 0), "config.n_in", &c->n_in) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 1), "config.n_hidden", &c->n_hidden) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 2), "config.n_out", &c->n_out) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 3), "config.steps", &c->steps) < 0) return -1;
    if (to_size(PyTuple_GET_ITEM(t, 4), "config.window", &c->window) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 5), "config.dt", &c->dt) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 6), "config.tau_m", &c->tau_m) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 7), "config.tau_out", &c->tau_out) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 8), "config.v_th", &c->v_th) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 9), "config.gamma", &c->gamma) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 10), "config.reg_c", &c->reg_c) < 0) return -1;
    if (to_double(PyTuple_GET_ITEM(t, 11), "config.f_target", &c->f_target) < 0) return -1;
    if (to_i32(PyTuple_GET_ITEM(t, 12), "config.loss", &c->loss) < 0) return -1;
    if (to_i32(PyTuple_GET_ITEM(t, 13), "config.recurrent", &c->recurrent) < 0) return -1;
    return 0;
}

/* config vs events, batch and index (as check_batch for the feed-forward networks). */
static int eprop_check_batch(buf_set *s, const spk_eprop_config *c, const spk_events *ev,
                             PyObject *index_obj, int64_t batch, const int64_t **index) {
    spk_net_config nc;
    memset(&nc, 0, sizeof nc);
    nc.n_in = c->n_in;
    nc.steps = c->steps;
    return check_batch(s, &nc, ev, index_obj, batch, index);
}

/* The weight arrays of an e-prop call; w_rec only with a recurrent layer. */
static int eprop_weights(buf_set *s, const spk_eprop_config *c, PyObject *o_win,
                         PyObject *o_wrec, PyObject *o_wout, PyObject *o_b, PyObject *o_fb,
                         int fb_optional, const float **w_in, const float **w_rec,
                         const float **w_out, const float **b, const float **fb) {
    int64_t nin, nrec, nout;
    if (mul_size(c->n_in, c->n_hidden, "w_in", &nin) < 0 ||
        mul_size(c->n_hidden, c->n_hidden, "w_rec", &nrec) < 0 ||
        mul_size(c->n_hidden, c->n_out, "w_out", &nout) < 0)
        return -1;
    arg_buf *a;
    if (!(a = get_array(s, o_win, "w_in", K_F32, 0, 0, nin))) return -1;
    *w_in = (const float *)a->ptr;
    if (!(a = get_array(s, c->recurrent ? o_wrec : Py_None, "w_rec", K_F32, 0, !c->recurrent, nrec)))
        return -1;
    *w_rec = (const float *)a->ptr;
    if (!(a = get_array(s, o_wout, "w_out", K_F32, 0, 0, nout))) return -1;
    *w_out = (const float *)a->ptr;
    if (!(a = get_array(s, o_b, "b", K_F32, 0, 0, c->n_out))) return -1;
    *b = (const float *)a->ptr;
    if (!(a = get_array(s, o_fb, "feedback", K_F32, 0, fb_optional, nout))) return -1;
    *fb = (const float *)a->ptr;
    return 0;
}

PyDoc_STRVAR(eprop_forward_doc,
             "eprop_forward(config, events, index, batch, labels, w_in, w_rec, w_out, b, "
             "feedback, logits, voltage=None, spikes=None, psi=None, learning_signal=None, "
             "readout=None, threads=0)\n\n"
             "labels, feedback may be None (needed for learning_signal); w_rec None without a "
             "recurrent layer. Recordings: float32 (batch*T*n_hidden), spikes uint8, readout "
             "float32 (batch*T*n_out).");

static PyObject *py_eprop_forward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "labels", "w_in", "w_rec",
                             "w_out", "b", "feedback", "logits", "voltage", "spikes", "psi",
                             "learning_signal", "readout", "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_labels, *o_win, *o_wrec, *o_wout, *o_b;
    PyObject *o_fb, *o_logits, *o_v = Py_None, *o_z = Py_None, *o_psi = Py_None;
    PyObject *o_ls = Py_None, *o_y = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOOO|OOOOOO:eprop_forward", kwlist,
                                     &o_cfg, &o_ev, &o_index, &o_batch, &o_labels, &o_win,
                                     &o_wrec, &o_wout, &o_b, &o_fb, &o_logits, &o_v, &o_z,
                                     &o_psi, &o_ls, &o_y, &o_threads))
        return NULL;
    spk_eprop_config c;
    int64_t batch;
    int32_t threads;
    if (parse_eprop_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    const float *w_in, *w_rec, *w_out, *b, *fb;
    int64_t nlog, nh, nc;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (eprop_check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(batch, c.n_out, "logits", &nlog) < 0 ||
        mul3_size(batch, c.steps, c.n_hidden, "recordings", &nh) < 0 ||
        mul3_size(batch, c.steps, c.n_out, "readout", &nc) < 0)
        goto done;
    arg_buf *lb = get_array(&s, o_labels, "labels", K_I64, 0, 1, batch);
    if (!lb) goto done;
    if (eprop_weights(&s, &c, o_win, o_wrec, o_wout, o_b, o_fb, 1, &w_in, &w_rec, &w_out, &b,
                      &fb) < 0)
        goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 0, nlog);
    if (!lg) goto done;
    arg_buf *rv = get_array(&s, o_v, "voltage", K_F32, 1, 1, nh);
    if (!rv) goto done;
    arg_buf *rz = get_array(&s, o_z, "spikes", K_U8, 1, 1, nh);
    if (!rz) goto done;
    arg_buf *rp = get_array(&s, o_psi, "psi", K_F32, 1, 1, nh);
    if (!rp) goto done;
    arg_buf *rl = get_array(&s, o_ls, "learning_signal", K_F32, 1, 1, nh);
    if (!rl) goto done;
    arg_buf *ry = get_array(&s, o_y, "readout", K_F32, 1, 1, nc);
    if (!ry) goto done;
    int32_t st;
    const int64_t *plb = (const int64_t *)lb->ptr;
    float *plg = (float *)lg->ptr, *prv = (float *)rv->ptr, *prp = (float *)rp->ptr;
    float *prl = (float *)rl->ptr, *pry = (float *)ry->ptr;
    uint8_t *prz = (uint8_t *)rz->ptr;
    CALL_KERNEL(st, spk_eprop_forward(&c, &ev, index, batch, plb, w_in, w_rec, w_out, b, fb, plg,
                                      prv, prz, prp, prl, pry, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_eprop_forward");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    bufs_release(&s);
    return result;
}

PyDoc_STRVAR(eprop_loss_grad_doc,
             "eprop_loss_grad(config, events, index, batch, labels, w_in, w_rec, w_out, b, "
             "feedback, mask_in, mask_rec, mask_out, grad_w_in, grad_w_rec, grad_w_out, grad_b, "
             "logits=None, threads=0) -> loss\n\n"
             "Masks: uint8 shaped like the weights, or None. w_rec, mask_rec, grad_w_rec: None "
             "without a recurrent layer.");

static PyObject *py_eprop_loss_grad(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"config", "events", "index", "batch", "labels", "w_in", "w_rec",
                             "w_out", "b", "feedback", "mask_in", "mask_rec", "mask_out",
                             "grad_w_in", "grad_w_rec", "grad_w_out", "grad_b", "logits",
                             "threads", NULL};
    PyObject *o_cfg, *o_ev, *o_index, *o_batch, *o_labels, *o_win, *o_wrec, *o_wout, *o_b;
    PyObject *o_fb, *o_min, *o_mrec, *o_mout, *o_gin, *o_grec, *o_gout, *o_gb;
    PyObject *o_logits = Py_None, *o_threads = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOOOOOOOOO|OO:eprop_loss_grad", kwlist,
                                     &o_cfg, &o_ev, &o_index, &o_batch, &o_labels, &o_win,
                                     &o_wrec, &o_wout, &o_b, &o_fb, &o_min, &o_mrec, &o_mout,
                                     &o_gin, &o_grec, &o_gout, &o_gb, &o_logits, &o_threads))
        return NULL;
    spk_eprop_config c;
    int64_t batch;
    int32_t threads;
    if (parse_eprop_config(o_cfg, &c) < 0 || to_size(o_batch, "batch", &batch) < 0 ||
        to_threads(o_threads, &threads) < 0)
        return NULL;
    buf_set s = {.n = 0};
    PyObject *result = NULL;
    spk_events ev;
    const int64_t *index;
    const float *w_in, *w_rec, *w_out, *b, *fb;
    int64_t nin, nrec, nout, nlog;
    if (parse_events(&s, o_ev, &ev) < 0) goto done;
    if (eprop_check_batch(&s, &c, &ev, o_index, batch, &index) < 0) goto done;
    if (mul_size(c.n_in, c.n_hidden, "w_in", &nin) < 0 ||
        mul_size(c.n_hidden, c.n_hidden, "w_rec", &nrec) < 0 ||
        mul_size(c.n_hidden, c.n_out, "w_out", &nout) < 0 ||
        mul_size(batch, c.n_out, "logits", &nlog) < 0)
        goto done;
    arg_buf *lb = get_array(&s, o_labels, "labels", K_I64, 0, 0, batch);
    if (!lb) goto done;
    if (eprop_weights(&s, &c, o_win, o_wrec, o_wout, o_b, o_fb, 0, &w_in, &w_rec, &w_out, &b,
                      &fb) < 0)
        goto done;
    arg_buf *mi = get_array(&s, o_min, "mask_in", K_U8, 0, 1, nin);
    if (!mi) goto done;
    arg_buf *mr = get_array(&s, c.recurrent ? o_mrec : Py_None, "mask_rec", K_U8, 0, 1, nrec);
    if (!mr) goto done;
    arg_buf *mo = get_array(&s, o_mout, "mask_out", K_U8, 0, 1, nout);
    if (!mo) goto done;
    arg_buf *gi = get_array(&s, o_gin, "grad_w_in", K_F32, 1, 0, nin);
    if (!gi) goto done;
    arg_buf *gr = get_array(&s, c.recurrent ? o_grec : Py_None, "grad_w_rec", K_F32, 1,
                            !c.recurrent, nrec);
    if (!gr) goto done;
    arg_buf *go = get_array(&s, o_gout, "grad_w_out", K_F32, 1, 0, nout);
    if (!go) goto done;
    arg_buf *gb = get_array(&s, o_gb, "grad_b", K_F32, 1, 0, c.n_out);
    if (!gb) goto done;
    arg_buf *lg = get_array(&s, o_logits, "logits", K_F32, 1, 1, nlog);
    if (!lg) goto done;
    int32_t st;
    double loss = 0.0;
    const int64_t *plb = (const int64_t *)lb->ptr;
    const uint8_t *pmi = (const uint8_t *)mi->ptr, *pmr = (const uint8_t *)mr->ptr;
    const uint8_t *pmo = (const uint8_t *)mo->ptr;
    float *pgi = (float *)gi->ptr, *pgr = (float *)gr->ptr, *pgo = (float *)go->ptr;
    float *pgb = (float *)gb->ptr, *plg = (float *)lg->ptr;
    CALL_KERNEL(st, spk_eprop_loss_grad(&c, &ev, index, batch, plb, w_in, w_rec, w_out, b, fb,
                                        pmi, pmr, pmo, &loss, pgi, pgr, pgo, pgb, plg, threads));
    if (st != SPK_OK) {
        status_error(st, "spk_eprop_loss_grad");
        goto done;
    }
    result = PyFloat_FromDouble(loss);
done:
    bufs_release(&s);
    return result;
}
/* ---- end of e-prop ------------------------------------------------------------------- */

/* ---- module -------------------------------------------------------------------------- */

#define KW_METHOD(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef native_methods[] = {
    {"abi_version", py_abi_version, METH_NOARGS, "abi_version() -> int: spk_abi_version()."},
    {"default_threads", py_default_threads, METH_NOARGS,
     "default_threads() -> int: worker threads used for threads=0."},
    {"last_error", py_last_error, METH_NOARGS,
     "last_error() -> str: message of the last failing kernel call on this thread."},
    KW_METHOD("uniform53", py_uniform53, uniform53_doc),
    KW_METHOD("stimulus_uniforms", py_stimulus_uniforms, stimulus_uniforms_doc),
    KW_METHOD("stimulus", py_stimulus, stimulus_doc),
    KW_METHOD("events_index", py_events_index, events_index_doc),
    KW_METHOD("events_fill", py_events_fill, events_fill_doc),
    KW_METHOD("events_to_dense", py_events_to_dense, events_to_dense_doc),
    KW_METHOD("snn_forward", py_snn_forward, snn_forward_doc),
    KW_METHOD("snn_loss_grad", py_snn_loss_grad, snn_loss_grad_doc),
    KW_METHOD("mo_forward", py_mo_forward, mo_forward_doc),
    KW_METHOD("mo_loss_grad", py_mo_loss_grad, mo_loss_grad_doc),
    KW_METHOD("adam_step", py_adam_step, adam_step_doc),
    KW_METHOD("sgd_step", py_sgd_step, sgd_step_doc),
    /* data options (issue 4 item 8) */
    KW_METHOD("stimulus_noisy", py_stimulus_noisy, stimulus_noisy_doc),
    KW_METHOD("delay_noise_normals", py_delay_noise_normals, delay_noise_normals_doc),
    KW_METHOD("variant_forward", py_variant_forward, variant_forward_doc),
    KW_METHOD("variant_loss_grad", py_variant_loss_grad, variant_loss_grad_doc),
    KW_METHOD("eprop_forward", py_eprop_forward, eprop_forward_doc),
    KW_METHOD("eprop_loss_grad", py_eprop_loss_grad, eprop_loss_grad_doc),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    "spikeloc._native",
    "Thin wrapper of the spikeloc C ABI (spikeloc.h). Use the spikeloc package instead.",
    -1,
    native_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static int add_object(PyObject *m, const char *name, PyObject *value) {
    if (value == NULL) return -1;
    int r = PyModule_AddObjectRef(m, name, value);
    Py_DECREF(value);
    return r;
}

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
#define ADD_INT(name, value)                                                                  \
    if (add_object(m, name, PyLong_FromLongLong((long long)(value))) < 0) goto fail
#define ADD_UINT(name, value)                                                                 \
    if (add_object(m, name, PyLong_FromUnsignedLongLong((unsigned long long)(value))) < 0)    \
    goto fail
    ADD_INT("OK", SPK_OK);
    ADD_INT("ERR_VALUE", SPK_ERR_VALUE);
    ADD_INT("ERR_TYPE", SPK_ERR_TYPE);
    ADD_INT("ERR_MEMORY", SPK_ERR_MEMORY);
    ADD_UINT("WORD_IPD", SPK_WORD_IPD);
    ADD_UINT("WORD_PHASE", SPK_WORD_PHASE);
    ADD_INT("SET_INDEX", SPK_SET_INDEX);
    ADD_INT("READOUT_MEAN", SPK_READOUT_MEAN);
    ADD_INT("READOUT_SUM", SPK_READOUT_SUM);
    ADD_INT("READOUT_MAX", SPK_READOUT_MAX);
    ADD_INT("READOUT_SPIKE_COUNT", SPK_READOUT_SPIKE_COUNT);
    ADD_UINT("WORD_EPOCH_PHASE", SPK_WORD_EPOCH_PHASE); /* data options */
    ADD_UINT("WORD_DELAY_NOISE", SPK_WORD_DELAY_NOISE);
#undef ADD_INT
#undef ADD_UINT
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
