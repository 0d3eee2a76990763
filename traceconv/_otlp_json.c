/* OTLP/JSON Lines → span columns, in C: the optional accelerator of `readers/otel_columns`.
 *
 * `scan(texts, arrays)` parses a batch of JSON lines (each one `TracesData` document; or, with
 * `arrays`, JSON arrays of them) without the GIL; `finish(scan, pools, fixed_keys, value_cb,
 * resource_cb, kvs_cb, add_resources)` then, with the GIL, hands what needs Python to the
 * callbacks, adds the batch's resources and interns its strings into the trace's string pools
 * (dict str → code, list of str) in exactly the order the Python fast path does, and returns
 * flat columns. `parse(...)` does both. Only what that path accepts is accepted, and exactly
 * what it makes is made; anything else — an id that is not plain hex, a float where an int
 * belongs, a key written with escapes, text that is not UTF-8, a duplicate field — returns None
 * before anything is added or interned, and the caller reads the batch the Python way, which
 * decides. Attribute values other than one plain string / int / double / bool, and the
 * attribute lists of resources, scopes and links, go to the callbacks as raw JSON (msgspec
 * decodes them there).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ---- growable arrays ------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap; /* bytes */
} Vec;

static int vec_grow(Vec *v, Py_ssize_t need) {
    Py_ssize_t cap = v->cap ? v->cap : 1024;
    while (cap < v->len + need) cap *= 2;
    char *d = realloc(v->data, (size_t)cap);
    if (!d) return -1; /* (out of memory: no Python error here, this may run without the GIL) */
    v->data = d;
    v->cap = cap;
    return 0;
}

#define PUSH(v, T, x)                                                                          \
    do {                                                                                       \
        if ((v)->len + (Py_ssize_t)sizeof(T) > (v)->cap && vec_grow((v), sizeof(T)) < 0)       \
            return -1;                                                                         \
        *(T *)((v)->data + (v)->len) = (x);                                                    \
        (v)->len += sizeof(T);                                                                 \
    } while (0)
#define COUNT(v, T) ((v).len / (Py_ssize_t)sizeof(T))
#define AT(v, T, i) (((T *)(v).data)[i])

typedef struct {
    const char *s;
    Py_ssize_t n;
} Str;

/* attribute columns (of spans, or of events) */
typedef struct {
    Vec owner; /* int64 */
    Vec key;   /* Str */
    Vec kind;  /* int8 */
    Vec ival;  /* int64 */
    Vec dval;  /* double */
    Vec sval;  /* Str: the text to intern (pass 0/1) */
    Vec obj;   /* PyObject*: the text as a str, from value_cb (else NULL) */
    Vec pass;  /* int8: 0 interned with string values, 1 after them, -1 not interned */
} Attrs;

/* ArgKind (model/trace.py) */
enum { K_STRING = 0, K_INT = 1, K_DOUBLE = 2, K_BOOL = 3 };

/* work left for `finish` (it needs the GIL): a raw JSON text and where its result goes */
typedef struct {
    Attrs *a;         /* value / double: the attribute columns, */
    Py_ssize_t index; /* its row there (link attributes: the link) */
    Str raw;
} Deferred;

typedef struct {
    const char *p, *end;
    int depth;
    int declined;
    int oom;
    int escaped; /* the last string held escapes */
    PyObject *value_cb, *resource_cb, *kvs_cb;
    Vec d_values, d_doubles, d_scopes, d_links; /* Deferred */
    Vec d_resources;                            /* Str: each resourceSpans' attributes */
    Vec owned; /* char*: unescaped strings */
    Vec objs;  /* PyObject*: references to drop at the end */
    /* spans */
    Vec start, stop, thi, tlo, sid, psid, tstate, flags, dac, dec, dlc; /* int64 / uint64 / Str */
    Vec kind, status;                                                   /* int8 */
    Vec name;                                                           /* Str */
    Vec msg_row, msg;                                                   /* int64, Str */
    Attrs sa, ea;
    /* events */
    Vec ev_owner, ev_ts, ev_name;
    /* links */
    Vec l_owner, l_hi, l_lo, l_sid, l_attr_row, l_attr_obj;
    /* scope groups */
    Vec g_res, g_count, g_cat; /* int64, int64, Str */
} P;

#define DECLINE                                                                                \
    do {                                                                                       \
        ps->declined = 1;                                                                      \
        return -1;                                                                             \
    } while (0)

static inline void skip_ws(P *ps) {
    const char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

static inline int expect(P *ps, char c) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c) DECLINE;
    ps->p++;
    return 0;
}

/* ---- strings ---------------------------------------------------------------------------- */

static int utf8_ok(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else
            return 0;
        if (i + k >= n) return 0;
        for (int j = 1; j <= k; j++) {
            unsigned char d = s[i + j];
            if ((d & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static signed char HEX[256]; /* a hex digit's value, else -1 (filled at import) */

static inline int hexval(char c) { return HEX[(unsigned char)c]; }

static int read_u16(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* a string with escapes, from its first character `s` (after the quote) */
static int parse_escaped(P *ps, const char *s, Str *out) {
    const char *p = s, *end = ps->end, *q = s;
    while (q < end && *q != '"') q += *q == '\\' ? 2 : 1; /* (the closing quote: the text is no longer) */
    if (q >= end) DECLINE;
    char *buf = malloc((size_t)(q - s) + 1);
    if (!buf) {
        ps->oom = 1;
        return -1;
    }
    if (ps->owned.len + (Py_ssize_t)sizeof(char *) > ps->owned.cap && vec_grow(&ps->owned, sizeof(char *)) < 0) {
        free(buf);
        ps->oom = 1;
        return -1;
    }
    *(char **)(ps->owned.data + ps->owned.len) = buf;
    ps->owned.len += sizeof(char *);
    char *o = buf;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            out->s = buf;
            out->n = o - buf;
            if (!utf8_ok((unsigned char *)buf, out->n)) DECLINE;
            ps->p = p + 1;
            ps->escaped = 1;
            return 0;
        }
        if (c < 0x20) DECLINE;
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (p + 1 >= end) DECLINE;
        char e = p[1];
        p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (end - p < 4 || read_u16(p, &cp) < 0) DECLINE;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) DECLINE; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || read_u16(p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    DECLINE;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            DECLINE;
        }
    }
    DECLINE;
}

static int parse_str(P *ps, Str *out) {
    skip_ws(ps);
    const char *p = ps->p, *end = ps->end;
    if (p >= end || *p != '"') DECLINE;
    p++;
    const char *s = p;
    int ascii = 1;
    ps->escaped = 0;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* eight plain bytes at a time: none is '"', '\\', a control character or non-ASCII */
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t special = (((q - ones) & ~q) | ((b - ones) & ~b) | (x - ones * 0x20) | x) & high;
        if (special) { /* (the lowest flag is exact: borrows only run upwards, from a flagged byte) */
            p += __builtin_ctzll(special) >> 3;
            break;
        }
        p += 8;
    }
#endif
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            out->s = s;
            out->n = p - s;
            if (!ascii && !utf8_ok((const unsigned char *)s, out->n)) DECLINE;
            ps->p = p + 1;
            return 0;
        }
        if (c == '\\') return parse_escaped(ps, s, out);
        if (c < 0x20) DECLINE;
        ascii &= c < 0x80;
        p++;
    }
    DECLINE;
}

/* an object key (no escapes: the Python path matches names after unescaping; these decline) */
static int parse_key(P *ps, Str *out) {
    if (parse_str(ps, out) < 0) return -1;
    if (ps->escaped) DECLINE;
    return expect(ps, ':');
}

