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
//! The scanning thread only updates those counters, so a large file shows
//! bytes moving while it is read.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pkinspect::pyrepr::escape_for_terminal;

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
    /// Bytes of the files finished.
    bytes_done: u64,
    /// Bytes of all files.
    bytes_total: u64,
}

/// State shared with the drawing thread.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Bytes of the current file read or skipped so far.
    read: AtomicU64,
    /// Set when the scan is over.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A progress line for one run of `scan`. When disabled it only keeps the
/// counter that the scan updates.
pub struct Progress {
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// A progress line for scanning `files`, drawn only if stderr is a terminal.
    pub fn new<'a>(files: impl Iterator<Item = &'a Path>) -> Progress {
        let term_ok = std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let active = std::io::stderr().is_terminal() && term_ok;
        let shared = Arc::new(Shared::default());
        if let Ok(mut s) = shared.state.lock() {
            for f in files {
                s.total += 1;
                if active {
                    s.bytes_total += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        let ticker = active.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || draw_loop(&shared))
        });
        Progress { shared, ticker }
    }

    /// Runs `scan` on `path`; `scan` receives the byte counter to update as
    /// it reads. Updates the line before and after.
    pub fn scan<T>(&self, path: &Path, scan: impl FnOnce(&AtomicU64) -> T) -> T {
        if self.ticker.is_some() {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if let Ok(mut s) = self.shared.state.lock() {
                s.name = escape_for_terminal(&path.display().to_string());
                s.size = size;
            }
        }
        self.shared.read.store(0, Ordering::Relaxed);
        let out = scan(&self.shared.read);
        if let Ok(mut s) = self.shared.state.lock() {
            s.done += 1;
            s.bytes_done += s.size;
        }
        out
    }

    /// Stops drawing and erases the line. Called by `drop` too.
    pub fn finish(&mut self) {
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
        self.finish();
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
        let state = match shared.state.lock() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        let text = line(&state, shared.read.load(Ordering::Relaxed), width);
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
