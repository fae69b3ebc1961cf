/* Compiled scan of a block of event log lines for bulk folds (opening a log, `summary`).
 *
 * Nine lines in ten of a run's log are specimen queued/processing/completed/failed events.
 * `scan` validates each line as JSON and, for those four types written the plain way (ASCII,
 * no escapes in the fields read, numbers a double holds exactly; the record's values,
 * data.dwc, may hold any well-formed UTF-8 and are only spanned), records the dozen fields
 * the fold reads into one fixed-size record per line, without creating a Python object and
 * without the GIL. Any line it is not sure of gets kind OTHER and goes through the general
 * Python path, which converts or rejects it as for any event: this file only ever takes the
 * lines whose meaning is beyond doubt. herbdesk/events/fastscan.py holds the record layout
 * (it must match `Rec` below) and tests/test_fastscan.py checks both paths agree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

enum { K_BLANK = 0, K_QUEUED = 1, K_PROCESSING = 2, K_COMPLETED = 3, K_FAILED = 4, K_OTHER = 255 };
enum { TS_NONE = 0, TS_EPOCH = 1, TS_PYTHON = 2 };
enum { B_FALSE = 0, B_TRUE = 1, B_NONE = 2 };

#define MISSING INT64_MIN
#define QKEY_MAX 2048 /* the longest quality key (larger objects are read in full) */
#define MAX_DEPTH 64

typedef struct {
    int64_t off, len; /* len -1: absent or null */
} Span;

typedef struct {
    int64_t start, len; /* the line within the block, without its newline */
    int64_t seq, sequence, fields, attempts, tokens, schema_version;
    double conf, time_ms, cost, epoch;
    Span ts, run, sid, image, path, error, metrics, quality, dwc;
    uint64_t sid_hash; /* of the last specimen_id read, for the scanner's table */
    uint8_t kind, success, ts_kind, fix, qok, qhas, pad[2];
    uint64_t qfp;                /* data.quality of herbdesk's shape (qok): its fingerprint */
    Py_ssize_t qklen;            /* and its key (see quality objects below) */
    uint8_t qkey[QKEY_MAX];
} Rec;

typedef struct {
    const uint8_t *p, *end;
    int other; /* a number a double may not hold (past 1e300): the general path judges */
    int wide;  /* strings may hold UTF-8 beyond ASCII (validated): the values nobody reads here */
} Cur;

static inline void skip_ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static inline int hexval(uint8_t ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* 1 for the bytes a string holds as they are: ASCII from 0x20, except '"' and '\\'. */
static uint8_t PLAIN[256];

static void init_tables(void) {
    for (int ch = 0x20; ch < 0x80; ch++) PLAIN[ch] = ch != '"' && ch != '\\';
}

/* The first byte at or after p that is not plain (see PLAIN), or end. */
#if defined(__SSE2__)
#include <emmintrin.h>
/* Sixteen bytes at a time (SSE2 is part of every x86-64): a specimen id is four steps. */
static inline const uint8_t *skip_plain(const uint8_t *p, const uint8_t *end) {
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed: bytes from 0x80 are negative, so "< 0x20" also catches non-ASCII */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                 _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(m);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
    while (p < end && PLAIN[*p]) p++;
    return p;
}
#else
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* 1 if none of the eight bytes of w ends or escapes a string or is beyond ASCII. A byte
 * below 0x20 may also make it 0 falsely when another byte is >= 0x80: either way the byte
 * loop then decides exactly. */
static inline int plain8(uint64_t w) {
    uint64_t quote = w ^ (ONES * '"'), slash = w ^ (ONES * '\\');
    uint64_t t = ((quote - ONES) & ~quote) | ((slash - ONES) & ~slash) | ((w - ONES * 0x20) & ~w) | w;
    return (t & HIGHS) == 0;
}

static inline const uint8_t *skip_plain(const uint8_t *p, const uint8_t *end) {
    while (end - p >= 8) { /* eight plain bytes at a time */
        uint64_t w;
        memcpy(&w, p, 8);
        if (!plain8(w)) break;
        p += 8;
    }
    while (p < end && PLAIN[*p]) p++; /* the common bytes, one table look-up each */
    return p;
}
#endif

/* Length of the well-formed UTF-8 sequence at p (Unicode's table 3-7: no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 if it is not one: exactly the bytes orjson accepts. */
static inline int utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t b0 = p[0];
    int n;
    uint8_t lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        if (b0 == 0xE0) lo = 0xA0;
        else if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F;
    } else return 0;
    if (end - p < n || p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

/* A string at c->p (its opening quote). Content span into *s; *escaped set if it holds a
 * backslash escape. 0 if not valid JSON, or if it holds an escaped surrogate or bytes beyond
 * ASCII (unless c->wide: then well-formed UTF-8 is taken); the general path judges those. */
static int parse_string(Cur *c, const uint8_t *base, Span *s, int *escaped) {
    const uint8_t *p = c->p + 1, *end = c->end;
    *escaped = 0;
    s->off = p - base;
    while (p < end) {
        p = skip_plain(p, end);
        if (p >= end) break;
        uint8_t ch = *p;
        if (ch == '"') {
            s->len = (p - base) - s->off;
            c->p = p + 1;
            return 1;
        }
        if (ch >= 0x80) {
            int n = c->wide ? utf8_seq(p, end) : 0;
            if (!n) return 0;
            p += n;
            continue;
        }
        if (ch < 0x20) return 0;
        if (ch == '\\') {
            *escaped = 1;
            if (++p >= end) return 0;
            ch = *p;
            if (ch == 'u') {
                int v = 0;
                for (int k = 1; k <= 4; k++) {
                    if (p + k >= end) return 0;
                    int h = hexval(p[k]);
                    if (h < 0) return 0;
                    v = v * 16 + h;
                }
                if (v >= 0xD800 && v <= 0xDFFF) return 0;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
                return 0;
            }
        }
        p++;
    }
    return 0;
}

/* Numbers a double may not hold (past about 1e300 in magnitude, or too many digits to judge
 * simply) send the line to the general path, whose parser rejects an infinite value. */
static inline void flag_magnitude(Cur *c, int64_t int_digits, int64_t exp, int64_t digits) {
    if (int_digits + exp > 300 || exp < -300 || digits > 300) c->other = 1;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define NUM_INT 1    /* an integer literal that fits in int64 */
#define NUM_EXACT 2  /* a value computed with one correctly rounded operation */

/* A JSON number at c->p. Returns 0 if not valid JSON, else flags: NUM_INT with *iv set,
 * NUM_EXACT with *dv set (mantissa below 2**53 and a power of ten up to 1e22: one division
 * or multiplication, so the double is the correctly rounded value any parser gives). */
static int parse_number(Cur *c, int64_t *iv, double *dv) {
    const uint8_t *p = c->p, *end = c->end;
    int neg = 0, int_ok = 1, digits = 0;
    uint64_t mant = 0;
    int mant_ok = 1, frac_digits = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end) return 0;
    if (*p == '0') {
        p++;
        digits = 1;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            if (mant > (UINT64_MAX - 9) / 10) mant_ok = 0;
            else mant = mant * 10 + (*p - '0');
            p++;
            digits++;
        }
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        int_ok = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (mant > (UINT64_MAX - 9) / 10) mant_ok = 0;
            else mant = mant * 10 + (*p - '0');
            frac_digits++;
            p++;
        }
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int_ok = 0;
        int eneg = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp < 100000) exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp = -exp;
    }
    flag_magnitude(c, *c->p == '0' || (c->p[0] == '-' && c->p[1] == '0') ? 0 : digits, exp,
                   digits + frac_digits);
    c->p = p;
    int flags = 0;
    if (int_ok && mant_ok) {
        if (!neg && mant <= (uint64_t)INT64_MAX) {
            *iv = (int64_t)mant;
            flags |= NUM_INT;
        } else if (neg && mant <= (uint64_t)INT64_MAX) {
            *iv = -(int64_t)mant;
            flags |= NUM_INT;
        }
    }
    int64_t e10 = exp - frac_digits;
    if (mant_ok && mant <= (1ULL << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)mant;
        v = e10 < 0 ? v / POW10[-e10] : v * POW10[e10];
        *dv = neg ? -v : v;
        flags |= NUM_EXACT;
    }
    return flags | 4; /* 4: valid */
}

