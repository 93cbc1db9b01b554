/* chopin_pg._rows, second part: binary COPY rows encoded in C (optional accelerator).
 *
 * Not compiled on its own: _rows.c #includes it, so the accelerator stays one
 * extension module built from one command (hatch_build.py).
 *
 * encode_rows() is the C twin of the loop _copy_binary.python_rows_writer compiles
 * for a tuple of column types: for each row it appends the binary COPY tuple
 * (PostgreSQL docs, COPY, "Binary Format": an int16 field count, then per field
 * an int32 length, -1 for NULL, and the value in its type's *_send layout) to
 * `buffer`, and calls flush() whenever the buffer holds `limit` bytes or more
 * after a row -- the same bytes and the same flush points as the Python loop.
 *
 * It encodes itself only what is not in doubt: exact int, float, bool, str,
 * bytes, bytearray, uuid.UUID, date and datetime values of the column types
 * _copy_binary.C_KINDS names.  A value of another Python type (a subclass, an
 * IntEnum, a dict for jsonb, a naive datetime for a timestamptz column in a
 * zone with offset changes...) is encoded by calling the column's Python
 * encoder, after the isinstance check encode_row makes for strict columns.  A
 * row it cannot encode at all -- not a tuple or list of the column count, a
 * value out of range, an encoder that raised -- is handed whole to the Python
 * writer (`fallback`), which gives its bytes or raises its error naming the
 * column.  So the bytes and the errors are the Python encoders' by
 * construction; tests/test_copy_binary_accelerated.py compares both over
 * generated rows.
 *
 * The rows are built in a private scratch buffer and moved into `buffer` before
 * each flush(), before the Python writer runs, and at the end (also when an
 * error ends the call: the rows before it are in the buffer, as with the Python
 * loop).
 */

/* Column kinds: _copy_binary.C_KINDS maps the field codecs' names to these codes. */
enum {
    E_CALL = 0,
    E_BOOL = 1,
    E_INT2 = 2,
    E_INT4 = 3,
    E_INT8 = 4,
    E_FLOAT4 = 5,
    E_FLOAT8 = 6,
    E_TEXT = 7,
    E_BYTEA = 8,
    E_UUID = 9,
    E_JSON = 10,
    E_JSONB = 11,
    E_DATE = 12,
    E_TIMESTAMP = 13,
    E_TIMESTAMPTZ = 14,
    E_COUNT = 15
};

/* Set once by configure_copy(): uuid.UUID and the offset of its "int" slot. */
static PyTypeObject *copy_uuid_type = NULL;
static Py_ssize_t uuid_int_offset = -1;
static PyObject *str_utcoffset = NULL;

/* date(2000, 1, 1).toordinal(), and the microseconds from 2000-01-01 of datetime.min and .max. */
#define PG_EPOCH_TOORDINAL 730120LL
#define DATETIME_MIN_US ((1LL - PG_EPOCH_TOORDINAL) * US_PER_DAY)
#define DATETIME_MAX_US ((3652059LL - PG_EPOCH_TOORDINAL) * US_PER_DAY + US_PER_DAY - 1)
#define INF32 2147483647LL
#define INF64 9223372036854775807LL

static PyObject *
configure_copy(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "configure_copy(UUID, int_slot)");
        return NULL;
    }
    Py_ssize_t offset = member_offset(args[1], "int_slot");
    if (offset < 0) {
        return NULL;
    }
    Py_XSETREF(copy_uuid_type, (PyTypeObject *)Py_NewRef(args[0]));
    uuid_int_offset = offset;
    Py_RETURN_NONE;
}

/* The rows of one call, before they are moved into the caller's bytearray. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Scratch;

static int
scratch_reserve(Scratch *s, Py_ssize_t more)
{
    if (s->cap - s->len >= more) {
        return 0;
    }
    Py_ssize_t cap = s->cap ? s->cap : 16384;
    while (cap - s->len < more) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(s->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->data = data;
    s->cap = cap;
    return 0;
}

/* Move the scratch rows to the end of `buffer`. */
static int
scratch_move(Scratch *s, PyObject *buffer)
{
    if (s->len == 0) {
        return 0;
    }
    Py_ssize_t size = PyByteArray_GET_SIZE(buffer);
    if (PyByteArray_Resize(buffer, size + s->len) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(buffer) + size, s->data, (size_t)s->len);
    s->len = 0;
    return 0;
}

