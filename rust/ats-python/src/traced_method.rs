//! `TracedMethod`: a [`CallTracer`] placed in a class as a method, with no Python frame of its
//! own. A method defined in Python costs a frame and a second call per database call; this
//! type is a method descriptor (`Py_TPFLAGS_METHOD_DESCRIPTOR`) with vectorcall, the protocol
//! CPython's own C methods use, so `cursor.execute(sql, params)` reaches the tracer directly
//! with `(cursor, sql, params)` and the library's C method is called with the same argument
//! vector. PyO3 classes cannot declare either flag, hence the type spec here.
//!
//! Bound access (`getattr(cursor, "execute")`) returns an ordinary bound method; the class
//! attribute itself has the wrapped method's `__name__`, `__qualname__`, `__doc__` and a
//! `__wrapped__` (which `inspect.signature` follows).

use std::ffi::{c_int, c_ulong, c_void};
use std::ptr::{self, null_mut};
use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::active::CallTracer;

// The C API's values (stable since 3.8); PyO3 hides some of them behind its limited-API cfgs.
const TPFLAGS_IMMUTABLETYPE: c_ulong = 1 << 8;
const TPFLAGS_HAVE_VECTORCALL: c_ulong = 1 << 11;
const TPFLAGS_METHOD_DESCRIPTOR: c_ulong = 1 << 17;
const VECTORCALL_ARGUMENTS_OFFSET: usize = 1 << (usize::BITS - 1);
const T_OBJECT_EX: c_int = 16;
const T_PYSSIZET: c_int = 19;
const READONLY: c_int = 1;

extern "C" {
    // Exported by every CPython >= 3.9 (in the limited API only from 3.12 on).
    fn PyObject_VectorcallDict(
        callable: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwargs: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    fn PyVectorcall_Call(
        callable: *mut ffi::PyObject,
        args: *mut ffi::PyObject,
        kwargs: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    fn PyMethod_New(func: *mut ffi::PyObject, instance: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

type VectorcallFunc = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    usize,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

#[repr(C)]
struct RawTracedMethod {
    ob_base: ffi::PyObject,
    vectorcall: VectorcallFunc,
    /// Strong references, released in `dealloc`.
    tracer: *mut ffi::PyObject,
    func: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
    qualname: *mut ffi::PyObject,
    doc: *mut ffi::PyObject,
}

/// The type object, made once; it lives as long as the process.
struct TypeObject(*mut ffi::PyTypeObject);
// SAFETY: the pointer is only dereferenced by the C API with the GIL held.
unsafe impl Send for TypeObject {}
unsafe impl Sync for TypeObject {}

static TYPE: OnceLock<TypeObject> = OnceLock::new();

macro_rules! member {
    ($name:literal, $code:expr, $field:ident) => {
        ffi::PyMemberDef {
            name: concat!($name, "\0").as_ptr().cast(),
            type_code: $code,
            offset: std::mem::offset_of!(RawTracedMethod, $field) as ffi::Py_ssize_t,
            flags: READONLY,
            doc: ptr::null(),
        }
    };
}

fn type_object(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    if let Some(t) = TYPE.get() {
        return Ok(t.0);
    }
    // CPython keeps pointers into the member table (its descriptors) and the names: leaked once.
    let members: &'static mut [ffi::PyMemberDef] = Box::leak(Box::new([
        member!("__vectorcalloffset__", T_PYSSIZET, vectorcall),
        member!("__name__", T_OBJECT_EX, name),
        member!("__qualname__", T_OBJECT_EX, qualname),
        member!("__doc__", T_OBJECT_EX, doc),
        member!("__wrapped__", T_OBJECT_EX, func),
        ffi::PyMemberDef { name: ptr::null(), type_code: 0, offset: 0, flags: 0, doc: ptr::null() },
    ]));
    let slots: &'static mut [ffi::PyType_Slot] = Box::leak(Box::new([
        ffi::PyType_Slot { slot: ffi::Py_tp_call, pfunc: PyVectorcall_Call as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_descr_get, pfunc: descr_get as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: dealloc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_repr, pfunc: repr as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_members, pfunc: members.as_mut_ptr().cast() },
        ffi::PyType_Slot { slot: 0, pfunc: null_mut() },
    ]));
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"ats._native.TracedMethod".as_ptr(),
        basicsize: std::mem::size_of::<RawTracedMethod>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT as c_ulong
            | TPFLAGS_IMMUTABLETYPE
            | TPFLAGS_HAVE_VECTORCALL
            | TPFLAGS_METHOD_DESCRIPTOR) as _,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: a complete, 'static spec; the GIL is held.
    let made = unsafe { ffi::PyType_FromSpec(spec) };
    if made.is_null() {
        return Err(fetch(py));
    }
    // Another thread cannot have raced here: both would hold the GIL for the whole function.
    Ok(TYPE.get_or_init(|| TypeObject(made.cast())).0)
}

