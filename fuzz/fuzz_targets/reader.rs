//! The opcode reader alone: every opcode of the input, until the end or the first error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkinspect::pickle::reader::OpReader;
use pkinspect::pickle::source::SliceSource;

fuzz_target!(|data: &[u8]| {
    let mut r = OpReader::new(SliceSource::new(data, 0));
    // Each opcode consumes at least one byte, so this ends; the cap is a guard.
    for _ in 0..=data.len() {
        match r.next_op() {
            Ok(Some(op)) => {
                assert!(op.end >= op.offset);
                assert!(op.end <= data.len() as u64);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
