//! Property tests: random input sequences fed to the core, with its invariants checked after every
//! input — no start while constraints fail, at most one successful run per period, a job that can
//! run does run, unique names hold, a cancelled job never starts, the concurrency limit holds, and
//! the same inputs give the same actions; the per-tag counts admission sees (kept incrementally)
//! match a recount over every job.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backwork_scheduler::{
    Action, CatchUp, ConflictPolicy, Constraints, DeviceState, Disposition, Event, Force, JobId,
    JobRequest, JobState, Network, NetworkRequirement, Reply, RunOutcome, RunResult, Selector,
    Time,
};
use chrono_tz::Tz;
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Sched {
    Once { delay_s: u16 },
    Periodic { every_min: u16 },
    PeriodicFlex { every_min: u16, flex_min: u16 },
    Cron { every_quarter: bool },
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        registered: bool,
        sched: Sched,
        constraints: u8,
        name: Option<(u8, u8)>,
        max_attempts: Option<u8>,
        skip: bool,
    },
    Cancel(u8),
    CancelTag(bool),
    Device {
        network: u8,
        charging: bool,
        battery: u8,
        storage_low: bool,
        idle: bool,
    },
    Finish {
        pick: u8,
        outcome: u8,
    },
    ToDeadline,
    Advance(u32),
    RunNow {
        pick: u8,
        ignore: bool,
    },
    Downtime(u32),
}

fn sched() -> impl Strategy<Value = Sched> {
    prop_oneof![
        (0u16..7200).prop_map(|delay_s| Sched::Once { delay_s }),
        (1u16..180).prop_map(|every_min| Sched::Periodic { every_min }),
        (2u16..180, 1u16..60).prop_map(|(e, f)| Sched::PeriodicFlex {
            every_min: e,
            flex_min: f.min(e)
        }),
        any::<bool>().prop_map(|every_quarter| Sched::Cron { every_quarter }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), sched(), 0u8..32, proptest::option::of((0u8..3, 0u8..3)), proptest::option::of(1u8..4), any::<bool>())
            .prop_map(|(r, sched, constraints, name, max_attempts, skip)| Op::Enqueue {
                registered: r || constraints % 5 != 0, sched, constraints, name, max_attempts, skip,
            }),
        1 => any::<u8>().prop_map(Op::Cancel),
        1 => any::<bool>().prop_map(Op::CancelTag),
        3 => (0u8..3, any::<bool>(), 0u8..101, any::<bool>(), any::<bool>())
            .prop_map(|(network, charging, battery, storage_low, idle)| Op::Device { network, charging, battery, storage_low, idle }),
        5 => (any::<u8>(), 0u8..5).prop_map(|(pick, outcome)| Op::Finish { pick, outcome }),
        4 => Just(Op::ToDeadline),
        3 => (0u32..14_400).prop_map(Op::Advance),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(pick, ignore)| Op::RunNow { pick, ignore }),
        1 => (0u32..86_400).prop_map(Op::Downtime),
    ]
}

fn constraints(bits: u8) -> Constraints {
    let mut c = Constraints::none();
    if bits & 1 != 0 {
        c = c.network(NetworkRequirement::Connected);
    }
    if bits & 2 != 0 {
        c = c.network(NetworkRequirement::Unmetered);
    }
    if bits & 4 != 0 {
        c = c.charging();
    }
    if bits & 8 != 0 {
        c = c.battery_not_low();
    }
    if bits & 16 != 0 {
        c = c.storage_not_low();
    }
    c
}

fn request(
    registered: bool,
    s: &Sched,
    bits: u8,
    name: Option<(u8, u8)>,
    max: Option<u8>,
    skip: bool,
) -> JobRequest {
    let kind = if registered { KIND } else { "unregistered" };
    let mut r = match s {
        Sched::Once { delay_s } => {
            JobRequest::once(kind).delay(Duration::from_secs(u64::from(*delay_s)))
        }
        Sched::Periodic { every_min } => JobRequest::periodic(kind, mins(u64::from(*every_min))),
        Sched::PeriodicFlex {
            every_min,
            flex_min,
        } => {
            JobRequest::periodic(kind, mins(u64::from(*every_min))).flex(mins(u64::from(*flex_min)))
        }
        Sched::Cron { every_quarter } => JobRequest::cron(
            kind,
            if *every_quarter {
                "0 */15 * * * *"
            } else {
                "0 0 * * * *"
            },
            Tz::UTC,
        ),
    };
    r = r
        .constraints(constraints(bits))
        .tag(if bits.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        });
    if let Some(m) = max {
        r = r.max_attempts(u32::from(m));
    }
    // some one-offs without charging or battery constraints are expedited, due at once (what
    // may be expedited: the others would be refused)
    if matches!(s, Sched::Once { .. }) && bits & 32 != 0 && bits & (4 | 8) == 0 {
        r = r.delay(Duration::ZERO).expedited(if bits & 64 != 0 {
            backwork_scheduler::OutOfQuotaPolicy::Drop
        } else {
            backwork_scheduler::OutOfQuotaPolicy::RunAsNonExpedited
        });
    }
    if skip {
        r = r.catch_up(CatchUp::Skip);
    }
    if let Some((n, p)) = name {
        let policy = [
            ConflictPolicy::Keep,
            ConflictPolicy::Replace,
            ConflictPolicy::Update,
        ][usize::from(p)];
        r = r.unique(format!("name-{n}"), policy);
    }
    r
}

