//! Timing baseline for `scripts/bench`: decompresses a zlib stream (a
//! joblib `compress=("zlib", N)` file) with flate2 and the same zlib-rs
//! back end pkinspect uses, discarding the output, and prints the byte
//! counts. It does nothing else, so `pkinspect scan` on the same file can be
//! compared with decompression alone.
//!
//! Usage: `cargo run --release --example decompress -- FILE`

use std::io::{BufReader, Read};

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: decompress FILE");
        std::process::exit(2);
    };
    let file = std::fs::File::open(&path)?;
    let compressed = file.metadata()?.len();
    let mut dec = flate2::bufread::ZlibDecoder::new(BufReader::with_capacity(64 << 10, file));
    // A large output buffer: the baseline should be as fast as this library goes.
    let mut buf = vec![0u8; 256 << 10];
    let mut out: u64 = 0;
    loop {
        match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    println!("{compressed} compressed bytes -> {out} bytes");
    Ok(())
}