static inline int is(const Str *k, const char *name) {
    size_t n = strlen(name);
    return (size_t)k->n == n && memcmp(k->s, name, n) == 0;
}

/* ---- numbers ---------------------------------------------------------------------------- */

/* the digits of an int64: "-?[0-9]+", no more (the caller checks what follows) */
static int digits_i64(const char *p, const char *end, int64_t *out, const char **stop) {
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
        p++;
    }
    if (neg ? v > ((uint64_t)1 << 63) : v > (uint64_t)INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *stop = p;
    return 0;
}

/* a JSON integer literal (a float, or one beyond int64, declines) */
static int parse_int(P *ps, int64_t *out) {
    skip_ws(ps);
    const char *p = ps->p, *end = ps->end, *stop;
    const char *d = (p < end && *p == '-') ? p + 1 : p;
    if (d < end && *d == '0' && d + 1 < end && d[1] >= '0' && d[1] <= '9') DECLINE; /* leading zero */
    if (digits_i64(p, end, out, &stop) < 0) DECLINE;
    if (stop < end && (*stop == '.' || *stop == 'e' || *stop == 'E')) DECLINE;
    ps->p = stop;
    return 0;
}

/* an int64 as a JSON integer or a string of decimal digits ("Num") */
static int parse_num(P *ps, int64_t *out) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '"') {
        Str s;
        const char *stop;
        if (parse_str(ps, &s) < 0) return -1;
        if (digits_i64(s.s, s.s + s.n, out, &stop) < 0 || stop != s.s + s.n) DECLINE;
        return 0;
    }
    return parse_int(ps, out);
}

/* the end of a JSON number's text, or NULL; *integral: no fraction, no exponent */
static const char *number_end(const char *p, const char *end, int *integral) {
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9') p++;
    else
        return NULL;
    *integral = 1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
        *integral = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
        *integral = 0;
    }
    return p;
}

/* a double: an integer literal here (as msgspec makes a float of an int: (double)int64, so -0
 * is 0.0); other numbers are checked here and converted by `finish` (*later: their text) */
static int parse_double(P *ps, double *out, Str *later) {
    skip_ws(ps);
    int integral;
    const char *stop = number_end(ps->p, ps->end, &integral);
    if (!stop) DECLINE;
    later->s = NULL;
    if (integral) {
        int64_t v;
        const char *s2;
        if (digits_i64(ps->p, stop, &v, &s2) < 0) DECLINE;
        *out = (double)v;
    } else {
        if (stop - ps->p >= 64) DECLINE;
        later->s = ps->p;
        later->n = stop - ps->p;
        *out = 0;
    }
    ps->p = stop;
    return 0;
}

/* `parse_double`'s text → a finite double, with the GIL (0 ok, 1 declined) */
static int text_to_double(Str t, double *out) {
    char tmp[64];
    memcpy(tmp, t.s, (size_t)t.n);
    tmp[t.n] = 0;
    char *e;
    *out = PyOS_string_to_double(tmp, &e, NULL);
    if (*out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    return (e != tmp + t.n || !isfinite(*out)) ? 1 : 0;
}

static int lit(P *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) DECLINE;
    ps->p += n;
    return 0;
}

/* any JSON value, checked and skipped */
static int skip_value(P *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) DECLINE;
    char c = *ps->p;
    if (c == '"') {
        Str s;
        return parse_str(ps, &s);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (++ps->depth > MAX_DEPTH) DECLINE;
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                Str k;
                if (parse_str(ps, &k) < 0 || expect(ps, ':') < 0) return -1;
            }
            if (skip_value(ps) < 0) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end) DECLINE;
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p != close) DECLINE;
            ps->p++;
            ps->depth--;
            return 0;
        }
    }
    if (c == 't') return lit(ps, "true");
    if (c == 'f') return lit(ps, "false");
    if (c == 'n') return lit(ps, "null");
    int integral;
    const char *stop = number_end(ps->p, ps->end, &integral);
    if (!stop) DECLINE;
    ps->p = stop;
    return 0;
}

static int is_null(P *ps) {
    skip_ws(ps);
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
        ps->p += 4;
        return 1;
    }
    return 0;
}

/* iterate an object's members: `{` then, per member, parse_key and the value, then `,`/`}` */
static int object_open(P *ps, int *empty) {
    if (expect(ps, '{') < 0) return -1;
    skip_ws(ps);
    *empty = ps->p < ps->end && *ps->p == '}';
    if (*empty) ps->p++;
    return 0;
}

/* after a member's value: 1 another member follows, 0 the object (or array) ended */
static int next_member(P *ps, char close) {
    skip_ws(ps);
    if (ps->p >= ps->end) DECLINE;
    if (*ps->p == ',') {
        ps->p++;
        return 1;
    }
    if (*ps->p != close) DECLINE;
    ps->p++;
    return 0;
}

static int array_open(P *ps, int *empty) {
    if (expect(ps, '[') < 0) return -1;
    skip_ws(ps);
    *empty = ps->p < ps->end && *ps->p == ']';
    if (*empty) ps->p++;
    return 0;
}

#define SEEN(bit)                                                                              \
    do {                                                                                       \
        if (seen & (1u << (bit))) DECLINE;                                                     \
        seen |= 1u << (bit);                                                                   \
    } while (0)

/* ---- ids, codes ------------------------------------------------------------------------- */

/* an id of `nbytes` (8 or 16): "" is 0; else exactly 2*nbytes hex digits */
static int parse_id(P *ps, int nbytes, uint64_t *hi, uint64_t *lo) {
    Str s;
    if (parse_str(ps, &s) < 0) return -1;
    *hi = *lo = 0;
    if (s.n == 0) return 0;
    if (s.n != 2 * nbytes) DECLINE;
    uint64_t w[2] = {0, 0};
    for (int i = 0; i < 2 * nbytes; i++) {
        int h = hexval(s.s[i]);
        if (h < 0) DECLINE;
        w[i / 16] = (w[i / 16] << 4) | (uint64_t)h;
    }
    if (nbytes == 16) {
        *hi = w[0];
        *lo = w[1];
    } else {
        *lo = w[0];
    }
    return 0;
}

static const char *KIND_NAMES[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
                                   "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER", NULL};
static const char *STATUS_NAMES[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR", NULL};
static const char *STATUS_SHORT[] = {"UNSET", "OK", "ERROR", NULL};

/* a span kind or status code: an int (0..127, else 0) or its enum name (else 0) */
static int parse_code(P *ps, const char **names, const char **more, int8_t *out) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '"') {
        Str s;
        if (parse_str(ps, &s) < 0) return -1;
        *out = 0;
        for (int i = 0; names[i]; i++)
            if (is(&s, names[i])) *out = (int8_t)i;
        for (int i = 0; more && more[i]; i++)
            if (is(&s, more[i])) *out = (int8_t)i;
        return 0;
    }
    int64_t v;
    if (parse_int(ps, &v) < 0) return -1;
    *out = (v >= 0 && v < 128) ? (int8_t)v : 0;
    return 0;
}

/* ---- attributes ------------------------------------------------------------------------- */

static int defer(P *ps, Vec *v, Attrs *a, Py_ssize_t index, const char *s, Py_ssize_t n) {
    Deferred d = {a, index, {s, n}};
    PUSH(v, Deferred, d);
    return 0;
}

