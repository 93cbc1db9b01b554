/* chopin_core._tally: the metrics hot path in C (optional accelerator).
 *
 * A Tally adds to one worker's counters, a uint64 buffer laid out by
 * chopin_core.metrics (which passes the word indices in, so the layout is defined
 * once, in Python).  Per answered request the worker calls the bound method
 * `tally.request(started_ns)`: it reads CLOCK_MONOTONIC (the clock of
 * time.monotonic_ns, which the worker's loop reads on wake-up), and adds one to
 * the status class's word, the duration to the sum and one to the duration's
 * bucket -- the same filing as metrics.record(), without allocating an int.
 * `tally.sent(n)` adds n to the bytes-sent word.
 *
 * chopin_core/metrics.py has the pure-Python fallback (used when this module
 * did not compile, or with CHOPIN_PURE_PYTHON=1); the tests run against both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    Py_buffer view;     /* the counters: a writable, C-contiguous buffer of uint64 */
    uint64_t *words;
    Py_ssize_t nwords;
    Py_ssize_t status_word;
    Py_ssize_t sum_word;
    Py_ssize_t bucket_base;
    Py_ssize_t buckets;     /* bucket i < buckets: bit length <= 10 + i; then +Inf */
    Py_ssize_t sent_word;
} Tally;

static int
tally_init(Tally *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"counts", "status_word", "sum_word", "bucket_base", "buckets", "sent_word", NULL};
    PyObject *counts;
    if (self->words != NULL) {
        PyErr_SetString(PyExc_TypeError, "Tally is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Onnnnn", kwlist, &counts, &self->status_word, &self->sum_word,
                                     &self->bucket_base, &self->buckets, &self->sent_word)) {
        return -1;
    }
    if (PyObject_GetBuffer(counts, &self->view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    if (self->view.itemsize != 8 || self->view.format == NULL ||
        (strcmp(self->view.format, "Q") != 0 && strcmp(self->view.format, "=Q") != 0 &&
         strcmp(self->view.format, "<Q") != 0)) {
        PyBuffer_Release(&self->view);
        PyErr_SetString(PyExc_TypeError, "counts: expected a writable buffer of uint64 ('Q')");
        return -1;
    }
    self->nwords = self->view.len / 8;
    if (self->buckets < 0 || self->status_word < 0 || self->sum_word < 0 || self->sent_word < 0 ||
        self->bucket_base < 0 || self->status_word >= self->nwords || self->sum_word >= self->nwords ||
        self->sent_word >= self->nwords || self->bucket_base + self->buckets >= self->nwords) {
        PyBuffer_Release(&self->view);
        PyErr_SetString(PyExc_ValueError, "a word index is outside counts");
        return -1;
    }
    self->words = (uint64_t *)self->view.buf;
    return 0;
}

static void
tally_dealloc(Tally *self)
{
    if (self->words != NULL) {
        PyBuffer_Release(&self->view);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
tally_request(Tally *self, PyObject *started_obj)
{
    struct timespec ts;
    int overflow;
    /* Not PyLong_AsLongLong: on 3.11 it goes through _PyLong_AsByteArray for any int of two digits. */
    long long started = PyLong_AsLongLongAndOverflow(started_obj, &overflow);
    if (started == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "started_ns does not fit in 64 bits");
        return NULL;
    }
    if (self->words == NULL) {
        PyErr_SetString(PyExc_TypeError, "Tally is not initialised");
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    uint64_t elapsed = now > started ? (uint64_t)(now - started) : 0;
    int bits = elapsed ? 64 - __builtin_clzll(elapsed) : 0;
    Py_ssize_t bucket = bits <= 10 ? 0 : bits - 10;
    if (bucket > self->buckets) {
        bucket = self->buckets;
    }
    uint64_t *words = self->words;
    words[self->status_word] += 1;
    words[self->sum_word] += elapsed;
    words[self->bucket_base + bucket] += 1;
    Py_RETURN_NONE;
}

static PyObject *
tally_sent(Tally *self, PyObject *n_obj)
{
    unsigned long long n = PyLong_AsUnsignedLongLong(n_obj);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (self->words == NULL) {
        PyErr_SetString(PyExc_TypeError, "Tally is not initialised");
        return NULL;
    }
    self->words[self->sent_word] += n;
    Py_RETURN_NONE;
}

static PyMethodDef tally_methods[] = {
    {"request", (PyCFunction)tally_request, METH_O,
     "request(started_ns): count one answered request that started at started_ns (time.monotonic_ns)."},
    {"sent", (PyCFunction)tally_sent, METH_O, "sent(n): count n bytes written."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "chopin_core._tally.Tally",
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tally(counts, status_word, sum_word, bucket_base, buckets, sent_word): adds to a uint64 buffer.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tally_init,
    .tp_dealloc = (destructor)tally_dealloc,
    .tp_methods = tally_methods,
};

static struct PyModuleDef tally_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "chopin_core._tally",
    .m_doc = "The metrics hot path in C (optional; chopin_core.metrics has the pure-Python fallback).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__tally(void)
{
    if (PyType_Ready(&TallyType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&tally_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&TallyType);
    if (PyModule_AddObject(module, "Tally", (PyObject *)&TallyType) < 0) {
        Py_DECREF(&TallyType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
