//! joblib's array payloads (shared/FORMATS.md §1.1): `joblib.dump` pickles
//! each numpy array as a `NumpyArrayWrapper` whose BUILD state says the
//! array's dtype and shape, and writes the array's bytes into the stream
//! right after that BUILD, outside the pickle's opcodes; `joblib.load` reads
//! them from the file, past whatever the unpickler buffered.
//!
//! [`ArrayPayloads`] is the [`AfterBuild`] hook every
//! [`crate::vm::Analyzer`] installs: the machine asks it after
//! every BUILD, and it alone knows the wrapper's format.

use crate::error::{Error, ErrorKind};
use crate::py::numpy::{self, ItemsizeError};
use crate::vm::{AfterBuild, Anomaly, CallKind, EventKind, Graph, Halt, Trailer, Value, ValueId, View};

/// Reads the payload after each `NumpyArrayWrapper`'s BUILD.
pub(crate) struct ArrayPayloads;

impl AfterBuild for ArrayPayloads {
    fn claims(&self, graph: &View<'_>, target: ValueId) -> bool {
        is_array_wrapper(graph, target)
    }

    fn read(&self, stream: &mut dyn Trailer, target: ValueId) -> Result<(), Halt> {
        payload(stream, target)
    }
}

/// What follows a `NumpyArrayWrapper`'s BUILD.
struct PayloadSpec {
    /// A nested pickle (object dtype) instead of raw bytes.
    object: bool,
    /// A padding-length byte and padding come first.
    padded: bool,
    /// Raw bytes of array data.
    nbytes: u64,
}

/// True for an object made by calling joblib's `NumpyArrayWrapper`, after
/// whose BUILD `joblib.load` reads the array payload.
fn is_array_wrapper(g: &View<'_>, target: ValueId) -> bool {
    match g.value(target) {
        Value::Call(c)
            if matches!(
                c.kind,
                CallKind::NewObj | CallKind::NewObjEx | CallKind::Reduce | CallKind::Inst | CallKind::Obj
            ) =>
        {
            matches!(g.value(c.func), Value::Global(g)
                if &*g.module == "joblib.numpy_pickle" && &*g.name == "NumpyArrayWrapper")
        }
        _ => false,
    }
}

/// Reads the array payload joblib writes after a `NumpyArrayWrapper`'s
/// BUILD (shared/FORMATS.md §1.1): a nested pickle for object dtypes,
/// else optional alignment padding and `prod(shape) * itemsize` raw bytes,
/// which are skipped (a seek for files), never copied.
fn payload(s: &mut dyn Trailer, wrapper: ValueId) -> Result<(), Halt> {
    let at = s.position();
    if s.frame_open() {
        s.anomaly(at, Anomaly::PayloadInFrame)?;
    }
    let spec = match wrapper_spec(&s.graph(), wrapper) {
        Ok(spec) => spec,
        Err(why) => {
            let e = Error::new(ErrorKind::BadArgument { what: "joblib array", detail: why.into() }, at);
            return Err(Halt::error(e));
        }
    };
    if spec.object {
        let root = match s.nested_pickle()? {
            Some(root) => root,
            None => {
                return Err(Halt::error(Error::new(
                    ErrorKind::UnexpectedEof { what: "a nested object-array pickle" },
                    at,
                )))
            }
        };
        let len = s.position() - at;
        return s.event(at, EventKind::ArrayPayload { wrapper, offset: at, len, nested: Some(root) });
    }
    let io = |e: std::io::Error| Halt::error(Error::new(ErrorKind::Io(e.to_string()), at));
    if spec.padded {
        padding(s, at)?;
    }
    let src = s.source();
    let start = src.position();
    let remaining = src.remaining();
    if remaining.is_some_and(|r| spec.nbytes > r) {
        let e = ErrorKind::BadLength { what: "joblib array payload", declared: spec.nbytes as i128, remaining };
        return Err(Halt::error(Error::new(e, start)));
    }
    let skipped = s.payload(wrapper, start, spec.nbytes).map_err(io)?;
    if skipped < spec.nbytes {
        return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "a joblib array payload" }, start)));
    }
    s.event(start, EventKind::ArrayPayload { wrapper, offset: start, len: spec.nbytes, nested: None })
}

