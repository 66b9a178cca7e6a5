//! Python's own rules, re-implemented: how CPython prints values
//! ([`repr`], with its table of printable characters), its integers
//! ([`num`]), the text codecs the unpickler applies ([`codec`]), the
//! Python 2 to 3 name mapping of `_compat_pickle` (`compat`, generated) and
//! the latin-1 codec ([`latin1`]); and numpy's pickled dtypes ([`numpy`]),
//! which scans and extraction both read.

pub mod codec;
#[rustfmt::skip]
pub(crate) mod compat;
pub mod latin1;
pub mod num;
pub mod numpy;
pub mod repr;
