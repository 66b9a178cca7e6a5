//! The progress line of `scan` on stderr: files done out of the total, bytes
//! read of the current file, and its name.
//!
//! The bar measures bytes over all files, so one large file among small ones
//! moves it as it is read.
//!
//! It is drawn only when stderr is a terminal and `TERM` is not `dumb`, so a
//! pipe, a file or CI logs never get it, whatever `--format` is. It never
//! touches stdout, so the report and the progress cannot mix. It appears only
//! once a scan has run for [`DELAY`], so quick scans show nothing. It is
//! erased before the report is printed.
//!
//! A background thread redraws the line every [`TICK`] from shared counters.
//! Files are scanned by several worker threads at once; each worker has a
//! slot with the file it is on and a byte counter that its scan updates, so
//! a large file shows bytes moving while it is read. The line names the
//! largest file in progress and its bytes; the bar counts the bytes of
//! finished files plus those read so far of every file in progress.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pkinspect::py::repr::escape_for_terminal;

/// How long a scan runs before the line first appears.
pub const DELAY: Duration = Duration::from_millis(300);
/// How often the line is redrawn.
pub const TICK: Duration = Duration::from_millis(100);
/// Cells of the bar itself.
const BAR: usize = 24;

/// What the line shows.
#[derive(Debug, Default, Clone)]
struct State {
    /// Files finished.
    done: usize,
    /// Files to scan in all.
    total: usize,
    /// The current file, already escaped for the terminal.
    name: String,
    /// The current file's size in bytes (0 when unknown).
    size: u64,
    /// Bytes of the files finished (and, in a snapshot, read so far of the
    /// other files in progress).
    bytes_done: u64,
    /// Bytes of all files.
    bytes_total: u64,
}

/// The counts behind the line, changed under one lock.
#[derive(Debug, Default)]
struct Board {
    done: usize,
    total: usize,
    bytes_done: u64,
    bytes_total: u64,
    /// Per worker: the file it is scanning (escaped name, size), if any.
    slots: Vec<Option<(String, u64)>>,
}

/// State shared with the drawing thread.
#[derive(Debug, Default)]
struct Shared {
    board: Mutex<Board>,
    /// Per worker: bytes of its current file read or skipped so far.
    reads: Vec<AtomicU64>,
    /// Set when the scan is over.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    /// What to draw now: the largest file in progress, with the bytes read
    /// of all the others added to the finished bytes.
    fn snapshot(&self) -> Option<(State, u64)> {
        let b = self.board.lock().ok()?;
        let mut s = State {
            done: b.done,
            total: b.total,
            bytes_done: b.bytes_done,
            bytes_total: b.bytes_total,
            ..State::default()
        };
        let busy = b.slots.iter().enumerate().filter_map(|(i, slot)| {
            let (name, size) = slot.as_ref()?;
            let read = self.reads.get(i).map_or(0, |r| r.load(Ordering::Relaxed)).min(*size);
            Some((name, *size, read))
        });
        let mut read_shown = 0;
        let mut best: Option<u64> = None;
        for (name, size, read) in busy {
            if best.is_none_or(|b| size > b) {
                // The previous choice, if any, becomes one of "the others".
                s.bytes_done += read_shown;
                s.name = name.clone();
                s.size = size;
                read_shown = read;
                best = Some(size);
            } else {
                s.bytes_done += read;
            }
        }
        Some((s, read_shown))
    }
}

/// The progress line of one run of `scan`, told by the library's
/// [`scan_paths`](pkinspect::scan::scan_paths) how the scan advances. Until
/// the scan starts, and when disabled, it only keeps the counters that the
/// scans update.
#[derive(Default)]
pub struct Progress {
    shared: Arc<Shared>,
    active: bool,
    ticker: Option<JoinHandle<()>>,
}

impl pkinspect::scan::Progress for Progress {
    /// Sets up the line for scanning `files` with up to `workers` threads at
    /// once; draws it only if stderr is a terminal.
    fn start(&mut self, files: &[&Path], workers: usize) {
        let term_ok = std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let active = std::io::stderr().is_terminal() && term_ok;
        let workers = workers.max(1);
        let mut board = Board { slots: vec![None; workers], ..Board::default() };
        for f in files {
            board.total += 1;
            if active {
                board.bytes_total += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            }
        }
        let shared = Arc::new(Shared {
            board: Mutex::new(board),
            reads: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            ..Shared::default()
        });
        let ticker = active.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || draw_loop(&shared))
        });
        *self = Progress { shared, active, ticker };
    }

    /// Worker `worker` (below the `workers` given to `start`) starts on
    /// `path`: the line names it, and its counter starts at 0.
    fn file_started(&self, worker: usize, path: &Path) -> Option<&AtomicU64> {
        let slot = worker.min(self.shared.reads.len().checked_sub(1)?);
        if self.active {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let name = escape_for_terminal(&path.display().to_string());
            if let Ok(mut b) = self.shared.board.lock() {
                b.slots[slot] = Some((name, size));
            }
        }
        let read = &self.shared.reads[slot];
        read.store(0, Ordering::Relaxed);
        Some(read)
    }

    /// Worker `worker` is done: its file counts as finished.
    fn file_done(&self, worker: usize, _path: &Path) {
        let Some(last) = self.shared.reads.len().checked_sub(1) else { return };
        let slot = worker.min(last);
        if let Ok(mut b) = self.shared.board.lock() {
            b.done += 1;
            if let Some((_, size)) = b.slots[slot].take() {
                b.bytes_done += size;
            }
            self.shared.reads[slot].store(0, Ordering::Relaxed);
        }
    }

    /// Stops drawing and erases the line. Called by `drop` too.
    fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            if let Ok(mut stop) = self.shared.stop.lock() {
                *stop = true;
            }
            self.shared.wake.notify_all();
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        pkinspect::scan::Progress::finish(self);
    }
}

