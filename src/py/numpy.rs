//! What numpy's pickled dtypes mean (shared/FORMATS.md §2.3): the one
//! reading of a dtype's item size and of its object flag, used both where a
//! scan measures a joblib array payload (`src/container/joblib.rs`) and
//! where extraction rebuilds the dtype ([`crate::extract::dtype`]).
//!
//! `numpy.dtype.__reduce__` returns `(numpy.dtype, (code, False, True),
//! state)`, the state being `(version, byteorder, subarray, names, fields,
//! elsize, alignment, flags[, metadata])`. The code is the kind and a number
//! (`'f8'`, `'U3'`, `'V24'`); `elsize` is -1 for types of fixed size.

/// numpy's `NPY_ITEM_HASOBJECT` (`NPY_ITEM_REFCOUNT`) bit of a dtype's
/// `flags`: its items are (or hold) Python objects, `dtype.hasobject`.
const ITEM_HASOBJECT: i64 = 0x01;

/// A dtype code split into its kind and its number: `("f", "8")`,
/// `("U", "3")`, `("M", "8")`; the number is empty when the code has none.
pub fn split_code(code: &str) -> (&str, &str) {
    let at = code.find(|c: char| c.is_ascii_digit()).unwrap_or(code.len());
    code.split_at(at)
}

/// True when a dtype of this kind and state `flags` holds Python objects
/// (`dtype.hasobject`): kind `O`, or the object flag set, which numpy sets
/// on a structured type (kind `V`) with an object field.
pub fn has_object(kind: &str, flags: i64) -> bool {
    kind == "O" || flags & ITEM_HASOBJECT != 0
}

/// The kinds of plain (non-object, non-structured) dtype numpy pickles,
/// with the item sizes each takes (`None`: any size; `U` a multiple of 4):
/// the one table behind the scan's joblib payload lengths and extraction's
/// dtypes.
const KINDS: &[(&str, Option<&[u64]>)] = &[
    ("b", Some(&[1])),
    ("i", Some(&[1, 2, 4, 8])),
    ("u", Some(&[1, 2, 4, 8])),
    ("f", Some(&[2, 4, 8, 12, 16])),
    ("c", Some(&[8, 16, 24, 32])),
    ("M", Some(&[8])),
    ("m", Some(&[8])),
    ("S", None),
    ("V", None),
    ("U", None),
];

/// True for a kind numpy pickles a plain dtype with (`b i u f c M m S V U`).
pub fn known_kind(kind: &str) -> bool {
    KINDS.iter().any(|(k, _)| *k == kind)
}

/// True when numpy has a dtype of this kind and item size (`f3` is none).
pub fn size_fits(kind: &str, size: u64) -> bool {
    match KINDS.iter().find(|(k, _)| *k == kind) {
        Some(("U", _)) => size % 4 == 0,
        Some((_, Some(sizes))) => sizes.contains(&size),
        Some((_, None)) => true,
        None => false,
    }
}

/// Why a dtype's item size is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemsizeError {
    /// Neither the state nor the code says it.
    NoSize,
    /// The code's number of characters, in bytes, overflows.
    Overflows,
}

/// Bytes per item of a plain dtype pickled with this kind, number and state
/// `elsize`: the state's `elsize` when positive, else the code's number,
/// which for `U` counts characters of 4 bytes (`arraydescr_reduce` writes
/// `'U3'` for a 12-byte dtype).
///
/// # Errors
///
/// [`ItemsizeError::NoSize`] when the number is missing or not a `u64`, and
/// [`ItemsizeError::Overflows`] when 4 × a `U` count does not fit.
pub fn itemsize(kind: &str, digits: &str, elsize: Option<i64>) -> Result<u64, ItemsizeError> {
    if let Some(n) = elsize.filter(|n| *n > 0) {
        return Ok(n as u64);
    }
    let n: u64 = digits.parse().map_err(|_| ItemsizeError::NoSize)?;
    if kind == "U" {
        n.checked_mul(4).ok_or(ItemsizeError::Overflows)
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes and states numpy 2 pickles (`dtype.__reduce__()`).
    #[test]
    fn item_sizes_follow_numpys_reduce() {
        assert_eq!(split_code("f8"), ("f", "8"));
        assert_eq!(split_code("M8"), ("M", "8"));
        assert_eq!(split_code("O"), ("O", ""));
        // ('U3', False, True), (3, '<', None, None, None, 12, 4, 8).
        assert_eq!(itemsize("U", "3", Some(12)), Ok(12));
        assert_eq!(itemsize("U", "3", None), Ok(12));
        // ('f8', ...), (3, '<', None, None, None, -1, -1, 0).
        assert_eq!(itemsize("f", "8", Some(-1)), Ok(8));
        // ('V24', ...) of a (2, 3) int32 subarray: elsize 24.
        assert_eq!(itemsize("V", "24", Some(24)), Ok(24));
        assert_eq!(itemsize("V", "", Some(0)), Err(ItemsizeError::NoSize));
        assert_eq!(itemsize("U", &u64::MAX.to_string(), None), Err(ItemsizeError::Overflows));
        // [('a', 'O'), ('b', '<i4')]: ('V12', ...), flags 27.
        assert!(has_object("V", 27));
        assert!(has_object("O", 0));
        assert!(!has_object("f", 0));
        assert!(size_fits("f", 8) && !size_fits("f", 3) && size_fits("U", 12) && !size_fits("U", 6));
        assert!(size_fits("S", 7) && !size_fits("O", 8) && known_kind("M") && !known_kind("?"));
    }
}
