//! Batching (DESIGN §6): the core picks its wake-up at the earliest window end (the greedy
//! choice of interval stabbing, so it needs the fewest wake-ups any schedule could), then moves
//! it back to the latest gate among the jobs that wake-up serves, so no job is later than it
//! must be: a lone job runs at its gate, and a period or cron slot shorter than the batching
//! window is never eaten (the bug where a per-minute cron job ran every two minutes and
//! `--every 10s` every 70 s). "Now" is never delayed.

mod common;

use std::time::Duration;

use backwork_scheduler::{
    Config, Constraints, Event, Force, JobRequest, Selector, Time, jitter_offset,
};
use chrono::TimeDelta;
use common::{Harness, KIND, hours, mins, secs};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn batching() -> Harness {
    Harness::with(Config::default(), Box::new(backwork_scheduler::AllowAll)).auto_succeed()
}

/// The fewest points that stab every window (each `[start, end]`), by the textbook greedy: sort
/// by end, place a point at the first unstabbed window's end.
fn stabbing_lower_bound(mut windows: Vec<(Time, Time)>) -> usize {
    windows.sort_by_key(|&(_, end)| end);
    let mut points = 0;
    let mut last: Option<Time> = None;
    for (start, end) in windows {
        if last.is_some_and(|p| p >= start) {
            continue; // the last point stabs it
        }
        last = Some(end);
        points += 1;
    }
    points
}

/// The total lateness (start − window start, in ms) of the left-shifted greedy: stab the
/// unstabbed window that ends first at its end, then move that point back to the latest start
/// among the windows it stabs (the same windows, each served as early as the point allows).
fn left_shifted_lateness(windows: Vec<(Time, Time)>) -> i64 {
    greedy_lateness(windows, true)
}

/// The same greedy with or without the left shift (without: each point at the window end, the
/// way the core woke before).
fn greedy_lateness(mut windows: Vec<(Time, Time)>, shift: bool) -> i64 {
    windows.sort_by_key(|&(_, end)| end);
    let mut stabbed = vec![false; windows.len()];
    let mut total = 0;
    for i in 0..windows.len() {
        if stabbed[i] {
            continue;
        }
        let end = windows[i].1;
        let served: Vec<usize> = (i..windows.len())
            .filter(|&j| !stabbed[j] && windows[j].0 <= end)
            .collect();
        let point = if shift {
            served.iter().map(|&j| windows[j].0).max().unwrap()
        } else {
            end
        };
        for j in served {
            stabbed[j] = true;
            total += (point - windows[j].0).num_milliseconds();
        }
    }
    total
}

