//! A seeded, bounded mutation fuzzer for every parser of outside data, run as ordinary tests
//! on stable Rust (no nightly, no external tool). A target starts from seed inputs (the
//! format fixtures and the committed hostile corpus in `fixtures/hostile/`), mutates them
//! with a fixed-seed generator and asserts, for every input, that the parser returns (`Ok`
//! or `Err`) without panicking, within [`MAX_INPUT_TIME`], and — in a test binary that
//! installs [`CountingAlloc`] — without holding more than [`MAX_INPUT_BYTES`] at once.
//!
//! Budget: `EASEL_FUZZ_SECS` seconds per target (default 2, so `cargo test` stays quick;
//! CI's fuzz step and a person hunting bugs set more), seed `EASEL_FUZZ_SEED` (default 1).
//! Each target prints its executions, slowest input and largest allocation peak
//! (`cargo test -- --nocapture` shows them). A failing input is saved to the temp folder.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most memory one input may make a parser hold at once (far above any real small file's
/// needs, far below what a size claim turned into an allocation would take);
/// `EASEL_FUZZ_MAX_MIB` sets another bound (to hunt smaller excesses).
pub const MAX_INPUT_BYTES: isize = 512 << 20;

fn max_input_bytes() -> isize {
    std::env::var("EASEL_FUZZ_MAX_MIB")
        .ok()
        .and_then(|s| s.parse::<isize>().ok())
        .map_or(MAX_INPUT_BYTES, |mib| mib << 20)
}

/// Longest one input may take (a debug build on a loaded 2-core machine; real inputs take
/// milliseconds, a hang takes forever).
pub const MAX_INPUT_TIME: Duration = Duration::from_secs(10);

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
static COUNTING: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting the bytes each thread holds and their peak, so the fuzzer
/// can bound what one input costs. Install it in a fuzz test binary with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

fn note(delta: isize) {
    // Set once: a store on every allocation would bounce the flag's cache line between the
    // threads fuzzing side by side.
    if !COUNTING.load(Ordering::Relaxed) {
        COUNTING.store(true, Ordering::Relaxed);
    }
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Bytes that tend to matter to parsers: limits, opcodes, brackets, separators.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'(', b')', b'[', b']', b':', b'|', b'\\', b'.', b'}', b'{', b'\n',
    b'"', b',', b'a', b'h', b'q', b'R', b'b', 0x94, 0x95, 0x8c,
];

/// One to four random edits: flip a bit, set an interesting byte, insert or delete a run,
/// repeat a slice (nesting), truncate, or splice in a piece of another seed.
pub fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let b = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, std::iter::repeat_n(b, n));
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                // Repeat a short slice many times: deep nesting, long runs.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(4));
                let piece = v[i..i + n].to_vec();
                let times = 1 + rng.below(2000);
                let rep: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                v.splice(i..i, rep);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 if len >= 8 => {
                // Overwrite a little-endian word with an extreme value (lengths, offsets).
                let i = rng.below(len - 7);
                let word = [0u64, 1, u32::MAX as u64, u64::MAX, 1 << 62][rng.below(5)];
                v[i..i + 8].copy_from_slice(&word.to_le_bytes());
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below((other.len() - a).min(256));
                    let i = rng.below(v.len() + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
        }
    }
    v
}

pub fn budget() -> Duration {
    let secs = std::env::var("EASEL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

pub fn seed() -> u64 {
    std::env::var("EASEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `target` on every seed unmutated, then on mutations until the budget is spent.
/// A panic, an input slower than [`MAX_INPUT_TIME`] or one whose allocations peak above
/// [`MAX_INPUT_BYTES`] fails the test with the target's name, the seed and the execution
/// number; the input is written to the temp folder for reproduction.
pub fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) {
    assert!(!seeds.is_empty(), "fuzz target `{name}` has no seeds");
    let mut rng = Rng(seed().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = Instant::now();
    let mut execs = 0u64;
    let (mut slowest, mut most) = (Duration::ZERO, 0isize);
    let mut run = |input: &[u8], execs: u64| {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let t0 = Instant::now();
        let panicked = catch_unwind(AssertUnwindSafe(|| target(input))).is_err();
        let took = t0.elapsed();
        let held = PEAK.with(Cell::get) - base;
        slowest = slowest.max(took);
        most = most.max(held);
        let fault = if panicked {
            Some("panicked".to_string())
        } else if took > MAX_INPUT_TIME {
            Some(format!("took {took:?} (limit {MAX_INPUT_TIME:?})"))
        } else if COUNTING.load(Ordering::Relaxed) && held > max_input_bytes() {
            Some(format!(
                "held {} MiB at once (limit {} MiB)",
                held >> 20,
                max_input_bytes() >> 20
            ))
        } else {
            None
        };
        if let Some(fault) = fault {
            let path = std::env::temp_dir().join(format!("easel-fuzz-{name}-{execs}.bin"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target `{name}` {fault} on execution {execs} (seed {}); input saved to {}",
                seed(),
                path.display()
            );
        }
    };
    for s in &seeds {
        run(s, execs);
        execs += 1;
    }
    let limit = budget();
    while start.elapsed() < limit {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        run(&input, execs);
        execs += 1;
    }
    let memory = if COUNTING.load(Ordering::Relaxed) {
        format!("{:.1} MiB", most as f64 / (1 << 20) as f64)
    } else {
        "not counted".into()
    };
    eprintln!(
        "fuzz {name}: {execs} executions in {:.1} s from {} seeds; slowest input {:.1} ms, \
         largest allocation peak {memory}",
        start.elapsed().as_secs_f64(),
        seeds.len(),
        slowest.as_secs_f64() * 1e3,
    );
}

/// The committed regression inputs of one class, `fixtures/hostile/<class>/*`, sorted by
/// name (written by `fixtures/hostile/make_hostile_corpus.py`).
pub fn corpus(class: &str) -> Vec<Vec<u8>> {
    let dir = crate::fixtures_dir().join("hostile").join(class);
    corpus_files(&dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// The files of a corpus folder, sorted by name.
pub fn corpus_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_hostile_corpus.py)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}
