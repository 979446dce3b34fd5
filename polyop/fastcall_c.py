"""C source of ``polyop_fastcall``, the extension behind cheap kernel calls.

Kept as a Python string, not a ``.c`` file, so that every installation of
polyop (editable or not) has it: ``polyop.fastcall`` compiles it with the
system C compiler on first use, against this Python's and this numpy's
headers, and caches the library.

One type, ``Dispatcher``: a callable (vectorcall) made per compiled kernel
from a flat description of its signature (``polyop.fastcall.describe``). A
call binds positional and keyword arguments, infers missing sizes from array
shapes, and checks every argument as ``CompiledKernel.validate`` does: exact
ints for sizes, Python numbers for scalars, ndarrays with the canonical
descriptor of the dtype, the rank, the shape the sizes imply (extents are
small postfix programs over the sizes, evaluated with overflow checks),
C-contiguity, writeability of written arrays, the size conditions (the
program's context, which holds its ``assert`` assumptions, and the bounds
preconditions: unions of conjunctions of affine constraints), and no overlap
between a written array and any other. Then it releases the GIL and calls
the kernel through a trampoline ``void t(void *fn, const uint64_t *slots)``
(one 8-byte slot per native parameter).

Anything it does not accept - a failed check, a numpy integer as a size, a
non-canonical descriptor, an unknown keyword - goes to the ``fallback``
(the Python path), which raises the precise ``ArgumentError`` or, for an
unusual but valid argument, makes the call itself. So this code only ever
decides "valid, run it"; every message stays in Python.
"""

SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { K_SIZE = 0, K_INT = 1, K_FLOAT = 2, K_ARRAY = 3 };
enum { OP_CONST, OP_SIZE, OP_ADD, OP_SUB, OP_MUL, OP_NEG, OP_MIN, OP_MAX, OP_FDIV, OP_MOD };
#define MAX_ARGS 64
#define MAX_STACK 32

typedef struct {
    int kind, slot, size_index, ndim, written, infer_arg, infer_dim;
    PyArray_Descr *descr;
    int extent[NPY_MAXDIMS];
} Arg;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback, *names, *scratch;
    void (*tramp)(void *, const uint64_t *);
    void *fn;
    int nargs, posonly, nsizes, nscratch;
    Arg *args;
    int64_t *code;
    int *prog;        /* program k is code[prog[k] .. prog[k + 1]) */
    int *cond;        /* [n, (ndisj, (ncons, (is_eq, prog)...)...)...] */
    int *scratch_slot;
} Dispatcher;

/* the value of program k over sizes; -1 on overflow or a division by zero */
static int eval(const Dispatcher *d, int k, const int64_t *sizes, int64_t *out) {
    int64_t st[MAX_STACK];
    int sp = 0;
    for (int pc = d->prog[k]; pc < d->prog[k + 1]; pc++) {
        int64_t op = d->code[pc], a, b, r;
        if (op == OP_CONST || op == OP_SIZE) {
            if (sp == MAX_STACK) return -1;
            int64_t x = d->code[++pc];
            st[sp++] = op == OP_CONST ? x : sizes[x];
            continue;
        }
        if (op == OP_NEG) {
            if (sp < 1 || st[sp - 1] == INT64_MIN) return -1;
            st[sp - 1] = -st[sp - 1];
            continue;
        }
        if (sp < 2) return -1;
        b = st[--sp];
        a = st[sp - 1];
        switch (op) {
        case OP_ADD: if (__builtin_add_overflow(a, b, &r)) return -1; break;
        case OP_SUB: if (__builtin_sub_overflow(a, b, &r)) return -1; break;
        case OP_MUL: if (__builtin_mul_overflow(a, b, &r)) return -1; break;
        case OP_MIN: r = a < b ? a : b; break;
        case OP_MAX: r = a > b ? a : b; break;
        case OP_FDIV:
            if (b == 0 || (a == INT64_MIN && b == -1)) return -1;
            r = a / b;
            if ((a % b != 0) && ((a < 0) != (b < 0))) r--;
            break;
        case OP_MOD:
            if (b == 0) return -1;
            if (b == -1) { r = 0; break; }
            r = a % b;
            if (r != 0 && ((r < 0) != (b < 0))) r += b;
            break;
        default: return -1;
        }
        st[sp - 1] = r;
    }
    if (sp != 1) return -1;
    *out = st[0];
    return 0;
}