static inline void
put16(Scratch *s, uint16_t v)
{
    unsigned char *p = (unsigned char *)s->data + s->len;
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    s->len += 2;
}

static inline void
put32(Scratch *s, uint32_t v)
{
    unsigned char *p = (unsigned char *)s->data + s->len;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    s->len += 4;
}

static inline void
put64(Scratch *s, uint64_t v)
{
    put32(s, (uint32_t)(v >> 32));
    put32(s, (uint32_t)v);
}

/* A field of `size` bytes from `p`, with its length. */
static int
put_field(Scratch *s, const char *p, Py_ssize_t size)
{
    if (scratch_reserve(s, 4 + size) < 0) {
        return -1;
    }
    put32(s, (uint32_t)size);
    memcpy(s->data + s->len, p, (size_t)size);
    s->len += size;
    return 0;
}

/* date.toordinal() of a proleptic Gregorian date (0001-01-01 is 1). */
static long long
to_ordinal(int year, int month, int day)
{
    static const int before_month[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long long y = year - 1;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return y * 365 + y / 4 - y / 100 + y / 400 + before_month[month] + (month > 2 && leap) + day;
}

/* A datetime's naive fields as microseconds from 2000-01-01 00:00. */
static long long
naive_us(PyObject *dt)
{
    long long days = to_ordinal(PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt), PyDateTime_GET_DAY(dt));
    long long secs = (PyDateTime_DATE_GET_HOUR(dt) * 60LL + PyDateTime_DATE_GET_MINUTE(dt)) * 60LL +
                     PyDateTime_DATE_GET_SECOND(dt);
    return (days - PG_EPOCH_TOORDINAL) * US_PER_DAY + secs * 1000000LL + PyDateTime_DATE_GET_MICROSECOND(dt);
}

/* Whether a datetime's naive fields are datetime.max's (1) or datetime.min's (-1); fold and tzinfo
 * do not count, as in _copy_binary's `value.replace(tzinfo=None) == datetime.max`. */
static int
infinite_datetime(PyObject *dt)
{
    int y = PyDateTime_GET_YEAR(dt), mo = PyDateTime_GET_MONTH(dt), d = PyDateTime_GET_DAY(dt);
    int h = PyDateTime_DATE_GET_HOUR(dt), mi = PyDateTime_DATE_GET_MINUTE(dt), s = PyDateTime_DATE_GET_SECOND(dt);
    int us = PyDateTime_DATE_GET_MICROSECOND(dt);
    if (y == 9999 && mo == 12 && d == 31 && h == 23 && mi == 59 && s == 59 && us == 999999) {
        return 1;
    }
    if (y == 1 && mo == 1 && d == 1 && h == 0 && mi == 0 && s == 0 && us == 0) {
        return -1;
    }
    return 0;
}

/* A timedelta as microseconds. */
static long long
delta_us(PyObject *delta)
{
    return (PyDateTime_DELTA_GET_DAYS(delta) * 86400LL + PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000LL +
           PyDateTime_DELTA_GET_MICROSECONDS(delta);
}

/* What one encode_rows() call knows about its columns. */
typedef struct {
    Py_ssize_t ncols;
    int kind[MAX_COLUMNS];
    PyObject *encoders; /* tuple: each column's Python encoder (FieldCodec.encode) */
    PyObject *accepts;  /* tuple: the types a strict column takes, or None */
    /* timestamptz columns: the session zone's fixed offset for naive values, if it has one */
    int naive_fixed[MAX_COLUMNS];
    long long naive_offset[MAX_COLUMNS];
    /* the last `datetime.timezone` met in a timestamptz value, and its offset */
    PyObject *last_zone;
    long long last_offset;
} Columns;

/* After a failed call: 0 (hand the row to the Python writer) for an Exception, else -1 (raise it). */
static int
give_way(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* The value through the column's Python encoder: 1 written, 0 hand the row over, -1 raise. */
static int
encode_by_call(Columns *cols, Py_ssize_t i, PyObject *v, Scratch *s)
{
    PyObject *accepts = PyTuple_GET_ITEM(cols->accepts, i);
    if (accepts != Py_None) { /* encode_row's check for strict columns */
        int ok = PyObject_IsInstance(v, accepts);
        if (ok <= 0) {
            return ok < 0 ? give_way() : 0;
        }
    }
    PyObject *data = PyObject_CallOneArg(PyTuple_GET_ITEM(cols->encoders, i), v);
    if (data == NULL) {
        return give_way();
    }
    int done = 0;
    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) <= INT32_MAX) {
        done = put_field(s, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0 ? -1 : 1;
    }
    Py_DECREF(data);
    return done;
}

/* A str as UTF-8, after `prefix` bytes (jsonb's version byte): 1 written, 0 hand over, -1 raise. */
static int
encode_str(PyObject *v, const char *prefix, Py_ssize_t prefix_len, Scratch *s)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(v) < 0) { /* a string made by the legacy API (3.11) */
        return give_way();
    }
