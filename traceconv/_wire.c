/* Protobuf wire primitives in C: the optional accelerator of `writers/protowire`.
 *
 * varint(values, mask) -> (matrix, lengths, width): each uint64 as a varint in a row of a
 *     (n, width) byte matrix (unused bytes 0), its length (0 where mask is False);
 * join(pieces) -> (data, offsets): row i of the output is piece 0's bytes of row i, then
 *     piece 1's, …; a piece is (data uint8, start int64, length int64), row i's bytes being
 *     data[start[i] : start[i] + length[i]];
 * arg_annotations(...), span_annotations(...) -> (data, offsets): the `debug_annotations`
 *     fields of each packet's slice, as the numpy encoders in `writers/perfetto` write them
 *     (see there for the arguments).
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

static inline int vlen(uint64_t x) {
    int k = 1;
    while (x >= 0x80) {
        x >>= 7;
        k++;
    }
    return k;
}

/* Writes the varint of x at o (o NULL: only counts); returns the bytes it takes. */
static inline int vput(uint8_t *o, uint64_t x) {
    if (!o) return vlen(x);
    int k = 0;
    while (x >= 0x80) {
        o[k++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    o[k++] = (uint8_t)x;
    return k;
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
        int k = vlen(v[i]);
        len[i] = k;
        if (k > w) w = k;
    }
    mat = PyBytes_FromStringAndSize(NULL, n * w);
    if (!mat) goto done;
    uint8_t *m = (uint8_t *)PyBytes_AS_STRING(mat);
    memset(m, 0, (size_t)PyBytes_GET_SIZE(mat));
    for (Py_ssize_t i = 0; i < n; i++) {
        vput(m + i * w, v[i]);
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

typedef struct {
    const uint8_t *data;
    const int64_t *start, *length;
    int64_t size;
} Run;

static PyObject *join(PyObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t k = PyList_GET_SIZE(list), n = -1;
    Piece *ps = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Piece));
    Run *runs = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Run));
    PyObject *data = NULL, *offsets = NULL, *out = NULL;
    if (!ps || !runs) {
        PyErr_NoMemory();
        goto done;
    }
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
        runs[j] = (Run){ps[j].data.buf, ps[j].start.buf, ps[j].length.buf, ps[j].data.len};
    }
    if (n < 0) n = 0;
    /* piece by piece: every range inside its bytes, and the total */
    int64_t total = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        const Run r = runs[j];
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t l = r.length[i], s = r.start[i];
            if (l && (l < 0 || s < 0 || s > r.size - l)) {
                PyErr_Format(PyExc_ValueError, "join: piece %zd, row %zd: bytes %lld..%lld outside its %zd", j, i, (long long)s,
                             (long long)(s + l), (Py_ssize_t)r.size);
                goto done;
            }
            total += l;
        }
    }
    offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 8);
    data = PyBytes_FromStringAndSize(NULL, total);
    if (!offsets || !data) goto done;
    int64_t *off = (int64_t *)PyBytes_AS_STRING(offsets);
    uint8_t *const base = (uint8_t *)PyBytes_AS_STRING(data), *o = base, *const end = base + total;
    Py_BEGIN_ALLOW_THREADS;
    /* row by row; short ranges (most: tags, varints) as one 16-byte copy where both sides
     * have the room, which spares a length-dependent loop */
    for (Py_ssize_t i = 0; i < n; i++) {
        off[i] = o - base;
        for (Py_ssize_t j = 0; j < k; j++) {
            int64_t l = runs[j].length[i];
            if (!l) continue;
            int64_t s = runs[j].start[i];
            const uint8_t *src = runs[j].data + s;
            if (l <= 16 && s <= runs[j].size - 16 && end - o >= 16)
                memcpy(o, src, 16);
            else
                memcpy(o, src, (size_t)l);
            o += l;
        }
    }
    off[n] = total;
    Py_END_ALLOW_THREADS;
    out = PyTuple_Pack(2, data, offsets);
done:
    for (Py_ssize_t j = 0; ps && j < k; j++) {
        if (!ps[j].held) continue;
        PyBuffer_Release(&ps[j].data);
        PyBuffer_Release(&ps[j].start);
        PyBuffer_Release(&ps[j].length);
    }
    PyMem_Free(ps);
    PyMem_Free(runs);
    Py_XDECREF(data);
    Py_XDECREF(offsets);
    return out;
}

/* ---- debug annotations ------------------------------------------------------------------ */

/* An integer column of 1, 2, 4 or 8-byte items (signed; ids are read as their bit pattern). */
typedef struct {
    Py_buffer b;
    Py_ssize_t n;
    int size, held;
} Col;

