//! The symbolic machine: `vm::analyze_bytes` on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = pkinspect::vm::analyze_bytes(data, 0);
    assert!(a.bytes <= data.len() as u64);
    for e in &a.events {
        assert!(e.offset <= data.len() as u64);
    }
    // The trace reads every value the events refer to.
    let _ = pkinspect::view::trace::Tracer::new(&a).records();
});
