/* chopin_pg._rows: DataRow decoding in C (optional accelerator).
 *
 * (Binary COPY row encoding, the other half of this module, is in _rows_copy.c,
 * #included below: one extension, built by one command.)
 *
 * decode_rows() walks the DataRow messages (PostgreSQL docs §55.7) that lie whole
 * in a read, from `pos`, and appends one chopin_pg.Row per message to a list, with
 * no Python call per row or per value for the common column types: integers,
 * floats, bool, text, numeric (as text, parsed by decimal.Decimal, itself C),
 * uuid, jsonb (orjson.loads), timestamp and timestamptz in a UTC session.  A
 * column of another type calls its Python decoder with the value's bytes.
 *
 * It stops -- returning the offset of the message it did not decode -- at any
 * message that is not a whole, well-formed DataRow of the statement's column
 * count, and at any value it cannot decode exactly as the Python decoders do (an
 * unexpected size, a timestamp outside datetime's range, a jsonb number orjson
 * would round, invalid UTF-8, a decoder that raised).  The caller
 * (Session.read_execute) then decodes that message with the generated Python
 * decoder (chopin_pg/_row_decoder.py), which gives the value or raises its usual
 * error, and calls decode_rows again past it.  So the values and the errors are
 * the Python decoders' by construction; the C code only does the cases whose
 * result is not in doubt.
 *
 * chopin_pg/_row_decoder.py has the pure-Python path (used when this module did
 * not compile, or with CHOPIN_PURE_PYTHON=1); the tests run against both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* Column kinds: _row_decoder.C_KINDS maps its kind names to these codes. */
enum {
    K_CALL = 0,
    K_INT2 = 1,
    K_INT4 = 2,
    K_INT8 = 3,
    K_OID = 4,
    K_FLOAT4 = 5,
    K_FLOAT8 = 6,
    K_BOOL = 7,
    K_TEXT = 8,
    K_NUMERIC = 9,
    K_UUID = 10,
    K_JSONB = 11,
    K_TIMESTAMP = 12,
    K_TIMESTAMPTZ = 13,
    K_COUNT = 14
};

#define MAX_COLUMNS 64

/* Set once by configure(): the types and functions the values are built with. */
static PyTypeObject *row_type = NULL;
static Py_ssize_t values_offset = -1; /* Row's __slots__ "_values" and "_names" */
static Py_ssize_t names_offset = -1;
static PyObject *decimal_type = NULL;
static PyTypeObject *uuid_type = NULL;
static PyObject *uuid_unknown = NULL;  /* uuid.SafeUUID.unknown */
static PyObject *orjson_loads = NULL;  /* None: no orjson (jsonb columns are K_CALL then) */
static PyObject *pg_epoch = NULL;      /* 2000-01-01 00:00, naive */
static long long min_us = 0, max_us = 0; /* microseconds from pg_epoch that datetime can hold */
static PyObject *str_int = NULL, *str_is_safe = NULL;

static inline uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t
be64(const unsigned char *p)
{
    return ((uint64_t)be32(p) << 32) | (uint64_t)be32(p + 4);
}

static Py_ssize_t
member_offset(PyObject *descr, const char *what)
{
    if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "configure: %s must be a __slots__ member descriptor", what);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "configure: %s is not an object slot", what);
        return -1;
    }
    return member->offset;
}

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(row_type, values_slot, names_slot, Decimal, UUID, unknown, loads, epoch, min_us, max_us)");
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyType_Check(args[4]) || !PyDateTime_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "configure: row_type and UUID must be types, epoch a datetime");
        return NULL;
    }
    Py_ssize_t values = member_offset(args[1], "values_slot");
    Py_ssize_t names = member_offset(args[2], "names_slot");
    if (values < 0 || names < 0) {
        return NULL;
    }
    long long lo = PyLong_AsLongLong(args[8]);
    long long hi = PyLong_AsLongLong(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_XSETREF(row_type, (PyTypeObject *)Py_NewRef(args[0]));
    values_offset = values;
    names_offset = names;
    Py_XSETREF(decimal_type, Py_NewRef(args[3]));
    Py_XSETREF(uuid_type, (PyTypeObject *)Py_NewRef(args[4]));
    Py_XSETREF(uuid_unknown, Py_NewRef(args[5]));
    Py_XSETREF(orjson_loads, Py_NewRef(args[6]));
    Py_XSETREF(pg_epoch, Py_NewRef(args[7]));
    min_us = lo;
    max_us = hi;
    Py_RETURN_NONE;
}

/* The civil date of a day count from 0001-01-01 (day 0), proleptic Gregorian
 * (H. Hinnant's civil_from_days, shifted to datetime's ordinal epoch). */