static int col_get(PyObject *o, Col *c, const char *what) {
    if (PyObject_GetBuffer(o, &c->b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    c->held = 1;
    c->size = (int)c->b.itemsize;
    if ((c->size != 1 && c->size != 2 && c->size != 4 && c->size != 8) || c->b.len % c->size) {
        PyErr_Format(PyExc_ValueError, "%s: not a column of 1, 2, 4 or 8-byte integers", what);
        return -1;
    }
    c->n = c->b.len / c->size;
    return 0;
}

static void col_release(Col *c) {
    if (c->held) PyBuffer_Release(&c->b);
    c->held = 0;
}

static inline int64_t at(const Col *c, Py_ssize_t i) {
    switch (c->size) {
    case 1: return ((const int8_t *)c->b.buf)[i];
    case 2: return ((const int16_t *)c->b.buf)[i];
    case 4: return ((const int32_t *)c->b.buf)[i];
    default: return ((const int64_t *)c->b.buf)[i];
    }
}

/* One annotation: tag(4, LEN) varint(len) tag(1, VARINT) varint(name_iid) value (value_len
 * bytes, written by the caller at the returned position when o is not NULL). */
#define TE_DEBUG_TAG 0x22
#define DA_NAME_IID_TAG 0x08

static inline int64_t annotation_head(uint8_t *o, uint64_t name_iid, int64_t value_len, int64_t *head) {
    int64_t body = 1 + vlen(name_iid) + value_len, k = 0;
    if (o) o[k] = TE_DEBUG_TAG;
    k++;
    k += vput(o ? o + k : NULL, (uint64_t)body);
    if (o) o[k] = DA_NAME_IID_TAG;
    k++;
    k += vput(o ? o + k : NULL, name_iid);
    *head = k;
    return k + value_len;
}

enum { K_STRING = 0, K_INT = 1, K_DOUBLE = 2, K_BOOL = 3, K_JSON = 4, K_UINT = 5 };

typedef struct {
    Col slices, first, count, perm, kind, key, ival, dval, sval, json_codes, json_offsets;
    Py_buffer json_data;
    int has_perm, has_json;
} Args;

/* The value's bytes of arg `row` (written at o unless NULL), or -1 (error set) for a JSON
 * value without its encoding. */
static int64_t arg_value(const Args *a, Py_ssize_t row, uint8_t *o) {
    int64_t kind = at(&a->kind, row);
    uint64_t v, tag; /* (a varint: field 17's is two bytes) */
    switch (kind) {
    case K_STRING: {
        int64_t s = at(&a->sval, row);
        v = (uint64_t)(s > 0 ? s : 0) + 1;
        tag = 17 << 3;
        break;
    }
    case K_INT: v = (uint64_t)((const int64_t *)a->ival.b.buf)[row]; tag = 4 << 3; break;
    case K_UINT: v = (uint64_t)((const int64_t *)a->ival.b.buf)[row]; tag = 3 << 3; break;
    case K_BOOL: v = (uint64_t)((const int64_t *)a->ival.b.buf)[row]; tag = 2 << 3; break;
    case K_DOUBLE:
        if (o) {
            uint64_t bits;
            memcpy(&bits, (const uint8_t *)a->dval.b.buf + 8 * row, 8);
            o[0] = (5 << 3) | 1;
            for (int k = 0; k < 8; k++) o[1 + k] = (uint8_t)(bits >> (8 * k)); /* (fixed64: little-endian) */
        }
        return 9;
    case K_JSON: {
        int64_t code = at(&a->sval, row);
        Py_ssize_t lo = 0, hi = a->has_json ? a->json_codes.n : 0;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (at(&a->json_codes, mid) < code) lo = mid + 1;
            else hi = mid;
        }
        if (!a->has_json || lo >= a->json_codes.n || at(&a->json_codes, lo) != code) {
            PyErr_Format(PyExc_ValueError, "arg_annotations: no encoding for the JSON value of string %lld", (long long)code);
            return -1;
        }
        int64_t b = at(&a->json_offsets, lo), e = at(&a->json_offsets, lo + 1);
        if (b < 0 || e < b || e > a->json_data.len) {
            PyErr_SetString(PyExc_ValueError, "arg_annotations: JSON offsets outside their data");
            return -1;
        }
        if (o) memcpy(o, (const uint8_t *)a->json_data.buf + b, (size_t)(e - b));
        return e - b;
    }
    default: return 0;
    }
    int k = vput(o, tag);
    return k + vput(o ? o + k : NULL, v);
}

/* Writes (o not NULL) or measures the annotations of packet i; -1 on error. */
static int64_t arg_packet(const Args *a, Py_ssize_t i, uint8_t *o) {
    int64_t s = at(&a->slices, i);
    if (s < 0) return 0;
    if (s >= a->first.n || s >= a->count.n) {
        PyErr_Format(PyExc_ValueError, "arg_annotations: slice %lld outside first/count", (long long)s);
        return -1;
    }
    int64_t f = at(&a->first, s), c = at(&a->count, s), total = 0;
    Py_ssize_t limit = a->has_perm ? a->perm.n : a->kind.n;
    if (c > 0 && (f < 0 || f > limit - c)) {
        PyErr_Format(PyExc_ValueError, "arg_annotations: rows %lld..%lld outside the args", (long long)f, (long long)(f + c));
        return -1;
    }
    for (int64_t p = f; p < f + c; p++) {
        int64_t row = a->has_perm ? at(&a->perm, p) : p;
        if (row < 0 || row >= a->kind.n) {
            PyErr_Format(PyExc_ValueError, "arg_annotations: arg row %lld outside the args", (long long)row);
            return -1;
        }
        int64_t value = arg_value(a, row, NULL), head;
        if (value < 0) return -1;
        int64_t key = at(&a->key, row);
        int64_t len = annotation_head(o ? o + total : NULL, (uint64_t)(key + 1), value, &head);
        if (o) arg_value(a, row, o + total + head);
        total += len;
    }
    return total;
}

typedef int64_t (*PacketFn)(const void *ctx, Py_ssize_t i, uint8_t *o);

/* Two passes over n packets: their lengths (offsets), then their bytes. */
static PyObject *encode_packets(const void *ctx, Py_ssize_t n, PacketFn fn) {
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 8), *data = NULL, *out = NULL;
    if (!offsets) return NULL;
    int64_t *off = (int64_t *)PyBytes_AS_STRING(offsets);
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t len = fn(ctx, i, NULL);
        if (len < 0) goto done;
        off[i + 1] = off[i] + len;
    }
    data = PyBytes_FromStringAndSize(NULL, off[n]);
    if (!data) goto done;
    uint8_t *o = (uint8_t *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < n; i++)
        if (off[i + 1] > off[i]) fn(ctx, i, o + off[i]);
    out = PyTuple_Pack(2, data, offsets);