#endif
    PyObject *utf8 = NULL;
    const char *p;
    Py_ssize_t n;
    if (PyUnicode_IS_ASCII(v)) {
        p = (const char *)PyUnicode_DATA(v);
        n = PyUnicode_GET_LENGTH(v);
    }
    else {
        /* A bytes object as str.encode() makes (not PyUnicode_AsUTF8AndSize, which would keep
         * a UTF-8 copy on the caller's string for its lifetime). */
        utf8 = PyUnicode_AsUTF8String(v);
        if (utf8 == NULL) {
            return give_way(); /* a lone surrogate: the Python encoder reports it */
        }
        p = PyBytes_AS_STRING(utf8);
        n = PyBytes_GET_SIZE(utf8);
    }
    int done = 0;
    if (n <= INT32_MAX - prefix_len) {
        done = -1;
        if (scratch_reserve(s, 4 + prefix_len + n) == 0) {
            put32(s, (uint32_t)(prefix_len + n));
            memcpy(s->data + s->len, prefix, (size_t)prefix_len);
            memcpy(s->data + s->len + prefix_len, p, (size_t)n);
            s->len += prefix_len + n;
            done = 1;
        }
    }
    Py_XDECREF(utf8);
    return done;
}

/* A timestamptz value's UTC offset in microseconds: 1 found, 0 ask its Python encoder, -1 raise. */
static int
utc_offset(Columns *cols, Py_ssize_t i, PyObject *v, long long *offset)
{
    PyObject *zone = PyDateTime_DATE_GET_TZINFO(v);
    if (zone == Py_None) { /* the Python encoder puts a naive value in the session zone */
        *offset = cols->naive_offset[i];
        return cols->naive_fixed[i];
    }
    if (zone == PyDateTime_TimeZone_UTC) {
        *offset = 0;
        return 1;
    }
    if (zone == cols->last_zone) {
        *offset = cols->last_offset;
        return 1;
    }
    /* Any tzinfo: what astimezone() asks, v.utcoffset() (checked by datetime to be a timedelta
     * within a day, or None: astimezone then takes the value as local time; leave that to Python). */
    PyObject *delta = PyObject_CallMethodNoArgs(v, str_utcoffset);
    if (delta == NULL) {
        return give_way();
    }
    if (!PyDelta_Check(delta)) {
        Py_DECREF(delta);
        return 0;
    }
    *offset = delta_us(delta);
    Py_DECREF(delta);
    if (Py_IS_TYPE(zone, Py_TYPE(PyDateTime_TimeZone_UTC))) { /* a datetime.timezone: one offset, keep it */
        Py_XSETREF(cols->last_zone, Py_NewRef(zone));
        cols->last_offset = *offset;
    }
    return 1;
}