/// The per-tag counts the core passed to `admit` (it keeps them incrementally; the property
/// recounts them from the jobs).
type TagCounts = std::sync::Arc<std::sync::Mutex<Vec<(String, usize)>>>;

/// Admits everything and records the context's `pending_by_tag`.
#[derive(Debug, Default)]
struct AdmitRecorder(TagCounts);

impl backwork_scheduler::Policy for AdmitRecorder {
    fn admit(
        &mut self,
        _now: Time,
        _request: &JobRequest,
        cx: backwork_scheduler::PolicyContext<'_>,
    ) -> Result<(), String> {
        *self.0.lock().unwrap() = cx.pending_by_tag.to_vec();
        Ok(())
    }
}

/// What `pending_by_tag` must say for `req`, counted over every job: for each of its tags, the
/// unfinished jobs carrying it, not counting those with the request's unique name
/// (`PolicyContext::pending_by_tag`'s contract).
fn recount(h: &Harness, req: &JobRequest) -> Vec<(String, usize)> {
    let name = req.unique.as_ref().map(|u| u.name.as_str());
    req.tags
        .iter()
        .map(|tag| {
            let n = h
                .core
                .jobs()
                .filter(|j| {
                    !j.state.is_finished()
                        && j.request.tags.contains(tag)
                        && (name.is_none() || j.unique_name() != name)
                })
                .count();
            (tag.clone(), n)
        })
        .collect()
}

