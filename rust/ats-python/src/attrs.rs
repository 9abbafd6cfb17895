//! Python attribute dicts → borrowed `AttrRef`s for the encoder.
//!
//! Values are borrowed from the Python objects (valid while the GIL is held,
//! which it is for the whole record call); only text that is not valid UTF-8
//! and values of other types are copied.

use std::borrow::Cow;

use ats_core::record::AttrRef;
use pyo3::prelude::*;
use smallvec::SmallVec;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::text::lossy;

pub enum Value<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl Value<'_> {
    pub fn as_ref(&self) -> AttrRef<'_> {
        match self {
            Value::Str(s) => AttrRef::Str(s),
            Value::I64(v) => AttrRef::I64(*v),
            Value::F64(v) => AttrRef::F64(*v),
            Value::Bool(v) => AttrRef::Bool(*v),
        }
    }
}

fn convert<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Value<'a>> {
    // bool before int: bool is an int subclass.
    if let Ok(b) = value.downcast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = value.downcast::<PyString>() {
        return Ok(Value::Str(lossy(s)));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(match value.extract::<i64>() {
            Ok(v) => Value::I64(v),
            // Beyond 64 bits: keep the digits rather than lose the value.
            Err(_) => Value::Str(Cow::Owned(value.str()?.to_string_lossy().into_owned())),
        });
    }
    if let Ok(f) = value.downcast::<PyFloat>() {
        return Ok(Value::F64(f.value()));
    }
    Ok(Value::Str(Cow::Owned(value.str()?.to_string_lossy().into_owned())))
}

/// Runs `f` over the attributes of `dict` as encoder-ready pairs.
/// Keys that are not `str` are skipped: an attribute needs a name.
pub fn with_attributes<T>(
    dict: Option<&Bound<'_, PyDict>>,
    f: impl FnOnce(&[(&str, AttrRef<'_>)]) -> T,
) -> PyResult<T> {
    let Some(dict) = dict else { return Ok(f(&[])) };
    // Hold strong references first so the borrowed text below outlives the loop.
    // Inline capacity covers the usual attribute counts without touching the heap.
    let items: SmallVec<[(Bound<'_, PyAny>, Bound<'_, PyAny>); 16]> = dict.iter().collect();
    let mut converted: SmallVec<[(Cow<'_, str>, Value<'_>); 16]> = SmallVec::with_capacity(items.len());
    for (key, value) in &items {
        if let Ok(key) = key.downcast::<PyString>() {
            converted.push((lossy(key), convert(value)?));
        }
    }
    let refs: SmallVec<[(&str, AttrRef<'_>); 16]> = converted.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    Ok(f(&refs))
}
