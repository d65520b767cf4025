//! How many bytes the core keeps per pending job: the sizes of its per-job types, and the heap
//! that `n` W9-like jobs (one-off, kind `nobody`, due in an hour, no input — and again with a
//! 1 KiB input each) leave allocated in a core, with and without persisting (counted by a
//! global allocator that tallies live bytes). A persisting core (its driver keeps a store)
//! holds no payloads: its bytes per job are the same with an input as without. A core without
//! a store keeps the inputs itself.
//!
//! ```sh
//! cargo run --release -p backwork-scheduler --example core_footprint -- 1000000
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backwork_scheduler::{AllowAll, Config, Event, JobId, JobRequest, Scheduler};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The live heap a core holds after `n` enqueues; `spread`: each at its own millisecond (every
/// job then has its own due instant), else all at one instant (like a bulk enqueue); `input`:
/// each job's input (its own copy, as each request brings one).
fn fill(n: usize, persist: bool, spread: bool, input: &serde_json::Value) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut core = Scheduler::new(Config::default(), Box::new(AllowAll));
    if !persist {
        core = core.without_persistence();
    }
    let start = chrono::Utc::now();
    for i in 0..n as u64 {
        let now = if spread {
            start + chrono::TimeDelta::milliseconds(i as i64)
        } else {
            start
        };
        let mut b = [0u8; 10];
        b[2..].copy_from_slice(&i.to_be_bytes());
        let id = JobId::new_v7(now, b);
        let request = JobRequest::once("nobody")
            .delay(Duration::from_secs(3600))
            .input(input.clone());
        core.handle(now, Event::Enqueue { id, request })
            .expect("enqueue");
        while core.poll_action().is_some() {}
    }
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "  (process RSS with that core: {:.0} MB)",
        rss_mb().unwrap_or(f64::NAN)
    );
    drop(core);
    after - before
}

/// The process's resident set in MB, from `/proc/self/status` (Linux).
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    use std::mem::size_of;
    println!("size_of Job {}", size_of::<backwork_scheduler::Job>());
    println!("size_of JobRequest {}", size_of::<JobRequest>());
    println!(
        "size_of Schedule {}",
        size_of::<backwork_scheduler::Schedule>()
    );
    println!(
        "size_of Constraints {}",
        size_of::<backwork_scheduler::Constraints>()
    );
    println!(
        "size_of serde_json::Value {}",
        size_of::<serde_json::Value>()
    );
    println!(
        "size_of StopReason {}",
        size_of::<backwork_scheduler::StopReason>()
    );
    println!("size_of Time {}", size_of::<backwork_scheduler::Time>());
    println!("size_of JobId {}", size_of::<JobId>());
    // the collections' shares, rebuilt alone: an ordered map of whole jobs, and one ordered set
    // of (instant, id) keys like each of the core's time-ordered indexes
    let now = chrono::Utc::now();
    let ids: Vec<JobId> = (0..n as u64)
        .map(|i| {
            let mut b = [0u8; 10];
            b[2..].copy_from_slice(&i.to_be_bytes());
            JobId::new_v7(now, b)
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let keys: std::collections::BTreeSet<(backwork_scheduler::Time, JobId)> =
        ids.iter().map(|id| (now, *id)).collect();
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "one BTreeSet<(Time, JobId)>: {} B per job",
        (after - before) / n.max(1)
    );
    drop(keys);
    let before = LIVE.load(Ordering::Relaxed);
    let mut set = std::collections::BTreeSet::new();
    for id in &ids {
        set.insert((now, *id));
    }
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "the same, inserted one by one in id order: {} B per job",
        (after - before) / n.max(1)
    );
    drop(set);
    // a 1 KiB input: an object whose one string makes 1 024 bytes of JSON
    let kib = serde_json::json!({ "k": "x".repeat(1024 - r#"{"k":""}"#.len()) });
    assert_eq!(
        serde_json::to_string(&kib).map(|s| s.len()).ok(),
        Some(1024)
    );
    let none = serde_json::Value::Null;
    for (persist, spread, input) in [
        (true, false, &none),
        (true, false, &kib),
        (false, false, &none),
        (false, false, &kib),
        (true, true, &none),
    ] {
        let bytes = fill(n, persist, spread, input);
        let instants = if spread { "each its own" } else { "one" };
        let input = if input.is_null() { "none" } else { "1 KiB" };
        println!(
            "core heap with {n} pending jobs (persist {persist}, due instants: {instants}, input {input}): {:.1} MB, {} B per job",
            bytes as f64 / 1e6,
            bytes / n.max(1)
        );
    }
}