/// W8 of DESIGN §9: 100 periodic jobs (15 min, flex 5 min) enqueued at seeded random instants,
/// one simulated day: the core's wake-ups equal the interval-stabbing lower bound, computed here
/// from the schedule's definition alone.
#[test]
fn w8_wake_ups_equal_the_interval_stabbing_lower_bound() {
    for seed in [1u64, 2, 3, 20261122] {
        let mut h = batching();
        let t0 = h.now;
        let (every, flex) = (mins(15), mins(5));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // enqueue instants spread over the first 10 minutes, before any window opens
        let mut offsets: Vec<i64> = (0..100).map(|_| rng.random_range(0..600_000)).collect();
        offsets.sort_unstable();
        let mut enqueued = Vec::new();
        for ms in offsets {
            h.now = t0 + TimeDelta::milliseconds(ms);
            let id = h.enqueue(JobRequest::periodic(KIND, every).flex(flex));
            enqueued.push((id, h.now));
        }
        let horizon = t0 + TimeDelta::days(1);
        h.advance_to(horizon);

        // every window of every job that ends within the day, from the definition: period k
        // of a job enqueued at e is [e + (k+1)·15 min − 5 min, e + (k+1)·15 min]
        let mut windows = Vec::new();
        for &(_, e) in &enqueued {
            for k in 1.. {
                let end = e + TimeDelta::minutes(15 * k);
                if end > horizon {
                    break;
                }
                windows.push((end - TimeDelta::minutes(5), end));
            }
        }
        let bound = stabbing_lower_bound(windows.clone());
        // the wake-ups that served those windows (a wake-up just before the horizon may serve
        // only windows that end after it: those are not in the bound)
        let mut served = std::collections::BTreeSet::new();
        for &(id, e) in &enqueued {
            for (k, s) in h.starts(id).into_iter().enumerate() {
                if e + TimeDelta::minutes(15 * (k as i64 + 1)) <= horizon {
                    served.insert(s);
                }
            }
        }
        let wakes = served.len();
        assert_eq!(wakes, bound, "seed {seed}: wake-ups vs the lower bound");
        // and no wake-up was wasted: each one started something
        let all_starts: std::collections::BTreeSet<Time> =
            enqueued.iter().flat_map(|&(id, _)| h.starts(id)).collect();
        assert!(h.wakes.iter().all(|w| all_starts.contains(w)));
        // and every window was served by a run inside it, as early as the optimum allows
        let mut lateness = 0;
        for &(id, e) in &enqueued {
            let starts = h.starts(id);
            let due: Vec<_> = (1..)
                .map(|k| e + TimeDelta::minutes(15 * k))
                .take_while(|end| *end <= horizon)
                .collect();
            assert!(
                starts.len() >= due.len(),
                "seed {seed}: {id} ran {} times",
                starts.len()
            );
            for (s, end) in starts.iter().zip(&due) {
                assert!(
                    *s >= *end - TimeDelta::minutes(5) && s <= end,
                    "run at {s}, window end {end}"
                );
                lateness += (*s - (*end - TimeDelta::minutes(5))).num_milliseconds();
            }
        }
        let optimum = left_shifted_lateness(windows.clone());
        assert_eq!(
            lateness, optimum,
            "seed {seed}: total lateness vs the left-shifted greedy's"
        );
        // batching off needs a wake-up per distinct window start
        let mut accurate = Harness::new().auto_succeed();
        for &(_, e) in &enqueued {
            accurate.now = e;
            accurate.enqueue(JobRequest::periodic(KIND, every).flex(flex));
        }
        accurate.advance_to(horizon);
        let unbatched = accurate.wakes.iter().filter(|&&w| w <= horizon).count();
        assert!(unbatched > 5 * wakes, "seed {seed}: {unbatched} vs {wakes}");
        eprintln!(
            "seed {seed}: {wakes} wake-ups batched (lower bound {bound}), {unbatched} without batching, {} windows, total lateness {} s (left-shifted optimum {} s; waking at window ends: {} s)",
            windows.len(),
            lateness / 1000,
            optimum / 1000,
            greedy_lateness(windows.clone(), false) / 1000
        );
    }
}

#[test]
fn jobs_without_flex_share_a_wake_up_within_the_batching_window() {
    let mut h = batching();
    let t0 = h.now;
    let a = h.enqueue(JobRequest::once(KIND).delay(secs(10)));
    let b = h.enqueue(JobRequest::once(KIND).delay(secs(40)));
    let c = h.enqueue(JobRequest::once(KIND).delay(secs(200)));
    h.advance(mins(10));
    // a may start in [10 s, 70 s], b in [40 s, 100 s]: the greedy wake-up at 70 s serves both,
    // and moves back to b's gate, 40 s; c has nothing to share a wake-up with: at its gate
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    assert_eq!(h.wakes, [at(40), at(200)]);
    assert_eq!(h.starts(a), [at(40)]);
    assert_eq!(h.starts(b), [at(40)]);
    assert_eq!(h.starts(c), [at(200)]);
}