static void
civil_from_ordinal(long long ordinal, int *year, int *month, int *day)
{
    long long z = ordinal - 719162 + 719468; /* days from 1970-01-01, then from 0000-03-01 */
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

/* 2000-01-01 (PostgreSQL's epoch) as a day count from 0001-01-01. */
#define PG_EPOCH_ORDINAL 730119LL
#define US_PER_DAY 86400000000LL

/* epoch + timedelta(microseconds=us) when epoch is 2000-01-01 00:00:00 (naive, or
 * aware with `tzinfo`): datetime arithmetic keeps tzinfo and does not
 * normalise, so the fields are the naive sum's.  NULL without an error: not
 * this case (the caller goes the Python way). */
static PyObject *
timestamp_value(long long us, PyObject *tzinfo)
{
    if (us < min_us || us > max_us) {
        return NULL;
    }
    long long days = us / US_PER_DAY, rest = us % US_PER_DAY;
    if (rest < 0) {
        rest += US_PER_DAY;
        days -= 1;
    }
    int year, month, day;
    civil_from_ordinal(PG_EPOCH_ORDINAL + days, &year, &month, &day);
    if (year < 1 || year > 9999) {
        return NULL;
    }
    long long secs = rest / 1000000;
    return PyDateTimeAPI->DateTime_FromDateAndTime(year, month, day, (int)(secs / 3600), (int)(secs / 60 % 60),
                                                   (int)(secs % 60), (int)(rest % 1000000), tzinfo,
                                                   PyDateTimeAPI->DateTimeType);
}

/* Whether a datetime is 2000-01-01 00:00:00.000000, fold 0 (the fields timestamp_value assumes). */
static int
is_pg_epoch(PyObject *dt)
{
    return PyDateTime_Check(dt) && PyDateTime_GET_YEAR(dt) == 2000 && PyDateTime_GET_MONTH(dt) == 1 &&
           PyDateTime_GET_DAY(dt) == 1 && PyDateTime_DATE_GET_HOUR(dt) == 0 && PyDateTime_DATE_GET_MINUTE(dt) == 0 &&
           PyDateTime_DATE_GET_SECOND(dt) == 0 && PyDateTime_DATE_GET_MICROSECOND(dt) == 0 &&
           PyDateTime_DATE_GET_FOLD(dt) == 0;
}

/* _codecs.may_lose_precision on JSON text: 19 digits in a row, or an exponent
 * of three or more digits (with or without a sign). */
static int
may_lose_precision(const unsigned char *p, Py_ssize_t n)
{
    int digits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch >= '0' && ch <= '9') {
            if (++digits >= 19) {
                return 1;
            }
            continue;
        }
        digits = 0;
        if (ch == 'e' || ch == 'E') {
            Py_ssize_t j = i + 1;
            if (j < n && (p[j] == '+' || p[j] == '-')) {
                j++;
            }
            if (j + 3 <= n && p[j] >= '0' && p[j] <= '9' && p[j + 1] >= '0' && p[j + 1] <= '9' && p[j + 2] >= '0' &&
                p[j + 2] <= '9') {
                return 1;
            }
        }
    }
    return 0;
}

/* One value of `kind` from p[0:size] (size >= 0).  NULL without an error set:
 * decode the row the Python way; NULL with an error: a real failure (memory). */