static inline int is_digit(uint8_t ch) { return ch >= '0' && ch <= '9'; }

/* A JSON number only validated (values nobody reads): flags huge ones as parse_number does. */
static int skip_number(Cur *c) {
    const uint8_t *p = c->p, *end = c->end, *start;
    if (p < end && *p == '-') p++;
    start = p;
    if (p >= end) return 0;
    if (*p == '0') p++;
    else if (is_digit(*p)) while (p < end && is_digit(*p)) p++;
    else return 0;
    int64_t int_digits = *start == '0' ? 0 : p - start, digits = p - start;
    if (p < end && *p == '.') {
        const uint8_t *frac = ++p;
        if (p >= end || !is_digit(*p)) return 0;
        while (p < end && is_digit(*p)) p++;
        digits += p - frac;
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) return 0;
        while (p < end && is_digit(*p)) {
            if (exp < 100000) exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp = -exp;
    }
    flag_magnitude(c, int_digits, exp, digits);
    c->p = p;
    return 1;
}

/* Any JSON value, only validated. */
static int skip_value(Cur *c, const uint8_t *base, int depth) {
    if (depth > MAX_DEPTH) return 0;
    skip_ws(c);
    if (c->p >= c->end) return 0;
    uint8_t ch = *c->p;
    Span s;
    int esc;
    if (ch == '"') return parse_string(c, base, &s, &esc);
    if (ch == '{' || ch == '[') {
        uint8_t close = ch == '{' ? '}' : ']';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            if (ch == '{') {
                skip_ws(c);
                if (c->p >= c->end || *c->p != '"' || !parse_string(c, base, &s, &esc)) return 0;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':') return 0;
                c->p++;
            }
            if (!skip_value(c, base, depth + 1)) return 0;
            skip_ws(c);
            if (c->p >= c->end) return 0;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                return 1;
            }
            return 0;
        }
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) return skip_number(c);
    static const char *lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(lits[k]);
        if ((size_t)(c->end - c->p) >= n && memcmp(c->p, lits[k], n) == 0) {
            c->p += n;
            return 1;
        }
    }
    return 0;
}

static int key_is(const uint8_t *base, const Span *k, const char *name) {
    size_t n = strlen(name);
    return (size_t)k->len == n && memcmp(base + k->off, name, n) == 0;
}

/* Outcome of reading one field's value: ok, not valid JSON, or valid but not for us. */
enum { V_OK = 1, V_BAD = 0, V_OTHER = 2 };

static int is_null(Cur *c) {
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return 1;
    }
    return 0;
}

/* A string field (no escapes) or null/absent (len -1 when null and null_ok). */
static int field_string(Cur *c, const uint8_t *base, Span *out, int null_ok) {
    if (*c->p == '"') {
        int esc;
        if (!parse_string(c, base, out, &esc)) return V_BAD;
        return esc ? V_OTHER : V_OK;
    }
    if (is_null(c)) {
        out->len = -1;
        return null_ok ? V_OK : V_OTHER;
    }
    return skip_value(c, base, 1) ? V_OTHER : V_BAD;
}

/* An integer field (int64) or null (MISSING when null_ok). */
static int field_int(Cur *c, const uint8_t *base, int64_t *out, int null_ok) {
    uint8_t ch = *c->p;
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        double dv;
        int f = parse_number(c, out, &dv);
        if (!f) return V_BAD;
        return (f & NUM_INT) ? V_OK : V_OTHER;
    }
    if (is_null(c)) {
        *out = MISSING;
        return null_ok ? V_OK : V_OTHER;
    }
    return skip_value(c, base, 1) ? V_OTHER : V_BAD;
}

#define EXACT53 9007199254740992.0

/* A number field as the fold reads it: a double within +-2**53, else NaN ("no value"), as
 * `_num` does: an integer is converted first (2**53 + 1 becomes 2**53 and is kept). A number
 * that needs a full parser (17 significant digits, say) is left to Python: NaN here and
 * `bit` set in *fix, so the fold reads the line's value with orjson. */
static int field_float(Cur *c, const uint8_t *base, double *out, uint8_t *fix, uint8_t bit) {
    uint8_t ch = *c->p;
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        int64_t iv;
        double dv;
        int f = parse_number(c, &iv, &dv);
        if (!f) return V_BAD;
        if (f & NUM_INT) dv = (double)iv; /* round to nearest, like Python's float(int) */
        if (f & (NUM_INT | NUM_EXACT)) {
            *out = (dv <= EXACT53 && dv >= -EXACT53) ? dv : NAN;
            *fix &= (uint8_t)~bit; /* a repeated key: the last value is the one */
        } else {
            *out = NAN;
            *fix |= bit;
        }
        return V_OK;
    }
    if (is_null(c)) {
        *out = NAN;
        *fix &= (uint8_t)~bit;
        return V_OK;
    }
    return skip_value(c, base, 1) ? V_OTHER : V_BAD;
}

static int field_bool(Cur *c, const uint8_t *base, uint8_t *out) {
    if (c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0) {
        c->p += 4;
        *out = B_TRUE;
        return V_OK;
    }
    if (c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0) {
        c->p += 5;
        *out = B_FALSE;
        return V_OK;
    }
    if (is_null(c)) {
        *out = B_NONE;
        return V_OK;
    }
    return skip_value(c, base, 1) ? V_OTHER : V_BAD;
}

/* A value kept raw (its span), or null (len -1) when null_ok; must be an object if obj_only. */
static int field_raw(Cur *c, const uint8_t *base, Span *out, int obj_only) {
    const uint8_t *start = c->p;
    if (is_null(c)) {
        out->len = -1;
        return V_OK;
    }
    if (obj_only && *start != '{') return skip_value(c, base, 1) ? V_OTHER : V_BAD;
    if (!skip_value(c, base, 1)) return V_BAD;
    out->off = start - base;
    out->len = c->p - start;
    return V_OK;
}

static void reset_data(Rec *r) {
    r->fix = 0;
    r->fields = r->attempts = r->tokens = MISSING;
    r->conf = r->time_ms = r->cost = NAN;
    r->image.len = r->path.len = r->error.len = r->quality.len = r->dwc.len = -1;
    r->quality.off = r->dwc.off = 0;
    r->qok = r->qhas = 0;
    r->qfp = 0;
    r->success = B_NONE;
}