#[test]
fn a_lone_one_off_runs_at_its_due_time() {
    // `backwork add --in 10m` ran after 11 min 0 s: it must run at 10 min
    let mut h = batching();
    let t0 = h.now;
    let id = h.enqueue(JobRequest::once(KIND).delay(mins(10)));
    h.advance(hours(1));
    assert_eq!(h.starts(id), [t0 + TimeDelta::minutes(10)]);
    assert_eq!(h.wakes, [t0 + TimeDelta::minutes(10)]);
}

#[test]
fn a_linear_backoff_retry_comes_after_its_delay() {
    // `--backoff linear:10s` retried after 79 s; DESIGN §2: linear `base · n`
    let mut h = Harness::with(Config::default(), Box::new(backwork_scheduler::AllowAll))
        .auto(|_, _| Some(backwork_scheduler::RunOutcome::Retry(None)));
    let t0 = h.now;
    let id =
        h.enqueue(JobRequest::once(KIND).backoff(backwork_scheduler::Backoff::linear(secs(10))));
    h.advance(secs(100));
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    // attempts at 0, then +10, +20, +30: 0, 10, 30, 60, 100
    assert_eq!(h.starts(id), [at(0), at(10), at(30), at(60), at(100)]);
}

/// Every start of `id` and the gaps between them, for the slot tests below.
fn assert_every(h: &Harness, id: backwork_scheduler::JobId, first: Time, gap: TimeDelta, n: usize) {
    let starts = h.starts(id);
    let expected: Vec<Time> = (0..n as i32).map(|k| first + gap * k).collect();
    assert_eq!(starts.len(), n, "runs: {starts:?}");
    assert_eq!(starts, expected);
}

#[test]
fn short_periods_and_per_minute_cron_lose_no_slot() {
    // a lone periodic job every 10 s and every minute: one run per period, each at its start
    for every in [10u64, 60] {
        let mut h = batching();
        let t0 = h.now;
        let id = h.enqueue(JobRequest::periodic(KIND, secs(every)));
        h.advance_to(t0 + TimeDelta::hours(1) - TimeDelta::milliseconds(1));
        let n = (3600 / every) as usize;
        assert_every(&h, id, t0, TimeDelta::seconds(every as i64), n);
    }
    // a per-minute crontab line: 60 runs in an hour, each at its minute (cron(5): `* * * * *`
    // runs every minute)
    let mut h = batching();
    let t0 = h.now; // 2026-01-01T00:00:00Z, a whole minute
    let id = h.enqueue(JobRequest::cron(KIND, "* * * * *", chrono_tz::UTC));
    h.advance_to(t0 + TimeDelta::hours(1));
    assert_every(
        &h,
        id,
        t0 + TimeDelta::minutes(1),
        TimeDelta::minutes(1),
        60,
    );
}

#[test]
fn a_slot_shorter_than_the_window_is_not_eaten_by_a_shared_wake_up() {
    // other work whose gates fall just before and just at the next minute: the per-minute job
    // may go along with them, but never past its next slot
    let mut h = batching();
    let t0 = h.now;
    let cron = h.enqueue(JobRequest::cron(KIND, "* * * * *", chrono_tz::UTC));
    for k in 0..60 {
        h.enqueue(JobRequest::once(KIND).delay(secs(60 * k + 119)));
        h.enqueue(JobRequest::once(KIND).delay(secs(60 * k + 120)));
    }
    h.advance_to(t0 + TimeDelta::hours(1) + TimeDelta::seconds(30));
    let starts = h.starts(cron);
    assert_eq!(starts.len(), 60, "one run per minute slot: {starts:?}");
    for (k, s) in starts.iter().enumerate() {
        let slot = t0 + TimeDelta::minutes(k as i64 + 1);
        assert!(
            *s >= slot && *s < slot + TimeDelta::minutes(1),
            "run {k} at {s} serves the slot {slot}"
        );
    }
}

