//! The read stage: bytes to opcodes.
//!
//! [`source`] is the one bounds-checked cursor over a file or a
//! decompressing stream; [`reader`] decodes opcodes from it with their
//! absolute offsets, from the single table in [`opcodes`] (generated from
//! CPython's `pickletools` into `opcodes_table.rs`); [`record`] keeps the
//! bytes a reading consumed, to list them again (`dis` through containers).

#[macro_use]
pub mod opcodes;
pub mod reader;
pub mod record;
pub mod source;