/* ---- quality objects: the tally's part of a specimen.completed line's data.quality ----
 * herbdesk writes {"usable":B,"filled":[S…],"invalid":[S…],"findings":[[S,S,S(,S)]…],
 * "fingerprint":"<16 hex>"|null}. What the run's tally keeps of it is the same for most
 * records: usable, the terms, the finding checks. `quality_keys` gives each object in exactly
 * that shape a key (the object without the findings' terms, values and details and without the
 * fingerprint, as JSON) and its fingerprint as a number; anything else is left to the caller,
 * which reads the object in full. The spans were validated by the scan (ASCII, valid escapes). */
#define QKEYS_MAX 65536 /* a run has hundreds; past it, objects are read in full */
#define QPROBES 64      /* a key needing more probes is read in full (no crafted slowness) */

typedef struct {
    const uint8_t *p, *end;
    uint8_t *k, *kend; /* the key being written */
} QCur;

static inline int q_lit_n(QCur *q, const char *lit, size_t n) {
    if ((size_t)(q->end - q->p) < n || memcmp(q->p, lit, n) != 0) return 0;
    q->p += n;
    return 1;
}
#define q_lit(q, lit) q_lit_n((q), (lit), sizeof(lit) - 1)

static inline int q_put(QCur *q, const uint8_t *from, size_t n) {
    if ((size_t)(q->kend - q->k) < n) return 0;
    memcpy(q->k, from, n);
    q->k += n;
    return 1;
}
#define q_put_lit(q, lit) q_put((q), (const uint8_t *)(lit), sizeof(lit) - 1)

/* Past a JSON string token at q->p, validated as the scan validates strings (parse_string). */
static inline int q_string(QCur *q) {
    Cur cur = {q->p, q->end, 0};
    Span span;
    int escaped;
    if (q->p >= q->end || *q->p != '"' || !parse_string(&cur, q->p, &span, &escaped)) return 0;
    q->p = cur.p;
    return 1;
}

/* [S,S,…] copied as it is. */
static int q_strings(QCur *q) {
    const uint8_t *start = q->p;
    if (!q_lit(q, "[")) return 0;
    if (!q_lit(q, "]")) {
        for (;;) {
            if (!q_string(q)) return 0;
            if (q_lit(q, "]")) break;
            if (!q_lit(q, ",")) return 0;
        }
    }
    return q_put(q, start, q->p - start);
}

/* [[check,…],…] written as [[check],…]: the tally counts checks only. */
static int q_findings(QCur *q) {
    if (!q_lit(q, "[") || !q_put_lit(q, "[")) return 0;
    if (q_lit(q, "]")) return q_put_lit(q, "]");
    for (;;) {
        const uint8_t *check = q->p;
        if (!q_lit(q, "[")) return 0;
        if (!q_string(q) || !q_put(q, check, q->p - check)) return 0;
        while (q_lit(q, ","))
            if (!q_string(q)) return 0;
        if (!q_lit(q, "]") || !q_put_lit(q, "]")) return 0;
        if (q_lit(q, "]")) return q_put_lit(q, "]");
        if (!q_lit(q, ",") || !q_put_lit(q, ",")) return 0;
    }
}

/* 1 if the object at p (before limit) is valid JSON of herbdesk's shape: key written to buf
 * (*klen), *fp and *has set, *after just past the object. */
static int q_parse(const uint8_t *p, const uint8_t *limit, uint8_t *buf, Py_ssize_t *klen,
                   uint64_t *fp, uint8_t *has, const uint8_t **after) {
    QCur q = {p, limit, buf, buf + QKEY_MAX};
    if (q_lit(&q, "{\"usable\":true")) {
        if (!q_put_lit(&q, "{\"usable\":true")) return 0;
    } else if (q_lit(&q, "{\"usable\":false")) {
        if (!q_put_lit(&q, "{\"usable\":false")) return 0;
    } else {
        return 0;
    }
    if (!q_lit(&q, ",\"filled\":") || !q_put_lit(&q, ",\"filled\":") || !q_strings(&q)) return 0;
    if (!q_lit(&q, ",\"invalid\":") || !q_put_lit(&q, ",\"invalid\":") || !q_strings(&q))
        return 0;
    if (!q_lit(&q, ",\"findings\":") || !q_put_lit(&q, ",\"findings\":") || !q_findings(&q))
        return 0;
    if (!q_lit(&q, ",\"fingerprint\":")) return 0;
    *fp = 0;
    *has = 0;
    if (!q_lit(&q, "null")) {
        if (q.end - q.p < 18 || q.p[0] != '"' || q.p[17] != '"') return 0;
        for (int i = 1; i <= 16; i++) {
            uint8_t ch = q.p[i];
            int h = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
            if (h < 0) return 0; /* another text: the caller keeps it as it is */
            *fp = *fp << 4 | (uint64_t)h;
        }
        *has = 1;
        q.p += 18;
    }
    if (!q_lit(&q, "}") || !q_put_lit(&q, "}")) return 0;
    *klen = q.k - buf;
    *after = q.p;
    return 1;
}

/* data.quality: of herbdesk's shape (key in r->qkey), else any object kept raw. */
static int field_quality(Cur *c, const uint8_t *base, Rec *r) {
    const uint8_t *start = c->p, *after;
    r->qok = 0;
    if (*start == '{' &&
        q_parse(start, c->end, r->qkey, &r->qklen, &r->qfp, &r->qhas, &after)) {
        r->quality.off = start - base;
        r->quality.len = after - start;
        c->p = after;
        r->qok = 1;
        return V_OK;
    }
    return field_raw(c, base, &r->quality, 1);
}

/* The `data` object's fields. */
static int parse_data(Cur *c, const uint8_t *base, Rec *r) {
    reset_data(r); /* a repeated "data" key replaces the first, as in any JSON reader */
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return V_OK;
    }
    int outcome = V_OK;
    for (;;) {
        Span k;
        int esc, f;
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"' || !parse_string(c, base, &k, &esc)) return V_BAD;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') return V_BAD;
        c->p++;
        skip_ws(c);
        if (c->p >= c->end) return V_BAD;
        if (esc) f = skip_value(c, base, 2) ? V_OTHER : V_BAD; /* an escaped key: not ours */
        else if (key_is(base, &k, "image")) f = field_string(c, base, &r->image, 1);
        else if (key_is(base, &k, "path")) f = field_string(c, base, &r->path, 1);
        else if (key_is(base, &k, "success")) f = field_bool(c, base, &r->success);
        else if (key_is(base, &k, "fields_extracted")) f = field_int(c, base, &r->fields, 1);
        else if (key_is(base, &k, "confidence")) f = field_float(c, base, &r->conf, &r->fix, 1);
        else if (key_is(base, &k, "processing_time_ms"))
            f = field_float(c, base, &r->time_ms, &r->fix, 2);
        else if (key_is(base, &k, "attempts")) f = field_int(c, base, &r->attempts, 1);
        else if (key_is(base, &k, "tokens")) f = field_int(c, base, &r->tokens, 1);
        else if (key_is(base, &k, "cost_usd")) f = field_float(c, base, &r->cost, &r->fix, 4);
        else if (key_is(base, &k, "error")) f = field_raw(c, base, &r->error, 0);
        else if (key_is(base, &k, "quality")) f = field_quality(c, base, r);
        else if (key_is(base, &k, "dwc")) { /* validated and skipped: the fold keeps its span */
            c->wide = 1;
            f = field_raw(c, base, &r->dwc, 1);
            c->wide = 0;
        }
        else f = skip_value(c, base, 2) ? V_OK : V_BAD;
        if (f == V_BAD) return V_BAD;
        if (f == V_OTHER) outcome = V_OTHER;
        skip_ws(c);
        if (c->p >= c->end) return V_BAD;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == '}') {
            c->p++;
            return outcome;
        }
        return V_BAD;
    }
}