#[test]
fn an_accurate_job_starts_at_its_due_instant() {
    let mut h = batching();
    let t0 = h.now;
    let id = h.enqueue(JobRequest::once(KIND).delay(secs(10)).accurate());
    let other = h.enqueue(JobRequest::once(KIND).delay(secs(30)));
    h.advance(mins(5));
    assert_eq!(h.starts(id), [t0 + TimeDelta::seconds(10)]);
    assert_eq!(h.starts(other), [t0 + TimeDelta::seconds(30)]);
    // a zero batching window turns batching off for every job, flex windows included: the
    // job starts when its window opens
    let mut off = Harness::new().auto_succeed();
    let t0 = off.now;
    let p = off.enqueue(JobRequest::periodic(KIND, mins(15)).flex(mins(5)));
    off.advance(mins(15));
    assert_eq!(off.starts(p), [t0 + TimeDelta::minutes(10)]);
}

#[test]
fn a_flex_job_alone_runs_when_its_window_opens_and_shares_a_later_wake_up() {
    let mut h = batching();
    let t0 = h.now;
    let p = h.enqueue(JobRequest::periodic(KIND, mins(15)).flex(mins(5)));
    h.advance(mins(15));
    // alone: nothing to wait for, so at its window's start
    assert_eq!(h.starts(p), [t0 + TimeDelta::minutes(10)]);
    // its next window is [25, 30]; a one-off due at 26 min (may start until 27): one wake-up
    // serves both, at the later gate, 26 min
    h.now = t0 + TimeDelta::minutes(20);
    let o = h.enqueue(JobRequest::once(KIND).delay(mins(6)));
    h.advance(mins(20));
    let at = t0 + TimeDelta::minutes(26);
    assert_eq!(h.starts(o), [at]);
    assert_eq!(
        h.starts(p)[1],
        at,
        "started with the one-off, inside [25, 30]"
    );
}

#[test]
fn batching_never_delays_now() {
    let mut h = batching();
    let t0 = h.now;
    // enqueued to run now
    let now_job = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.starts(now_job), [t0]);
    // a constraint that comes back
    h.set_device(|d| d.charging = false);
    let waiting = h.enqueue(JobRequest::once(KIND).constraints(Constraints::none().charging()));
    h.advance(secs(5));
    h.set_device(|d| d.charging = true);
    assert_eq!(h.starts(waiting), [t0 + TimeDelta::seconds(5)]);
    // "run now"
    let later = h.enqueue(JobRequest::once(KIND).delay(hours(1)));
    h.advance(secs(5));
    h.handle(Event::Force {
        selector: Selector::Id(later),
        force: Force {
            time: true,
            constraints: false,
        },
    })
    .unwrap();
    assert_eq!(h.starts(later), [t0 + TimeDelta::seconds(10)]);
}

#[test]
fn jitter_spreads_due_times_reproducibly() {
    let mut h = Harness::new().auto_succeed(); // batching off: see the jitter alone
    let t0 = h.now;
    let ids: Vec<_> = (0..200)
        .map(|_| h.enqueue(JobRequest::once(KIND).delay(mins(10)).jitter(mins(30))))
        .collect();
    h.advance(hours(1));
    let mut starts: Vec<Time> = ids.iter().map(|&id| h.starts(id)[0]).collect();
    for (&id, s) in ids.iter().zip(&starts) {
        let expected = t0
            + TimeDelta::minutes(10)
            + TimeDelta::from_std(jitter_offset(id, h.job(id).request.jitter.unwrap(), 0)).unwrap();
        assert_eq!(*s, expected);
        assert!(*s >= t0 + TimeDelta::minutes(10) && *s < t0 + TimeDelta::minutes(40));
    }
    starts.sort();
    starts.dedup();
    assert!(
        starts.len() > 150,
        "spread over the 30 minutes: {} distinct",
        starts.len()
    );
    // per cycle the offset changes; fixed keeps it
    let j = backwork_scheduler::Jitter {
        max: mins(30),
        fixed: false,
    };
    let fixed = backwork_scheduler::Jitter {
        max: mins(30),
        fixed: true,
    };
    let id = ids[0];
    let per_cycle: Vec<Duration> = (0..10).map(|c| jitter_offset(id, j, c)).collect();
    assert!(per_cycle.windows(2).any(|w| w[0] != w[1]));
    assert!((0..10).all(|c| jitter_offset(id, fixed, c) == jitter_offset(id, fixed, 0)));
}