/// `tracer` as a method for a class body (see the module documentation).
pub fn new_traced_method(py: Python<'_>, tracer: Bound<'_, CallTracer>) -> PyResult<PyObject> {
    let func = tracer.get().func().bind(py).clone();
    let text = |attr: &str| -> PyResult<Bound<'_, PyAny>> {
        match func.getattr(attr) {
            Ok(value) => Ok(value),
            Err(_) if attr == "__doc__" => Ok(py.None().into_bound(py)),
            Err(_) => Ok(PyString::new(py, "traced").into_any()),
        }
    };
    let (name, qualname, doc) = (text("__name__")?, text("__qualname__")?, text("__doc__")?);
    let ty = type_object(py)?;
    // SAFETY: `ty` is our heap type; GenericAlloc zeroes the object and takes a type reference.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty, 0);
        if obj.is_null() {
            return Err(fetch(py));
        }
        let raw = obj.cast::<RawTracedMethod>();
        (*raw).vectorcall = vectorcall;
        (*raw).tracer = tracer.into_ptr();
        (*raw).func = func.into_ptr();
        (*raw).name = name.into_ptr();
        (*raw).qualname = qualname.into_ptr();
        (*raw).doc = doc.into_ptr();
        Ok(PyObject::from_owned_ptr(py, obj))
    }
}

unsafe extern "C" fn vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY (whole body): CPython calls this with the GIL held, `callable` one of ours, `args`
    // holding `nargs` (+ keyword) borrowed references.
    unsafe {
        let raw = callable.cast::<RawTracedMethod>();
        let nargs = nargsf & !VECTORCALL_ARGUMENTS_OFFSET;
        // Keyword arguments (sqlite3's methods take none: the library raises its own TypeError)
        // and calls without a statement go to the library untraced.
        if !kwnames.is_null() || nargs < 2 {
            return call_untraced(raw, args, nargs, kwnames);
        }
        let py = Python::assume_gil_acquired();
        let tracer = Borrowed::from_ptr(py, (*raw).tracer);
        let tracer = tracer.downcast_unchecked::<CallTracer>();
        let target = Borrowed::from_ptr(py, *args);
        let sql = Borrowed::from_ptr(py, *args.add(1));
        tracer.get().run_raw(py, &target, &sql, || {
            let result = PyObject_VectorcallDict((*raw).func, args, nargsf, null_mut());
            if result.is_null() {
                Err(fetch(py))
            } else {
                Ok(Bound::from_owned_ptr(py, result))
            }
        })
    }
}

/// The library's method with the caller's arguments exactly, keywords included.
unsafe fn call_untraced(
    raw: *mut RawTracedMethod,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `vectorcall`.
    unsafe {
        let py = Python::assume_gil_acquired();
        let call = || -> PyResult<Bound<'_, PyAny>> {
            let positional = PyTuple::new(py, (0..nargs).map(|i| Borrowed::from_ptr(py, *args.add(i))))?;
            let keywords = if kwnames.is_null() {
                None
            } else {
                let names = Borrowed::from_ptr(py, kwnames).downcast::<PyTuple>()?.to_owned();
                let dict = PyDict::new(py);
                for (i, name) in names.iter().enumerate() {
                    dict.set_item(name, Borrowed::from_ptr(py, *args.add(nargs + i)))?;
                }
                Some(dict)
            };
            Borrowed::from_ptr(py, (*raw).func).call(positional, keywords.as_ref())
        };
        match call() {
            Ok(value) => value.into_ptr(),
            Err(err) => {
                err.restore(py);
                null_mut()
            }
        }
    }
}

unsafe extern "C" fn descr_get(
    slf: *mut ffi::PyObject,
    instance: *mut ffi::PyObject,
    _owner: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython's descriptor protocol, GIL held.
    unsafe {
        if instance.is_null() || instance == ffi::Py_None() {
            ffi::Py_INCREF(slf);
            return slf;
        }
        PyMethod_New(slf, instance)
    }
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `slf` is one of ours, GIL held.
    unsafe {
        let py = Python::assume_gil_acquired();
        let raw = slf.cast::<RawTracedMethod>();
        let qualname = Borrowed::from_ptr(py, (*raw).qualname).to_string();
        PyString::new(py, &format!("<traced method {qualname}>")).into_ptr()
    }
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: the last reference is gone, GIL held; each field holds a strong reference.
    unsafe {
        let raw = slf.cast::<RawTracedMethod>();
        for field in [(*raw).tracer, (*raw).func, (*raw).name, (*raw).qualname, (*raw).doc] {
            ffi::Py_XDECREF(field);
        }
        let ty = ffi::Py_TYPE(slf);
        let free: unsafe extern "C" fn(*mut c_void) = std::mem::transmute(ffi::PyType_GetSlot(ty, ffi::Py_tp_free));
        free(slf.cast());
        ffi::Py_DECREF(ty.cast());
    }
}

/// The error a failed C call left (never panics, unlike `PyErr::fetch`, on a NULL without one).
fn fetch(py: Python<'_>) -> PyErr {
    PyErr::take(py).unwrap_or_else(|| PySystemError::new_err("error return without exception set"))
}