static int days_in_month(int y, int m) {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const uint8_t *p, int n, int *out) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') return 0;
        v = v * 10 + (p[k] - '0');
    }
    *out = v;
    return 1;
}

/* Epoch seconds of herbdesk's own timestamp shape, "YYYY-MM-DDTHH:MM:SS.mmmZ", computed as
 * Python's datetime.timestamp() does (integer microseconds divided by 10**6, correctly
 * rounded). Any other shape is left to Python (TS_PYTHON). */
static void parse_timestamp(const uint8_t *p, int64_t n, Rec *r) {
    int y, mo, d, h, mi, s, ms;
    if (n == 0) {
        r->ts_kind = TS_NONE;
        return;
    }
    r->ts_kind = TS_PYTHON;
    if (n != 24 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' ||
        p[19] != '.' || p[23] != 'Z')
        return;
    if (!digits(p, 4, &y) || !digits(p + 5, 2, &mo) || !digits(p + 8, 2, &d) ||
        !digits(p + 11, 2, &h) || !digits(p + 14, 2, &mi) || !digits(p + 17, 2, &s) ||
        !digits(p + 20, 3, &ms))
        return;
    /* years where the microsecond count stays below 2**53, so the division is exact-input */
    if (y < 1900 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || s > 59)
        return;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    int64_t micros = secs * 1000000 + (int64_t)ms * 1000;
    r->epoch = (double)micros / 1e6;
    r->ts_kind = TS_EPOCH;
}

/* A 64-bit hash of an id's bytes, eight bytes at a time (FNV-style mixing, then a final
 * avalanche so the high bits, used as the slot tag, depend on every byte). */
static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h = (h ^ tail) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* What scan_line needs of the scanner: the mask of its id hashes. */
typedef struct {
    uint64_t mask;
} Hint;

static const struct {
    const char *name;
    uint8_t kind;
} TYPES[] = {{"specimen.queued", K_QUEUED},
             {"specimen.processing", K_PROCESSING},
             {"specimen.completed", K_COMPLETED},
             {"specimen.failed", K_FAILED}};

/* One line: fills *r, returns its kind. */
static uint8_t scan_line(const uint8_t *base, const uint8_t *p, const uint8_t *end, Rec *r,
                         const Hint *hint) {
    Cur cur = {p, end, 0, 0}, *c = &cur;
    const uint8_t *q = p;
    r->seq = 0;
    r->sequence = MISSING;
    r->schema_version = MISSING;
    reset_data(r);
    r->ts.len = r->run.len = r->sid.len = r->metrics.len = -1;
    r->ts.off = r->run.off = r->sid.off = r->metrics.off = 0;
    r->image.off = r->path.off = r->error.off = 0;
    r->ts_kind = TS_NONE;
    r->epoch = NAN;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\v' || *q == '\f')) q++;
    if (q == end) return K_BLANK;
    uint8_t kind = 0;
    int seen_type = 0, other = 0;
    skip_ws(c);
    if (c->p >= c->end || *c->p != '{') return K_OTHER;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') return K_OTHER; /* {} : not an event of ours */
    for (;;) {
        Span k, v;
        int esc, f;
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"' || !parse_string(c, base, &k, &esc)) return K_OTHER;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') return K_OTHER;
        c->p++;
        skip_ws(c);
        if (c->p >= c->end) return K_OTHER;
        if (esc) {
            f = skip_value(c, base, 1) ? V_OTHER : V_BAD;
        } else if (key_is(base, &k, "event_type")) {
            f = field_string(c, base, &v, 0);
            if (f == V_OK) {
                kind = 0;
                for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++)
                    if (key_is(base, &v, TYPES[t].name)) kind = TYPES[t].kind;
                seen_type = 1;
            }
        } else if (key_is(base, &k, "schema_version")) {
            f = field_int(c, base, &r->schema_version, 0);
        } else if (key_is(base, &k, "seq")) {
            f = field_int(c, base, &r->seq, 0);
            if (f == V_OK && r->seq < 0) f = V_OTHER;
        } else if (key_is(base, &k, "timestamp")) {
            f = field_string(c, base, &r->ts, 0);
        } else if (key_is(base, &k, "run_id")) {
            f = field_string(c, base, &r->run, 0);
        } else if (key_is(base, &k, "specimen_id")) {
            f = field_string(c, base, &r->sid, 1);
            if (f == V_OK && r->sid.len > 0)
                r->sid_hash = hash_bytes(base + r->sid.off, (size_t)r->sid.len) & hint->mask;
        } else if (key_is(base, &k, "sequence")) {
            f = field_int(c, base, &r->sequence, 1);
        } else if (key_is(base, &k, "data")) {
            f = *c->p == '{' ? parse_data(c, base, r) : (skip_value(c, base, 1) ? V_OTHER : V_BAD);
        } else if (key_is(base, &k, "metrics")) {
            f = field_raw(c, base, &r->metrics, 1);
        } else {
            f = skip_value(c, base, 1) ? V_OK : V_BAD;
        }
        if (f == V_BAD) return K_OTHER;
        if (f == V_OTHER) other = 1;
        skip_ws(c);
        if (c->p >= c->end) return K_OTHER;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == '}') {
            c->p++;
            break;
        }
        return K_OTHER;
    }
    skip_ws(c);
    if (c->p != c->end) return K_OTHER; /* anything after the object: the general path judges */
    if (other || c->other || !seen_type || kind == 0 || r->schema_version == MISSING)
        return K_OTHER;
    /* rows are keyed by specimen id; lines without one take the general path */
    if (r->sid.len <= 0) return K_OTHER;
    if (r->ts.len > 0) parse_timestamp(base + r->ts.off, r->ts.len, r);
    return kind;
}

/* ------------------------------------------------------------------ the Scanner type
 *
 * Scans blocks of one load in order. Besides the columns it numbers specimen ids by a
 * 64-bit hash of their bytes, in order of first appearance ("provisional ids"; a table of
 * hashes only, no Python objects, no copy of the ids), so the fold can map most lines to
 * rows with an array look-up instead of a dict look-up under the GIL. Two ids with the same
 * hash share a number: the fold checks every line's id against its row's (`verify`) and
 * looks up the rest in the dict, so a collision costs time, never a wrong row.
 */

