//! torch dtypes: the one table of the element types a checkpoint can name
//! (`torch.float32` as a `_rebuild_tensor_v3` argument, or through a typed
//! storage class of [`super::STORAGE_CLASSES`]), with their element size and
//! the `.npy` descriptor extraction writes them as.
//!
//! numpy has no bfloat16, float8, complex32 or packed-bit types: those are
//! written as unsigned integers of the same size holding the raw bits
//! ([`TorchDtype::raw`]), and the document names the torch dtype beside.

/// A torch dtype as a checkpoint names it.
#[derive(Debug, PartialEq, Eq)]
pub struct TorchDtype {
    /// torch's name, the attribute of the `torch` module (`float32`).
    pub name: &'static str,
    /// Bytes per element (`torch._utils._element_size`).
    pub size: u64,
    /// The `.npy` descriptor its elements are written as.
    pub npy: &'static str,
    /// True when `npy` holds the raw bits of a type numpy does not have.
    pub raw: bool,
    /// True for the quantized types (`qint8`, ...), whose values are an
    /// integer representation plus a scale and zero point.
    pub quantized: bool,
}

/// A dtype numpy has.
const fn native(name: &'static str, size: u64, npy: &'static str) -> TorchDtype {
    TorchDtype { name, size, npy, raw: false, quantized: false }
}

/// A dtype numpy lacks, written as the raw bits.
const fn raw(name: &'static str, size: u64, npy: &'static str) -> TorchDtype {
    TorchDtype { name, size, npy, raw: true, quantized: false }
}

/// A quantized dtype, written as its integer representation.
const fn quantized(name: &'static str, size: u64, npy: &'static str) -> TorchDtype {
    TorchDtype { name, size, npy, raw: false, quantized: true }
}

/// `torch.float64`.
pub const FLOAT64: TorchDtype = native("float64", 8, "<f8");
/// `torch.float32`.
pub const FLOAT32: TorchDtype = native("float32", 4, "<f4");
/// `torch.float16`.
pub const FLOAT16: TorchDtype = native("float16", 2, "<f2");
/// `torch.bfloat16`.
pub const BFLOAT16: TorchDtype = raw("bfloat16", 2, "<u2");
/// `torch.int64`.
pub const INT64: TorchDtype = native("int64", 8, "<i8");
/// `torch.int32`.
pub const INT32: TorchDtype = native("int32", 4, "<i4");
/// `torch.int16`.
pub const INT16: TorchDtype = native("int16", 2, "<i2");
/// `torch.int8`.
pub const INT8: TorchDtype = native("int8", 1, "|i1");
/// `uint8`, which the zip loader reads an `UntypedStorage` of a `_v2` tensor as.
pub const UINT8: TorchDtype = native("uint8", 1, "|u1");
/// `torch.bool`.
pub const BOOL: TorchDtype = native("bool", 1, "|b1");
/// `torch.complex64`.
pub const COMPLEX64: TorchDtype = native("complex64", 8, "<c8");
/// `torch.complex128`.
pub const COMPLEX128: TorchDtype = native("complex128", 16, "<c16");
/// `torch.qint8`.
pub const QINT8: TorchDtype = quantized("qint8", 1, "|i1");
/// `torch.quint8`.
pub const QUINT8: TorchDtype = quantized("quint8", 1, "|u1");
/// `torch.qint32`.
pub const QINT32: TorchDtype = quantized("qint32", 4, "<i4");
/// Two 4-bit values per byte: written as the bytes.
pub const QUINT4X2: TorchDtype = TorchDtype { name: "quint4x2", size: 1, npy: "|u1", raw: true, quantized: true };
/// Four 2-bit values per byte: written as the bytes.
pub const QUINT2X4: TorchDtype = TorchDtype { name: "quint2x4", size: 1, npy: "|u1", raw: true, quantized: true };

/// Every dtype pkinspect knows: those of the typed storage classes, and
/// those `torch.storage._new_dtypes()` lists, which `torch.save` writes
/// through `_rebuild_tensor_v3` with an `UntypedStorage` (counted in bytes).
pub const TORCH_DTYPES: &[&TorchDtype] = &[
    &FLOAT64,
    &FLOAT32,
    &FLOAT16,
    &BFLOAT16,
    &INT64,
    &INT32,
    &INT16,
    &INT8,
    &UINT8,
    &BOOL,
    &COMPLEX64,
    &COMPLEX128,
    &QINT8,
    &QUINT8,
    &QINT32,
    &QUINT4X2,
    &QUINT2X4,
    &native("uint16", 2, "<u2"),
    &native("uint32", 4, "<u4"),
    &native("uint64", 8, "<u8"),
    &raw("float8_e5m2", 1, "|u1"),
    &raw("float8_e4m3fn", 1, "|u1"),
    &raw("float8_e5m2fnuz", 1, "|u1"),
    &raw("float8_e4m3fnuz", 1, "|u1"),
    &raw("float8_e8m0fnu", 1, "|u1"),
    &raw("float4_e2m1fn_x2", 1, "|u1"),
    &raw("complex32", 4, "<u4"),
    &raw("bits8", 1, "|u1"),
    &raw("bits16", 2, "<u2"),
    &raw("bits1x8", 1, "|u1"),
    &raw("bits2x4", 1, "|u1"),
    &raw("bits4x2", 1, "|u1"),
];

/// The dtype a global names: `torch.<name>` only (the module matters: `os.float32` is no dtype).
pub fn torch_dtype(module: &str, name: &str) -> Option<&'static TorchDtype> {
    if module != "torch" {
        return None;
    }
    TORCH_DTYPES.iter().copied().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_descriptor_has_the_element_size() {
        for d in TORCH_DTYPES {
            let digits: u64 = d.npy[2..].parse().expect("a size");
            assert_eq!(digits, d.size, "{}", d.name);
            assert_eq!(torch_dtype("torch", d.name), Some(*d));
            assert!(!(d.raw && d.npy.as_bytes()[1] != b'u'), "raw bits are unsigned: {}", d.name);
        }
        assert_eq!(torch_dtype("os", "float32"), None);
        assert_eq!(torch_dtype("torch", "Float8Storage"), None);
    }
}