/* One non-None value: 1 written, 0 hand the row to the Python writer, -1 raise. */
static int
encode_value(Columns *cols, Py_ssize_t i, PyObject *v, Scratch *s)
{
    int overflow;
    long long x;
    double d;
    if (scratch_reserve(s, 4 + 16) < 0) { /* room for any fixed-size field */
        return -1;
    }
    switch (cols->kind[i]) {
    case E_BOOL:
        if (PyBool_Check(v)) {
            put32(s, 1);
            s->data[s->len++] = v == Py_True ? 1 : 0;
            return 1;
        }
        break;
    case E_INT2:
    case E_INT4:
    case E_INT8:
        if (PyLong_CheckExact(v)) {
            x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow == 0 && !(x == -1 && PyErr_Occurred())) {
                if (cols->kind[i] == E_INT8) {
                    put32(s, 8);
                    put64(s, (uint64_t)x);
                    return 1;
                }
                if (cols->kind[i] == E_INT4 && x >= INT32_MIN && x <= INT32_MAX) {
                    put32(s, 4);
                    put32(s, (uint32_t)(int32_t)x);
                    return 1;
                }
                if (cols->kind[i] == E_INT2 && x >= INT16_MIN && x <= INT16_MAX) {
                    put32(s, 2);
                    put16(s, (uint16_t)(int16_t)x);
                    return 1;
                }
            }
            PyErr_Clear();
            return 0; /* out of range: the Python writer raises the column's error */
        }
        break;
    case E_FLOAT4:
    case E_FLOAT8:
        /* struct.pack("!d" / "!f") takes float(v): PyFloat_Pack8/4 of it, as struct does. */
        if (PyFloat_CheckExact(v)) {
            d = PyFloat_AS_DOUBLE(v);
        }
        else if (PyLong_CheckExact(v)) {
            d = PyLong_AsDouble(v);
            if (d == -1.0 && PyErr_Occurred()) {
                return give_way(); /* too large for a float */
            }
        }
        else {
            break;
        }
        if (cols->kind[i] == E_FLOAT8) {
            put32(s, 8);
            if (PyFloat_Pack8(d, s->data + s->len, 0) < 0) {
                return give_way();
            }
            s->len += 8;
        }
        else {
            put32(s, 4);
            if (PyFloat_Pack4(d, s->data + s->len, 0) < 0) {
                return give_way(); /* too large for float4 */
            }
            s->len += 4;
        }
        return 1;
    case E_TEXT:
    case E_JSON:
        if (PyUnicode_CheckExact(v)) {
            return encode_str(v, "", 0, s);
        }
        break;
    case E_JSONB:
        if (PyUnicode_CheckExact(v)) {
            return encode_str(v, "\x01", 1, s); /* the version byte, then the text */
        }
        break;
    case E_BYTEA:
        if (PyBytes_CheckExact(v) && PyBytes_GET_SIZE(v) <= INT32_MAX) {
            return put_field(s, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v)) < 0 ? -1 : 1;
        }
        if (PyByteArray_CheckExact(v) && PyByteArray_GET_SIZE(v) <= INT32_MAX) {
            return put_field(s, PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v)) < 0 ? -1 : 1;
        }
        break;
    case E_UUID:
        /* UUID.bytes is self.int.to_bytes(16): the int slot, big-endian, unsigned. */
        if (copy_uuid_type != NULL && Py_IS_TYPE(v, copy_uuid_type)) {
            PyObject *number = *(PyObject **)((char *)v + uuid_int_offset);
            if (number != NULL && PyLong_Check(number)) {
                put32(s, 16);
#if PY_VERSION_HEX >= 0x030D0000
                int failed = _PyLong_AsByteArray((PyLongObject *)number, (unsigned char *)s->data + s->len, 16, 0, 0, 1);
#else
                int failed = _PyLong_AsByteArray((PyLongObject *)number, (unsigned char *)s->data + s->len, 16, 0, 0);
#endif
                if (failed < 0) {
                    return give_way(); /* negative or past 128 bits: to_bytes raises */
                }
                s->len += 16;
                return 1;
            }
        }
        break;
    case E_DATE:
        if (PyDate_CheckExact(v)) {
            int y = PyDateTime_GET_YEAR(v), m = PyDateTime_GET_MONTH(v), day = PyDateTime_GET_DAY(v);
            put32(s, 4);
            if (y == 9999 && m == 12 && day == 31) {
                put32(s, (uint32_t)INF32); /* date.max: infinity */
            }
            else if (y == 1 && m == 1 && day == 1) {
                put32(s, (uint32_t)(-INF32 - 1)); /* date.min: -infinity */
            }
            else {
                put32(s, (uint32_t)(to_ordinal(y, m, day) - PG_EPOCH_TOORDINAL));
            }
            return 1;
        }
        if (PyDateTime_CheckExact(v)) { /* its date; never infinite (a datetime is not == date.max) */
            put32(s, 4);
            put32(s, (uint32_t)(to_ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)) -
                                PG_EPOCH_TOORDINAL));
            return 1;
        }
        break;
    case E_TIMESTAMP:
    case E_TIMESTAMPTZ:
        if (PyDateTime_CheckExact(v)) {
            int infinite = infinite_datetime(v);
            if (infinite != 0) {
                x = infinite > 0 ? INF64 : -INF64 - 1;
            }
            else if (cols->kind[i] == E_TIMESTAMP) {
                x = naive_us(v); /* a timestamp column ignores an offset, as the text format */
            }
            else {
                long long offset;
                int found = utc_offset(cols, i, v, &offset);
                if (found <= 0) {
                    if (found < 0) {
                        return -1;
                    }
                    break;
                }
                x = naive_us(v) - offset;
                if (x < DATETIME_MIN_US || x > DATETIME_MAX_US) {
                    return 0; /* astimezone(UTC) overflows: the Python writer raises */
                }
            }
            put32(s, 8);
            put64(s, (uint64_t)x);
            return 1;
        }
        break;
    default:
        break;
    }
    return encode_by_call(cols, i, v, s);
}