/* Output columns: int32 spans and line places, int64 values, float64 values, uint8 codes. */
enum { C_START, C_LEN, C_TS_OFF, C_TS_LEN, C_RUN_OFF, C_RUN_LEN, C_SID_OFF, C_SID_LEN,
       C_IMAGE_OFF, C_IMAGE_LEN, C_PATH_OFF, C_PATH_LEN, C_ERROR_OFF, C_ERROR_LEN,
       C_METRICS_OFF, C_METRICS_LEN, C_QUALITY_OFF, C_QUALITY_LEN, C_DWC_OFF, C_DWC_LEN, N_I32 };
enum { C_SEQ, C_SEQUENCE, C_FIELDS, C_ATTEMPTS, C_TOKENS, C_PROV, C_QKEY, C_QFP, N_I64 };
enum { C_CONF, C_TIME, C_COST, C_EPOCH, N_F64 };
enum { C_KIND, C_SUCCESS, C_TS_KIND, C_FIX, C_QHAS, N_U8 };
#define ROW_BYTES (N_I32 * 4 + N_I64 * 8 + N_F64 * 8 + N_U8)

typedef struct {
    uint64_t hash;
    uint64_t prov1; /* provisional id + 1; 0 = empty */
} Slot;

typedef struct {
    uint8_t *bytes;
    Py_ssize_t len;
} QKey;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t nslots;
    size_t nprov;
    uint64_t mask; /* all ones; fewer bits in tests, to force collisions */
    /* quality keys: number -> bytes (written by the scan, read by the fold on another thread:
     * the array never moves, and a key is complete before nqkeys counts it) */
    QKey *qkeys;
    Py_ssize_t nqkeys;
    Slot *qslots; /* hash -> key number + 1, QKEYS_MAX * 2 of them */
} Scanner;

/* Eight bytes a step (a byte-wise FNV-1a paid a multiply per byte of every key on the
 * loader's critical path); keys are compared byte for byte and probes are capped, so the hash only spreads them. */
static uint64_t q_hash(const uint8_t *p, Py_ssize_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, p + i, (size_t)(n - i));
    h = (h ^ w) * 0x94d049bb133111ebULL;
    return h ^ (h >> 29);
}

/* The number of a quality key, a new one if unseen; -2 if there is no room (read in full),
 * -3 if out of memory. Runs without the GIL. */
static int64_t q_number(Scanner *sc, const uint8_t *key, Py_ssize_t n) {
    if (!sc->qkeys) {
        sc->qkeys = calloc(QKEYS_MAX, sizeof *sc->qkeys);
        sc->qslots = calloc(2 * QKEYS_MAX, sizeof *sc->qslots);
        if (!sc->qkeys || !sc->qslots) return -3;
    }
    uint64_t h = q_hash(key, n);
    size_t mask = 2 * QKEYS_MAX - 1, j = (size_t)h & mask;
    for (int probe = 0; probe < QPROBES; probe++, j = (j + 1) & mask) {
        Slot *e = &sc->qslots[j];
        if (!e->prov1) {
            Py_ssize_t num = __atomic_load_n(&sc->nqkeys, __ATOMIC_RELAXED);
            if (num >= QKEYS_MAX) return -2;
            uint8_t *copy = malloc(n);
            if (!copy) return -3;
            memcpy(copy, key, n);
            sc->qkeys[num].bytes = copy;
            sc->qkeys[num].len = n;
            e->hash = h;
            e->prov1 = (uint64_t)num + 1;
            __atomic_store_n(&sc->nqkeys, num + 1, __ATOMIC_RELEASE);
            return num;
        }
        if (e->hash == h) {
            const QKey *k = &sc->qkeys[e->prov1 - 1];
            if (k->len == n && memcmp(k->bytes, key, n) == 0) return (int64_t)e->prov1 - 1;
        }
    }
    return -2;
}

static int grow_slots(Scanner *sc) {
    size_t n = sc->nslots ? sc->nslots * 2 : 1 << 16;
    Slot *slots = calloc(n, sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < sc->nslots; i++) {
        if (!sc->slots[i].prov1) continue;
        size_t j = (size_t)sc->slots[i].hash & (n - 1);
        while (slots[j].prov1) j = (j + 1) & (n - 1);
        slots[j] = sc->slots[i];
    }
    free(sc->slots);
    sc->slots = slots;
    sc->nslots = n;
    return 1;
}

/* The provisional id of an id's hash (a new one if the hash is new); -1 if out of memory. */
static int64_t provisional(Scanner *sc, uint64_t h) {
    if ((sc->nprov + 1) * 4 > sc->nslots * 3 && !grow_slots(sc)) return -1;
    size_t j = (size_t)h & (sc->nslots - 1);
    for (;;) {
        Slot *e = &sc->slots[j];
        if (!e->prov1) break;
        if (e->hash == h) return (int64_t)e->prov1 - 1;
        j = (j + 1) & (sc->nslots - 1);
    }
    sc->slots[j].hash = h;
    sc->slots[j].prov1 = ++sc->nprov;
    return (int64_t)sc->nprov - 1;
}

static int Scanner_init(Scanner *sc, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"hash_bits", NULL};
    int bits = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", kwlist, &bits)) return -1;
    if (bits < 1 || bits > 64) {
        PyErr_SetString(PyExc_ValueError, "hash_bits must be 1..64");
        return -1;
    }
    sc->mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    return 0;
}

static void Scanner_dealloc(Scanner *sc) {
    free(sc->slots);
    if (sc->qkeys)
        for (Py_ssize_t i = 0; i < sc->nqkeys; i++) free(sc->qkeys[i].bytes);
    free(sc->qkeys);
    free(sc->qslots);
    Py_TYPE(sc)->tp_free((PyObject *)sc);
}

/* Scanner.scan(block, length=-1) -> (n, columns): one row per line of the first `length`
 * bytes of `block` (whole lines separated by b"\n"; the last may lack its newline); `columns` is a bytearray holding, one after
 * another, N_I32 int32 columns, N_I64 int64, N_F64 float64 and N_U8 uint8 columns of n. */
