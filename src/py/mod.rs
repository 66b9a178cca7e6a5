//! Python's own rules, re-implemented: how CPython prints values
//! ([`repr`], with its table of printable characters), its integers
//! ([`num`]), the text codecs the unpickler applies ([`codec`]), and the
//! Python 2 to 3 name mapping of `_compat_pickle` (`compat`, generated).

pub mod codec;
#[rustfmt::skip]
pub(crate) mod compat;
pub mod num;
pub mod repr;