/* an attribute value left to value_cb (in `finish`): placeholders now */
static int defer_value(P *ps, Attrs *a, const char *s, Py_ssize_t n) {
    if (defer(ps, &ps->d_values, a, COUNT(a->kind, int8_t), s, n) < 0) return -1;
    Str none = {NULL, 0};
    PUSH(&a->kind, int8_t, 0);
    PUSH(&a->ival, int64_t, 0);
    PUSH(&a->dval, double, 0);
    PUSH(&a->sval, Str, none);
    PUSH(&a->obj, PyObject *, NULL);
    PUSH(&a->pass, int8_t, -1);
    return 0;
}

/* an AnyValue: one plain stringValue / intValue / doubleValue / boolValue here, anything else
 * through value_cb → (pass, kind, int, double, text or None) */
static int parse_any(P *ps, Attrs *a) {
    skip_ws(ps);
    const char *v0 = ps->p;
    if (ps->p < ps->end && *ps->p == '{') {
        ps->p++;
        skip_ws(ps);
        Str k;
        if (ps->p < ps->end && *ps->p == '"' && parse_str(ps, &k) == 0 && !ps->escaped && expect(ps, ':') == 0) {
            skip_ws(ps);
            char c = ps->p < ps->end ? *ps->p : 0;
            int8_t kind = -1, pass = -1;
            int64_t iv = 0;
            double dv = 0;
            Str sv = {NULL, 0}, later = {NULL, 0};
            if (is(&k, "stringValue") && c == '"') {
                if (parse_str(ps, &sv) < 0) return -1;
                kind = K_STRING;
                pass = 0;
            } else if (is(&k, "intValue") && (c == '"' || c == '-' || (c >= '0' && c <= '9'))) {
                if (parse_num(ps, &iv) < 0) return -1;
                kind = K_INT;
            } else if (is(&k, "doubleValue") && (c == '-' || (c >= '0' && c <= '9'))) {
                if (parse_double(ps, &dv, &later) < 0) return -1;
                kind = K_DOUBLE;
            } else if (is(&k, "boolValue") && (c == 't' || c == 'f')) {
                if (lit(ps, c == 't' ? "true" : "false") < 0) return -1;
                kind = K_BOOL;
                iv = c == 't';
            }
            skip_ws(ps);
            if (kind >= 0 && ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                if (later.s && defer(ps, &ps->d_doubles, a, COUNT(a->kind, int8_t), later.s, later.n) < 0) return -1;
                PUSH(&a->kind, int8_t, kind);
                PUSH(&a->ival, int64_t, iv);
                PUSH(&a->dval, double, dv);
                PUSH(&a->sval, Str, sv);
                PUSH(&a->obj, PyObject *, NULL);
                PUSH(&a->pass, int8_t, pass);
                return 0;
            }
        }
        if (ps->declined || ps->oom) return -1;
        ps->p = v0;
    }
    if (skip_value(ps) < 0) return -1;
    return defer_value(ps, a, v0, ps->p - v0);
}