/* every condition holds: each is a union (any disjunct) of conjunctions */
static int conditions_hold(const Dispatcher *d, const int64_t *sizes) {
    const int *c = d->cond;
    int n = *c++;
    for (int i = 0; i < n; i++) {
        int ndisj = *c++, ok = 0;
        for (int j = 0; j < ndisj; j++) {
            int ncons = *c++, all = 1;
            for (int k = 0; k < ncons; k++) {
                int is_eq = *c++, prog = *c++;
                int64_t v;
                if (all && (eval(d, prog, sizes, &v) < 0 || (is_eq ? v != 0 : v < 0))) all = 0;
            }
            ok |= all;
        }
        if (!ok) return 0;
    }
    return 1;
}

static int find_name(const Dispatcher *d, PyObject *name) {
    for (int i = 0; i < d->nargs; i++)
        if (PyTuple_GET_ITEM(d->names, i) == name) return i;
    for (int i = 0; i < d->nargs; i++) {
        int eq = PyUnicode_Compare(PyTuple_GET_ITEM(d->names, i), name);
        if (eq == 0) return i;
        if (eq == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    }
    return -1;
}

static int exact_int(PyObject *v, int64_t *out) {
    int overflow;
    long long x;
    if (!PyLong_CheckExact(v)) return -1;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) { PyErr_Clear(); return -1; }
    *out = x;
    return 0;
}

static PyObject *dispatch(PyObject *self_, PyObject *const *args, size_t nargsf,
                          PyObject *kwnames) {
    Dispatcher *d = (Dispatcher *)self_;
    Py_ssize_t npos = PyVectorcall_NARGS(nargsf);
    PyObject *bound[MAX_ARGS];
    int64_t sizes[MAX_ARGS];
    uint64_t slots[MAX_ARGS];
    PyObject *scratch = NULL;
    int i, j;

    if (d->posonly ? npos != d->posonly : npos > d->nargs) goto slow;
    for (i = 0; i < d->nargs; i++) bound[i] = i < npos ? args[i] : NULL;
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (j = 0; j < nkw; j++) {
            int at = find_name(d, PyTuple_GET_ITEM(kwnames, j));
            if (at < d->posonly || bound[at] != NULL) goto slow;
            bound[at] = args[npos + j];
        }
    }
    for (i = 0; i < d->nargs; i++) {
        const Arg *a = &d->args[i];
        PyObject *v = bound[i];
        int64_t x;
        double f;
        switch (a->kind) {
        case K_SIZE:
            if (v == NULL) {
                PyObject *arr = a->infer_arg >= 0 ? bound[a->infer_arg] : NULL;
                if (arr == NULL || !PyArray_Check(arr)
                        || PyArray_NDIM((PyArrayObject *)arr) <= a->infer_dim) goto slow;
                x = PyArray_DIMS((PyArrayObject *)arr)[a->infer_dim];
            } else if (exact_int(v, &x) < 0) goto slow;
            sizes[a->size_index] = x;
            slots[a->slot] = (uint64_t)x;
            break;
        case K_INT:
            if (v == NULL || exact_int(v, &x) < 0) goto slow;
            slots[a->slot] = (uint64_t)x;
            break;
        case K_FLOAT:
            if (v == NULL) goto slow;
            if (PyFloat_Check(v)) f = PyFloat_AS_DOUBLE(v);
            else if (PyLong_CheckExact(v)) {
                f = PyLong_AsDouble(v);
                if (f == -1.0 && PyErr_Occurred()) { PyErr_Clear(); goto slow; }
            } else goto slow;
            memcpy(&slots[a->slot], &f, sizeof f);
            break;
        default:
            if (v == NULL || !PyArray_Check(v)) goto slow;
        }
    }
    for (i = 0; i < d->nargs; i++) {
        const Arg *a = &d->args[i];
        PyArrayObject *arr = (PyArrayObject *)bound[i];
        if (a->kind != K_ARRAY) continue;
        if (PyArray_DESCR(arr) != a->descr || PyArray_NDIM(arr) != a->ndim) goto slow;
        for (j = 0; j < a->ndim; j++) {
            int64_t e;
            if (eval(d, a->extent[j], sizes, &e) < 0 || e != PyArray_DIMS(arr)[j]) goto slow;
        }
        if (!PyArray_IS_C_CONTIGUOUS(arr)) goto slow;
        if (a->written && !PyArray_ISWRITEABLE(arr)) goto slow;
        slots[a->slot] = (uint64_t)(uintptr_t)PyArray_DATA(arr);
    }
    if (!conditions_hold(d, sizes)) goto slow;
    /* no written array may overlap another array argument (bounds, as
       np.may_share_memory; C-contiguous arrays span [data, data + nbytes)) */
    for (i = 0; i < d->nargs; i++) {
        const Arg *a = &d->args[i];
        PyArrayObject *x = (PyArrayObject *)bound[i];
        char *xlo;
        npy_intp xn;
        if (a->kind != K_ARRAY || (xn = PyArray_NBYTES(x)) == 0) continue;
        xlo = PyArray_BYTES(x);
        for (j = i + 1; j < d->nargs; j++) {
            const Arg *b = &d->args[j];
            PyArrayObject *y = (PyArrayObject *)bound[j];
            npy_intp yn;
            if (b->kind != K_ARRAY || !(a->written || b->written)) continue;
            if ((yn = PyArray_NBYTES(y)) == 0) continue;
            if (xlo < PyArray_BYTES(y) + yn && PyArray_BYTES(y) < xlo + xn) goto slow;
        }
    }
    if (d->nscratch > 0) {
        PyObject *key = PyTuple_New(d->nsizes);
        if (key == NULL) return NULL;
        for (i = 0; i < d->nsizes; i++) {
            PyObject *s = PyLong_FromLongLong(sizes[i]);
            if (s == NULL) { Py_DECREF(key); return NULL; }
            PyTuple_SET_ITEM(key, i, s);
        }
        scratch = PyObject_CallOneArg(d->scratch, key);
        Py_DECREF(key);
        if (scratch == NULL) return NULL;
        if (!PyTuple_CheckExact(scratch) || PyTuple_GET_SIZE(scratch) != d->nscratch) {
            Py_DECREF(scratch);
            PyErr_SetString(PyExc_SystemError, "polyop_fastcall: bad scratch arrays");
            return NULL;
        }
        for (i = 0; i < d->nscratch; i++) {
            PyObject *s = PyTuple_GET_ITEM(scratch, i);
            if (!PyArray_Check(s)) {
                Py_DECREF(scratch);
                PyErr_SetString(PyExc_SystemError, "polyop_fastcall: bad scratch arrays");
                return NULL;
            }
            slots[d->scratch_slot[i]] = (uint64_t)(uintptr_t)PyArray_DATA((PyArrayObject *)s);
        }
    }
    Py_BEGIN_ALLOW_THREADS
    d->tramp(d->fn, slots);
    Py_END_ALLOW_THREADS
    Py_XDECREF(scratch);
    Py_RETURN_NONE;