/// The drawing thread: waits [`DELAY`], then redraws every [`TICK`] until
/// stopped, and erases the line if it ever drew it.
fn draw_loop(shared: &Shared) {
    let start = Instant::now();
    let mut drawn = false;
    let width = terminal_width();
    loop {
        let Ok(stop) = shared.stop.lock() else { return };
        let Ok((stop, _)) = shared.wake.wait_timeout_while(stop, TICK, |s| !*s) else { return };
        if *stop {
            break;
        }
        drop(stop);
        if start.elapsed() < DELAY {
            continue;
        }
        let Some((state, read)) = shared.snapshot() else { return };
        let text = line(&state, read, width);
        let mut err = std::io::stderr().lock();
        // \r: back to column 0; ESC[K: erase to the end of the line.
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
        drawn = true;
    }
    if drawn {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// Columns of the terminal on stderr's side (80 when unknown).
fn terminal_width() -> usize {
    crossterm::terminal::size().map(|(w, _)| usize::from(w)).ok().filter(|&w| w > 0).unwrap_or(80)
}

/// Bytes as a short human figure (`12.3 MiB`).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Display columns of `c`, counting anything outside ASCII (but our own
/// `…`) as two, so that the line never wraps (which would defeat `\r`).
fn char_columns(c: char) -> usize {
    if c.is_ascii() || c == '…' {
        1
    } else {
        2
    }
}

/// Display columns `s` takes, by [`char_columns`].
fn columns(s: &str) -> usize {
    s.chars().map(char_columns).sum()
}

/// The end of `s` that fits in `max` columns, with `…` in front when cut.
fn tail_fitting(s: &str, max: usize) -> String {
    if columns(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 1; // the ellipsis
    for c in s.chars().rev() {
        let w = char_columns(c);
        if used + w > max {
            break;
        }
        used += w;
        kept.push(c);
    }
    kept.push('…');
    kept.into_iter().rev().collect()
}

/// One line of progress, at most `width - 1` columns.
fn line(s: &State, read: u64, width: usize) -> String {
    let read = read.min(s.size);
    let frac = if s.bytes_total > 0 {
        (s.bytes_done + read) as f64 / s.bytes_total as f64
    } else if s.total > 0 {
        s.done as f64 / s.total as f64
    } else {
        0.0
    }
    .min(1.0);
    let filled = (frac * BAR as f64).round() as usize;
    let bar: String = "#".repeat(filled) + &"-".repeat(BAR - filled.min(BAR));
    let current = (s.done + 1).min(s.total.max(1));
    let mut text = format!("[{bar}] {current}/{} files", s.total);
    if s.size > 0 {
        text.push_str(&format!("  {}/{}", human_bytes(read), human_bytes(s.size)));
    }
    let room = width.saturating_sub(1).saturating_sub(columns(&text) + 2);
    if room >= 8 && !s.name.is_empty() {
        text.push_str("  ");
        text.push_str(&tail_fitting(&s.name, room));
    }
    if columns(&text) >= width {
        return tail_fitting(&text, width.saturating_sub(1));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(done: usize, total: usize, name: &str, size: u64) -> State {
        State { done, total, name: name.into(), size, bytes_done: 0, bytes_total: size }
    }

    #[test]
    fn the_line_shows_files_bytes_and_name() {
        let mut s = st(1, 4, "models/a.pkl", 2048);
        s.bytes_done = 1024;
        s.bytes_total = 4096;
        let l = line(&s, 1024, 100);
        assert_eq!(l, "[############------------] 2/4 files  1.0 KiB/2.0 KiB  models/a.pkl");
    }

    #[test]
    fn the_line_never_reaches_the_last_column() {
        let long = "d/".repeat(100) + "x.pkl";
        for width in [10, 40, 60, 80, 200] {
            let l = line(&st(0, 1, &long, 10 << 20), 5 << 20, width);
            assert!(columns(&l) < width, "{width}: {l}");
        }
        let wide = "模型".repeat(50);
        let l = line(&st(0, 1, &wide, 0), 0, 60);
        assert!(columns(&l) < 60, "{l}");
        assert!(l.ends_with("模型"));
    }

    #[test]
    fn parallel_scans_show_the_largest_file_and_count_all_bytes() {
        let shared = Shared {
            board: Mutex::new(Board {
                done: 1,
                total: 4,
                bytes_done: 100,
                bytes_total: 1000,
                slots: vec![Some(("small.pkl".into(), 50)), Some(("big.pkl".into(), 800)), None],
            }),
            reads: vec![AtomicU64::new(30), AtomicU64::new(200), AtomicU64::new(0)],
            ..Shared::default()
        };
        let (s, read) = shared.snapshot().expect("snapshot");
        assert_eq!((s.name.as_str(), s.size, read), ("big.pkl", 800, 200));
        assert_eq!(s.bytes_done, 130, "finished bytes plus the small file's 30");
        let l = line(&s, read, 100);
        assert!(l.starts_with("[########----------------] 2/4 files"), "{l}");
        assert!(l.ends_with("big.pkl"), "{l}");
    }

    #[test]
    fn names_keep_their_end() {
        assert_eq!(tail_fitting("abcdef", 4), "…def");
        assert_eq!(tail_fitting("abc", 4), "abc");
    }

    #[test]
    fn sizes_are_short() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(150 << 20), "150.0 MiB");
    }
}
