//! The binary's global allocator: the system allocator, except that blocks
//! of [`BIG`] bytes or more come straight from `mmap`, aligned to 2 MiB and
//! marked `MADV_HUGEPAGE`, so the kernel backs them with transparent huge
//! pages where it can.
//!
//! Why: a large pickle builds tens of megabytes of arena (values, tuple item
//! pool, memo), and on the machines measured (docs/benchmarks.md) faulting that
//! in 4 KiB at a time was a third of the scan's wall time: 7,000 faults for
//! the 2-million-opcode benchmark file, 1,100 with this allocator, 29 ms ->
//! 18 ms (`perf stat -r 40 pkinspect scan bench-out/ops2m.pkl`). Where the kernel has transparent huge pages off
//! or unavailable, `madvise` fails harmlessly and the blocks are ordinary
//! anonymous mappings.
//!
//! Growth keeps the pages: `realloc` extends the mapping in place when the
//! addresses after it are free, and otherwise moves its page tables into a
//! new aligned mapping with `mremap` (no copy). This is the only `unsafe`
//! code in pkinspect; the library itself is `#![forbid(unsafe_code)]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Smallest block served by `mmap`: a large pickle's memo and list vectors
/// pass it early in their doubling. Such a block is rounded up to a whole
/// huge page (at most 1 MiB more than asked); smaller blocks are left to
/// the system allocator.
pub const BIG: usize = 1 << 20;

/// Transparent huge page size on x86-64 and (with 4 KiB base pages) arm64.
const HUGE: usize = 2 << 20;

/// The allocator (see the module docs).
pub struct HugeAlloc;

fn is_big(layout: &Layout) -> bool {
    layout.size() >= BIG && layout.align() <= HUGE
}

/// `size` rounded up to whole huge pages; `None` on overflow.
fn mapped_len(size: usize) -> Option<usize> {
    size.checked_add(HUGE - 1).map(|n| n & !(HUGE - 1)).filter(|&n| n <= isize::MAX as usize - HUGE)
}