done:
    Py_XDECREF(data);
    Py_DECREF(offsets);
    return out;
}

static int64_t arg_packet_fn(const void *ctx, Py_ssize_t i, uint8_t *o) { return arg_packet((const Args *)ctx, i, o); }

static PyObject *arg_annotations(PyObject *self, PyObject *args) {
    PyObject *o[12];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10],
                          &o[11]))
        return NULL;
    Args a;
    memset(&a, 0, sizeof a);
    PyObject *out = NULL;
    Col *cols[] = {&a.slices, &a.first, &a.count, &a.perm, &a.kind, &a.key, &a.ival, &a.dval, &a.sval, &a.json_codes, &a.json_offsets};
    const char *names[] = {"slices", "first", "count", "perm", "kind", "key", "int_value", "double_value", "string_value", "json_codes",
                           "json_offsets"};
    int json_held = 0;
    for (int j = 0; j < 11; j++) {
        if ((j == 3 || j == 9 || j == 10) && o[j] == Py_None) continue;
        if (col_get(o[j], cols[j], names[j]) < 0) goto done;
    }
    a.has_perm = a.perm.held;
    a.has_json = a.json_codes.held;
    if (a.has_json != a.json_offsets.held || a.has_json != (o[11] != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "arg_annotations: json_codes, json_offsets and json_data go together");
        goto done;
    }
    if (a.has_json) {
        if (get(o[11], &a.json_data, 1, "json_data") < 0) goto done;
        json_held = 1;
        if (a.json_offsets.n != a.json_codes.n + 1) {
            PyErr_SetString(PyExc_ValueError, "arg_annotations: one JSON offset per code, and one more");
            goto done;
        }
    }
    Py_ssize_t m = a.kind.n;
    if (a.key.n != m || a.sval.n != m || a.ival.n != m || a.dval.n != m || a.ival.size != 8 || a.dval.size != 8 ||
        a.first.n != a.count.n) {
        PyErr_SetString(PyExc_ValueError, "arg_annotations: the arg columns differ in length or width");
        goto done;
    }
    out = encode_packets(&a, a.slices.n, arg_packet_fn);
done:
    for (int j = 0; j < 11; j++) col_release(cols[j]);
    if (json_held) PyBuffer_Release(&a.json_data);
    return out;
}

typedef struct {
    Col slices, count, trace_hi, trace_lo, span_id, parent, kind, status;
    uint64_t key_iid[5], kind_base, kind_max, status_base, status_max;
} Spans;

static const char HEXDIGITS[] = "0123456789abcdef";

static inline void hex16(uint8_t *o, uint64_t x) {
    for (int k = 15; k >= 0; k--) {
        o[k] = (uint8_t)HEXDIGITS[x & 15];
        x >>= 4;
    }
}

