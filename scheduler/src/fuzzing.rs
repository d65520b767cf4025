//! The bodies of the fuzz targets that reach the core (`fuzz/` in the repository), as plain
//! functions: cargo-fuzz calls them with libFuzzer's inputs, and the crates' tests call them on
//! stable with a bounded number of random inputs. None of them may panic, whatever the input.
//!
//! Not part of the public API.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use crate::core::{
    Action, AllowAll, Config, Event, Job, JobId, JobRequest, RunOutcome, Scheduler, Time,
    next_cron, parse_cron,
};

/// How many of its own deadlines [`drive`] follows.
const STEPS: usize = 32;

/// A fresh core with default config loads `jobs` (as recovery does on open), takes `requests`
/// (as enqueues), and is then driven through up to 32 of its own deadlines at `now` and after,
/// with a worker registered for every kind and every run alternately succeeding and failing:
/// recovery, validation, dispatch, retries, `why` and pruning all see the input.
pub fn drive(jobs: Vec<Job>, requests: Vec<JobRequest>, now: Time) {
    let mut core = Scheduler::new(Config::default(), Box::new(AllowAll));
    let mut kinds: Vec<String> = jobs.iter().map(|j| j.request.kind.clone()).collect();
    kinds.extend(requests.iter().map(|r| r.kind.clone()));
    let mut now = now;
    let mut toggle = false;
    let _ = core.handle(now, Event::Load(jobs));
    drain(&mut core, now, &mut toggle);
    for kind in kinds {
        let _ = core.handle(now, Event::WorkerRegistered(kind));
        drain(&mut core, now, &mut toggle);
    }
    // the same requests once more as a chain, each link after the one before it and the
    // first after the loaded jobs (refused as a whole when one link is)
    let mut chain = crate::core::Chain::new();
    let loaded: Vec<crate::core::After> = core.ids().map(crate::core::After::Job).collect();
    for (n, request) in requests.iter().enumerate() {
        let after = if n == 0 {
            loaded.clone()
        } else {
            vec![crate::core::After::Link(n - 1)]
        };
        chain.link(request.clone(), after);
    }
    let count = requests.len();
    for (n, request) in requests.into_iter().enumerate() {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let id = JobId::new_v7(now, random);
        let _ = core.handle(now, Event::Enqueue { id, request });
        drain(&mut core, now, &mut toggle);
    }
    let ids = (0..count)
        .map(|n| {
            let mut random = [0xff; 10];
            random[..8].copy_from_slice(&(n as u64).to_be_bytes());
            JobId::new_v7(now, random)
        })
        .collect();
    let _ = core.handle(now, Event::EnqueueChain { ids, chain });
    drain(&mut core, now, &mut toggle);
    for _ in 0..STEPS {
        let ids: Vec<JobId> = core.ids().collect();
        for id in ids {
            let _ = core.why(now, id);
        }
        let Some(next) = core.poll_timeout() else {
            break;
        };
        now = now.max(next);
        let _ = core.handle(now, Event::Timeout);
        drain(&mut core, now, &mut toggle);
    }
    let _ = core.handle(now, Event::Prune { older_than: None });
    drain(&mut core, now, &mut toggle);
}

/// Carries out the core's actions: every started run ends at once, alternately succeeding and
/// asking for a retry; a stop is answered by the run's end.
fn drain(core: &mut Scheduler, now: Time, toggle: &mut bool) {
    let mut ended = Vec::new();
    while let Some(action) = core.poll_action() {
        match action {
            Action::Persist(_) => {}
            Action::Start(s) => ended.push((s.id, s.attempt)),
            Action::Stop { id, .. } | Action::Abort { id } => {
                if let Some(attempt) = core.job(id).map(|j| j.attempt) {
                    ended.push((id, attempt));
                }
            }
        }
    }
    for (id, attempt) in ended {
        *toggle = !*toggle;
        let outcome = if *toggle {
            RunOutcome::Success(None)
        } else {
            RunOutcome::Retry(None)
        };
        let _ = core.handle(
            now,
            Event::Finished {
                id,
                attempt,
                outcome,
            },
        );
        // what the run's end set off (the next run of a recurring job) waits for the next step
        while core.poll_action().is_some() {}
    }
}

/// An instant from 8 bytes: seconds within ±10 000 years of the epoch (chrono's range).
pub fn instant_of(bytes: [u8; 8]) -> Time {
    const RANGE: i64 = 10_000 * 366 * 24 * 3600;
    // small values are themselves (seconds since the epoch); the rest wrap into the range
    let secs = i64::from_le_bytes(bytes)
        .wrapping_add(RANGE)
        .rem_euclid(2 * RANGE)
        - RANGE;
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// A time zone from one byte (one of chrono-tz's zones).
pub fn zone_of(byte: u8) -> Tz {
    let all = chrono_tz::TZ_VARIANTS;
    all[usize::from(byte) % all.len()]
}

/// Cron expressions: `data` is 8 bytes of instant, 1 byte of time zone, then the expression
/// (lossy UTF-8). The expression goes through [`parse_cron`] as `backwork add --cron` sends it;
/// if it parses, [`next_cron`] gives up to 8 successive fire times, each strictly later than the
/// one before.
pub fn cron(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&data[..8]);
    let mut after = instant_of(at);
    let tz = zone_of(data[8]);
    let expr = String::from_utf8_lossy(&data[9..]);
    let Ok(schedule) = parse_cron(&expr) else {
        return;
    };
    for _ in 0..8 {
        match next_cron(&schedule, tz, after) {
            Some(next) => {
                assert!(
                    next > after,
                    "`{expr}` in {tz}: {next} is not after {after}"
                );
                after = next;
            }
            None => break,
        }
    }
}