/// Maps `len` bytes (a multiple of [`HUGE`]) at a [`HUGE`]-aligned address,
/// zeroed, advised for huge pages. Null on failure.
///
/// # Safety
/// `len` must be a non-zero multiple of [`HUGE`] that leaves room for one
/// more [`HUGE`] below `isize::MAX`.
unsafe fn map_aligned(len: usize) -> *mut u8 {
    // Over-allocate by one huge page, then unmap the unaligned ends.
    let p = libc::mmap(
        ptr::null_mut(),
        len + HUGE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = p as usize;
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    if aligned > start {
        libc::munmap(p, aligned - start);
    }
    let tail = start + len + HUGE - (aligned + len);
    if tail > 0 {
        libc::munmap((aligned + len) as *mut libc::c_void, tail);
    }
    // Advice only: failure (no THP support) leaves ordinary pages.
    libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    aligned as *mut u8
}

unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_big(&layout) {
            return System.alloc(layout);
        }
        match mapped_len(layout.size()) {
            Some(len) => map_aligned(len),
            None => ptr::null_mut(),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_big(&layout) {
            return System.alloc_zeroed(layout);
        }
        // Fresh anonymous mappings are zero: no memset, no faulting it all in.
        self.alloc(layout)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !is_big(&layout) {
            return System.dealloc(p, layout);
        }
        // The length was valid when the block was mapped.
        if let Some(len) = mapped_len(layout.size()) {
            libc::munmap(p as *mut libc::c_void, len);
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_big(&layout), is_big(&new_layout)) {
            (false, false) => System.realloc(p, layout, new_size),
            (true, true) => {
                let (Some(old_len), Some(new_len)) = (mapped_len(layout.size()), mapped_len(new_size)) else {
                    return ptr::null_mut();
                };
                if new_len <= old_len {
                    if new_len < old_len {
                        libc::munmap(p.add(new_len) as *mut libc::c_void, old_len - new_len);
                    }
                    return p;
                }
                // In place, when the addresses after the block are free.
                if libc::mremap(p as *mut libc::c_void, old_len, new_len, 0) != libc::MAP_FAILED {
                    return p;
                }
                // Else move the pages (not the bytes) to a new aligned block.
                let q = map_aligned(new_len);
                if q.is_null() {
                    return q;
                }
                let moved = libc::mremap(
                    p as *mut libc::c_void,
                    old_len,
                    old_len,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    q as *mut libc::c_void,
                );
                if moved == libc::MAP_FAILED {
                    ptr::copy_nonoverlapping(p, q, layout.size());
                    libc::munmap(p as *mut libc::c_void, old_len);
                }
                q
            }
            // Across the threshold: a new block of the other kind, a copy.
            _ => {
                let q = self.alloc(new_layout);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: *mut u8, n: usize) {
        for i in (0..n).step_by(4093) {
            unsafe { *p.add(i) = (i % 251) as u8 };
        }
    }

    fn check(p: *const u8, n: usize) {
        for i in (0..n).step_by(4093) {
            assert_eq!(unsafe { *p.add(i) }, (i % 251) as u8, "byte {i}");
        }
    }

    #[test]
    fn grows_and_shrinks_across_the_threshold_keeping_contents() {
        let a = HugeAlloc;
        unsafe {
            let l = Layout::from_size_align(1 << 20, 8).unwrap();
            let p = a.alloc(l);
            fill(p, 1 << 20);
            // small -> big
            let p = a.realloc(p, l, 5 << 20);
            assert_eq!(p as usize % HUGE, 0);
            check(p, 1 << 20);
            fill(p, 5 << 20);
            // big -> bigger, several times (in place or moved)
            let mut size = 5 << 20;
            let mut p = p;
            let mut blocker = Vec::new();
            for _ in 0..4 {
                // Something mapped right after may force a move.
                blocker.push(a.alloc(Layout::from_size_align(BIG, 8).unwrap()));
                let bigger = size * 2 + 12345;
                p = a.realloc(p, Layout::from_size_align(size, 8).unwrap(), bigger);
                assert!(!p.is_null());
                assert_eq!(p as usize % HUGE, 0);
                check(p, size);
                fill(p, bigger);
                size = bigger;
            }
            // big -> smaller big, then big -> small
            p = a.realloc(p, Layout::from_size_align(size, 8).unwrap(), 6 << 20);
            check(p, 6 << 20);
            p = a.realloc(p, Layout::from_size_align(6 << 20, 8).unwrap(), 100_000);
            check(p, 100_000);
            a.dealloc(p, Layout::from_size_align(100_000, 8).unwrap());
            for b in blocker {
                a.dealloc(b, Layout::from_size_align(BIG, 8).unwrap());
            }
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_and_huge_requests_fail_cleanly() {
        let a = HugeAlloc;
        unsafe {
            let l = Layout::from_size_align(BIG + 1, 64).unwrap();
            let p = a.alloc_zeroed(l);
            assert!((0..BIG + 1).step_by(4096).all(|i| *p.add(i) == 0));
            a.dealloc(p, l);
            let l = Layout::from_size_align(isize::MAX as usize - 4096, 8).unwrap();
            assert!(a.alloc(l).is_null());
        }
    }

    #[test]
    fn the_binary_allocates_through_it() {
        // This test is compiled into the binary's test harness, which has the
        // binary's #[global_allocator]: a large Vec then starts on a huge
        // page boundary. The system allocator's mmap'd blocks start 16 bytes
        // past a 4 KiB page, so this fails if the allocator is not installed.
        let v: Vec<u64> = Vec::with_capacity(3 << 20);
        assert_eq!(v.as_ptr() as usize % HUGE, 0, "a 24 MiB Vec not from HugeAlloc");
        // And a growing Vec keeps its items through mremap.
        let v: Vec<u64> = (0..3_000_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 2_999_999 * 3_000_000 / 2);
    }
}
