/* _greet: a tiny CPython extension whose only job is to need libgreet.so.1. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "greet.h"

static PyObject *hello(PyObject *self, PyObject *args)
{
    const char *name;
    char buf[256];
    (void)self;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    greet_format(buf, sizeof buf, name);
    return PyUnicode_FromString(buf);
}

static PyMethodDef methods[] = {
    {"hello", hello, METH_VARARGS, "Return a greeting built by libgreet."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_greet", NULL, -1, methods};

PyMODINIT_FUNC PyInit__greet(void) { return PyModule_Create(&module); }
