//! App-wide holds: when the policy holds every job for the same reason until the same instant
//! (a rate limit, a quota, Doze), the core asks it once per window and parks the whole ready
//! lane behind one gate with one wake-up — it does not ask about, defer and re-file each job
//! again every time the window frees (which made the simulator's W10 take 18 s). Guards the
//! mechanism by counting the policy's calls, not by timing; and checks that each parked job
//! still gets its reason from `why`, that a forced job passes the hold, and that a device
//! change lifts it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backwork_scheduler::{
    Config, Decision, Event, Force, HoldKind, JobId, JobRequest, Policy, PolicyContext, PolicyJob,
    PolicyReason, Selector, Time, WaitReason,
};
use common::*;

/// How often the policy was asked.
#[derive(Debug, Default)]
struct Calls {
    before_start: AtomicUsize,
    app_hold: AtomicUsize,
}

/// An app-wide rate limit: at most `per_minute` starts in each calendar minute.
#[derive(Debug)]
struct PerMinute {
    per_minute: usize,
    minute: i64,
    started: usize,
    calls: Arc<Calls>,
}

impl PerMinute {
    fn new(per_minute: usize) -> (Self, Arc<Calls>) {
        let calls = Arc::new(Calls::default());
        let policy = PerMinute {
            per_minute,
            minute: i64::MIN,
            started: 0,
            calls: calls.clone(),
        };
        (policy, calls)
    }

    fn used(&self, now: Time) -> usize {
        if now.timestamp().div_euclid(60) == self.minute {
            self.started
        } else {
            0
        }
    }
}

fn reason() -> PolicyReason {
    PolicyReason::new(
        "per_minute",
        HoldKind::Quota,
        "the starts of this minute are used",
    )
}

fn next_minute(now: Time) -> Time {
    let next = (now.timestamp().div_euclid(60) + 1) * 60;
    chrono::DateTime::from_timestamp(next, 0).expect("in range")
}

impl Policy for PerMinute {
    fn before_start(&mut self, now: Time, _job: PolicyJob<'_>, _cx: PolicyContext<'_>) -> Decision {
        self.calls.before_start.fetch_add(1, Ordering::Relaxed);
        if self.used(now) >= self.per_minute {
            Decision::Defer {
                until: next_minute(now),
                reason: reason(),
            }
        } else {
            Decision::Allow
        }
    }

    fn app_hold(&mut self, now: Time) -> Option<(Option<Time>, PolicyReason)> {
        self.calls.app_hold.fetch_add(1, Ordering::Relaxed);
        (self.used(now) >= self.per_minute).then(|| (Some(next_minute(now)), reason()))
    }

    fn on_started(&mut self, now: Time, _job: PolicyJob<'_>) {
        let minute = now.timestamp().div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.started = 0;
        }
        self.started += 1;
    }
}

fn harness(per_minute: usize) -> (Harness, Arc<Calls>) {
    let (policy, calls) = PerMinute::new(per_minute);
    let config = Config {
        max_concurrent: 10,
        ..accurate()
    };
    (
        Harness::with(config, Box::new(policy)).auto_succeed(),
        calls,
    )
}

fn enqueue_n(h: &mut Harness, n: usize) -> Vec<JobId> {
    (0..n).map(|_| h.enqueue(JobRequest::once(KIND))).collect()
}

#[test]
fn a_rate_limit_over_n_ready_jobs_is_asked_once_per_start_and_window_not_per_job() {
    const N: usize = 400;
    const PER_MINUTE: usize = 5;
    let (mut h, calls) = harness(PER_MINUTE);
    let start = h.now;
    let ids = enqueue_n(&mut h, N);
    h.advance(hours(2));

    // the limit holds: 400 jobs, 5 a minute, one after the other → 80 minutes
    let mut starts: Vec<Time> = ids.iter().flat_map(|id| h.starts(*id)).collect();
    assert_eq!(starts.len(), N, "every job ran once");
    starts.sort();
    for minute in starts.chunk_by(|a, b| a.timestamp() / 60 == b.timestamp() / 60) {
        assert!(
            minute.len() <= PER_MINUTE,
            "{} starts in one minute",
            minute.len()
        );
    }
    let windows = N / PER_MINUTE;
    assert_eq!(
        starts.last().copied(),
        Some(start + chrono::TimeDelta::minutes(windows as i64 - 1))
    );

    // each job was asked about once, when it started; the app-wide hold once per start and
    // once more per window (when it is found used up) — not once per waiting job per window,
    // which would be N × windows / 2 ≈ 16 000 calls
    assert_eq!(calls.before_start.load(Ordering::Relaxed), N);
    let app = calls.app_hold.load(Ordering::Relaxed);
    assert!(
        app <= N + windows + 1,
        "{app} app-wide hold questions for {N} starts in {windows} windows"
    );
    // and one wake-up per window
    assert!(
        h.wakes.len() <= windows + 1,
        "{} wake-ups for {windows} windows",
        h.wakes.len()
    );
}

#[test]
fn parked_jobs_say_why_a_forced_job_passes_and_a_device_change_asks_again() {
    let (mut h, calls) = harness(2);
    let ids = enqueue_n(&mut h, 6);
    let held: Vec<JobId> = ids
        .iter()
        .copied()
        .filter(|id| h.starts(*id).is_empty())
        .collect();
    assert_eq!(held.len(), 4, "two of six started in the first minute");
    let until = next_minute(h.now);
    let expected = [WaitReason::Policy {
        reason: reason(),
        until: Some(until),
    }];
    for id in &held {
        assert!(h.core.is_ready(*id));
        assert_eq!(h.core.why(h.now, *id).unwrap(), expected);
    }
    assert_eq!(h.core.ready_reasons(h.now), expected);
    assert_eq!(h.core.held_back_not_ready(h.now), Vec::<JobId>::new());
    assert_eq!(
        h.core.poll_timeout(),
        Some(until),
        "one wake-up, when the hold ends"
    );

    // "run now" bypasses the policy, hold or not
    h.handle(Event::Force {
        selector: Selector::Id(held[0]),
        force: Force {
            time: true,
            constraints: false,
        },
    })
    .unwrap();
    assert_eq!(h.starts(held[0]).len(), 1);

    // while held, further inputs do not ask the policy about each job
    let asked = calls.before_start.load(Ordering::Relaxed);
    for _ in 0..5 {
        h.handle(Event::Timeout).unwrap();
    }
    assert_eq!(calls.before_start.load(Ordering::Relaxed), asked);

    // a device change may change the policy's mind: the hold is lifted and asked about again
    let questions = calls.app_hold.load(Ordering::Relaxed);
    h.set_device(|d| d.charging = !d.charging);
    assert!(calls.app_hold.load(Ordering::Relaxed) > questions);
    assert!(
        h.core.app_hold_at(h.now).is_some(),
        "still used up this minute"
    );

    h.advance(mins(1));
    let ran = held[1..]
        .iter()
        .filter(|id| !h.starts(**id).is_empty())
        .count();
    assert_eq!(ran, 2, "two more in the next minute");
}
