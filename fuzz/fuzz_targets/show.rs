//! `pkinspect show`: the object graph of any input as Python-like code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = pkinspect::vm::Analyzer::new().run(data);
    let mut sink = Vec::new();
    let _ = pkinspect::view::show::show(&a, &mut sink);
});
