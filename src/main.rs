//! The `pkinspect` command: parse arguments, run, map the outcome to an exit code.

mod cli;
// The `hugealloc` feature (on by default), Linux only (`mremap`, transparent
// huge pages); elsewhere, or with --no-default-features, the system
// allocator. Measured gain: docs/benchmarks.md.
#[cfg(all(target_os = "linux", feature = "hugealloc"))]
mod hugealloc;

#[cfg(all(target_os = "linux", feature = "hugealloc"))]
#[global_allocator]
static ALLOC: hugealloc::HugeAlloc = hugealloc::HugeAlloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed pipe (`pkinspect dis x | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("pkinspect: error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
