/* The first-fit lane assignment of `model/layout._stack_layout`, in C (optional accelerator).
 *
 * stack_layout(start, end, parent, same_track, seq) over one track's slices, sorted as
 * `layout` sorts them: start/end int64, parent int64 (the parent's position among them, or
 * -1), same_track bool (the parent is on this track) → (lane int32 bytes, begin int64 bytes,
 * end int64 bytes, next seq, lanes used, slices not nested). Same rules, same result as the
 * Python loop, which tests hold it to.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t e, k;
} Busy; /* a min-heap entry: (end of the lane's bottom slice, lane); free lanes are (lane, lane) */

static inline int busy_less(Busy a, Busy b) { return a.e < b.e || (a.e == b.e && a.k < b.k); }

static void busy_push(Busy *h, Py_ssize_t *n, Busy x) {
    Py_ssize_t i = (*n)++;
    while (i > 0) {
        Py_ssize_t up = (i - 1) / 2;
        if (!busy_less(x, h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = x;
}

static Busy busy_pop(Busy *h, Py_ssize_t *n) {
    Busy top = h[0], x = h[--(*n)];
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && busy_less(h[c + 1], h[c])) c++;
        if (!busy_less(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

static int get(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n, const char *what) {
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->len != n * itemsize) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes", what, n, itemsize);
        return -1;
    }
    return 0;
}

static PyObject *stack_layout(PyObject *self, PyObject *args) {
    PyObject *start_o, *end_o, *par_o, *stp_o;
    long long seq;
    if (!PyArg_ParseTuple(args, "OOOOL", &start_o, &end_o, &par_o, &stp_o, &seq)) return NULL;
    Py_buffer sb, eb, pb, tb;
    if (PyObject_GetBuffer(start_o, &sb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    Py_ssize_t n = sb.len / 8;
    if (sb.len % 8) {
        PyBuffer_Release(&sb);
        PyErr_SetString(PyExc_ValueError, "start: int64");
        return NULL;
    }
    if (get(end_o, &eb, 8, n, "end") < 0) {
        PyBuffer_Release(&sb);
        return NULL;
    }
    if (get(par_o, &pb, 8, n, "parent") < 0) {
        PyBuffer_Release(&sb);
        PyBuffer_Release(&eb);
        return NULL;
    }
    if (get(stp_o, &tb, 1, n, "same_track") < 0) {
        PyBuffer_Release(&sb);
        PyBuffer_Release(&eb);
        PyBuffer_Release(&pb);
        return NULL;
    }
    const int64_t *start = sb.buf, *end = eb.buf, *par = pb.buf;
    const uint8_t *stp = tb.buf;
    PyObject *lane_b = PyBytes_FromStringAndSize(NULL, n * 4), *begin_b = PyBytes_FromStringAndSize(NULL, n * 8),
             *endseq_b = PyBytes_FromStringAndSize(NULL, n * 8), *out = NULL;
    Py_ssize_t sz = n ? n : 1;
    int64_t *below = PyMem_Malloc(sz * 8), *top = PyMem_Malloc(sz * 8);
    Busy *busy = PyMem_Malloc(sz * sizeof(Busy)), *freeh = PyMem_Malloc(sz * sizeof(Busy)); /* (free lanes as (k, k)) */
    uint8_t *open = PyMem_Calloc(sz, 1);
    if (!lane_b || !begin_b || !endseq_b || !below || !top || !freeh || !busy || !open) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (par[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "parent: a position among the slices, or -1");
            goto done;
        }
    int32_t *lane = (int32_t *)PyBytes_AS_STRING(lane_b);
    int64_t *begin = (int64_t *)PyBytes_AS_STRING(begin_b), *endseq = (int64_t *)PyBytes_AS_STRING(endseq_b);
    Py_ssize_t nbusy = 0, nfree = 0, nstacks = 0, not_nested = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        lane[i] = 0;
        begin[i] = 0;
        endseq[i] = -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = start[i], e = end[i], p = par[i], k;
        if (p >= 0 || stp[i]) {
            if (p >= 0 && open[p] && start[p] <= s && e <= end[p]) {
                k = lane[p];
                while (top[k] != p && end[top[k]] <= s) {
                    int64_t j = top[k];
                    top[k] = below[j];
                    open[j] = 0;
                    endseq[j] = seq++;
                }
                if (top[k] == p) {
                    below[i] = top[k];
                    top[k] = i;
                    open[i] = 1;
                    lane[i] = lane[p];
                    begin[i] = seq++;
                    continue;
                }
            }
            not_nested++;
        }
        while (nbusy && busy[0].e <= s) {
            int64_t lane_k = busy_pop(busy, &nbusy).k;
            busy_push(freeh, &nfree, (Busy){lane_k, lane_k});
        }
        if (nfree) {
            k = busy_pop(freeh, &nfree).k;
            while (top[k] >= 0) {
                int64_t j = top[k];
                top[k] = below[j];
                open[j] = 0;
                endseq[j] = seq++;
            }
        } else {
            k = nstacks++;
            top[k] = -1;
        }
        below[i] = top[k];
        top[k] = i;
        open[i] = 1;
        lane[i] = (int32_t)k;
        begin[i] = seq++;
        busy_push(busy, &nbusy, (Busy){e, k});
    }
    for (Py_ssize_t k = 0; k < nstacks; k++)
        while (top[k] >= 0) {
            int64_t j = top[k];
            top[k] = below[j];
            endseq[j] = seq++;
        }
    out = Py_BuildValue("(OOOLnn)", lane_b, begin_b, endseq_b, seq, nstacks, not_nested);
done:
    Py_XDECREF(lane_b);
    Py_XDECREF(begin_b);
    Py_XDECREF(endseq_b);
    PyMem_Free(below);
    PyMem_Free(top);
    PyMem_Free(freeh);
    PyMem_Free(busy);
    PyMem_Free(open);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&eb);
    PyBuffer_Release(&pb);
    PyBuffer_Release(&tb);
    return out;
}

static PyMethodDef methods[] = {
    {"stack_layout", stack_layout, METH_VARARGS,
     "stack_layout(start, end, parent, same_track, seq) -> (lane, begin, end, seq, lanes, not_nested)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lanes", "Lane assignment (C accelerator).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lanes(void) { return PyModule_Create(&module); }