/* One row's values (ncols of them): 1 written, 0 hand the row over (scratch as it was), -1 raise. */
static int
encode_row_values(Columns *cols, PyObject *const *items, Scratch *s)
{
    Py_ssize_t start = s->len;
    if (scratch_reserve(s, 2) < 0) {
        return -1;
    }
    put16(s, (uint16_t)cols->ncols);
    for (Py_ssize_t i = 0; i < cols->ncols; i++) {
        PyObject *v = items[i];
        int done;
        if (v == Py_None) {
            done = scratch_reserve(s, 4) < 0 ? -1 : 1;
            if (done > 0) {
                put32(s, 0xFFFFFFFFu);
            }
        }
        else {
            done = encode_value(cols, i, v, s);
        }
        if (done <= 0) {
            s->len = start;
            return done;
        }
    }
    return 1;
}

/* Hand one row to the Python writer: fallback((row,), buffer, flush, limit). */
static int
write_by_python(PyObject *fallback, PyObject *row, PyObject *buffer, PyObject *flush, PyObject *limit, Scratch *s)
{
    if (scratch_move(s, buffer) < 0) {
        return -1;
    }
    PyObject *one = PyTuple_Pack(1, row);
    if (one == NULL) {
        return -1;
    }
    PyObject *call_args[4] = {one, buffer, flush, limit};
    PyObject *done = PyObject_Vectorcall(fallback, call_args, 4, NULL);
    Py_DECREF(one);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

/* encode_rows(kinds, encoders, accepts, zones, fallback, rows, buffer, flush, limit) -> None
 * (the first five are the column types': _copy_binary binds them with functools.partial). */
static PyObject *
encode_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "encode_rows(kinds, encoders, accepts, zones, fallback, rows, buffer, flush, limit)");
        return NULL;
    }
    PyObject *kinds = args[0], *zones = args[3], *fallback = args[4], *rows = args[5], *buffer = args[6];
    PyObject *flush = args[7], *limit_obj = args[8];
    if (!PyBytes_Check(kinds) || !PyTuple_Check(args[1]) || !PyTuple_Check(args[2]) || !PyTuple_Check(zones) ||
        !PyByteArray_Check(buffer)) {
        PyErr_SetString(PyExc_TypeError, "encode_rows: bytes, tuple, tuple, tuple, writer, rows, bytearray expected");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(limit_obj);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Columns cols;
    cols.ncols = PyBytes_GET_SIZE(kinds);
    cols.encoders = args[1];
    cols.accepts = args[2];
    cols.last_zone = NULL;
    cols.last_offset = 0;
    if (cols.ncols < 1 || cols.ncols > MAX_COLUMNS || PyTuple_GET_SIZE(cols.encoders) != cols.ncols ||
        PyTuple_GET_SIZE(cols.accepts) != cols.ncols || PyTuple_GET_SIZE(zones) != cols.ncols) {
        PyErr_SetString(PyExc_ValueError, "encode_rows: kinds, encoders, accepts and zones differ in length");
        return NULL;
    }
    const unsigned char *kind_bytes = (const unsigned char *)PyBytes_AS_STRING(kinds);
    for (Py_ssize_t i = 0; i < cols.ncols; i++) {
        cols.kind[i] = kind_bytes[i] < E_COUNT ? kind_bytes[i] : E_CALL;
        cols.naive_fixed[i] = 0;
        cols.naive_offset[i] = 0;
        /* A naive value goes into the session zone: C does it when that zone has one offset
         * (UTC, a datetime.timezone); in a zone with offset changes its Python encoder does. */
        PyObject *zone = PyTuple_GET_ITEM(zones, i);
        if (zone == PyDateTime_TimeZone_UTC) {
            cols.naive_fixed[i] = 1;
        }
        else if (Py_IS_TYPE(zone, Py_TYPE(PyDateTime_TimeZone_UTC))) {
            PyObject *delta = PyObject_CallMethodOneArg(zone, str_utcoffset, Py_None);
            if (delta == NULL) {
                return NULL;
            }
            if (PyDelta_Check(delta)) {
                cols.naive_fixed[i] = 1;
                cols.naive_offset[i] = delta_us(delta);
            }
            Py_DECREF(delta);
        }
    }

    PyObject *iterator = PyObject_GetIter(rows);
    if (iterator == NULL) {
        return NULL;
    }
    Scratch s = {NULL, 0, 0};
    PyObject *held[MAX_COLUMNS];
    PyObject *row;
    while ((row = PyIter_Next(iterator)) != NULL) {
        /* A tuple or list of the column count, iterated as a tuple or list (what unpacking
         * `v0, v1, ... = values` in the Python loop reads); anything else goes to that loop. */
        PyObject *const *items = NULL;
        Py_ssize_t held_count = 0;
        if (PyTuple_Check(row) && Py_TYPE(row)->tp_iter == PyTuple_Type.tp_iter &&
            PyTuple_GET_SIZE(row) == cols.ncols) {
            items = ((PyTupleObject *)row)->ob_item;
        }
        else if (PyList_Check(row) && Py_TYPE(row)->tp_iter == PyList_Type.tp_iter &&
                 PyList_GET_SIZE(row) == cols.ncols) {
            /* Hold the items: a Python encoder called for one of them could change the list. */
            for (; held_count < cols.ncols; held_count++) {
                held[held_count] = Py_NewRef(PyList_GET_ITEM(row, held_count));
            }
            items = held;
        }
        int done = items != NULL ? encode_row_values(&cols, items, &s) : 0;
        for (Py_ssize_t j = 0; j < held_count; j++) {
            Py_DECREF(held[j]);
        }
        if (done == 0) {
            done = write_by_python(fallback, row, buffer, flush, limit_obj, &s) < 0 ? -1 : 2;
        }
        Py_DECREF(row);
        if (done < 0) {
            goto error;
        }
        if (done == 1 && PyByteArray_GET_SIZE(buffer) + s.len >= limit) {
            if (scratch_move(&s, buffer) < 0) {
                goto error;
            }
            PyObject *flushed = PyObject_CallNoArgs(flush);
            if (flushed == NULL) {
                goto error;
            }
            Py_DECREF(flushed);
        }
    }
    if (PyErr_Occurred() || scratch_move(&s, buffer) < 0) {
        goto error;
    }
    Py_DECREF(iterator);
    Py_XDECREF(cols.last_zone);
    PyMem_Free(s.data);
    Py_RETURN_NONE;
error:
    /* Keep the rows encoded before the error in the buffer, as the Python loop does. */
    {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (scratch_move(&s, buffer) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, traceback);
    }
    Py_DECREF(iterator);
    Py_XDECREF(cols.last_zone);
    PyMem_Free(s.data);
    return NULL;
}
