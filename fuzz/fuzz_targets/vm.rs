//! The symbolic machine: `vm::Analyzer::run` on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = pkinspect::vm::Analyzer::new().run(data);
    assert!(a.bytes <= data.len() as u64);
    for e in &a.events {
        assert!(e.offset <= data.len() as u64);
    }
    // The trace reads every value the events refer to.
    let _ = pkinspect::view::trace::Tracer::new(&a).records();
});