/* a list of KeyValue, appended to `a` (owner `owner`) */
static int parse_attrs(P *ps, Attrs *a, int64_t owner) {
    int empty;
    if (array_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    do {
        if (object_open(ps, &empty) < 0) return -1;
        Str key = {"", 0};
        int have_value = 0;
        unsigned seen = 0;
        if (!empty) {
            do {
                Str k;
                if (parse_key(ps, &k) < 0) return -1;
                if (is(&k, "key")) {
                    SEEN(0);
                    if (parse_str(ps, &key) < 0) return -1;
                } else if (is(&k, "value")) {
                    SEEN(1);
                    have_value = 1;
                    if (parse_any(ps, a) < 0) return -1;
                } else if (skip_value(ps) < 0)
                    return -1;
            } while (next_member(ps, '}') == 1);
            if (ps->declined) return -1;
        }
        if (!have_value && defer_value(ps, a, "null", 4) < 0) return -1; /* (no value: as null) */
        PUSH(&a->owner, int64_t, owner);
        PUSH(&a->key, Str, key);
    } while (next_member(ps, ']') == 1);
    return ps->declined ? -1 : 0;
}

/* a list of KeyValue left to kvs_cb (in `finish`), into `v` (an empty list: nothing) */
static int raw_attrs(P *ps, Vec *v, Py_ssize_t index) {
    skip_ws(ps);
    const char *v0 = ps->p;
    int empty;
    if (array_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    ps->p = v0;
    if (skip_value(ps) < 0) return -1;
    return defer(ps, v, NULL, index, v0, ps->p - v0);
}

static int keep_obj(P *ps, PyObject *o) {
    if (ps->objs.len + (Py_ssize_t)sizeof(PyObject *) > ps->objs.cap && vec_grow(&ps->objs, sizeof(PyObject *)) < 0) {
        Py_DECREF(o);
        PyErr_NoMemory();
        return -1;
    }
    *(PyObject **)(ps->objs.data + ps->objs.len) = o;
    ps->objs.len += sizeof(PyObject *);
    return 0;
}

/* ---- structs ------------------------------------------------------------------------------ */

/* a JSON array, each item read by `item(ps, arg)` */
static int parse_list(P *ps, int (*item)(P *, int64_t), int64_t arg) {
    int empty;
    if (array_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    do {
        if (item(ps, arg) < 0) return -1;
    } while (next_member(ps, ']') == 1);
    return ps->declined ? -1 : 0;
}

static int parse_event(P *ps, int64_t row) {
    int empty;
    int64_t ev = COUNT(ps->ev_ts, int64_t);
    int64_t ts = 0;
    Str name = {"", 0};
    unsigned seen = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (!empty) {
        do {
            Str k;
            int64_t dummy;
            if (parse_key(ps, &k) < 0) return -1;
            if (is(&k, "timeUnixNano")) {
                SEEN(0);
                if (parse_num(ps, &ts) < 0) return -1;
                if (ts < 0) DECLINE;
            } else if (is(&k, "name")) {
                SEEN(1);
                if (parse_str(ps, &name) < 0) return -1;
            } else if (is(&k, "attributes")) {
                SEEN(2);
                if (parse_attrs(ps, &ps->ea, ev) < 0) return -1;
            } else if (is(&k, "droppedAttributesCount")) {
                SEEN(3);
                if (parse_int(ps, &dummy) < 0) return -1;
            } else if (skip_value(ps) < 0)
                return -1;
        } while (next_member(ps, '}') == 1);
        if (ps->declined) return -1;
    }
    PUSH(&ps->ev_owner, int64_t, row);
    PUSH(&ps->ev_ts, int64_t, ts);
    PUSH(&ps->ev_name, Str, name);
    return 0;
}

static int parse_link(P *ps, int64_t row) {
    int empty;
    uint64_t hi = 0, lo = 0, shi, sid = 0;
    unsigned seen = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (!empty) {
        do {
            Str k, s;
            int64_t dummy;
            if (parse_key(ps, &k) < 0) return -1;
            if (is(&k, "traceId")) {
                SEEN(0);
                if (parse_id(ps, 16, &hi, &lo) < 0) return -1;
            } else if (is(&k, "spanId")) {
                SEEN(1);
                if (parse_id(ps, 8, &shi, &sid) < 0) return -1;
            } else if (is(&k, "traceState")) {
                SEEN(2);
                if (parse_str(ps, &s) < 0) return -1;
            } else if (is(&k, "attributes")) {
                SEEN(3);
                if (raw_attrs(ps, &ps->d_links, COUNT(ps->l_hi, uint64_t)) < 0) return -1;
            } else if (is(&k, "droppedAttributesCount")) {
                SEEN(4);
                if (parse_int(ps, &dummy) < 0) return -1;
            } else if (is(&k, "flags")) {
                SEEN(5);
                if (parse_int(ps, &dummy) < 0) return -1;
            } else if (skip_value(ps) < 0)
                return -1;
        } while (next_member(ps, '}') == 1);
        if (ps->declined) return -1;
    }
    PUSH(&ps->l_owner, int64_t, row);
    PUSH(&ps->l_hi, uint64_t, hi);
    PUSH(&ps->l_lo, uint64_t, lo);
    PUSH(&ps->l_sid, uint64_t, sid);
    return 0;
}

static int parse_status(P *ps, int8_t *code, Str *msg) {
    int empty;
    unsigned seen = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    do {
        Str k;
        if (parse_key(ps, &k) < 0) return -1;
        if (is(&k, "code")) {
            SEEN(0);
            if (parse_code(ps, STATUS_NAMES, STATUS_SHORT, code) < 0) return -1;
        } else if (is(&k, "message")) {
            SEEN(1);
            if (parse_str(ps, msg) < 0) return -1;
        } else if (skip_value(ps) < 0)
            return -1;
    } while (next_member(ps, '}') == 1);
    return ps->declined ? -1 : 0;
}

static int parse_span(P *ps, int64_t unused) {
    int empty;
    int64_t row = COUNT(ps->start, int64_t);
    int64_t start = 0, stop = 0, flags = 0, dac = 0, dec = 0, dlc = 0;
    uint64_t thi = 0, tlo = 0, hi_unused, sid = 0, psid = 0;
    int8_t kind = 0, status = 0;
    Str name = {"", 0}, tstate = {"", 0}, msg = {"", 0};
    unsigned seen = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (!empty) {
        do {
            Str k;
            int e;
            if (parse_key(ps, &k) < 0) return -1;
            switch (k.n ? k.s[0] : 0) {
            case 't':
                if (is(&k, "traceId")) {
                    SEEN(0);
                    e = parse_id(ps, 16, &thi, &tlo);
                } else if (is(&k, "traceState")) {
                    SEEN(1);
                    e = parse_str(ps, &tstate);
                } else
                    e = skip_value(ps);
                break;
            case 's':
                if (is(&k, "spanId")) {
                    SEEN(2);
                    e = parse_id(ps, 8, &hi_unused, &sid);
                } else if (is(&k, "startTimeUnixNano")) {
                    SEEN(3);
                    e = parse_num(ps, &start);
                } else if (is(&k, "status")) {
                    SEEN(4);
                    e = is_null(ps) ? 0 : parse_status(ps, &status, &msg);
                } else
                    e = skip_value(ps);
                break;
            case 'p':
                if (is(&k, "parentSpanId")) {
                    SEEN(5);
                    e = parse_id(ps, 8, &hi_unused, &psid);
                } else
                    e = skip_value(ps);
                break;
            case 'n':
                if (is(&k, "name")) {
                    SEEN(6);
                    e = parse_str(ps, &name);
                } else
                    e = skip_value(ps);
                break;
            case 'k':
                if (is(&k, "kind")) {
                    SEEN(7);
                    e = parse_code(ps, KIND_NAMES, NULL, &kind);
                } else
                    e = skip_value(ps);
                break;
            case 'e':
                if (is(&k, "endTimeUnixNano")) {
                    SEEN(8);
                    e = parse_num(ps, &stop);
                } else if (is(&k, "events")) {
                    SEEN(9);
                    e = parse_list(ps, parse_event, row);
                } else
                    e = skip_value(ps);
                break;
            case 'a':
                if (is(&k, "attributes")) {
                    SEEN(10);
                    e = parse_attrs(ps, &ps->sa, row);
                } else
                    e = skip_value(ps);
                break;
            case 'd':
                if (is(&k, "droppedAttributesCount")) {
                    SEEN(11);
                    e = parse_int(ps, &dac);
                } else if (is(&k, "droppedEventsCount")) {
                    SEEN(12);
                    e = parse_int(ps, &dec);
                } else if (is(&k, "droppedLinksCount")) {
                    SEEN(13);
                    e = parse_int(ps, &dlc);
                } else
                    e = skip_value(ps);
                break;
            case 'l':
                if (is(&k, "links")) {
                    SEEN(14);
                    e = parse_list(ps, parse_link, row);
                } else
                    e = skip_value(ps);
                break;
            case 'f':
                if (is(&k, "flags")) {
                    SEEN(15);
                    e = parse_int(ps, &flags);
                } else
                    e = skip_value(ps);
                break;
            default:
                e = skip_value(ps);
            }
            if (e < 0) return -1;
        } while (next_member(ps, '}') == 1);
        if (ps->declined) return -1;
    }
    if (start < 0 || stop < 0) DECLINE; /* (the Python path declines a time it would skip) */
    PUSH(&ps->start, int64_t, start);
    PUSH(&ps->stop, int64_t, stop);
    PUSH(&ps->thi, uint64_t, thi);
    PUSH(&ps->tlo, uint64_t, tlo);
    PUSH(&ps->sid, uint64_t, sid);
    PUSH(&ps->psid, uint64_t, psid);
    PUSH(&ps->kind, int8_t, kind);
    PUSH(&ps->status, int8_t, status);
    PUSH(&ps->name, Str, name);
    PUSH(&ps->tstate, Str, tstate);
    PUSH(&ps->flags, int64_t, flags);
    PUSH(&ps->dac, int64_t, dac);
    PUSH(&ps->dec, int64_t, dec);
    PUSH(&ps->dlc, int64_t, dlc);
    if (msg.n) {
        PUSH(&ps->msg_row, int64_t, row);
        PUSH(&ps->msg, Str, msg);
    }
    return 0;
}

/* a Scope: its name (*has: present), attributes checked through kvs_cb */
static int parse_scope(P *ps, Str *name, int *has) {
    int empty;
    unsigned seen = 0;
    if (is_null(ps)) return 0;
    *has = 1;
    if (object_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    do {
        Str k, s;
        if (parse_key(ps, &k) < 0) return -1;
        if (is(&k, "name")) {
            SEEN(0);
            if (parse_str(ps, name) < 0) return -1;
        } else if (is(&k, "version")) {
            SEEN(1);
            if (parse_str(ps, &s) < 0) return -1;
        } else if (is(&k, "attributes")) {
            SEEN(2);
            if (raw_attrs(ps, &ps->d_scopes, 0) < 0) return -1;
        } else if (skip_value(ps) < 0)
            return -1;
    } while (next_member(ps, '}') == 1);
    return ps->declined ? -1 : 0;
}

/* one ScopeSpans: a group (its resource is filled in by the caller) */
static int parse_scope_spans(P *ps) {
    int empty, has_scope = 0, has_il = 0;
    Str scope = {"", 0}, il = {"", 0};
    unsigned seen = 0;
    int64_t first = COUNT(ps->start, int64_t);
    if (object_open(ps, &empty) < 0) return -1;
    if (!empty) {
        do {
            Str k, s;
            if (parse_key(ps, &k) < 0) return -1;
            if (is(&k, "scope")) {
                SEEN(0);
                if (parse_scope(ps, &scope, &has_scope) < 0) return -1;
            } else if (is(&k, "instrumentationLibrary")) {
                SEEN(1);
                if (parse_scope(ps, &il, &has_il) < 0) return -1;
            } else if (is(&k, "spans")) {
                SEEN(2);
                if (parse_list(ps, parse_span, 0) < 0) return -1;
            } else if (is(&k, "schemaUrl")) {
                SEEN(3);
                if (parse_str(ps, &s) < 0) return -1;
            } else if (skip_value(ps) < 0)
                return -1;
        } while (next_member(ps, '}') == 1);
        if (ps->declined) return -1;
    }
    Str cat = has_scope ? scope : (has_il ? il : (Str){"", 0});
    if (cat.n == 0) cat = (Str){"otel", 4};
    PUSH(&ps->g_res, int64_t, -1);
    PUSH(&ps->g_count, int64_t, COUNT(ps->start, int64_t) - first);
    PUSH(&ps->g_cat, Str, cat);
    return 0;
}

static int parse_resource_spans(P *ps, int64_t unused) {
    int empty;
    unsigned seen = 0;
    int64_t g0 = COUNT(ps->g_res, int64_t);
    int lists = 0; /* non-empty scopeSpans / instrumentationLibrarySpans */
    const char *res_raw = NULL;
    Py_ssize_t res_len = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (!empty) {
        do {
            Str k, s;
            if (parse_key(ps, &k) < 0) return -1;
            if (is(&k, "resource")) {
                SEEN(0);
                if (!is_null(ps)) {
                    int e2;
                    unsigned seen2 = 0;
                    if (object_open(ps, &e2) < 0) return -1;
                    if (!e2) {
                        do {
                            Str k2;
                            int64_t dummy;
                            if (parse_key(ps, &k2) < 0) return -1;
                            if (is(&k2, "attributes")) {
                                if (seen2 & 1) DECLINE;
                                seen2 |= 1;
                                skip_ws(ps);
                                res_raw = ps->p;
                                if (ps->p >= ps->end || *ps->p != '[') DECLINE;
                                if (skip_value(ps) < 0) return -1;
                                res_len = ps->p - res_raw;
                            } else if (is(&k2, "droppedAttributesCount")) {
                                if (seen2 & 2) DECLINE;
                                seen2 |= 2;
                                if (parse_int(ps, &dummy) < 0) return -1;
                            } else if (skip_value(ps) < 0)
                                return -1;
                        } while (next_member(ps, '}') == 1);
                        if (ps->declined) return -1;
                    }
                }
            } else if (is(&k, "scopeSpans") || is(&k, "instrumentationLibrarySpans")) {
                SEEN(is(&k, "scopeSpans") ? 1 : 2);
                if (array_open(ps, &empty) < 0) return -1;
                if (!empty) {
                    lists++;
                    do {
                        if (parse_scope_spans(ps) < 0) return -1;
                    } while (next_member(ps, ']') == 1);
                    if (ps->declined) return -1;
                }
            } else if (is(&k, "schemaUrl")) {
                SEEN(3);
                if (parse_str(ps, &s) < 0) return -1;
            } else if (skip_value(ps) < 0)
                return -1;
        } while (next_member(ps, '}') == 1);
        if (ps->declined) return -1;
    }
    if (lists > 1) DECLINE; /* (both lists: the Python path reads only scopeSpans) */
    Str raw = res_raw ? (Str){res_raw, res_len} : (Str){"[]", 2};
    PUSH(&ps->d_resources, Str, raw);
    int64_t res = COUNT(ps->d_resources, Str) - 1; /* (an index among the batch's resources until `finish`) */
    for (int64_t g = g0; g < COUNT(ps->g_res, int64_t); g++) AT(ps->g_res, int64_t, g) = res;
    return 0;
}

static int parse_document(P *ps) {
    int empty, found = 0;
    unsigned seen = 0;
    if (object_open(ps, &empty) < 0) return -1;
    if (empty) DECLINE; /* (neither resourceSpans nor batches) */
    do {
        Str k;
        if (parse_key(ps, &k) < 0) return -1;
        if (is(&k, "resourceSpans") || is(&k, "batches")) {
            SEEN(is(&k, "batches"));
            if (is_null(ps)) continue;
            found = 1;
            if (parse_list(ps, parse_resource_spans, 0) < 0) return -1;
        } else if (skip_value(ps) < 0)
            return -1;
    } while (next_member(ps, '}') == 1);
    if (ps->declined) return -1;
    if (!found || seen == 3) DECLINE; /* (both: `resourceSpans or batches` is the Python path's) */
    return 0;
}

/* a JSON array of documents (a run of a JSON-array dump, as the block scanner cuts it) */
static int parse_documents(P *ps) {
    int empty;
    if (array_open(ps, &empty) < 0) return -1;
    if (empty) return 0;
    do {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '{') DECLINE;
        if (parse_document(ps) < 0) return -1;
    } while (next_member(ps, ']') == 1);
    return ps->declined ? -1 : 0;
}

/* ---- interning and results ------------------------------------------------------------------ */

typedef struct {
    PyObject *codes;  /* dict str → int */
    PyObject *values; /* list of str */
} Pool;

static int32_t intern_obj(Pool *pool, PyObject *u) {
    PyObject *c = PyDict_GetItemWithError(pool->codes, u);
    if (c) return (int32_t)PyLong_AsLong(c);
    if (PyErr_Occurred()) return -2;
    Py_ssize_t code = PyList_GET_SIZE(pool->values);
    PyObject *num = PyLong_FromSsize_t(code);
    if (!num) return -2;
    if (PyList_Append(pool->values, u) < 0) {
        Py_DECREF(num);
        return -2;
    }
    int bad = PyDict_SetItem(pool->codes, u, num) < 0;
    Py_DECREF(num);
    if (bad) { /* (the pool's list and dict stay in step) */
        PyList_SetSlice(pool->values, code, code + 1, NULL);
        return -2;
    }
    return (int32_t)code;
}

/* a small open-addressing cache of the batch's strings → codes, so a repeated string is
 * looked up without making a str */
typedef struct {
    Str *keys;
    int32_t *codes;
    Py_ssize_t cap, used;
} Cache;

static uint64_t hash_bytes(const char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (uint64_t)n;
}

static int cache_init(Cache *c) {
    c->cap = 1024;
    c->used = 0;
    c->keys = calloc((size_t)c->cap, sizeof(Str));
    c->codes = malloc((size_t)c->cap * sizeof(int32_t));
    if (!c->keys || !c->codes) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void cache_free(Cache *c) {
    free(c->keys);
    free(c->codes);
}

static int cache_grow(Cache *c) {
    Cache n = {calloc((size_t)c->cap * 2, sizeof(Str)), malloc((size_t)c->cap * 2 * sizeof(int32_t)), c->cap * 2, c->used};
    if (!n.keys || !n.codes) {
        free(n.keys);
        free(n.codes);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < c->cap; i++) {
        if (!c->keys[i].s) continue;
        Py_ssize_t j = (Py_ssize_t)(hash_bytes(c->keys[i].s, c->keys[i].n) & (uint64_t)(n.cap - 1));
        while (n.keys[j].s) j = (j + 1) & (n.cap - 1);
        n.keys[j] = c->keys[i];
        n.codes[j] = c->codes[i];
    }
    cache_free(c);
    *c = n;
    return 0;
}

static int32_t intern_str(Pool *pool, Cache *c, Str s) {
    if (!s.s) s.s = ""; /* (a key-less cell is "") */
    Py_ssize_t j = (Py_ssize_t)(hash_bytes(s.s, s.n) & (uint64_t)(c->cap - 1));
    while (c->keys[j].s) {
        if (c->keys[j].n == s.n && memcmp(c->keys[j].s, s.s, (size_t)s.n) == 0) return c->codes[j];
        j = (j + 1) & (c->cap - 1);
    }
    PyObject *u = PyUnicode_DecodeUTF8(s.s, s.n, NULL);
    if (!u) return -2;
    int32_t code = intern_obj(pool, u);
    Py_DECREF(u);
    if (code < 0) return -2;
    c->keys[j] = s;
    c->codes[j] = code;
    if (++c->used * 2 > c->cap && cache_grow(c) < 0) return -2;
    return code;
}

/* codes of the Strs in `v` into `out` (int32) */
static int intern_all(Pool *pool, Cache *c, Vec *v, Vec *out) {
    Py_ssize_t n = COUNT(*v, Str);
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t code = intern_str(pool, c, AT(*v, Str, i));
        if (code < 0) return -1;
        PUSH(out, int32_t, code);
    }
    return 0;
}

/* string codes of an Attrs' values of one pass, into `str` (int32, -1 prefilled) */
static int intern_pass(Pool *pool, Cache *c, Attrs *a, int8_t pass, int32_t *str) {
    Py_ssize_t n = COUNT(a->kind, int8_t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (AT(a->pass, int8_t, i) != pass) continue;
        PyObject *o = AT(a->obj, PyObject *, i);
        int32_t code = o ? intern_obj(pool, o) : intern_str(pool, c, AT(a->sval, Str, i));
        if (code < 0) return -1;
        str[i] = code;
    }
    return 0;
}

static PyObject *vec_bytes(Vec *v) { return PyBytes_FromStringAndSize(v->data ? v->data : "", v->len); }

static int put(PyObject *d, const char *name, PyObject *o) {
    if (!o) return -1;
    int r = PyDict_SetItemString(d, name, o);
    Py_DECREF(o);
    return r;
}

static void attrs_free(Attrs *a) {
    Vec *vs[] = {&a->owner, &a->key, &a->kind, &a->ival, &a->dval, &a->sval, &a->obj, &a->pass};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) free(vs[i]->data);
}

static void ps_free(P *ps) {
    for (Py_ssize_t i = 0; i < COUNT(ps->owned, char *); i++) free(AT(ps->owned, char *, i));
    for (Py_ssize_t i = 0; i < COUNT(ps->objs, PyObject *); i++) Py_DECREF(AT(ps->objs, PyObject *, i));
    Vec *vs[] = {&ps->owned, &ps->objs, &ps->start, &ps->stop, &ps->thi, &ps->tlo, &ps->sid, &ps->psid, &ps->tstate,
                 &ps->flags, &ps->dac, &ps->dec, &ps->dlc, &ps->kind, &ps->status, &ps->name, &ps->msg_row, &ps->msg,
                 &ps->ev_owner, &ps->ev_ts, &ps->ev_name, &ps->l_owner, &ps->l_hi, &ps->l_lo, &ps->l_sid,
                 &ps->l_attr_row, &ps->l_attr_obj, &ps->g_res, &ps->g_count, &ps->g_cat, &ps->d_values,
                 &ps->d_doubles, &ps->d_scopes, &ps->d_links, &ps->d_resources};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) free(vs[i]->data);
    attrs_free(&ps->sa);
    attrs_free(&ps->ea);
}

/* the attribute columns as a dict of bytes, string codes interned already into `str` */
static PyObject *attrs_dict(Attrs *a, Vec *key, Vec *str) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    if (put(d, "owner", vec_bytes(&a->owner)) < 0 || put(d, "key", vec_bytes(key)) < 0 || put(d, "kind", vec_bytes(&a->kind)) < 0 ||
        put(d, "int", vec_bytes(&a->ival)) < 0 || put(d, "dbl", vec_bytes(&a->dval)) < 0 || put(d, "str", vec_bytes(str)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static int fill_minus_one(Vec *v, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) PUSH(v, int32_t, -1);
    return 0;
}

static PyObject *results(P *ps, Pool *names, Pool *keys, Pool *strs, PyObject *fixed_keys) {
    PyObject *out = NULL, *d = NULL;
    Vec name_codes = {0}, ev_name_codes = {0}, skey = {0}, ekey = {0}, sstr = {0}, estr = {0}, tcodes = {0};
    Cache cn = {0}, ck = {0}, cs = {0};
    if (cache_init(&cn) < 0 || cache_init(&ck) < 0 || cache_init(&cs) < 0) goto done;
    /* names: span names, then event names */
    if (intern_all(names, &cn, &ps->name, &name_codes) < 0 || intern_all(names, &cn, &ps->ev_name, &ev_name_codes) < 0) goto done;
    /* keys: span attribute keys, the fixed keys of the span fields, event attribute keys */
    if (intern_all(keys, &ck, &ps->sa.key, &skey) < 0) goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fixed_keys); i++)
        if (intern_obj(keys, PyTuple_GET_ITEM(fixed_keys, i)) < 0) goto done;
    if (intern_all(keys, &ck, &ps->ea.key, &ekey) < 0) goto done;
    /* string values: span attributes' strings, then their bytes/JSON texts, trace states,
     * event attributes' strings, then theirs */
    Py_ssize_t ns = COUNT(ps->sa.kind, int8_t), ne = COUNT(ps->ea.kind, int8_t), nspans = COUNT(ps->start, int64_t);
    if (fill_minus_one(&sstr, ns) < 0 || fill_minus_one(&estr, ne) < 0 || fill_minus_one(&tcodes, nspans) < 0) goto done;
    if (intern_pass(strs, &cs, &ps->sa, 0, (int32_t *)sstr.data) < 0 || intern_pass(strs, &cs, &ps->sa, 1, (int32_t *)sstr.data) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < nspans; i++) {
        Str t = AT(ps->tstate, Str, i);
        if (!t.n) continue;
        int32_t code = intern_str(strs, &cs, t);
        if (code < 0) goto done;
        AT(tcodes, int32_t, i) = code;
    }
    if (intern_pass(strs, &cs, &ps->ea, 0, (int32_t *)estr.data) < 0 || intern_pass(strs, &cs, &ps->ea, 1, (int32_t *)estr.data) < 0)
        goto done;

    d = PyDict_New();
    if (!d) goto done;
    struct {
        const char *name;
        Vec *v;
    } cols[] = {{"start", &ps->start}, {"end", &ps->stop}, {"trace_hi", &ps->thi}, {"trace_lo", &ps->tlo}, {"span_id", &ps->sid},
                {"parent_span_id", &ps->psid}, {"kind", &ps->kind}, {"status", &ps->status}, {"name", &name_codes},
                {"trace_state", &tcodes}, {"flags", &ps->flags}, {"dropped_attributes", &ps->dac}, {"dropped_events", &ps->dec},
                {"dropped_links", &ps->dlc}, {"ev_span", &ps->ev_owner}, {"ev_ts", &ps->ev_ts}, {"ev_name", &ev_name_codes},
                {"l_row", &ps->l_owner}, {"l_hi", &ps->l_hi}, {"l_lo", &ps->l_lo}, {"l_sid", &ps->l_sid},
                {"group_resource", &ps->g_res}, {"group_count", &ps->g_count}};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        if (put(d, cols[i].name, vec_bytes(cols[i].v)) < 0) goto done;
    if (put(d, "args", attrs_dict(&ps->sa, &skey, &sstr)) < 0 || put(d, "ev_args", attrs_dict(&ps->ea, &ekey, &estr)) < 0) goto done;
    {
        Py_ssize_t ng = COUNT(ps->g_cat, Str), nm = COUNT(ps->msg, Str), nl = COUNT(ps->l_attr_obj, PyObject *);
        PyObject *cats = PyList_New(ng), *msgs = PyDict_New(), *lattrs = PyDict_New();
        if (!cats || !msgs || !lattrs) {
            Py_XDECREF(cats);
            Py_XDECREF(msgs);
            Py_XDECREF(lattrs);
            goto done;
        }
        if (put(d, "group_category", cats) < 0 || put(d, "status_message", msgs) < 0 || put(d, "l_attrs", lattrs) < 0) goto done;
        for (Py_ssize_t i = 0; i < ng; i++) {
            Str s = AT(ps->g_cat, Str, i);
            PyObject *u = PyUnicode_DecodeUTF8(s.s, s.n, NULL);
            if (!u) goto done;
            PyList_SET_ITEM(cats, i, u);
        }
        for (Py_ssize_t i = 0; i < nm; i++) {
            Str s = AT(ps->msg, Str, i);
            PyObject *k = PyLong_FromLongLong(AT(ps->msg_row, int64_t, i)), *u = PyUnicode_DecodeUTF8(s.s, s.n, NULL);
            int bad = !k || !u || PyDict_SetItem(msgs, k, u) < 0;
            Py_XDECREF(k);
            Py_XDECREF(u);
            if (bad) goto done;
        }
        for (Py_ssize_t i = 0; i < nl; i++) {
            PyObject *k = PyLong_FromLongLong(AT(ps->l_attr_row, int64_t, i));
            int bad = !k || PyDict_SetItem(lattrs, k, AT(ps->l_attr_obj, PyObject *, i)) < 0;
            Py_XDECREF(k);
            if (bad) goto done;
        }
    }
    out = d;
    d = NULL;
done:
    Py_XDECREF(d);
    free(name_codes.data);
    free(ev_name_codes.data);
    free(skey.data);
    free(ekey.data);
    free(sstr.data);
    free(estr.data);
    free(tcodes.data);
    cache_free(&cn);
    cache_free(&ck);
    cache_free(&cs);
    return out;
}