slow:
    if (d->fallback == NULL) {
        PyErr_SetString(PyExc_SystemError, "polyop_fastcall: a cleared dispatcher");
        return NULL;
    }
    return PyObject_Vectorcall(d->fallback, args, nargsf, kwnames);
}

static int *int_array(PyObject *seq, Py_ssize_t *n) {
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of ints");
    int *out;
    if (fast == NULL) return NULL;
    *n = PySequence_Fast_GET_SIZE(fast);
    out = PyMem_Calloc(*n + 1, sizeof(int));
    if (out == NULL) { Py_DECREF(fast); PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < *n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) { Py_DECREF(fast); PyMem_Free(out); return NULL; }
        out[i] = (int)v;
    }
    Py_DECREF(fast);
    return out;
}

static int dispatcher_traverse(Dispatcher *d, visitproc visit, void *arg) {
    Py_VISIT(d->fallback);
    Py_VISIT(d->names);
    Py_VISIT(d->scratch);
    return 0;
}

static int dispatcher_clear(Dispatcher *d) {
    Py_CLEAR(d->fallback);
    Py_CLEAR(d->scratch);
    return 0;
}

static void dispatcher_dealloc(Dispatcher *d) {
    PyObject_GC_UnTrack(d);
    if (d->args != NULL)
        for (int i = 0; i < d->nargs; i++) Py_XDECREF(d->args[i].descr);
    Py_XDECREF(d->fallback);
    Py_XDECREF(d->names);
    Py_XDECREF(d->scratch);
    PyMem_Free(d->args);
    PyMem_Free(d->code);
    PyMem_Free(d->prog);
    PyMem_Free(d->cond);
    PyMem_Free(d->scratch_slot);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

/* Dispatcher(fallback, tramp, fn, names, posonly, args, code, prog, cond, scratch,
              scratch_slots); posonly = 0: any argument by position or keyword;
   posonly = p > 0: exactly the first p by position, the others by keyword only
   args: one int sequence per argument:
     size:   (0, slot, size_index, infer_arg, infer_dim)
     int:    (1, slot)
     float:  (2, slot)
     array:  (3, slot, type_num, written, ndim, extent program per dimension...) */
static PyObject *dispatcher_new(PyTypeObject *type, PyObject *a, PyObject *kw) {
    PyObject *fallback, *names, *spec, *code, *prog, *cond, *scratch, *scratch_slots;
    unsigned long long tramp, fn;
    Py_ssize_t n, i;
    Dispatcher *d;
    int posonly;
    if (!PyArg_ParseTuple(a, "OKKO!iOOOOOO", &fallback, &tramp, &fn, &PyTuple_Type, &names,
                          &posonly, &spec, &code, &prog, &cond, &scratch, &scratch_slots))
        return NULL;
    d = (Dispatcher *)type->tp_alloc(type, 0);
    if (d == NULL) return NULL;
    d->vectorcall = dispatch;
    d->tramp = (void (*)(void *, const uint64_t *))(uintptr_t)tramp;
    d->fn = (void *)(uintptr_t)fn;
    Py_INCREF(fallback); d->fallback = fallback;
    Py_INCREF(names); d->names = names;
    Py_INCREF(scratch); d->scratch = scratch;
    d->nargs = (int)PyTuple_GET_SIZE(names);
    d->posonly = posonly;
    if (d->nargs > MAX_ARGS || PySequence_Size(spec) != d->nargs || posonly < 0
            || posonly > d->nargs) {
        PyErr_SetString(PyExc_ValueError, "polyop_fastcall: too many arguments");
        goto fail;
    }
    d->args = PyMem_Calloc(d->nargs + 1, sizeof(Arg));
    if (d->args == NULL) { PyErr_NoMemory(); goto fail; }
    for (i = 0; i < d->nargs; i++) {
        PyObject *item = PySequence_GetItem(spec, i);
        Py_ssize_t m;
        int *v;
        Arg *g = &d->args[i];
        if (item == NULL) goto fail;
        v = int_array(item, &m);
        Py_DECREF(item);
        if (v == NULL) goto fail;
        g->kind = v[0];
        g->slot = v[1];
        if (g->slot < 0 || g->slot >= MAX_ARGS) { PyMem_Free(v); goto bad; }
        if (g->kind == K_SIZE) {
            g->size_index = v[2]; g->infer_arg = v[3]; g->infer_dim = v[4];
            if (g->size_index < 0 || g->size_index >= MAX_ARGS) { PyMem_Free(v); goto bad; }
            d->nsizes++;
        } else if (g->kind == K_ARRAY) {
            g->written = v[3];
            g->ndim = v[4];
            if (g->ndim < 0 || g->ndim > NPY_MAXDIMS || m != 5 + g->ndim) {
                PyMem_Free(v);
                goto bad;
            }
            for (int k = 0; k < g->ndim; k++) g->extent[k] = v[5 + k];
            g->descr = PyArray_DescrFromType(v[2]);
            if (g->descr == NULL) { PyMem_Free(v); goto fail; }
        }
        PyMem_Free(v);
    }
    {
        PyObject *fast = PySequence_Fast(code, "code: expected ints");
        if (fast == NULL) goto fail;
        n = PySequence_Fast_GET_SIZE(fast);
        d->code = PyMem_Calloc(n + 1, sizeof(int64_t));
        if (d->code == NULL) { Py_DECREF(fast); PyErr_NoMemory(); goto fail; }
        for (i = 0; i < n; i++) {
            d->code[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
            if (d->code[i] == -1 && PyErr_Occurred()) { Py_DECREF(fast); goto fail; }
        }
        Py_DECREF(fast);
    }
    if ((d->prog = int_array(prog, &n)) == NULL) goto fail;
    if ((d->cond = int_array(cond, &n)) == NULL) goto fail;
    if ((d->scratch_slot = int_array(scratch_slots, &n)) == NULL) goto fail;
    d->nscratch = (int)n;
    return (PyObject *)d;
bad:
    PyErr_SetString(PyExc_ValueError, "polyop_fastcall: malformed description");
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *dispatcher_fallback(Dispatcher *d, void *closure) {
    Py_INCREF(d->fallback);
    return d->fallback;
}

static PyGetSetDef dispatcher_getset[] = {
    {"fallback", (getter)dispatcher_fallback, NULL, "the Python path", NULL},
    {NULL}
};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "polyop_fastcall.Dispatcher",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_dealloc = (destructor)dispatcher_dealloc,
    .tp_vectorcall_offset = offsetof(Dispatcher, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)dispatcher_traverse,
    .tp_clear = (inquiry)dispatcher_clear,
    .tp_doc = "A kernel's checked call (polyop.fastcall).",
    .tp_new = dispatcher_new,
    .tp_getset = dispatcher_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "polyop_fastcall", "Cheap checked calls of polyop kernels.", -1,
};

PyMODINIT_FUNC PyInit_polyop_fastcall(void) {
    PyObject *m;
    import_array();
    if (PyType_Ready(&DispatcherType) < 0) return NULL;
    m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&DispatcherType);
    if (PyModule_AddObject(m, "Dispatcher", (PyObject *)&DispatcherType) < 0) {
        Py_DECREF(&DispatcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"""
