//! `pkinspect dis`: the pickletools-compatible disassembly of any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sink = Vec::new();
    let _ = pkinspect::view::dis::dis_all(data, &mut sink);
});