static int is_space_line(const char *s, Py_ssize_t n) {
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c')) return 0;
    }
    return 1;
}

static int get_pool(PyObject *pools, Py_ssize_t i, Pool *out) {
    PyObject *pair = PyTuple_GetItem(pools, i);
    if (!pair || !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyDict_Check(PyTuple_GET_ITEM(pair, 0)) ||
        !PyList_Check(PyTuple_GET_ITEM(pair, 1))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "pools: (dict, list) pairs");
        return -1;
    }
    out->codes = PyTuple_GET_ITEM(pair, 0);
    out->values = PyTuple_GET_ITEM(pair, 1);
    return 0;
}

/* ---- scan (without the GIL) and finish (with it) ------------------------------------------ */

#define SCAN "traceconv._otlp_json.Scan"

typedef struct {
    P ps;
    PyObject *lines; /* a tuple: the texts, held with their buffers while the Strs point into them */
    Py_buffer *views;
    Py_ssize_t held;
    int finished;
} Scan;

static void scan_free(Scan *sc) {
    ps_free(&sc->ps);
    for (Py_ssize_t i = 0; i < sc->held; i++) PyBuffer_Release(&sc->views[i]);
    PyMem_Free(sc->views);
    Py_XDECREF(sc->lines);
    PyMem_Free(sc);
}