#[test]
fn a_missed_cron_slot_within_its_latest_start_is_not_missed() {
    // catch-up = skip: a clock jump that lands inside a slot's batching slack still runs it
    let mut h = batching();
    let t0 = h.now;
    let id = h.enqueue(
        JobRequest::cron(KIND, "0 */10 * * * *", chrono_tz::UTC)
            .catch_up(backwork_scheduler::CatchUp::Skip),
    );
    h.advance(mins(25));
    let at = |m: i64| t0 + TimeDelta::minutes(m);
    assert_eq!(h.starts(id), [at(10), at(20)]);
    h.jump_to(at(30) + TimeDelta::seconds(30));
    h.handle(Event::ClockJumped).unwrap();
    assert_eq!(h.starts(id).len(), 3, "the 30-min slot ran at once");
}

#[test]
fn why_says_batched_only_when_other_work_shares_the_wake_up() {
    let mut h = batching();
    let t0 = h.now;
    let a = h.enqueue(JobRequest::once(KIND).delay(secs(10)));
    let b = h.enqueue(JobRequest::once(KIND).delay(secs(40)));
    // the planned wake-up is b's gate; at 20 s a waits for it, and names b
    assert_eq!(h.core.poll_timeout(), Some(t0 + TimeDelta::seconds(40)));
    let at20 = t0 + TimeDelta::seconds(20);
    assert_eq!(
        h.core.why(at20, a).unwrap(),
        [backwork_scheduler::WaitReason::Batched {
            until: t0 + TimeDelta::seconds(40),
            with: vec![backwork_scheduler::JobRef { id: b, name: None }],
            more: false,
        }]
    );
    assert_eq!(
        h.core.why(at20, b).unwrap(),
        [backwork_scheduler::WaitReason::NotDue {
            until: t0 + TimeDelta::seconds(40)
        }]
    );
    // a lone job whose gate has passed waits for nothing: "batched" would be a lie
    let mut lone = batching();
    let t0 = lone.now;
    let id = lone.enqueue(JobRequest::once(KIND).delay(secs(10)));
    assert_eq!(lone.core.poll_timeout(), Some(t0 + TimeDelta::seconds(10)));
    assert_eq!(lone.core.why(t0 + TimeDelta::seconds(11), id).unwrap(), []);
}

#[test]
fn why_shows_the_batched_start_before_the_jobs_own_gate_and_names_its_partners() {
    // a backing-off job whose retry shares a wake-up with a named job due a little later:
    // `why` gives both the backoff and the start it will really have
    let mut h = batching();
    let t0 = h.now;
    let a = h.enqueue(JobRequest::once(KIND).delay(secs(10)));
    let b = h.enqueue(
        JobRequest::once(KIND)
            .delay(secs(40))
            .unique("nightly", backwork_scheduler::ConflictPolicy::Keep),
    );
    let reasons = h.core.why(t0, a).unwrap();
    assert_eq!(
        reasons,
        [
            backwork_scheduler::WaitReason::NotDue {
                until: t0 + TimeDelta::seconds(10)
            },
            backwork_scheduler::WaitReason::Batched {
                until: t0 + TimeDelta::seconds(40),
                with: vec![backwork_scheduler::JobRef {
                    id: b,
                    name: Some("nightly".into())
                }],
                more: false,
            }
        ]
    );
    assert!(reasons[1].to_string().contains("together with nightly"));
}