static PyObject *
decode_value(int kind, const unsigned char *p, Py_ssize_t size, PyObject *decoder, PyObject *tzinfo)
{
    PyObject *value, *text, *number, *raw;
    switch (kind) {
    case K_INT2:
        return size == 2 ? PyLong_FromLong((int16_t)(((unsigned)p[0] << 8) | p[1])) : NULL;
    case K_INT4:
        return size == 4 ? PyLong_FromLong((int32_t)be32(p)) : NULL;
    case K_INT8:
        return size == 8 ? PyLong_FromLongLong((int64_t)be64(p)) : NULL;
    case K_OID:
        return size == 4 ? PyLong_FromUnsignedLong(be32(p)) : NULL;
    case K_FLOAT4:
        if (size != 4) {
            return NULL;
        }
        {
            double d = PyFloat_Unpack4((const char *)p, 0);
            return d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
        }
    case K_FLOAT8:
        if (size != 8) {
            return NULL;
        }
        {
            double d = PyFloat_Unpack8((const char *)p, 0);
            return d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
        }
    case K_BOOL:
        return size == 1 ? Py_NewRef(p[0] == 1 ? Py_True : Py_False) : NULL;
    case K_TEXT:
        return PyUnicode_DecodeUTF8((const char *)p, size, NULL);
    case K_NUMERIC:
        text = PyUnicode_DecodeUTF8((const char *)p, size, NULL);
        if (text == NULL) {
            return NULL;
        }
        value = PyObject_CallOneArg(decimal_type, text);
        Py_DECREF(text);
        return value;
    case K_UUID:
        if (size != 16) {
            return NULL;
        }
        number = _PyLong_FromByteArray(p, 16, 0, 0); /* big-endian, unsigned: int.from_bytes(b) */
        if (number == NULL) {
            return NULL;
        }
        /* UUID.__new__(UUID), then object.__setattr__ of its two slots: what uuid_binary does. */
        value = uuid_type->tp_alloc(uuid_type, 0);
        if (value == NULL || PyObject_GenericSetAttr(value, str_int, number) < 0 ||
            PyObject_GenericSetAttr(value, str_is_safe, uuid_unknown) < 0) {
            Py_XDECREF(value);
            Py_DECREF(number);
            return NULL;
        }
        Py_DECREF(number);
        return value;
    case K_JSONB:
        /* jsonb's binary form: a version byte (1), then JSON text. */
        if (size < 1 || p[0] != 1 || may_lose_precision(p + 1, size - 1)) {
            return NULL;
        }
        raw = PyBytes_FromStringAndSize((const char *)p + 1, size - 1);
        if (raw == NULL) {
            return NULL;
        }
        value = PyObject_CallOneArg(orjson_loads, raw);
        Py_DECREF(raw);
        return value;
    case K_TIMESTAMP:
    case K_TIMESTAMPTZ:
        return size == 8 ? timestamp_value((long long)(int64_t)be64(p), tzinfo) : NULL;
    default: /* K_CALL */
        raw = PyBytes_FromStringAndSize((const char *)p, size);
        if (raw == NULL) {
            return NULL;
        }
        value = PyObject_CallOneArg(decoder, raw);
        Py_DECREF(raw);
        return value;
    }
}

/* decode_rows(kinds, decoders, epochs, names, data, pos, limit, out, max_size) -> pos
 * (the statement's four first: _row_decoder binds them with functools.partial). */
static PyObject *
decode_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "decode_rows(kinds, decoders, epochs, names, data, pos, limit, out, max_size)");
        return NULL;
    }
    PyObject *kinds = args[0], *decoders = args[1], *epochs = args[2], *names = args[3], *data = args[4];
    PyObject *out = args[7];
    if (row_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "chopin_pg._rows.configure() was not called");
        return NULL;
    }
    if (!PyBytes_Check(data) || !PyBytes_Check(kinds) || !PyTuple_Check(decoders) || !PyTuple_Check(epochs) ||
        !PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "decode_rows: bytes, tuple, tuple, dict, bytes, int, int, list, int expected");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[5]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[6]);
    Py_ssize_t max_size = PyLong_AsSsize_t(args[8]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t ncols = PyBytes_GET_SIZE(kinds);
    if (ncols < 1 || ncols > MAX_COLUMNS || PyTuple_GET_SIZE(decoders) != ncols || PyTuple_GET_SIZE(epochs) != ncols ||
        limit > PyBytes_GET_SIZE(data) || pos < 0) {
        PyErr_SetString(PyExc_ValueError, "decode_rows: kinds, decoders and epochs differ in length, or bad offsets");
        return NULL;
    }
    /* Each column's kind for this call and, for timestamps, the tzinfo of its epoch:
     * a timestamptz column's epoch is read once per call (no ParameterStatus can
     * change the zone between the DataRows of one read); a zone that is not
     * fixed (None), or an epoch that is not 2000-01-01 00:00, sends the column
     * to its Python decoder. */
    int kind_of[MAX_COLUMNS];
    PyObject *tz_of[MAX_COLUMNS];
    PyObject *epoch_refs[MAX_COLUMNS];
    const unsigned char *kind_bytes = (const unsigned char *)PyBytes_AS_STRING(kinds);
    for (Py_ssize_t i = 0; i < ncols; i++) {
        int kind = kind_bytes[i] < K_COUNT ? kind_bytes[i] : K_CALL;
        if (kind == K_JSONB && orjson_loads == Py_None) {
            kind = K_CALL;
        }
        epoch_refs[i] = NULL;
        tz_of[i] = Py_None;
        if (kind == K_TIMESTAMP) {
            if (!is_pg_epoch(pg_epoch) || PyDateTime_DATE_GET_TZINFO(pg_epoch) != Py_None) {
                kind = K_CALL;
            }
        }
        else if (kind == K_TIMESTAMPTZ) {
            PyObject *epoch = PyObject_CallNoArgs(PyTuple_GET_ITEM(epochs, i));
            if (epoch == NULL) {
                /* The generated decoder calls the getter per row and raises what it
                 * raises: leave every row to it (an Exception), or propagate. */
                for (Py_ssize_t j = 0; j < i; j++) {
                    Py_XDECREF(epoch_refs[j]);
                }
                if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                    return NULL;
                }
                PyErr_Clear();
                return PyLong_FromSsize_t(pos);
            }
            epoch_refs[i] = epoch;
            if (is_pg_epoch(epoch)) {
                tz_of[i] = PyDateTime_DATE_GET_TZINFO(epoch);
            }
            else {
                kind = K_CALL; /* None (a zone with offset changes) or an unexpected epoch */
            }
        }
        kind_of[i] = kind;
    }

    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(data);
    while (limit - pos >= 7 && buf[pos] == 'D') {
        Py_ssize_t length = (Py_ssize_t)(int32_t)be32(buf + pos + 1);
        if (length < 6 || length >= max_size || pos + 1 + length > limit) {
            break; /* a partial message (read more) or a bad length (the caller refuses it) */
        }
        Py_ssize_t end = pos + 1 + length;
        Py_ssize_t p = pos + 5;
        if ((Py_ssize_t)(((unsigned)buf[p] << 8) | buf[p + 1]) != ncols) {
            break;
        }
        p += 2;
        PyObject *values = PyTuple_New(ncols);
        if (values == NULL) {
            goto done;
        }
        Py_ssize_t i = 0;
        for (; i < ncols; i++) {
            if (end - p < 4) {
                break;
            }
            Py_ssize_t size = (Py_ssize_t)(int32_t)be32(buf + p);
            p += 4;
            PyObject *value;
            if (size < 0) {
                value = Py_NewRef(Py_None);
            }
            else {
                if (end - p < size) {
                    break;
                }
                value = decode_value(kind_of[i], buf + p, size, PyTuple_GET_ITEM(decoders, i), tz_of[i]);
                if (value == NULL) {
                    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
                        Py_DECREF(values);
                        goto done; /* KeyboardInterrupt, SystemExit: raise them */
                    }
                    PyErr_Clear(); /* the Python decoder gives the value or raises the error */
                    break;
                }
                p += size;
            }
            PyTuple_SET_ITEM(values, i, value);
        }
        if (i < ncols || p != end) {
            Py_DECREF(values);
            break;
        }
        PyObject *row = row_type->tp_alloc(row_type, 0);
        if (row == NULL) {
            Py_DECREF(values);
            goto done;
        }
        *(PyObject **)((char *)row + values_offset) = values;
        *(PyObject **)((char *)row + names_offset) = Py_NewRef(names);
        int appended = PyList_Append(out, row);
        Py_DECREF(row);
        if (appended < 0) {
            goto done;
        }
        pos = end;
    }
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Py_XDECREF(epoch_refs[j]);
    }
    return PyLong_FromSsize_t(pos);
