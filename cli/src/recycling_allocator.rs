//! The `easel` binary's global allocator on Linux: large blocks recycled instead of mapped
//! and unmapped per allocation. Why, and what it measured: [`crate::allocator`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Requests from this size on are mapped and recycled here; smaller ones go to [`System`].
const LARGE: usize = 32 << 20;
/// Mapped lengths are whole multiples of this, so that nearby sizes share blocks.
const GRANULE: usize = 2 << 20;
/// At most this many freed blocks are kept; a block freed beyond them is unmapped.
const KEPT: usize = 32;
/// Alignment a fresh mapping always has.
const PAGE: usize = 4096;

/// A mapped block: its address and mapped length (always [`mapped_len`] of the size it
/// was last handed out for).
#[derive(Clone, Copy)]
struct Block {
    addr: usize,
    len: usize,
}

struct FreeBlocks {
    blocks: [Block; KEPT],
    count: usize,
}

/// The global allocator of the `easel` binary on Linux: [`System`] for small blocks, and for
/// large ones a store of freed mappings reused by later requests (see the module doc).
/// Policy: a request takes a kept block of exactly its mapped length, else the smallest
/// larger one (unmapping the excess); when none is large enough, the largest kept block is
/// grown to the request's length and the others are unmapped (none of them can serve it,
/// so holding them while growing would only raise the peak).
pub struct RecyclingAllocator {
    free: Mutex<FreeBlocks>,
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(GRANULE) * GRANULE
}

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