static void scan_capsule_free(PyObject *cap) {
    Scan *sc = PyCapsule_GetPointer(cap, SCAN);
    if (sc) scan_free(sc);
}

static int scan_texts(P *ps, Py_buffer *views, Py_ssize_t n, int arrays) {
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *s = views[i].buf;
        Py_ssize_t len = views[i].len;
        if (!arrays && is_space_line(s, len)) continue;
        ps->p = s;
        ps->end = s + len;
        ps->depth = 0;
        if ((arrays ? parse_documents(ps) : parse_document(ps)) < 0) return -1;
        skip_ws(ps);
        if (ps->p != ps->end) {
            ps->declined = 1;
            return -1;
        }
    }
    return 0;
}

/* scan(texts, arrays=False) -> a Scan for `finish`, or None (declined). The texts are parsed
 * without the GIL (another thread may run meanwhile); what needs Python is left to `finish`. */
static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *lines;
    int arrays = 0;
    if (!PyArg_ParseTuple(args, "O!|p", &PyList_Type, &lines, &arrays)) return NULL;
    Scan *sc = PyMem_Calloc(1, sizeof(Scan));
    if (!sc) return PyErr_NoMemory();
    sc->lines = PyList_AsTuple(lines); /* (a copy: nothing can change what is read) */
    Py_ssize_t n = sc->lines ? PyTuple_GET_SIZE(sc->lines) : 0;
    sc->views = sc->lines ? PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer)) : NULL;
    if (!sc->views) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        scan_free(sc);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(sc->lines, i), &sc->views[i], PyBUF_SIMPLE) < 0) {
            scan_free(sc);
            return NULL;
        }
        sc->held = i + 1;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = scan_texts(&sc->ps, sc->views, n, arrays);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        int declined = sc->ps.declined;
        scan_free(sc);
        if (declined) Py_RETURN_NONE;
        return PyErr_NoMemory();
    }
    PyObject *cap = PyCapsule_New(sc, SCAN, scan_capsule_free);
    if (!cap) scan_free(sc);
    return cap;
}