/// A request as `add` builds it, enqueued into a core and driven (see [`drive`]).
pub fn request(request: JobRequest, now: Time) {
    drive(Vec::new(), vec![request], now);
}

/// Requests of every schedule kind with most options set: seeds that the stable tests mutate
/// (and that `fuzz/` writes to its corpus).
pub fn sample_requests() -> Vec<JobRequest> {
    use crate::core::{Backoff, ConflictPolicy};
    use backwork_constraints::{Constraint, NetworkRequirement};
    use std::time::Duration;
    let hour = Duration::from_secs(3600);
    vec![
        JobRequest::once("sync")
            .input(serde_json::json!({"path": "/tmp/x", "n": 3}))
            .tag("backup")
            .unique("sync-once", ConflictPolicy::Replace)
            .requires(Constraint::Charging)
            .max_attempts(3)
            .timeout(Some(Duration::from_secs(60))),
        JobRequest::periodic("report", 6 * hour)
            .backoff(Backoff::linear(Duration::from_secs(60)))
            .unique("report", ConflictPolicy::Update),
        JobRequest::cron("nightly", "0 30 3 * * *", chrono_tz::Europe::Berlin)
            .tag("nightly")
            .requires(Constraint::Network(NetworkRequirement::Unmetered)),
    ]
}

/// Records as a store holds them: the sample requests enqueued into a core and driven through
/// a few runs (running, retried, succeeded, with history), as the core asked to persist them.
pub fn sample_jobs(now: Time) -> Vec<Job> {
    let mut core = Scheduler::new(Config::default(), Box::new(AllowAll));
    let mut out = std::collections::BTreeMap::new();
    let keep = |core: &mut Scheduler, out: &mut std::collections::BTreeMap<JobId, Job>| {
        let mut started = Vec::new();
        while let Some(action) = core.poll_action() {
            match action {
                Action::Persist(changes) => {
                    for job in changes.upserts {
                        out.insert(job.id, job);
                    }
                }
                Action::Start(s) => started.push((s.id, s.attempt)),
                _ => {}
            }
        }
        started
    };
    for (n, request) in sample_requests().into_iter().enumerate() {
        let _ = core.handle(now, Event::WorkerRegistered(request.kind.clone()));
        let mut random = [0u8; 10];
        random[0] = n as u8;
        let id = JobId::new_v7(now, random);
        let _ = core.handle(now, Event::Enqueue { id, request });
    }
    // a chain: blocked links with prerequisites, one with the array-creating merger
    let _ = core.handle(now, Event::WorkerRegistered("link".into()));
    let chain =
        crate::core::Chain::begin_with([JobRequest::once("link")]).then([JobRequest::once("link")
            .input_merger(crate::core::InputMerger::ArrayCreating)
            .input(serde_json::json!({"own": 1}))]);
    let ids = (0..2u8)
        .map(|k| JobId::new_v7(now, [0xee, k, 0, 0, 0, 0, 0, 0, 0, 0]))
        .collect();
    let _ = core.handle(now, Event::EnqueueChain { ids, chain });
    let mut at = now;
    for step in 0..6 {
        for (id, attempt) in keep(&mut core, &mut out) {
            // snapshot the running record, then end the run
            if let Some(job) = core.job(id) {
                out.entry(job.id).or_insert(job);
            }
            let outcome = if step % 2 == 0 {
                RunOutcome::Retry(Some(serde_json::json!({"tail": "x"})))
            } else {
                RunOutcome::Success(None)
            };
            let _ = core.handle(
                at,
                Event::Finished {
                    id,
                    attempt,
                    outcome,
                },
            );
        }
        keep(&mut core, &mut out);
        match core.poll_timeout() {
            Some(t) => at = at.max(t),
            None => break,
        }
        let _ = core.handle(at, Event::Timeout);
    }
    keep(&mut core, &mut out);
    out.into_values().collect()
}

/// Replaces the `pick`-th leaf (modulo their number) of `value` — a number, string, boolean or
/// null anywhere in it — with `with`: a structure-aware mutation that keeps the rest of a record
/// or request valid, so decoders are tried beyond their syntax checks.
pub fn mutate_json(value: &mut serde_json::Value, pick: usize, with: serde_json::Value) {
    use serde_json::Value;
    fn count(v: &Value) -> usize {
        match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 1,
        }
    }
    fn replace(v: &mut Value, k: &mut usize, with: &mut Option<Value>) -> bool {
        match v {
            Value::Array(items) => items.iter_mut().any(|i| replace(i, k, with)),
            Value::Object(map) => map.values_mut().any(|i| replace(i, k, with)),
            leaf => {
                if *k == 0 {
                    if let Some(w) = with.take() {
                        *leaf = w;
                    }
                    return true;
                }
                *k -= 1;
                false
            }
        }
    }
    let n = count(value);
    let mut k = pick % n.max(1);
    let mut with = Some(with);
    if !replace(value, &mut k, &mut with)
        && let Some(w) = with
    {
        *value = w;
    }
}

/// How many cases each stable fuzz test runs: `BACKWORK_FUZZ_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("BACKWORK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
