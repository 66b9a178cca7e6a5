//! Other views of the same stream than the scan report: the pickletools
//! listing ([`dis`]), the object graph as Python-like code ([`show`]), the
//! machine's events as JSON lines for the differential oracle ([`trace`]),
//! and the expression renderer they and the findings share ([`render`]);
//! [`parts`] says which of a file's pickle streams `show` and `dis` present,
//! and names each.

pub mod dis;
pub mod parts;
pub mod render;
pub mod show;
pub mod trace;
