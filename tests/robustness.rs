//! Hostile input must never panic or run away: seeded mutations of every
//! fixture (byte flips, truncations, insertions, length-field edits) go
//! through the whole pipeline — machine, rules, reports, dis and show.
//! Fuzzing proper is `cargo fuzz` (see the reliability issue); this is the
//! always-on, deterministic part.

use std::path::PathBuf;

use pkinspect::policy::Policy;
use pkinspect::report::{human, json, Report};
use pkinspect::scan::Scanner;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixtures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["fixtures/benign", "fixtures/hostile"] {
        for e in std::fs::read_dir(dir).expect("fixture dir") {
            let p = e.expect("entry").path();
            let small = std::fs::metadata(&p).map(|m| m.len() < 150_000).unwrap_or(false);
            if p.extension().is_some_and(|x| x == "pkl") && small {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        if d.is_empty() {
            d.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(d.len());
        match rng.below(6) {
            0 => d[i] ^= 1 << rng.below(8),
            1 => d[i] = rng.next() as u8,
            2 => d.truncate(i),
            3 => d.insert(i, [b'(', b'0', b'2', b'R', b'b', b'\x93', b'\x94', b'h', 0x95][rng.below(9)]),
            4 => {
                // A length field blown up.
                for b in d.iter_mut().skip(i).take(4) {
                    *b = 0xff;
                }
            }
            _ => {
                let j = rng.below(d.len());
                let (a, b) = (i.min(j), i.max(j));
                d.drain(a..b.min(a + 16));
            }
        }
    }
    d
}

#[test]
fn mutated_fixtures_never_panic() {
    let policy = Policy::builtin();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut runs = 0;
    for path in fixtures() {
        let data = std::fs::read(&path).expect("read fixture");
        for _ in 0..40 {
            let m = mutate(&mut rng, &data);
            let r = Scanner::new(&policy).scan_bytes("mutant", &m);
            let report = Report { files: vec![r], ..Default::default() };
            let _ = human::render(&report, human::HumanOptions::default());
            let _ = json::to_json(&report);
            let mut sink = Vec::new();
            let _ = pkinspect::view::dis::dis_all(&m, &mut sink);
            let a = pkinspect::vm::Analyzer::new().run(&m);
            let mut sink = Vec::new();
            let _ = pkinspect::view::show::show(&a, &mut sink);
            runs += 1;
        }
    }
    assert!(runs > 4000, "ran {runs}");
}

#[test]
fn random_opcode_programs_never_panic() {
    let policy = Policy::builtin();
    let mut rng = Rng(42);
    let alphabet: Vec<u8> = pkinspect::pickle::opcodes::OPCODES.iter().map(|o| o.byte).collect();
    for _ in 0..3000 {
        let len = rng.below(200);
        let mut d = vec![0x80, rng.below(6) as u8];
        for _ in 0..len {
            if rng.below(3) == 0 {
                d.push(rng.next() as u8);
            } else {
                d.push(alphabet[rng.below(alphabet.len())]);
            }
        }
        let r = Scanner::new(&policy).scan_bytes("random", &d);
        let _ = json::to_json(&Report { files: vec![r], ..Default::default() });
    }
}