/// Runs `ops`, checking invariants after each; returns the action log.
fn run(ops: &[Op]) -> Result<Vec<(Time, Action)>, TestCaseError> {
    let admitted = TagCounts::default();
    let mut h = Harness::with(
        backwork_scheduler::Config {
            max_concurrent: 3,
            ..Default::default()
        },
        Box::new(AdmitRecorder(admitted.clone())),
    );
    let mut ids: Vec<JobId> = Vec::new();
    let mut cancelled: BTreeSet<JobId> = BTreeSet::new();
    let mut forced_constraints: BTreeSet<JobId> = BTreeSet::new();
    // "run now" starts an explicit extra cycle (with its retries): it is exempt from the
    // one-run-per-period rule
    let mut forced_time: BTreeSet<JobId> = BTreeSet::new();
    let mut forced_cycles: BTreeSet<(JobId, u64)> = BTreeSet::new();
    // the cycle each run belonged to, by (job, start instant)
    let mut run_cycles: BTreeMap<(JobId, Time), u64> = BTreeMap::new();
    // periodic jobs without flex: (anchor, interval) → period indices of successful runs
    let mut grids: BTreeMap<JobId, (Time, i64)> = BTreeMap::new();
    let mut periods: BTreeMap<JobId, BTreeSet<i64>> = BTreeMap::new();

    for op in ops {
        let log_before = h.log.len();
        match op {
            Op::Enqueue {
                registered,
                sched,
                constraints,
                name,
                max_attempts,
                skip,
            } => {
                let req = request(
                    *registered,
                    sched,
                    *constraints,
                    *name,
                    *max_attempts,
                    *skip,
                );
                let id = h.fresh_id();
                let expected = recount(&h, &req);
                let outcome = h.handle(Event::Enqueue { id, request: req });
                prop_assert_eq!(&*admitted.lock().unwrap(), &expected);
                match outcome {
                    Ok(Reply::Enqueued {
                        id: got,
                        disposition,
                        ..
                    }) => {
                        if disposition == Disposition::Inserted
                            || disposition == Disposition::Replaced
                        {
                            prop_assert_eq!(got, id);
                            ids.push(id);
                            if let Sched::Periodic { every_min } = sched {
                                grids.insert(id, (h.now, i64::from(*every_min) * 60));
                            }
                        }
                        if disposition == Disposition::Updated {
                            // the schedule changed in place (keeping the enqueue time): the
                            // one-run-per-period rule starts over with the new one
                            periods.remove(&got);
                            match sched {
                                Sched::Periodic { every_min } => {
                                    let anchor = h.job(got).enqueued_at;
                                    grids.insert(got, (anchor, i64::from(*every_min) * 60));
                                }
                                _ => {
                                    grids.remove(&got);
                                }
                            }
                        }
                    }
                    other => prop_assert!(false, "enqueue failed: {:?}", other),
                }
            }
            Op::Cancel(pick) if !ids.is_empty() => {
                let id = ids[usize::from(*pick) % ids.len()];
                let _ = h.handle(Event::Cancel(Selector::Id(id)));
            }
            Op::CancelTag(even) => {
                let _ = h.handle(Event::Cancel(Selector::Tag(
                    if *even { "even" } else { "odd" }.into(),
                )));
            }
            Op::Device {
                network,
                charging,
                battery,
                storage_low,
                idle,
            } => {
                let d = DeviceState {
                    network: [Network::None, Network::Metered, Network::Unmetered]
                        [usize::from(*network)],
                    charging: *charging,
                    battery: Some(*battery),
                    storage_low: *storage_low,
                    idle: *idle,
                    screen_on: true,
                    moving: false,
                };
                h.handle(Event::DeviceChanged(d)).unwrap();
            }
            Op::Finish { pick, outcome } if !h.running.is_empty() => {
                let running: Vec<JobId> = h.running.keys().copied().collect();
                let id = running[usize::from(*pick) % running.len()];
                let started = *h.starts(id).last().unwrap();
                let outcome = match outcome {
                    0 => RunOutcome::Success(None),
                    1 => RunOutcome::Retry(None),
                    2 => RunOutcome::Failure(None),
                    3 => RunOutcome::Panicked("boom".into()),
                    _ => RunOutcome::Aborted,
                };
                h.finish(id, outcome);
                let job = h.job(id);
                if let (Some((anchor, every)), Some(last)) = (grids.get(&id), job.history.last())
                    && last.result == RunResult::Success
                    && !run_cycles
                        .get(&(id, started))
                        .is_some_and(|c| forced_cycles.contains(&(id, *c)))
                {
                    let k = (started - *anchor).num_seconds().div_euclid(*every);
                    prop_assert!(
                        periods.entry(id).or_default().insert(k),
                        "two successful runs of {} in period {}",
                        id,
                        k
                    );
                }
            }
            Op::ToDeadline => {
                if let Some(t) = h.core.poll_timeout() {
                    h.now = t.max(h.now);
                    h.handle(Event::Timeout).unwrap();
                }
            }
            Op::Advance(s) => {
                h.now += chrono::TimeDelta::seconds(i64::from(*s));
                h.handle(Event::Timeout).unwrap();
            }
            Op::RunNow { pick, ignore } if !ids.is_empty() => {
                let id = ids[usize::from(*pick) % ids.len()];
                let force = Force {
                    time: true,
                    constraints: *ignore,
                };
                if h.core
                    .job(id)
                    .is_some_and(|j| j.state == JobState::Enqueued)
                {
                    forced_time.insert(id);
                    if *ignore {
                        forced_constraints.insert(id);
                    }
                }
                let _ = h.handle(Event::Force {
                    selector: Selector::Id(id),
                    force,
                });
            }
            Op::Downtime(s) => {
                h.now += chrono::TimeDelta::seconds(i64::from(*s));
                h.handle(Event::ClockJumped).unwrap();
            }
            _ => {}
        }

        // ---- invariants after every input
        let device = *h.core.device();
        for (_, action) in &h.log[log_before..] {
            if let Action::Start(s) = action {
                let cycle = h.job(s.id).cycle;
                run_cycles.insert((s.id, h.now), cycle);
                if forced_time.remove(&s.id) {
                    forced_cycles.insert((s.id, cycle));
                }
                prop_assert!(!cancelled.contains(&s.id), "cancelled job {} started", s.id);
                let job = h.job(s.id);
                if !forced_constraints.remove(&s.id) {
                    prop_assert!(
                        job.request.constraints.satisfied_by(&device),
                        "{} started while its constraints fail on {:?}",
                        s.id,
                        device
                    );
                }
            }
        }
        prop_assert!(h.core.running() <= 3);
        for job in h.core.jobs() {
            if job.state == JobState::Cancelled {
                cancelled.insert(job.id);
            }
            if job.state == JobState::Enqueued {
                let why = h.core.why(h.now, job.id).unwrap();
                prop_assert!(
                    !why.is_empty(),
                    "{} could run at {} but did not start",
                    job.id,
                    h.now
                );
            }
        }
        let mut unfinished: BTreeMap<String, usize> = BTreeMap::new();
        for job in h.core.jobs().filter(|j| !j.state.is_finished()) {
            if let Some(n) = job.unique_name() {
                *unfinished.entry(n.to_string()).or_default() += 1;
            }
        }
        prop_assert!(
            unfinished.values().all(|&n| n <= 1),
            "unique names violated: {:?}",
            unfinished
        );
    }
    Ok(h.log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_runs_are_deterministic(ops in proptest::collection::vec(op(), 1..80)) {
        let first = run(&ops)?;
        let second = run(&ops)?;
        prop_assert_eq!(first, second, "the same inputs must give the same actions");
    }
}
