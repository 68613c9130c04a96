/* _demo: a CPython extension module whose only function calls into libalpha.
 * With -DMANYWHEEL_NO_PYTHON_H (cross and musl builds) it only exports a stand-in
 * PyInit__demo, so the file has the shape of an extension without Python.h. */
int alpha_value(void);

#ifdef MANYWHEEL_NO_PYTHON_H

__attribute__((visibility("default"))) void *PyInit__demo(void) {
  return (void *)(long)alpha_value();
}

#else

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *demo_alpha(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  return PyLong_FromLong(alpha_value());
}

static PyMethodDef demo_methods[] = {
    {"alpha", demo_alpha, METH_NOARGS, "Return alpha_value() from libalpha."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef demo_module = {
    PyModuleDef_HEAD_INIT, "_demo", "manywheel test extension", -1, demo_methods,
};

PyMODINIT_FUNC PyInit__demo(void) { return PyModule_Create(&demo_module); }

#endif