static PyObject *as_bytes(Str s) { return PyBytes_FromStringAndSize(s.s, s.n); }

/* call cb(raw) for a deferred text: a new reference, or NULL */
static PyObject *call_raw(PyObject *cb, Str raw) {
    PyObject *b = as_bytes(raw);
    if (!b) return NULL;
    PyObject *r = PyObject_CallOneArg(cb, b);
    Py_DECREF(b);
    return r;
}

/* the work `scan` left: doubles, values (value_cb), scope and link attributes (kvs_cb), the
 * resources (resource_cb, then add_resources, in order); 1: declined, -1: error */
static int resolve(P *ps, PyObject *add_resources) {
    for (Py_ssize_t i = 0; i < COUNT(ps->d_doubles, Deferred); i++) {
        Deferred d = AT(ps->d_doubles, Deferred, i);
        if (text_to_double(d.raw, &AT(d.a->dval, double, d.index))) return 1;
    }
    for (Py_ssize_t i = 0; i < COUNT(ps->d_values, Deferred); i++) {
        Deferred d = AT(ps->d_values, Deferred, i);
        PyObject *r = call_raw(ps->value_cb, d.raw);
        if (!r) return -1;
        int pass, kind;
        long long iv;
        double dv;
        PyObject *text;
        if (!PyArg_ParseTuple(r, "iiLdO", &pass, &kind, &iv, &dv, &text)) {
            Py_DECREF(r);
            return -1;
        }
        if (text != Py_None && !PyUnicode_Check(text)) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_TypeError, "value_cb: text must be str or None");
            return -1;
        }
        PyObject *keep = text == Py_None ? NULL : text;
        Py_XINCREF(keep);
        Py_DECREF(r);
        if (keep && keep_obj(ps, keep) < 0) return -1;
        AT(d.a->kind, int8_t, d.index) = (int8_t)kind;
        AT(d.a->ival, int64_t, d.index) = (int64_t)iv;
        AT(d.a->dval, double, d.index) = dv;
        AT(d.a->obj, PyObject *, d.index) = keep;
        AT(d.a->pass, int8_t, d.index) = (int8_t)(keep ? pass : -1);
    }
    for (Py_ssize_t i = 0; i < COUNT(ps->d_scopes, Deferred); i++) {
        PyObject *r = call_raw(ps->kvs_cb, AT(ps->d_scopes, Deferred, i).raw); /* (checked; not kept) */
        if (!r) return -1;
        Py_DECREF(r);
    }
    for (Py_ssize_t i = 0; i < COUNT(ps->d_links, Deferred); i++) {
        Deferred d = AT(ps->d_links, Deferred, i);
        PyObject *r = call_raw(ps->kvs_cb, d.raw);
        if (!r || keep_obj(ps, r) < 0) return -1;
        int64_t row = d.index;
        if (ps->l_attr_row.len + 8 > ps->l_attr_row.cap && vec_grow(&ps->l_attr_row, 8) < 0) goto oom;
        if (ps->l_attr_obj.len + 8 > ps->l_attr_obj.cap && vec_grow(&ps->l_attr_obj, 8) < 0) goto oom;
        AT(ps->l_attr_row, int64_t, COUNT(ps->l_attr_row, int64_t)) = row;
        ps->l_attr_row.len += 8;
        AT(ps->l_attr_obj, PyObject *, COUNT(ps->l_attr_obj, PyObject *)) = r;
        ps->l_attr_obj.len += sizeof(PyObject *);
    }
    Py_ssize_t nr = COUNT(ps->d_resources, Str);
    PyObject *keys = PyList_New(nr), *ids = NULL;
    if (!keys) return -1;
    for (Py_ssize_t i = 0; i < nr; i++) {
        PyObject *r = call_raw(ps->resource_cb, AT(ps->d_resources, Str, i)); /* (checks it; adds nothing) */
        if (!r) {
            Py_DECREF(keys);
            return -1;
        }
        PyList_SET_ITEM(keys, i, r);
    }
    ids = PyObject_CallOneArg(add_resources, keys); /* every document is in: now they are added, in order */
    Py_DECREF(keys);
    if (!ids) return -1;
    if (!PyList_Check(ids) || PyList_GET_SIZE(ids) != nr) {
        Py_DECREF(ids);
        PyErr_SetString(PyExc_TypeError, "add_resources: a list of ints, one per resource");
        return -1;
    }
    for (Py_ssize_t g = 0; g < COUNT(ps->g_res, int64_t); g++) {
        long long id = PyLong_AsLongLong(PyList_GET_ITEM(ids, AT(ps->g_res, int64_t, g)));
        if (id == -1 && PyErr_Occurred()) {
            Py_DECREF(ids);
            return -1;
        }
        AT(ps->g_res, int64_t, g) = id;
    }
    Py_DECREF(ids);
    return 0;