/* A string annotation of `ids` (1 or 2) uint64s as hex text. */
static int64_t hex_annotation(uint8_t *o, uint64_t name_iid, const uint64_t *ids, int count) {
    int64_t head, text = 16 * count;
    int64_t len = annotation_head(o, name_iid, 2 + text, &head);
    if (o) {
        o[head] = (6 << 3) | 2;
        o[head + 1] = (uint8_t)text;
        for (int k = 0; k < count; k++) hex16(o + head + 2 + 16 * k, ids[k]);
    }
    return len;
}

static int64_t iid_annotation(uint8_t *o, uint64_t name_iid, uint64_t iid) {
    int64_t head;
    int tag = vlen(17 << 3);
    int64_t len = annotation_head(o, name_iid, tag + vlen(iid), &head);
    if (o) {
        vput(o + head, 17 << 3);
        vput(o + head + tag, iid);
    }
    return len;
}

static inline uint64_t clip(int64_t v, uint64_t max) { return v < 0 ? 0 : (uint64_t)v > max ? max : (uint64_t)v; }

static int64_t span_packet(const void *ctx, Py_ssize_t i, uint8_t *o) {
    const Spans *sp = ctx;
    int64_t s = at(&sp->slices, i);
    if (s < 0) return 0;
    if (s >= sp->count.n) {
        PyErr_Format(PyExc_ValueError, "span_annotations: slice %lld outside the spans", (long long)s);
        return -1;
    }
    if (!at(&sp->count, s)) return 0;
    uint64_t ids[2] = {(uint64_t)at(&sp->trace_hi, s), (uint64_t)at(&sp->trace_lo, s)};
    int64_t k = hex_annotation(o, sp->key_iid[0], ids, 2);
    ids[0] = (uint64_t)at(&sp->span_id, s);
    k += hex_annotation(o ? o + k : NULL, sp->key_iid[1], ids, 1);
    ids[0] = (uint64_t)at(&sp->parent, s);
    if (ids[0]) k += hex_annotation(o ? o + k : NULL, sp->key_iid[2], ids, 1);
    k += iid_annotation(o ? o + k : NULL, sp->key_iid[3], sp->kind_base + clip(at(&sp->kind, s), sp->kind_max));
    int64_t status = at(&sp->status, s);
    if (status) k += iid_annotation(o ? o + k : NULL, sp->key_iid[4], sp->status_base + clip(status, sp->status_max));
    return k;
}

static PyObject *span_annotations(PyObject *self, PyObject *args) {
    PyObject *o[8];
    Spans sp;
    memset(&sp, 0, sizeof sp);
    unsigned long long key[5], kb, km, sb, sm;
    if (!PyArg_ParseTuple(args, "OOOOOOOO(KKKKK)KKKK", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &key[0], &key[1],
                          &key[2], &key[3], &key[4], &kb, &km, &sb, &sm))
        return NULL;
    for (int j = 0; j < 5; j++) sp.key_iid[j] = key[j];
    sp.kind_base = kb, sp.kind_max = km, sp.status_base = sb, sp.status_max = sm;
    Col *cols[] = {&sp.slices, &sp.count, &sp.trace_hi, &sp.trace_lo, &sp.span_id, &sp.parent, &sp.kind, &sp.status};
    const char *names[] = {"slices", "count", "trace_id_hi", "trace_id_lo", "span_id", "parent_span_id", "span_kind", "status_code"};
    PyObject *out = NULL;
    for (int j = 0; j < 8; j++)
        if (col_get(o[j], cols[j], names[j]) < 0) goto done;
    for (int j = 2; j < 8; j++)
        if (cols[j]->n != sp.count.n) {
            PyErr_Format(PyExc_ValueError, "span_annotations: %s: one per span", names[j]);
            goto done;
        }
    out = encode_packets(&sp, sp.slices.n, span_packet);
done:
    for (int j = 0; j < 8; j++) col_release(cols[j]);
    return out;
}

static PyMethodDef methods[] = {
    {"varint", varint, METH_VARARGS, "varint(values uint64, mask bool or None) -> (matrix bytes, lengths int64 bytes, width)"},
    {"join", join, METH_VARARGS, "join([(data, start, length), ...]) -> (data bytes, offsets int64 bytes)"},
    {"arg_annotations", arg_annotations, METH_VARARGS,
     "arg_annotations(slices, first, count, perm, kind, key, int_value, double_value, string_value, json_codes, json_offsets, "
     "json_data) -> (data bytes, offsets int64 bytes)"},
    {"span_annotations", span_annotations, METH_VARARGS,
     "span_annotations(slices, count, trace_id_hi, trace_id_lo, span_id, parent_span_id, span_kind, status_code, key_iids, "
     "kind_base, kind_max, status_base, status_max) -> (data bytes, offsets int64 bytes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wire", "Protobuf wire primitives (C accelerator).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__wire(void) { return PyModule_Create(&module); }