/// Reads the alignment padding before an array's bytes (a length byte, then
/// that many 0xFF bytes), noting padding joblib would not write; `at` is
/// where the payload starts.
fn padding(s: &mut dyn Trailer, at: u64) -> Result<(), Halt> {
    let io = |e: std::io::Error| Halt::error(Error::new(ErrorKind::Io(e.to_string()), at));
    let src = s.source();
    let pad = match src.take(1).map_err(io)? {
        Some(b) => b[0],
        None => return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "joblib padding" }, at))),
    };
    let unusual = match src.take(pad as usize).map_err(io)? {
        Some(b) => pad == 0 || pad > 16 || b.iter().any(|&x| x != 0xff),
        None => return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "joblib padding" }, at))),
    };
    if unusual {
        s.anomaly(at, Anomaly::UnusualPadding { len: pad })?;
    }
    Ok(())
}

/// What a wrapper's state says about the payload that follows it.
fn wrapper_spec(g: &View<'_>, wrapper: ValueId) -> Result<PayloadSpec, &'static str> {
    let state = g.state(wrapper).ok_or("wrapper has no state")?;
    let Value::Dict(r) = g.value(state) else { return Err("wrapper state is not a dict") };
    let pairs = g.analysis().dict(*r);
    let get = |key: &str| pairs.iter().find(|(k, _)| g.full_str(*k) == Some(key)).map(|(_, v)| *v);
    let padded = get("numpy_array_alignment_bytes").is_some_and(|v| !matches!(g.value(v), Value::None));
    let dtype = get("dtype").ok_or("wrapper state has no dtype")?;
    let (itemsize, object) = dtype_size(g, dtype)?;
    if object {
        return Ok(PayloadSpec { object, padded: false, nbytes: 0 });
    }
    let shape = get("shape").ok_or("wrapper state has no shape")?;
    let a = g.analysis();
    let Some(dims) = a.tuple(shape) else { return Err("shape is not a tuple") };
    let mut count: u64 = 1;
    for d in dims {
        let n = a.int_or_bool(*d).ok_or("shape holds a non-integer")?;
        let n = u64::try_from(n).map_err(|_| "shape holds a negative size")?;
        count = count.checked_mul(n).ok_or("shape product overflows")?;
    }
    let nbytes = count.checked_mul(itemsize).ok_or("array size overflows")?;
    Ok(PayloadSpec { object, padded, nbytes })
}

/// Item size and whether a pickled `numpy.dtype` holds Python objects.
fn dtype_size(g: &View<'_>, dtype: ValueId) -> Result<(u64, bool), &'static str> {
    let Value::Call(c) = g.value(dtype) else { return Err("dtype is not constructed") };
    let (func, args) = (&c.func, &c.args);
    let is_dtype = matches!(g.value(*func), Value::Global(g) if &*g.module == "numpy" && &*g.name == "dtype");
    if !is_dtype {
        return Err("dtype is not numpy.dtype");
    }
    let a = g.analysis();
    let Some(args) = a.tuple(*args) else { return Err("dtype arguments are not a tuple") };
    let code = args.first().and_then(|c| g.full_str(*c)).ok_or("dtype code is not a string")?;
    // State: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
    let state: &[ValueId] = g.state(dtype).and_then(|s| a.tuple(s)).unwrap_or(&[]);
    let elsize = state.get(5).and_then(|v| a.int_or_bool(*v));
    let flags = state.get(7).and_then(|v| a.int_or_bool(*v)).unwrap_or(0);
    let (kind, digits) = numpy::split_code(code);
    // What joblib.load tests: `dtype.hasobject`, structured types included.
    if numpy::has_object(kind, flags) {
        return Ok((8, true));
    }
    let size = numpy::itemsize(kind, digits, elsize).map_err(|e| match e {
        ItemsizeError::NoSize => "dtype code has no size",
        ItemsizeError::Overflows => "dtype size overflows",
    })?;
    // joblib reads any size of a known kind ('f3' is skipped as 3-byte
    // items); extraction then refuses what numpy has no type for.
    if !numpy::known_kind(kind) {
        return Err("unknown dtype kind");
    }
    Ok((size, false))
}