done:
    /* An allocation failed (or a decoder raised what is not an Exception): a MemoryError
     * stops here, before the row, which the Python decoder then meets as it would have
     * (read_execute records it and reads on to ReadyForQuery); KeyboardInterrupt and
     * the like propagate, as they do from the Python decoder. */
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Py_XDECREF(epoch_refs[j]);
    }
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return PyLong_FromSsize_t(pos);
    }
    return NULL;
}

#include "_rows_copy.c"

static PyMethodDef rows_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(row_type, values_slot, names_slot, Decimal, UUID, unknown, loads, epoch, min_us, max_us): "
     "what values are built with (chopin_pg._row_decoder calls it once)."},
    {"decode_rows", (PyCFunction)(void (*)(void))decode_rows, METH_FASTCALL,
     "decode_rows(kinds, decoders, epochs, names, data, pos, limit, out, max_size) -> int: append the whole "
     "DataRows from data[pos:limit] to out as Rows; return where it stopped."},
    {"configure_copy", (PyCFunction)(void (*)(void))configure_copy, METH_FASTCALL,
     "configure_copy(UUID, int_slot): the UUID type and its int slot (chopin_pg._copy_binary calls it once)."},
    {"encode_rows", (PyCFunction)(void (*)(void))encode_rows, METH_FASTCALL,
     "encode_rows(kinds, encoders, accepts, zones, fallback, rows, buffer, flush, limit): append the rows as "
     "binary COPY tuples to buffer, calling flush() whenever it holds limit bytes or more."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rows_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "chopin_pg._rows",
    .m_doc = "DataRow decoding and binary COPY row encoding in C (optional; chopin_pg._row_decoder and "
             "chopin_pg._copy_binary have the pure-Python paths).",
    .m_size = -1,
    .m_methods = rows_methods,
};

PyMODINIT_FUNC
PyInit__rows(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    str_int = PyUnicode_InternFromString("int");
    str_is_safe = PyUnicode_InternFromString("is_safe");
    str_utcoffset = PyUnicode_InternFromString("utcoffset");
    if (str_int == NULL || str_is_safe == NULL || str_utcoffset == NULL) {
        return NULL;
    }
    return PyModule_Create(&rows_module);
}