static PyObject *Scanner_scan(Scanner *sc, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTuple(args, "y*|n", &buf, &limit)) return NULL;
    if (limit < 0 || limit > buf.len) limit = buf.len;
    if (limit > INT32_MAX) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "block larger than 2 GiB");
        return NULL;
    }
    const uint8_t *base = buf.buf, *end = base + limit, *p;
    Py_ssize_t n = 0;
    for (p = base; p < end; n++) {
        const uint8_t *nl = memchr(p, '\n', end - p);
        if (!nl) {
            n++;
            break;
        }
        p = nl + 1;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, n * ROW_BYTES);
    if (!out) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    char *o = PyByteArray_AS_STRING(out);
    int32_t *i32 = (int32_t *)o;
    int64_t *i64 = (int64_t *)(o + (size_t)n * N_I32 * 4);
    double *f64 = (double *)(o + (size_t)n * (N_I32 * 4 + N_I64 * 8));
    uint8_t *u8 = (uint8_t *)(o + (size_t)n * (N_I32 * 4 + N_I64 * 8 + N_F64 * 8));
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0;
    for (p = base; i < n; i++) {
        const uint8_t *nl = memchr(p, '\n', end - p);
        const uint8_t *line_end = nl ? nl : end;
        Rec r;
        Hint hint = {sc->mask};
        r.kind = scan_line(base, p, line_end, &r, &hint);
        r.start = p - base;
        r.len = line_end - p;
        /* the id's hash for now; its number is looked up below, several lines at a time */
        int64_t prov = -1;
        if (r.kind != K_BLANK && r.kind != K_OTHER) {
            prov = (int64_t)r.sid_hash;
        }
        const Span *spans[] = {&r.ts, &r.run, &r.sid, &r.image, &r.path, &r.error, &r.metrics,
                              &r.quality, &r.dwc};
        i32[C_START * n + i] = (int32_t)r.start;
        i32[C_LEN * n + i] = (int32_t)r.len;
        for (int k = 0; k < 9; k++) {
            int blank = r.kind == K_BLANK || r.kind == K_OTHER;
            i32[(C_TS_OFF + 2 * k) * n + i] = blank ? 0 : (int32_t)spans[k]->off;
            i32[(C_TS_LEN + 2 * k) * n + i] = blank ? -1 : (int32_t)spans[k]->len;
        }
        /* the quality object's key number (its key was made as the scan read it) */
        int64_t qkey = -1;
        uint64_t qfp = 0;
        uint8_t qhas = 0;
        if ((r.kind == K_COMPLETED || r.kind == K_FAILED) && r.quality.len > 0) {
            qkey = r.qok ? q_number(sc, r.qkey, r.qklen) : -2;
            if (qkey == -3) failed = 1;
            if (qkey >= 0) qfp = r.qfp, qhas = r.qhas;
        }
        int64_t iv[N_I64] = {r.seq, r.sequence, r.fields, r.attempts, r.tokens, prov,
                             qkey, (int64_t)qfp};
        for (int k = 0; k < N_I64; k++) i64[k * n + i] = iv[k];
        double fv[N_F64] = {r.conf, r.time_ms, r.cost, r.epoch};
        for (int k = 0; k < N_F64; k++) f64[k * n + i] = fv[k];
        u8[C_KIND * n + i] = r.kind;
        u8[C_SUCCESS * n + i] = r.success;
        u8[C_TS_KIND * n + i] = r.ts_kind;
        u8[C_FIX * n + i] = r.fix;
        u8[C_QHAS * n + i] = qhas;
        if (!nl) {
            i++;
            break;
        }
        p = nl + 1;
    }
    /* Numbers for the hashes, with each slot fetched eight lines ahead: the table is too big
     * for the cache, and looking them up one by one waited on memory most of the time. */
    int64_t *provs = i64 + (size_t)C_PROV * n;
    const uint8_t *kinds = u8 + (size_t)C_KIND * n;
    for (Py_ssize_t k = 0; k < n && !failed; k++) {
        Py_ssize_t ahead = k + 8;
        if (ahead < n && kinds[ahead] != K_BLANK && kinds[ahead] != K_OTHER && sc->nslots)
            __builtin_prefetch(&sc->slots[(uint64_t)provs[ahead] & (sc->nslots - 1)]);
        if (kinds[k] == K_BLANK || kinds[k] == K_OTHER) continue;
        int64_t prov = provisional(sc, (uint64_t)provs[k]);
        if (prov < 0) failed = 1;
        provs[k] = prov;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (failed) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("nN", n, out);
}

static PyObject *Scanner_count(Scanner *sc, PyObject *noargs) {
    (void)noargs;
    return PyLong_FromSize_t(sc->nprov);
}

/* Scanner.quality_keys(start) -> list[bytes]: the quality keys from number `start` on. */
static PyObject *Scanner_quality_keys(Scanner *sc, PyObject *args) {
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "n", &start)) return NULL;
    Py_ssize_t n = __atomic_load_n(&sc->nqkeys, __ATOMIC_ACQUIRE);
    if (start < 0) start = 0;
    PyObject *list = PyList_New(start < n ? n - start : 0);
    if (!list) return NULL;
    for (Py_ssize_t i = start; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)sc->qkeys[i].bytes, sc->qkeys[i].len);
        if (!b) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i - start, b);
    }
    return list;
}

static PyMethodDef Scanner_methods[] = {
    {"quality_keys", (PyCFunction)Scanner_quality_keys, METH_VARARGS,
     "Quality keys from a number on."},
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS, "Scan a block of lines into columns."},
    {"count", (PyCFunction)Scanner_count, METH_NOARGS, "Provisional ids handed out so far."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "herbdesk.events._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scans the blocks of one load in order.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

/* A str from ASCII bytes the scanner has already checked (no validation pass). */
static PyObject *ascii_str(const char *p, Py_ssize_t n) {
    PyObject *s = PyUnicode_New(n, 127);
    if (s) memcpy(PyUnicode_DATA(s), p, n);
    return s;
}

/* rows(block, offsets, lengths, row_of, keys, out_rows, insert=1) -> rows added
 * For each (offset, length) span of `block` (ASCII specimen ids): its row in `row_of`; a
 * new id gets the next row (len(keys)) and is appended to `keys`, and put in `row_of` unless
 * `insert` is 0 (the caller then knows no id repeats). Rows go to `out_rows` (int64). The
 * fold's `_row` lookup for a whole segment at once. */
static PyObject *rows(PyObject *self, PyObject *args) {
    Py_buffer buf, offs, lens, out;
    PyObject *row_of, *keys;
    int insert = 1;
    if (!PyArg_ParseTuple(args, "y*y*y*O!O!w*|p", &buf, &offs, &lens, &PyDict_Type, &row_of,
                          &PyList_Type, &keys, &out, &insert))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int64_t), added = 0;
    const int64_t *o = offs.buf, *l = lens.buf;
    int64_t *rows_out = out.buf;
    if (lens.len != offs.len || out.len < offs.len) {
        PyErr_SetString(PyExc_ValueError, "offsets, lengths and rows differ in size");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (o[i] < 0 || l[i] < 0 || o[i] + l[i] > buf.len) {
            PyErr_SetString(PyExc_ValueError, "span outside the block");
            goto done;
        }
        PyObject *key = ascii_str((const char *)buf.buf + o[i], l[i]);
        if (!key) goto done;
        /* borrowed; an empty dict (a fresh load) needs no look-up, nor the id's hash */
        PyObject *row = PyDict_GET_SIZE(row_of) ? PyDict_GetItemWithError(row_of, key) : NULL;
        if (row) {
            rows_out[i] = PyLong_AsLongLong(row);
            Py_DECREF(key);
            if (rows_out[i] == -1 && PyErr_Occurred()) goto done;
            continue;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto done;
        }
        Py_ssize_t next = PyList_GET_SIZE(keys);
        if (insert) {
            PyObject *num = PyLong_FromSsize_t(next);
            int failed = !num || PyDict_SetItem(row_of, key, num) < 0;
            Py_XDECREF(num);
            if (failed) {
                Py_DECREF(key);
                goto done;
            }
        }
        if (PyList_Append(keys, key) < 0) {
            Py_DECREF(key);
            goto done;
        }
        Py_DECREF(key);
        rows_out[i] = next;
        added++;
    }
    result = PyLong_FromSsize_t(added);
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    PyBuffer_Release(&out);
    return result;
}

/* verify(block, offsets, lengths, rows, keys) -> bytearray
 * 1 where keys[rows[i]] is exactly the i-th span of `block`, else 0 (row -1: unknown). */
