/* Protobuf wire primitives in C: the optional accelerator of `writers/protowire`.
 *
 * varint(values, mask) -> (matrix, lengths, width): each uint64 as a varint in a row of a
 *     (n, width) byte matrix (unused bytes 0), its length (0 where mask is False);
 * join(pieces) -> (data, offsets): row i of the output is piece 0's bytes of row i, then
 *     piece 1's, …; a piece is (data uint8, start int64, length int64), row i's bytes being
 *     data[start[i] : start[i] + length[i]].
 *
 * The numpy versions in `protowire` compute the same bytes; tests hold them to it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int get(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->len % itemsize) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "%s: not a whole number of %zd-byte items", what, itemsize);
        return -1;
    }
    return 0;
}

static PyObject *varint(PyObject *self, PyObject *args) {
    PyObject *values_o, *mask_o;
    if (!PyArg_ParseTuple(args, "OO", &values_o, &mask_o)) return NULL;
    Py_buffer vb, mb = {0};
    if (get(values_o, &vb, 8, "values") < 0) return NULL;
    Py_ssize_t n = vb.len / 8;
    const uint64_t *v = vb.buf;
    const uint8_t *mask = NULL;
    if (mask_o != Py_None) {
        if (get(mask_o, &mb, 1, "mask") < 0) {
            PyBuffer_Release(&vb);
            return NULL;
        }
        if (mb.len != n) {
            PyBuffer_Release(&vb);
            PyBuffer_Release(&mb);
            PyErr_SetString(PyExc_ValueError, "mask: one per value");
            return NULL;
        }
        mask = mb.buf;
    }
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, n * 8), *mat = NULL, *out = NULL;
    if (!lengths) goto done;
    int64_t *len = (int64_t *)PyBytes_AS_STRING(lengths);
    int w = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        int k = 1;
        while (x >= 0x80) {
            x >>= 7;
            k++;
        }
        len[i] = k;
        if (k > w) w = k;
    }
    mat = PyBytes_FromStringAndSize(NULL, n * w);
    if (!mat) goto done;
    uint8_t *m = (uint8_t *)PyBytes_AS_STRING(mat);
    memset(m, 0, (size_t)PyBytes_GET_SIZE(mat));
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        uint8_t *row = m + i * w;
        while (x >= 0x80) {
            *row++ = (uint8_t)(x | 0x80);
            x >>= 7;
        }
        *row = (uint8_t)x;
        if (mask && !mask[i]) len[i] = 0;
    }
    out = Py_BuildValue("(OOi)", mat, lengths, w);
done:
    Py_XDECREF(mat);
    Py_XDECREF(lengths);
    PyBuffer_Release(&vb);
    if (mask) PyBuffer_Release(&mb);
    return out;
}

typedef struct {
    Py_buffer data, start, length;
    int held;
} Piece;

static PyObject *join(PyObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t k = PyList_GET_SIZE(list), n = -1;
    Piece *ps = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Piece));
    PyObject *data = NULL, *offsets = NULL, *out = NULL;
    if (!ps) return PyErr_NoMemory();
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *t = PyList_GET_ITEM(list, j);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3) {
            PyErr_SetString(PyExc_TypeError, "join: pieces are (data, start, length) tuples");
            goto done;
        }
        if (get(PyTuple_GET_ITEM(t, 0), &ps[j].data, 1, "data") < 0) goto done;
        if (get(PyTuple_GET_ITEM(t, 1), &ps[j].start, 8, "start") < 0) {
            PyBuffer_Release(&ps[j].data);
            goto done;
        }
        if (get(PyTuple_GET_ITEM(t, 2), &ps[j].length, 8, "length") < 0) {
            PyBuffer_Release(&ps[j].data);
            PyBuffer_Release(&ps[j].start);
            goto done;
        }
        ps[j].held = 1;
        Py_ssize_t m = ps[j].length.len / 8;
        if (ps[j].start.len / 8 != m || (n >= 0 && m != n)) {
            PyErr_SetString(PyExc_ValueError, "join: every piece has one start and one length per row");
            goto done;
        }
        n = m;
    }
    if (n < 0) n = 0;
    offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 8);
    if (!offsets) goto done;
    int64_t *off = (int64_t *)PyBytes_AS_STRING(offsets);
    int64_t total = 0;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t j = 0; j < k; j++) {
            int64_t l = ((const int64_t *)ps[j].length.buf)[i];
            if (!l) continue;
            int64_t s = ((const int64_t *)ps[j].start.buf)[i];
            if (l < 0 || s < 0 || s > ps[j].data.len - l) {
                PyErr_Format(PyExc_ValueError, "join: piece %zd, row %zd: bytes %lld..%lld outside its %zd", j, i, (long long)s,
                             (long long)(s + l), ps[j].data.len);
                goto done;
            }
            total += l;
        }
        off[i + 1] = total;
    }
    data = PyBytes_FromStringAndSize(NULL, total);
    if (!data) goto done;
    uint8_t *o = (uint8_t *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t j = 0; j < k; j++) {
            int64_t l = ((const int64_t *)ps[j].length.buf)[i];
            if (!l) continue;
            const uint8_t *src = (const uint8_t *)ps[j].data.buf + ((const int64_t *)ps[j].start.buf)[i];
            if (l <= 16) {
                for (int64_t b = 0; b < l; b++) o[b] = src[b];
            } else {
                memcpy(o, src, (size_t)l);
            }
            o += l;
        }
    }
    out = PyTuple_Pack(2, data, offsets);
done:
    for (Py_ssize_t j = 0; j < k; j++) {
        if (!ps[j].held) continue;
        PyBuffer_Release(&ps[j].data);
        PyBuffer_Release(&ps[j].start);
        PyBuffer_Release(&ps[j].length);
    }
    PyMem_Free(ps);
    Py_XDECREF(data);
    Py_XDECREF(offsets);
    return out;
}

static PyMethodDef methods[] = {
    {"varint", varint, METH_VARARGS, "varint(values uint64, mask bool or None) -> (matrix bytes, lengths int64 bytes, width)"},
    {"join", join, METH_VARARGS, "join([(data, start, length), ...]) -> (data bytes, offsets int64 bytes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wire", "Protobuf wire primitives (C accelerator).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__wire(void) { return PyModule_Create(&module); }