oom:
    PyErr_NoMemory();
    return -1;
}

/* finish(scan, pools, fixed_keys, value_cb, resource_cb, kvs_cb, add_resources) -> dict of
 * columns, or None (declined: nothing added or interned) */
static PyObject *finish(PyObject *self, PyObject *args) {
    PyObject *cap, *pools, *fixed_keys, *value_cb, *resource_cb, *kvs_cb, *add_resources;
    if (!PyArg_ParseTuple(args, "OO!O!OOOO", &cap, &PyTuple_Type, &pools, &PyTuple_Type, &fixed_keys, &value_cb, &resource_cb,
                          &kvs_cb, &add_resources))
        return NULL;
    Scan *sc = PyCapsule_GetPointer(cap, SCAN);
    if (!sc) return NULL;
    if (sc->finished) {
        PyErr_SetString(PyExc_ValueError, "finish: this scan was finished already");
        return NULL;
    }
    Pool names, keys, strs;
    if (get_pool(pools, 0, &names) < 0 || get_pool(pools, 1, &keys) < 0 || get_pool(pools, 2, &strs) < 0) return NULL;
    sc->finished = 1;
    P *ps = &sc->ps;
    ps->value_cb = value_cb;
    ps->resource_cb = resource_cb;
    ps->kvs_cb = kvs_cb;
    int rc = resolve(ps, add_resources);
    if (rc > 0) Py_RETURN_NONE;
    if (rc < 0) return NULL;
    PyObject *out = results(ps, &names, &keys, &strs, fixed_keys);
    if (!out && !PyErr_Occurred()) PyErr_NoMemory();
    return out;
}

/* parse(texts, pools, fixed_keys, value_cb, resource_cb, kvs_cb, add_resources, arrays=False):
 * scan and finish in one call */
static PyObject *parse(PyObject *self, PyObject *args) {
    PyObject *lines, *pools, *fixed_keys, *value_cb, *resource_cb, *kvs_cb, *add_resources;
    int arrays = 0;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOO|p", &PyList_Type, &lines, &PyTuple_Type, &pools, &PyTuple_Type, &fixed_keys, &value_cb,
                          &resource_cb, &kvs_cb, &add_resources, &arrays))
        return NULL;
    Pool pool;
    if (get_pool(pools, 0, &pool) < 0 || get_pool(pools, 1, &pool) < 0 || get_pool(pools, 2, &pool) < 0) return NULL;
    PyObject *scan_args = Py_BuildValue("(Oi)", lines, arrays);
    if (!scan_args) return NULL;
    PyObject *cap = scan(self, scan_args);
    Py_DECREF(scan_args);
    if (!cap || cap == Py_None) return cap;
    PyObject *fin_args = PyTuple_Pack(7, cap, pools, fixed_keys, value_cb, resource_cb, kvs_cb, add_resources);
    PyObject *out = fin_args ? finish(self, fin_args) : NULL;
    Py_XDECREF(fin_args);
    Py_DECREF(cap);
    return out;
}

/* count_objects(text) -> how many objects the JSON array `text` holds, or None: not an array of
 * objects (or not one this reader is sure of: the check is the parser's, strict) */
static PyObject *count_objects(PyObject *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    P ps;
    memset(&ps, 0, sizeof(ps));
    ps.p = b.buf;
    ps.end = (const char *)b.buf + b.len;
    Py_ssize_t n = 0;
    int empty, ok = array_open(&ps, &empty) == 0;
    if (ok && !empty) {
        do {
            skip_ws(&ps);
            if (ps.p >= ps.end || *ps.p != '{' || skip_value(&ps) < 0) {
                ok = 0;
                break;
            }
            n++;
        } while (next_member(&ps, ']') == 1);
        ok = ok && !ps.declined;
    }
    if (ok) {
        skip_ws(&ps);
        ok = ps.p == ps.end;
    }
    ps_free(&ps);
    PyBuffer_Release(&b);
    if (PyErr_Occurred()) return NULL;
    if (!ok) Py_RETURN_NONE;
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "scan(texts, arrays=False) -> a scan for finish(), or None to decline (runs without the GIL)"},
    {"finish", finish, METH_VARARGS,
     "finish(scan, pools, fixed_keys, value_cb, resource_cb, kvs_cb, add_resources) -> dict of columns, or None to decline"},
    {"count_objects", count_objects, METH_O, "count_objects(text) -> objects in the JSON array `text`, or None"},
    {"parse", parse, METH_VARARGS,
     "parse(lines, pools, fixed_keys, value_cb, resource_cb, kvs_cb, add_resources, arrays=False) -> dict of columns, or None to decline\n\n"
     "lines: a list of bytes-like objects, one JSON document each (arrays=True: a JSON array of documents each)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlp_json", "OTLP/JSON Lines to span columns (C accelerator).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__otlp_json(void) {
    for (int c = 0; c < 256; c++)
        HEX[c] = (signed char)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1);
    return PyModule_Create(&module);
}