static PyObject *verify(PyObject *self, PyObject *args) {
    Py_buffer buf, offs, lens, rws;
    PyObject *keys, *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*O!", &buf, &offs, &lens, &rws, &PyList_Type, &keys))
        return NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *o = offs.buf, *l = lens.buf, *r = rws.buf;
    if (lens.len != offs.len || rws.len != offs.len) {
        PyErr_SetString(PyExc_ValueError, "offsets, lengths and rows differ in size");
        goto done;
    }
    out = PyByteArray_FromStringAndSize(NULL, n);
    if (!out) goto done;
    uint8_t *ok = (uint8_t *)PyByteArray_AS_STRING(out);
    Py_ssize_t nkeys = PyList_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        ok[i] = 0;
        if (r[i] < 0 || r[i] >= nkeys || o[i] < 0 || l[i] < 0 || o[i] + l[i] > buf.len) continue;
        PyObject *key = PyList_GET_ITEM(keys, r[i]);
        if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key) || PyUnicode_GET_LENGTH(key) != l[i])
            continue;
        ok[i] = memcmp(PyUnicode_1BYTE_DATA(key), (const char *)buf.buf + o[i], l[i]) == 0;
    }
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    PyBuffer_Release(&rws);
    return out;
}

/* same(block, offsets, lengths, offsets2, lengths2) -> bytearray
 * 1 where the two spans of `block` hold the same bytes. */
static PyObject *same(PyObject *self, PyObject *args) {
    Py_buffer buf, o1, l1, o2, l2;
    PyObject *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &buf, &o1, &l1, &o2, &l2)) return NULL;
    Py_ssize_t n = o1.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *a = o1.buf, *al = l1.buf, *b = o2.buf, *bl = l2.buf;
    if (l1.len != o1.len || o2.len != o1.len || l2.len != o1.len) {
        PyErr_SetString(PyExc_ValueError, "spans differ in number");
        goto done;
    }
    out = PyByteArray_FromStringAndSize(NULL, n);
    if (!out) goto done;
    uint8_t *eq = (uint8_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        int inside = a[i] >= 0 && b[i] >= 0 && al[i] >= 0 && bl[i] >= 0 &&
                     a[i] + al[i] <= buf.len && b[i] + bl[i] <= buf.len;
        eq[i] = inside && al[i] == bl[i] &&
                memcmp((const char *)buf.buf + a[i], (const char *)buf.buf + b[i], al[i]) == 0;
    }
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&o1);
    PyBuffer_Release(&l1);
    PyBuffer_Release(&o2);
    PyBuffer_Release(&l2);
    return out;
}

/* strings(block, offsets, lengths) -> list[str]: ASCII spans as text ("" for length -1). */
static PyObject *strings(PyObject *self, PyObject *args) {
    Py_buffer buf, offs, lens;
    if (!PyArg_ParseTuple(args, "y*y*y*", &buf, &offs, &lens)) return NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *o = offs.buf, *l = lens.buf;
    PyObject *list = NULL;
    if (lens.len != offs.len) {
        PyErr_SetString(PyExc_ValueError, "offsets and lengths differ in size");
        goto done;
    }
    list = PyList_New(n);
    if (!list) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t len = l[i] < 0 ? 0 : l[i];
        if (o[i] < 0 || o[i] + len > buf.len) {
            PyErr_SetString(PyExc_ValueError, "span outside the block");
            Py_CLEAR(list);
            goto done;
        }
        PyObject *s = ascii_str((const char *)buf.buf + o[i], len);
        if (!s) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, s);
    }
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    return list;
}

/* ---- the records' values (data.dwc) as categorical columns, for runstate/terms.py ----
 * dwc_columns(block, offsets, lengths) -> (columns, odd)
 * Reads n spans of `block`, each a record's flat `dwc` object, without a Python object per
 * value: columns is a list of (key, codes, values), one per distinct key (its raw bytes:
 * keys with escapes are left to Python), codes an int32 per span (0: no such key; c: values
 * [c - 1]) and values the key's distinct values: a string without escapes as str, any other
 * value as its raw JSON (bytes). odd is a byte per
 * span, 1 where the caller must read the span itself: not an object, not valid JSON/UTF-8, a
 * key twice or escaped, numbers a double may not hold. Interning raw bytes keeps the Python
 * side's work to one decode per distinct value. */
#define DWC_MAX_KEYS 512
#define DWC_MAX_FIELDS 128

typedef struct {
    uint64_t hash;
    int64_t code; /* 0: empty slot; the value itself is vp/vl[code - 1] (a small slot: the
                   * tables of unique values, catalog numbers, outgrow the caches) */
} VSlot;

typedef struct {
    const uint8_t *p;
    int64_t len;
    uint64_t hash;
    int32_t *codes;
    VSlot *slots;
    size_t nslots;
    int32_t nvals;
    const uint8_t **vp; /* values in code order */
    int64_t *vl;
    size_t vcap;
} DKey;

static void dkeys_free(DKey *keys, int nkeys) {
    for (int k = 0; k < nkeys; k++) {
        PyMem_RawFree(keys[k].codes);
        PyMem_RawFree(keys[k].slots);
        PyMem_RawFree(keys[k].vp);
        PyMem_RawFree(keys[k].vl);
    }
}

/* Make room in key k's table for one more value (before its slot is looked at); 0 when out
 * of memory. */
static int dkey_room(DKey *k) {
    if ((size_t)k->nvals * 2 + 2 < k->nslots) return 1;
    size_t ns = k->nslots ? k->nslots * 2 : 256;
    VSlot *sl = PyMem_RawCalloc(ns, sizeof(VSlot));
    if (!sl) return 0;
    for (size_t j = 0; j < k->nslots; j++) {
        if (!k->slots[j].code) continue;
        size_t h = (size_t)k->slots[j].hash & (ns - 1);
        while (sl[h].code) h = (h + 1) & (ns - 1);
        sl[h] = k->slots[j];
    }
    PyMem_RawFree(k->slots);
    k->slots = sl;
    k->nslots = ns;
    return 1;
}

/* The code of a raw value of key k with hash hv (interned on first sight; dkey_room first);
 * -1 when out of memory. */
static int32_t dkey_code(DKey *k, const uint8_t *p, int64_t len, uint64_t hv) {
    size_t h = (size_t)hv & (k->nslots - 1);
    while (k->slots[h].code) {
        VSlot *v = &k->slots[h];
        int64_t c = v->code - 1;
        if (v->hash == hv && k->vl[c] == len && memcmp(k->vp[c], p, (size_t)len) == 0)
            return (int32_t)v->code;
        h = (h + 1) & (k->nslots - 1);
    }
    if ((size_t)k->nvals >= k->vcap) {
        size_t cap = k->vcap ? k->vcap * 2 : 256;
        const uint8_t **vp = PyMem_RawRealloc(k->vp, cap * sizeof *vp);
        if (!vp) return -1;
        k->vp = vp;
        int64_t *vl = PyMem_RawRealloc(k->vl, cap * sizeof *vl);
        if (!vl) return -1;
        k->vl = vl;
        k->vcap = cap;
    }
    k->vp[k->nvals] = p;
    k->vl[k->nvals] = len;
    int32_t code = ++k->nvals;
    k->slots[h] = (VSlot){hv, code};
    return code;
}