impl RecyclingAllocator {
    pub const fn new() -> Self {
        Self {
            free: Mutex::new(FreeBlocks {
                blocks: [Block { addr: 0, len: 0 }; KEPT],
                count: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FreeBlocks> {
        // Only plain numbers are guarded: a panic elsewhere leaves them consistent.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block for `len` mapped bytes, and how many of its first bytes are recycled (their
    /// contents are whatever the last user left; the rest are fresh zeroed pages).
    fn take(&self, len: usize) -> Option<(*mut u8, usize)> {
        let picked = {
            let mut free = self.lock();
            let count = free.count;
            let kept = free.blocks[..count].iter().enumerate();
            // The smallest that fits; when none does, the largest, to be grown rather than
            // mapping afresh.
            let pick = kept
                .clone()
                .filter(|(_, b)| b.len >= len)
                .min_by_key(|(_, b)| b.len)
                .or_else(|| kept.max_by_key(|(_, b)| b.len))
                .map(|(i, _)| i);
            pick.map(|i| {
                let block = free.blocks[i];
                free.blocks[i] = free.blocks[count - 1];
                free.count -= 1;
                block
            })
        };
        if let Some(block) = picked.filter(|b| b.len >= len) {
            if block.len > len {
                unmap(block.addr + len, block.len - len);
            }
            return Some((block.addr as *mut u8, len));
        }
        // Growing: none of the kept blocks can serve this, so the others go, and so does
        // what the small-block heap holds free (e.g. the UNet's activations before a VAE
        // decode): the process's peak is then not that memory plus this block. The largest
        // is grown to the new length (the kernel moves its pages, nothing is copied), so
        // only the difference is faulted in fresh: a fresh page costs a fault and the
        // kernel's zeroing, and on a virtual machine often the host's too.
        self.release();
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only walks glibc's own free lists; no lock of this
        // allocator is held.
        unsafe {
            libc::malloc_trim(0);
        }
        if let Some(block) = picked {
            match grow(block, len) {
                Some(p) => return Some((p, block.len)),
                None => unmap(block.addr, block.len),
            }
        }
        map(len).map(|p| (p, 0))
    }

    /// Keeps a freed block for reuse (unmapped if the store is full).
    fn keep(&self, addr: usize, len: usize) {
        {
            let mut free = self.lock();
            if free.count < KEPT {
                let i = free.count;
                free.blocks[i] = Block { addr, len };
                free.count += 1;
                return;
            }
        }
        unmap(addr, len);
    }

    /// Unmaps every kept block.
    pub fn release(&self) {
        let (blocks, count) = {
            let mut free = self.lock();
            let taken = (free.blocks, free.count);
            free.count = 0;
            taken
        };
        for b in &blocks[..count] {
            unmap(b.addr, b.len);
        }
    }

    /// Bytes held by kept blocks.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        let free = self.lock();
        free.blocks[..free.count].iter().map(|b| b.len).sum()
    }
}

impl Default for RecyclingAllocator {
    fn default() -> Self {
        Self::new()
    }
}

fn map(len: usize) -> Option<*mut u8> {
    // SAFETY: an anonymous private mapping of `len` bytes touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as *mut u8)
}

/// `block` grown to `len` bytes (possibly moved), its contents kept.
fn grow(block: Block, len: usize) -> Option<*mut u8> {
    // SAFETY: `block` is a whole mapping made by `map` (or grown by this function) that no
    // live allocation uses; on failure it is left as it was.
    let p = unsafe {
        libc::mremap(
            block.addr as *mut libc::c_void,
            block.len,
            len,
            libc::MREMAP_MAYMOVE,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as *mut u8)
}

fn unmap(addr: usize, len: usize) {
    // SAFETY: [addr, addr + len) is a whole-page range of a mapping made by `map` that no
    // live allocation uses.
    unsafe {
        libc::munmap(addr as *mut libc::c_void, len);
    }
}

// SAFETY: large blocks are whole mappings (or page-aligned prefixes of them) of at least
// the requested size and page alignment, handed to one owner at a time; everything else is
// the system allocator's.
unsafe impl GlobalAlloc for RecyclingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_large(&layout) {
            return System.alloc(layout);
        }
        self.take(mapped_len(layout.size()))
            .map_or(std::ptr::null_mut(), |(p, _)| p)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_large(&layout) {
            return System.alloc_zeroed(layout);
        }
        match self.take(mapped_len(layout.size())) {
            Some((p, recycled)) => {
                // Cheaper than faulting in fresh zeroed pages, which is what this avoids.
                std::ptr::write_bytes(p, 0, recycled.min(layout.size()));
                p
            }
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_large(&layout) {
            return System.dealloc(ptr, layout);
        }
        self.keep(ptr as usize, mapped_len(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_large(&layout), is_large(&new_layout)) {
            (false, false) => System.realloc(ptr, layout, new_size),
            (true, true) => {
                let (old_len, new_len) = (mapped_len(layout.size()), mapped_len(new_size));
                if old_len == new_len {
                    return ptr;
                }
                // The kernel moves the pages; nothing is copied.
                let p = libc::mremap(
                    ptr as *mut libc::c_void,
                    old_len,
                    new_len,
                    libc::MREMAP_MAYMOVE,
                );
                if p == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    p as *mut u8
                }
            }
            _ => {
                let p = self.alloc(new_layout);
                if !p.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 64).unwrap()
    }

    #[test]
    fn a_freed_block_is_handed_to_the_next_request_of_its_size_or_smaller() {
        let a = RecyclingAllocator::new();
        unsafe {
            let p = a.alloc(layout(64 * MIB));
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 7, 64 * MIB);
            a.dealloc(p, layout(64 * MIB));
            assert_eq!(a.kept_bytes(), 64 * MIB);
            // Same mapped length (rounded to 2 MiB): the same block, its contents as left.
            let q = a.alloc(layout(63 * MIB + 5));
            assert_eq!(q, p);
            assert_eq!(*q.add(63 * MIB), 7);
            a.dealloc(q, layout(63 * MIB + 5));
            // Zeroed: the recycled block is cleared.
            let z = a.alloc_zeroed(layout(40 * MIB));
            assert_eq!(
                z, p,
                "the smallest kept block that fits serves a smaller request"
            );
            assert!(std::slice::from_raw_parts(z, 40 * MIB)
                .iter()
                .all(|&b| b == 0));
            // Its tail beyond 40 MiB was unmapped, not kept.
            assert_eq!(a.kept_bytes(), 0);
            a.dealloc(z, layout(40 * MIB));
            assert_eq!(a.kept_bytes(), 40 * MIB);
        }
        a.release();
        assert_eq!(a.kept_bytes(), 0);
    }

    #[test]
    fn a_request_no_kept_block_fits_grows_the_largest_and_drops_the_others() {
        let a = RecyclingAllocator::new();
        unsafe {
            let sizes = [32 * MIB, 48 * MIB, 34 * MIB];
            let blocks: Vec<_> = sizes.iter().map(|&n| a.alloc(layout(n))).collect();
            for (&p, &n) in blocks.iter().zip(&sizes) {
                std::ptr::write_bytes(p, (n / MIB) as u8, n);
                a.dealloc(p, layout(n));
            }
            assert_eq!(a.kept_bytes(), 114 * MIB);
            // The 48 MiB block's pages carry on as the first 48 MiB of the new one.
            let big = a.alloc(layout(100 * MIB));
            assert!(!big.is_null());
            assert_eq!(a.kept_bytes(), 0);
            let grown = std::slice::from_raw_parts(big, 100 * MIB);
            assert!(grown[..48 * MIB].iter().all(|&b| b == 48));
            assert!(grown[48 * MIB..].iter().all(|&b| b == 0));
            std::ptr::write_bytes(big, 9, 100 * MIB);
            a.dealloc(big, layout(100 * MIB));
            // Zeroed: the grown block's recycled part is cleared as well.
            let zeroed = a.alloc_zeroed(layout(150 * MIB));
            assert!(!zeroed.is_null());
            assert!(std::slice::from_raw_parts(zeroed, 150 * MIB)
                .iter()
                .all(|&b| b == 0));
            a.dealloc(zeroed, layout(150 * MIB));
        }
        a.release();
    }

    #[test]
    fn realloc_keeps_contents_across_sizes() {
        let a = RecyclingAllocator::new();
        unsafe {
            // Small → large → larger → small.
            let mut p = a.alloc(layout(MIB));
            for i in 0..MIB {
                *p.add(i) = (i % 251) as u8;
            }
            let mut size = MIB;
            for new_size in [48 * MIB, 90 * MIB, 2 * MIB] {
                p = a.realloc(p, layout(size), new_size);
                assert!(!p.is_null());
                for i in (0..MIB).step_by(4093) {
                    assert_eq!(
                        *p.add(i),
                        (i % 251) as u8,
                        "byte {i} after resizing to {new_size}"
                    );
                }
                size = new_size;
            }
            a.dealloc(p, layout(size));
        }
        a.release();
    }

    #[test]
    fn small_and_over_aligned_requests_are_the_systems() {
        let a = RecyclingAllocator::new();
        unsafe {
            let p = a.alloc(layout(MIB));
            a.dealloc(p, layout(MIB));
            let big_align = Layout::from_size_align(40 * MIB, 2 * MIB).unwrap();
            let q = a.alloc(big_align);
            assert_eq!(q as usize % (2 * MIB), 0);
            a.dealloc(q, big_align);
        }
        assert_eq!(a.kept_bytes(), 0);
    }
}