/* One span: its fields (key index, value span) if it is a flat object this reads, else 0. */
static int dwc_record(const uint8_t *base, const uint8_t *s, const uint8_t *e, DKey *keys,
                      int *nkeys, Py_ssize_t n, int *kidx, const uint8_t **vp, int64_t *vl,
                      int *nf, int *oom) {
    Cur cur = {s, e, 0, 1}, *c = &cur;
    *nf = 0;
    skip_ws(c);
    if (c->p >= e || *c->p != '{') return 0;
    c->p++;
    skip_ws(c);
    if (c->p < e && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            Span ks;
            int esc;
            skip_ws(c);
            if (c->p >= e || *c->p != '"' || !parse_string(c, base, &ks, &esc) || esc) return 0;
            skip_ws(c);
            if (c->p >= e || *c->p != ':') return 0;
            c->p++;
            skip_ws(c);
            const uint8_t *v0 = c->p;
            if (!skip_value(c, base, 2)) return 0;
            if (*nf >= DWC_MAX_FIELDS) return 0;
            const uint8_t *kp = base + ks.off;
            uint64_t kh = hash_bytes(kp, (size_t)ks.len);
            int k = 0;
            while (k < *nkeys && !(keys[k].hash == kh && keys[k].len == ks.len &&
                                   memcmp(keys[k].p, kp, (size_t)ks.len) == 0))
                k++;
            if (k == *nkeys) {
                if (k >= DWC_MAX_KEYS) return 0;
                DKey *nk = &keys[k];
                memset(nk, 0, sizeof *nk);
                nk->p = kp;
                nk->len = ks.len;
                nk->hash = kh;
                nk->codes = PyMem_RawCalloc((size_t)(n ? n : 1), sizeof(int32_t));
                if (!nk->codes) {
                    *oom = 1;
                    return 0;
                }
                (*nkeys)++;
            }
            for (int j = 0; j < *nf; j++)
                if (kidx[j] == k) return 0; /* a key twice: JSON readers keep the last */
            kidx[*nf] = k;
            vp[*nf] = v0;
            vl[*nf] = c->p - v0;
            (*nf)++;
            skip_ws(c);
            if (c->p >= e) return 0;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p != '}') return 0;
            c->p++;
            break;
        }
    }
    skip_ws(c);
    return c->p == e && !c->other;
}

static PyObject *dwc_columns(PyObject *self, PyObject *args) {
    Py_buffer buf, offs, lens;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*", &buf, &offs, &lens)) return NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *o = offs.buf, *l = lens.buf;
    const uint8_t *base = buf.buf;
    PyObject *result = NULL, *cols = NULL, *odd = NULL;
    DKey *keys = PyMem_RawCalloc(DWC_MAX_KEYS, sizeof(DKey));
    int nkeys = 0, oom = 0;
    if (!keys) {
        PyErr_NoMemory();
        goto done;
    }
    if (lens.len != offs.len) {
        PyErr_SetString(PyExc_ValueError, "offsets and lengths differ in size");
        goto done;
    }
    odd = PyByteArray_FromStringAndSize(NULL, n);
    if (!odd) goto done;
    uint8_t *oddp = (uint8_t *)PyByteArray_AS_STRING(odd);
    int kidx[DWC_MAX_FIELDS];
    const uint8_t *vp[DWC_MAX_FIELDS];
    int64_t vl[DWC_MAX_FIELDS];
    /* no Python object is touched until the columns are handed over (raw allocators): other
     * threads run meanwhile (terms.py decodes the previous batch's values beside it) */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !oom; i++) {
        int nf = 0;
        int inside = o[i] >= 0 && l[i] > 0 && o[i] + l[i] <= buf.len;
        if (!inside ||
            !dwc_record(base, base + o[i], base + o[i] + l[i], keys, &nkeys, n, kidx, vp, vl, &nf,
                        &oom)) {
            oddp[i] = 1;
            continue;
        }
        oddp[i] = 0;
        /* the slots of all fields first (each a likely cache miss), then the look-ups */
        uint64_t hv[DWC_MAX_FIELDS];
        for (int j = 0; j < nf && !oom; j++) {
            DKey *dk = &keys[kidx[j]];
            if (!dkey_room(dk)) oom = 1;
            hv[j] = hash_bytes(vp[j], (size_t)vl[j]);
            if (!oom) __builtin_prefetch(&dk->slots[(size_t)hv[j] & (dk->nslots - 1)]);
        }
        for (int j = 0; j < nf && !oom; j++) {
            int32_t code = dkey_code(&keys[kidx[j]], vp[j], vl[j], hv[j]);
            if (code < 0) oom = 1;
            else keys[kidx[j]].codes[i] = code;
        }
    }
    Py_END_ALLOW_THREADS
    if (oom) {
        PyErr_NoMemory();
        goto done;
    }
    cols = PyList_New(0);
    if (!cols) goto done;
    for (int k = 0; k < nkeys; k++) {
        DKey *dk = &keys[k];
        if (!dk->nvals) continue;
        PyObject *key = PyBytes_FromStringAndSize((const char *)dk->p, dk->len);
        PyObject *codes = PyByteArray_FromStringAndSize((const char *)dk->codes,
                                                        (Py_ssize_t)(n * sizeof(int32_t)));
        PyObject *vals = PyList_New(dk->nvals);
        int failed = !key || !codes || !vals;
        for (int32_t v = 0; !failed && v < dk->nvals; v++) {
            const char *vp0 = (const char *)dk->vp[v];
            int64_t vn = dk->vl[v];
            PyObject *b;
            if (vn >= 2 && vp0[0] == '"' && !memchr(vp0 + 1, '\\', (size_t)(vn - 2)))
                b = PyUnicode_DecodeUTF8(vp0 + 1, vn - 2, "strict"); /* checked by the scan */
            else
                b = PyBytes_FromStringAndSize(vp0, vn);
            if (!b) failed = 1;
            else PyList_SET_ITEM(vals, v, b);
        }
        PyObject *t = failed ? NULL : PyTuple_Pack(3, key, codes, vals);
        Py_XDECREF(key);
        Py_XDECREF(codes);
        Py_XDECREF(vals);
        if (!t || PyList_Append(cols, t) < 0) {
            Py_XDECREF(t);
            goto done;
        }
        Py_DECREF(t);
    }
    result = PyTuple_Pack(2, cols, odd);
done:
    Py_XDECREF(cols);
    Py_XDECREF(odd);
    if (keys) {
        dkeys_free(keys, nkeys);
        PyMem_RawFree(keys);
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "Rows of specimen ids, adding new ones."},
    {"verify", verify, METH_VARARGS, "Whether each span equals its row's id."},
    {"same", same, METH_VARARGS, "Whether pairs of spans hold the same bytes."},
    {"strings", strings, METH_VARARGS, "ASCII spans of a block as str."},
    {"dwc_columns", dwc_columns, METH_VARARGS, "Records' flat value objects as columns."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__scan(void) {
    init_tables();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyType_Ready(&ScannerType) < 0 || PyModule_AddIntConstant(m, "ROW_BYTES", ROW_BYTES) < 0 ||
        PyModule_AddType(m, &ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
