//! The simulation loop: the scheduling core driven from event to event on a virtual clock.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use backwork_constraints::DeviceState;
use backwork_profiles::Profile;
use backwork_scheduler::{
    Action, Config, CoreError, Disposition, Event, HoldKind, JobId, Policy, Reply, RunOutcome,
    RunResult, Scheduler, StopReason, Time, WaitReason,
};
use rand::{RngExt, SeedableRng};
// (the maps by job id are looked up at every run: SipHash, the standard library's default,
// cost more than the lookups; nothing here iterates them, so their order cannot show)
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use crate::SimError;
use crate::report::{HeldInterval, JobReport, Report, RunReport, WaitFamily};
use crate::scenario::{EventSpec, Scenario};

/// The kind every simulated job runs as (each has its own worker in the outcome model).
const KIND: &str = "simulated";
/// The code of a job's lateness from batching in its held intervals.
const BATCHING: &str = "batching";
/// The code of a retry's backoff in its held intervals.
const BACKOFF: &str = "backoff";
/// The code of a job's stretch among the app's ready jobs, held by the app-wide reasons of
/// `Report::app_held`.
const APP_WIDE: &str = "app_wide";

fn profile(s: &Scenario) -> Result<Profile, SimError> {
    Profile::with_overrides(&s.profile, &s.overrides).map_err(|e| SimError::Profile(e.to_string()))
}

/// The simulation's core: no store (no change sets to build), no run history (the report
/// records every run itself), and the ready jobs' changes logged for [`ReadyGroup`].
fn core(config: Config, policy: Box<dyn Policy>) -> Scheduler {
    Scheduler::new(config, policy)
        .without_persistence()
        .without_run_history()
        .log_ready_changes()
}

fn add(t: Time, d: std::time::Duration) -> Time {
    backwork_scheduler::core::add(t, d)
}

struct Running {
    attempt: u32,
    ends: Time,
    fails: bool,
    started: Time,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    core: Scheduler,
    app: Option<backwork_profiles::AppControl>,
    now: Time,
    device: DeviceState,
    rng: ChaCha8Rng,
    /// Which job spec each job came from, and its name (looked up, never walked: hashed).
    spec_of: FxHashMap<JobId, (usize, String)>,
    running: BTreeMap<JobId, Running>,
    wakeups: u64,
    /// The wake-ups within the whole days simulated (for a per-day figure).
    wakeups_whole_days: u64,
    /// The end of the whole days simulated.
    whole_end: Time,
    /// Each job's report (looked up at every run, never walked: hashed).
    reports: FxHashMap<JobId, JobReport>,
    /// What holds each job back for reasons of its own, and since when.
    held: BTreeMap<JobId, (Time, Vec<String>)>,
    /// The ready jobs, which all wait for the same reasons.
    ready: ReadyGroup,
    /// Jobs started since the last look.
    started: Vec<JobId>,
    /// When `observe` last looked.
    observed_at: Time,
    /// Jobs due that wait only to share a wake-up with later work (the core's batching), since
    /// when: lateness reported apart from the holds.
    batched: BTreeMap<JobId, Time>,
    /// Jobs that a quota held back in their current wait to start (counted once a wait).
    quota_waits: BTreeSet<JobId>,
    /// Every hold reason seen: code → sentence.
    reasons: BTreeMap<String, String>,
    /// The family of every code in the held intervals.
    families: BTreeMap<String, WaitFamily>,
    /// The OS state of the profile at each change, recorded up to `os_until`.
    os_state: Vec<(Time, String)>,
    os_until: Time,
    /// The app's standby bucket at each change (android).
    bucket: Vec<(Time, String)>,
    /// The end of the simulated span.
    end: Time,
    timeline: Vec<(Time, String)>,
    states: Vec<(Time, DeviceState)>,
    rejected: Vec<(Time, String, String)>,
}

/// The core's ready jobs (`Scheduler::is_ready`) followed as one group: they all wait for the
/// same reasons (`Scheduler::ready_reasons`: an app-wide hold of the policy, the run slots), so
/// a change of those is recorded once for the group — a running total per reason code, and
/// the app's held intervals — and a job joining or leaving costs a copy of those totals, not a
/// `why` for every waiting job at every step (a quota that holds a thousand jobs until the same
/// instant, window after window). A job keeps only its stretch in the group (`app_wide`).
struct ReadyGroup {
    /// What holds the ready jobs back now (as the core says it, and as codes, sentences and
    /// families).
    reasons: Vec<WaitReason>,
    labels: Vec<Label>,
    /// The codes that hold the ready jobs back now, since `since`, and whether one is a quota.
    codes: Vec<usize>,
    since: Time,
    quota: bool,
    /// Every code seen (indexes of `codes`, `held`).
    names: Vec<String>,
    /// For each code, the stretches of holds the group had members for, closed and merged
    /// where they touch (the last one may still grow into the open stretch), and the
    /// milliseconds of all those before each (`prefix[k]`: of `held[..k]`): the app's held
    /// intervals in the report, and what members are charged from.
    /// (Instants as nanoseconds from `origin`: a member's share is integer arithmetic.)
    held: Vec<Vec<(i64, i64)>>,
    prefix: Vec<Vec<u64>>,
    origin: Time,
    /// `since` in nanoseconds from `origin`.
    since_ns: i64,
    /// How many times the group came to be held by a quota.
    quota_entries: u64,
    /// Each member: when it joined, for each code the first interval that can meet its stay,
    /// and the quota entries then.
    members: BTreeMap<JobId, (Time, i64, Vec<usize>, u64)>,
}

impl ReadyGroup {
    fn new(now: Time) -> Self {
        ReadyGroup {
            reasons: Vec::new(),
            labels: Vec::new(),
            codes: Vec::new(),
            since: now,
            quota: false,
            names: Vec::new(),
            held: Vec::new(),
            prefix: Vec::new(),
            origin: now,
            since_ns: 0,
            quota_entries: 0,
            members: BTreeMap::new(),
        }
    }

    /// From `now` on, the group waits for `codes` (`quota`: one is a quota).
    fn relabel(&mut self, now: Time, codes: &[String], quota: bool) {
        let same = codes.len() == self.codes.len()
            && codes
                .iter()
                .zip(&self.codes)
                .all(|(c, &i)| self.names[i] == *c);
        if same {
            return;
        }
        if !self.members.is_empty() {
            self.close_stretch(now);
        }
        self.codes = codes
            .iter()
            .map(|c| match self.names.iter().position(|n| n == c) {
                Some(i) => i,
                None => {
                    self.names.push(c.clone());
                    self.held.push(Vec::new());
                    self.prefix.push(Vec::new());
                    self.names.len() - 1
                }
            })
            .collect();
        self.set_since(now);
        if quota && !self.quota {
            self.quota_entries += 1;
        }
        self.quota = quota;
    }

    /// The open stretch begins at `t`.
    fn set_since(&mut self, t: Time) {
        self.since = t;
        self.since_ns = self.ns(t);
    }

    /// `t` in nanoseconds from the origin (past ±292 years, clamped: no simulation spans that).
    fn ns(&self, t: Time) -> i64 {
        (t - self.origin).num_nanoseconds().unwrap_or(i64::MAX)
    }

    /// Ends the stretch of the current reasons at `now` (it had members): into each code's
    /// held intervals, merged with the last one if it ends where the stretch began.
    fn close_stretch(&mut self, now: Time) {
        if self.since >= now {
            return;
        }
        let (since, now) = (self.since_ns, self.ns(now));
        for &c in &self.codes {
            let (held, prefix) = (&mut self.held[c], &mut self.prefix[c]);
            match held.last_mut() {
                Some((_, end)) if *end == since => *end = now,
                last => {
                    let before = match (last, prefix.last()) {
                        (Some((from, to)), Some(p)) => p + span_ms(*from, *to),
                        _ => 0,
                    };
                    prefix.push(before);
                    held.push((since, now));
                }
            }
        }
    }

    fn join(&mut self, now: Time, id: JobId) {
        if self.members.is_empty() {
            self.set_since(now); // the stretch of the current reasons begins with its first member
        }
        // the intervals closed so far ended by now, but the last grows if the open stretch
        // (begun by now) joins it
        let (since, joined) = (self.since_ns, self.ns(now));
        let firsts = self
            .held
            .iter()
            .enumerate()
            .map(|(c, held)| match held.last() {
                Some((_, end)) if *end == since && self.codes.contains(&c) => held.len() - 1,
                _ => held.len(),
            })
            .collect();
        self.members
            .insert(id, (now, joined, firsts, self.quota_entries));
    }

    /// Takes `id` out of the group: adds to its `held_back_ms` its share of each code's held
    /// intervals — the milliseconds of each within its stay, counted as [`HeldInterval::ms`]
    /// counts them, so they sum to what the report's intervals say — and to its `held` the
    /// stay (code [`APP_WIDE`]) if anything held it there; whether the group came to be held
    /// by a quota meanwhile. `None`: not a member. Costs a few operations per code: the
    /// intervals between the first and the last lie wholly within the stay.
    fn leave(&mut self, now: Time, id: JobId, report: Option<&mut JobReport>) -> Option<bool> {
        let (joined, from, firsts, entries) = self.members.remove(&id)?;
        if let Some(report) = report {
            let (to, since) = (self.ns(now), self.since_ns);
            let clip = |(a, b): (i64, i64)| span_ms(a.max(from), b.min(to));
            let mut any = false;
            for c in 0..self.names.len() {
                let (held, prefix) = (&self.held[c], &self.prefix[c]);
                let n = held.len();
                let first = firsts.get(c).copied().unwrap_or(0).min(n);
                let open = since < to && self.codes.contains(&c);
                if n == first && !open {
                    continue;
                }
                // the last closed interval, grown by the open stretch if they touch
                let grows = open && n > 0 && held[n - 1].1 == since;
                let at = |k: usize| {
                    if grows && k == n - 1 {
                        (held[k].0, to)
                    } else {
                        held[k]
                    }
                };
                let mut ms = match n - first {
                    0 => 0,
                    1 => clip(at(first)),
                    _ => clip(held[first]) + prefix[n - 1] - prefix[first + 1] + clip(at(n - 1)),
                };
                if open && !grows {
                    ms += clip((since, to));
                }
                if ms == 0 {
                    continue;
                }
                any = true;
                match report.held_back_ms.get_mut(&self.names[c]) {
                    Some(total) => *total += ms,
                    None => {
                        report.held_back_ms.insert(self.names[c].clone(), ms);
                    }
                }
            }
            if any {
                push_held(&mut report.held, joined, now, Cow::Borrowed(APP_WIDE));
            }
        }
        if self.members.is_empty() {
            // nobody waits behind the reasons any more: their stretch ends here
            self.close_stretch(now);
            self.set_since(now);
        }
        Some(self.quota_entries > entries)
    }

    /// The app's held intervals, in order of their starts.
    fn app_held(&self) -> Vec<HeldInterval> {
        let mut out: Vec<HeldInterval> = self
            .held
            .iter()
            .zip(&self.names)
            .flat_map(|(held, code)| {
                held.iter().map(|(start, end)| HeldInterval {
                    start: self.origin + chrono::TimeDelta::nanoseconds(*start),
                    end: self.origin + chrono::TimeDelta::nanoseconds(*end),
                    code: Cow::Owned(code.clone()),
                })
            })
            .collect();
        out.sort_by(|a, b| a.start.cmp(&b.start).then(a.code.cmp(&b.code)));
        out
    }
}

/// The length of `[from, to)`, in nanoseconds, in whole milliseconds, as
/// [`HeldInterval::ms`] counts it.
fn span_ms(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from) / 1_000_000).unwrap_or(0)
}

/// Adds the wait `[start, end)` for `code` to a job's intervals, merged with an interval of
/// the same code that ends where it starts. The intervals are kept in the order of their ends
/// (a merged one moves to the back), so only the last few are looked at: those that end at
/// `start` or later.
fn push_held(held: &mut Vec<HeldInterval>, start: Time, end: Time, code: Cow<'static, str>) {
    if end <= start {
        return;
    }
    for i in (0..held.len()).rev() {
        if held[i].end < start {
            break;
        }
        if held[i].end == start && held[i].code == code {
            let mut iv = held.remove(i);
            iv.end = end;
            held.push(iv);
            return;
        }
    }
    held.push(HeldInterval { start, end, code });
}

/// A hold's code, sentence and family.
type Label = (String, String, WaitFamily);

/// What a simulation step did, for how much of the held-back picture to look at again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Only runs ended: jobs may have started, none can be newly held.
    RunsEnded,
    /// Only gates opened: jobs may be newly held.
    GatesOpened,
    /// Anything else (an event, a wake-up, a job added): look at everything.
    Full,
}

/// The stable code of a reason that holds a job back although its schedule lets it run, its
/// sentence and its family; `None` for reasons that are the schedule itself (not due,
/// backoff…).
fn label(r: &WaitReason) -> Option<Label> {
    Some(match r {
        WaitReason::Constraint(u) => (
            format!("constraint_{}", u.constraint.to_string().replace('-', "_")),
            format!("constraint {}", u.constraint),
            WaitFamily::Constraint,
        ),
        WaitReason::Policy { reason, .. } => (
            reason.code.clone(),
            format!("profile: {}", reason.message),
            match reason.kind {
                HoldKind::Quota => WaitFamily::Quota,
                HoldKind::Batching => WaitFamily::Batching,
                _ => WaitFamily::Profile,
            },
        ),
        WaitReason::NoWorker { kind } => (
            "no_worker".into(),
            format!("no worker for {kind}"),
            WaitFamily::Other,
        ),
        WaitReason::ConcurrencyLimit { .. } => (
            "run_slots_busy".into(),
            "run slots busy".into(),
            WaitFamily::Other,
        ),
        WaitReason::Blocked { .. } => (
            "prerequisites".into(),
            "waiting for its prerequisites to succeed".into(),
            WaitFamily::Other,
        ),
        WaitReason::ShuttingDown => (
            "shutting_down".into(),
            "shutting down".into(),
            WaitFamily::Other,
        ),
        WaitReason::Sleeping { .. } => (
            "sleeping".into(),
            "machine asleep".into(),
            WaitFamily::Other,
        ),
        WaitReason::NotDue { .. }
        | WaitReason::Batched { .. }
        | WaitReason::Backoff { .. }
        | WaitReason::MinInterval { .. }
        | WaitReason::Running { .. }
        | WaitReason::Finished { .. } => return None,
    })
}

fn is_quota(r: &WaitReason) -> bool {
    matches!(r, WaitReason::Policy { reason, .. } if reason.kind == HoldKind::Quota)
}

impl Sim<'_> {
    fn feed(&mut self, event: Event) -> Result<Reply, SimError> {
        let reply = self.core.handle(self.now, event);
        self.drain();
        reply.map_err(|e| SimError::Profile(e.to_string()))
    }

    fn drain(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Start(s) => {
                    self.started.push(s.id);
                    let Some((spec, _)) = self.spec_of.get(&s.id) else {
                        continue;
                    };
                    let scenario: &Scenario = self.scenario;
                    let outcome = &scenario.jobs[*spec].outcome;
                    let fails = outcome.fail > 0.0 && self.rng.random_bool(outcome.fail);
                    self.running.insert(
                        s.id,
                        Running {
                            attempt: s.attempt,
                            ends: add(self.now, outcome.duration),
                            fails,
                            started: self.now,
                        },
                    );
                }
                Action::Stop { id, reason } => {
                    // a simulated worker stops at once
                    if let Some(r) = self.running.remove(&id) {
                        self.record_stop(id, r.started, &reason);
                        let _ = self.core.handle(
                            self.now,
                            Event::Finished {
                                id,
                                attempt: r.attempt,
                                outcome: RunOutcome::Retry(None),
                            },
                        );
                        self.note_backoff(id);
                    }
                }
                Action::Abort { .. } | Action::Persist(_) => {}
            }
        }
    }

    /// The progress a run that started at `start` has reported by now: of the scenario's n
    /// values, the i-th at i/n of its duration.
    fn progress_by_now(&self, id: JobId, start: Time) -> Option<f64> {
        self.spec_of.get(&id).and_then(|(i, _)| {
            let o = &self.scenario.jobs.get(*i)?.outcome;
            let n = o.progress.len();
            if n == 0 {
                return None;
            }
            let ran = (self.now - start).to_std().unwrap_or_default();
            let reported = (1..=n)
                .take_while(|k| o.duration.mul_f64(*k as f64 / n as f64) <= ran)
                .count();
            reported.checked_sub(1).map(|k| o.progress[k])
        })
    }

    /// A run that ended by itself, or was lost to a reboot.
    fn record(&mut self, id: JobId, start: Time, outcome: RunResult) {
        let progress = self.progress_by_now(id, start);
        if let Some(rep) = self.reports.get_mut(&id) {
            match outcome {
                RunResult::Success => rep.succeeded += 1,
                RunResult::Retry | RunResult::Failure => rep.failed += 1,
                RunResult::Stopped | RunResult::Crashed => rep.stopped += 1,
            }
            rep.runs.push(RunReport {
                start,
                end: self.now,
                outcome,
                stop: None,
                progress,
            });
        }
    }

    /// A run the scheduler stopped: counted under the stop's code, its sentence kept once.
    fn record_stop(&mut self, id: JobId, start: Time, reason: &StopReason) {
        let code = match reason {
            // one code per constraint, as the holds have (`constraint_network`…)
            StopReason::ConstraintLost(c) => {
                format!("constraint_lost_{}", c.to_string().replace('-', "_"))
            }
            other => other.code().to_string(),
        };
        if !self.reasons.contains_key(&code) {
            self.reasons.insert(code.clone(), reason.to_string());
        }
        let progress = self.progress_by_now(id, start);
        if let Some(rep) = self.reports.get_mut(&id) {
            rep.stopped += 1;
            *rep.stops.entry(code.clone()).or_default() += 1;
            rep.runs.push(RunReport {
                start,
                end: self.now,
                outcome: RunResult::Stopped,
                stop: Some(code),
                progress,
            });
        }
    }

    /// Looks at what holds each job back now: an interval whose reasons change is closed and
    /// charged, a new one opened. The ready jobs are followed as a group at every step (cheap:
    /// see [`ReadyGroup`]); the others are looked at again as far as the step can change them.
    fn observe(&mut self, step: Step) {
        let since = std::mem::replace(&mut self.observed_at, self.now);
        for id in std::mem::take(&mut self.started) {
            self.release(id);
            self.close_batched(id);
            self.quota_waits.remove(&id); // a new wait begins after this run
        }
        self.follow_ready();
        if step == Step::RunsEnded {
            return; // only runs ended: nothing held for reasons of its own changed
        }
        if step == Step::GatesOpened {
            // only jobs whose gate just opened can be newly held; the others' reasons change
            // only with events and wake-ups, which observe everything
            for id in self.core.gates_opened(since, self.now) {
                if self.held.contains_key(&id) || self.ready.members.contains_key(&id) {
                    continue;
                }
                let Ok(reasons) = self.core.why(self.now, id) else {
                    continue;
                };
                if reasons.iter().any(is_quota) {
                    self.quota_hit(id);
                }
                let labels = self.codes(&reasons);
                self.note_batched(id, &reasons, &labels);
                if !labels.is_empty() {
                    self.held.insert(id, (self.now, labels));
                }
            }
            return;
        }
        let mut seen = BTreeSet::new();
        let mut looked = BTreeSet::new();
        for id in self.core.held_back_not_ready(self.now) {
            let Ok(reasons) = self.core.why(self.now, id) else {
                continue;
            };
            looked.insert(id);
            let labels = self.codes(&reasons);
            if reasons.iter().any(is_quota) {
                self.quota_hit(id);
            }
            self.note_batched(id, &reasons, &labels);
            if labels.is_empty() {
                continue;
            }
            seen.insert(id);
            match self.held.get(&id) {
                Some((_, old)) if *old == labels => {}
                _ => {
                    self.release(id);
                    self.held.insert(id, (self.now, labels));
                }
            }
        }
        let gone: Vec<JobId> = self
            .held
            .keys()
            .filter(|id| !seen.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.release(id);
        }
        let no_longer: Vec<JobId> = self
            .batched
            .keys()
            .filter(|id| !looked.contains(id))
            .copied()
            .collect();
        for id in no_longer {
            self.close_batched(id);
        }
    }

    /// Follows `id`'s lateness from batching: it waits for the wake-up it shares with later work
    /// and for nothing else (`labels`, its holds, are empty), or not.
    fn note_batched(&mut self, id: JobId, reasons: &[WaitReason], labels: &[String]) {
        let batched = labels.is_empty()
            && reasons
                .iter()
                .any(|r| matches!(r, WaitReason::Batched { .. }));
        if batched {
            self.batched.entry(id).or_insert(self.now);
        } else {
            self.close_batched(id);
        }
    }

    /// Ends `id`'s wait for a shared wake-up, charging it as lateness from batching.
    fn close_batched(&mut self, id: JobId) {
        let Some(since) = self.batched.remove(&id) else {
            return;
        };
        if let Some(rep) = self.reports.get_mut(&id) {
            push_held(&mut rep.held, since, self.now, Cow::Borrowed(BATCHING));
            self.families.insert(BATCHING.into(), WaitFamily::Batching);
        }
    }

    /// Records the profile's OS state up to `to`: the state at the last instant recorded, and
    /// at each end the profile foretold for it, as long as the policy did not change (the
    /// engine calls this before each step, with the step's instant; a change is recorded only
    /// when the code changes).
    fn follow_os(&mut self, to: Time) {
        while self.os_until < to {
            let at = self.os_until;
            let Some(state) = self.core.policy().os_state(at) else {
                self.os_until = to;
                return;
            };
            if self.os_state.last().is_none_or(|(_, c)| c != state.code) {
                self.os_state.push((at, state.code.to_string()));
            }
            self.os_until = state.until.filter(|u| *u > at).map_or(to, |u| u.min(to));
        }
    }

    /// `id`'s run just ended for a retry: its wait until the backoff lets it start again.
    fn note_backoff(&mut self, id: JobId) {
        // the core's own record of the retry (what `why` reports as `Backoff`), without a `why`
        let Some(until) = self
            .core
            .job(id)
            .filter(|j| j.backing_off && !j.state.is_finished())
            .map(|j| j.not_before)
        else {
            return;
        };
        if let Some(rep) = self.reports.get_mut(&id) {
            push_held(
                &mut rep.held,
                self.now,
                until.min(self.end),
                Cow::Borrowed(BACKOFF),
            );
            if !self.families.contains_key(BACKOFF) {
                self.families.insert(BACKOFF.into(), WaitFamily::Backoff);
            }
        }
    }

    /// A quota holds `id` back: a hit, unless one already held it in this wait to start.
    fn quota_hit(&mut self, id: JobId) {
        if self.quota_waits.insert(id)
            && let Some(rep) = self.reports.get_mut(&id)
        {
            rep.quota_hits += 1;
        }
    }

    /// Brings the ready group up to date: its reasons now, the jobs that joined (their own
    /// held interval closed) or left it (charged; looked at again if still held back).
    fn follow_ready(&mut self) {
        let mut changed = self.core.take_ready_changes();
        if changed.is_empty() && self.ready.members.is_empty() {
            return; // nobody to charge: the group's reasons are looked at when one joins
        }
        let reasons = self.core.ready_reasons(self.now);
        if reasons != self.ready.reasons {
            let quota = reasons.iter().any(is_quota);
            let labels: Vec<Label> = reasons.iter().filter_map(label).collect();
            let codes: Vec<String> = labels.iter().map(|(c, _, _)| c.clone()).collect();
            self.ready.relabel(self.now, &codes, quota);
            self.ready.labels = labels;
            self.ready.reasons = reasons;
        }
        changed.sort_unstable();
        changed.dedup();
        for id in changed {
            let ready = self.core.is_ready(id);
            if ready == self.ready.members.contains_key(&id) {
                continue;
            }
            if ready {
                self.release_held(id);
                self.close_batched(id);
                if self.ready.quota {
                    self.quota_hit(id);
                }
                self.ready.join(self.now, id);
            } else {
                self.leave_ready(id);
                if self.running.contains_key(&id) {
                    continue;
                }
                // held back for a reason of its own now (a deferral of its own, say)
                if let Ok(reasons) = self.core.why(self.now, id) {
                    if reasons.iter().any(is_quota) {
                        self.quota_hit(id);
                    }
                    let labels = self.codes(&reasons);
                    self.note_batched(id, &reasons, &labels);
                    if !labels.is_empty() {
                        self.held.insert(id, (self.now, labels));
                    }
                }
            }
        }
        self.keep_sentences();
    }

    /// The ready group's reasons are those of its members from now on: their sentences are
    /// kept for the report.
    fn keep_sentences(&mut self) {
        if self.ready.members.is_empty() {
            return;
        }
        for (code, sentence, family) in &self.ready.labels {
            if !self.families.contains_key(code) {
                self.families.insert(code.clone(), *family);
            }
            if !self.reasons.contains_key(code) {
                self.reasons.insert(code.clone(), sentence.clone());
            }
        }
    }

    /// Takes `id` out of the ready group, charging what held it there.
    fn leave_ready(&mut self, id: JobId) {
        let report = self.reports.get_mut(&id);
        let Some(quota_hits) = self.ready.leave(self.now, id, report) else {
            return;
        };
        if quota_hits {
            self.quota_hit(id); // the group came to be held by a quota while it was in it
        }
    }

    /// The codes of `reasons` that hold a job back, each code's sentence kept for the report.
    fn codes(&mut self, reasons: &[WaitReason]) -> Vec<String> {
        reasons
            .iter()
            .filter_map(label)
            .map(|(code, sentence, family)| {
                // (a stop may have given the code its sentence already: it has no family)
                self.families.entry(code.clone()).or_insert(family);
                self.reasons.entry(code.clone()).or_insert(sentence);
                code
            })
            .collect()
    }

    /// Closes `id`'s held interval, charging it to its reasons.
    fn release(&mut self, id: JobId) {
        self.leave_ready(id);
        self.release_held(id);
    }

    /// Closes `id`'s own held interval (not its time in the ready group), charging it.
    fn release_held(&mut self, id: JobId) {
        let Some((since, labels)) = self.held.remove(&id) else {
            return;
        };
        if let Some(rep) = self.reports.get_mut(&id) {
            for l in labels {
                push_held(&mut rep.held, since, self.now, Cow::Owned(l));
            }
        }
    }

    fn apply(&mut self, e: &EventSpec) -> Result<(), SimError> {
        let mut what = Vec::new();
        if e.reboot {
            what.push("reboot".to_string());
            self.reboot(e)?;
        }
        let device = e.device.apply(self.device);
        if device != self.device {
            what.push(describe(&self.device, &device));
            self.device = device;
            self.feed(Event::DeviceChanged(device))?;
        }
        if let Some(app) = &self.app {
            let before = app.state();
            if let Some(b) = e.device.bucket {
                app.set_bucket(b);
                what.push(format!("bucket {b}"));
                let b = b.to_string();
                if !self.bucket.is_empty() && self.bucket.last().is_none_or(|(_, c)| *c != b) {
                    self.bucket.push((self.now, b));
                }
            }
            if e.force_quit {
                app.set_force_quit(true);
                what.push("force-quit".into());
            }
            if e.app_open {
                app.set_force_quit(false);
                what.push("app opened".into());
            }
            if app.state() != before {
                self.feed(Event::PolicyChanged)?;
            }
        }
        if !what.is_empty() {
            self.timeline.push((self.now, what.join(", ")));
            self.states.push((self.now, self.device));
        }
        Ok(())
    }

    /// The device restarts: runs in progress are lost, and after `down` a new scheduler loads
    /// the jobs (recovering the ones that were running).
    fn reboot(&mut self, e: &EventSpec) -> Result<(), SimError> {
        let jobs: Vec<_> = self.core.jobs().collect();
        let lost: Vec<(JobId, Time)> = self
            .running
            .iter()
            .map(|(id, r)| (*id, r.started))
            .collect();
        for (id, started) in lost {
            self.record(id, started, RunResult::Crashed);
        }
        self.running.clear();
        if let Some(down) = e.down {
            self.now = add(self.now, down);
        }
        let state = self.app.as_ref().map(|a| a.state());
        let p = profile(self.scenario)?;
        if let (Some(st), Some(app)) = (state, &p.app) {
            app.set_bucket(st.bucket);
            app.set_force_quit(st.force_quit);
        }
        self.app = p.app;
        let members: Vec<JobId> = self.ready.members.keys().copied().collect();
        for id in members {
            self.leave_ready(id);
        }
        self.core = core(p.config, p.policy);
        self.feed(Event::WorkerRegistered(KIND.into()))?;
        self.feed(Event::DeviceChanged(self.device))?;
        self.feed(Event::Load(jobs))?;
        Ok(())
    }
}

fn describe(old: &DeviceState, new: &DeviceState) -> String {
    let mut parts = Vec::new();
    if old.screen_on != new.screen_on {
        parts.push(format!(
            "screen {}",
            if new.screen_on { "on" } else { "off" }
        ));
    }
    if old.charging != new.charging {
        parts.push(
            if new.charging {
                "charging"
            } else {
                "on battery"
            }
            .to_string(),
        );
    }
    if old.network != new.network {
        parts.push(format!("network {}", new.network));
    }
    if old.battery != new.battery
        && let Some(b) = new.battery
    {
        parts.push(format!("battery {b} %"));
    }
    if old.storage_low != new.storage_low {
        parts.push(format!(
            "storage {}",
            if new.storage_low { "low" } else { "ok" }
        ));
    }
    if old.idle != new.idle {
        parts.push(format!("idle {}", new.idle));
    }
    if old.moving != new.moving {
        parts.push(if new.moving { "moving" } else { "still" }.to_string());
    }
    parts.join(", ")
}

/// Runs `scenario` and reports what happened.
pub fn simulate(scenario: &Scenario) -> Result<Report, SimError> {
    simulate_with_progress(scenario, &mut |_| {})
}

/// Like [`simulate`], telling `progress` now and then how much of the simulated span is done
/// (from 0 to 1), for a progress bar.
pub fn simulate_with_progress(
    scenario: &Scenario,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, SimError> {
    let p = profile(scenario)?;
    let start = scenario.start;
    let end = add(start, scenario.duration);
    let device = scenario.device.apply(DeviceState {
        screen_on: true,
        ..DeviceState::default()
    });
    // the starting bucket the scenario names is in force from the start
    if let (Some(app), Some(b)) = (&p.app, scenario.device.bucket) {
        app.set_bucket(b);
    }
    // the bucket lane is android's (the ios profile keeps only a force-quit)
    let bucket = match (&p.app, p.name) {
        (Some(app), "android") => vec![(start, app.bucket().to_string())],
        _ => Vec::new(),
    };
    let mut sim = Sim {
        scenario,
        core: core(p.config, p.policy),
        app: p.app,
        now: start,
        device,
        rng: ChaCha8Rng::seed_from_u64(scenario.seed),
        spec_of: FxHashMap::default(),
        running: BTreeMap::new(),
        wakeups: 0,
        wakeups_whole_days: 0,
        whole_end: start
            + chrono::TimeDelta::days(
                (backwork_scheduler::core::add(start, scenario.duration) - start).num_days(),
            ),
        reports: FxHashMap::default(),
        held: BTreeMap::new(),
        ready: ReadyGroup::new(start),
        started: Vec::new(),
        observed_at: start,
        quota_waits: BTreeSet::new(),
        batched: BTreeMap::new(),
        reasons: BTreeMap::new(),
        families: BTreeMap::new(),
        os_state: Vec::new(),
        os_until: start,
        bucket,
        end,
        timeline: Vec::new(),
        states: vec![(start, device)],
        rejected: Vec::new(),
    };
    sim.feed(Event::WorkerRegistered(KIND.into()))?;
    sim.feed(Event::DeviceChanged(device))?;
    sim.feed(Event::Load(Vec::new()))?;

    // every timeline event and job addition, in time order (ties: scenario order)
    enum Item {
        Event(usize),
        Add(usize, u32),
    }
    let mut agenda: Vec<(Time, Item)> = Vec::new();
    for (i, e) in scenario.events.iter().enumerate() {
        let mut at = add(start, e.at);
        while at <= end {
            agenda.push((at, Item::Event(i)));
            match e.repeat {
                Some(r) if !r.is_zero() => at = add(at, r),
                _ => break,
            }
        }
    }
    for (i, j) in scenario.jobs.iter().enumerate() {
        for copy in 0..j.count.max(1) {
            agenda.push((add(start, j.added.unwrap_or_default()), Item::Add(i, copy)));
        }
    }
    agenda.sort_by_key(|(t, _)| *t); // stable: ties keep the scenario's order
    let mut agenda = agenda.into_iter().peekable();
    let mut order: Vec<JobId> = Vec::new();
    let mut stuck = 0u32;

    let span_ms = ((end - start).num_milliseconds() as f64).max(1.0);
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps.is_multiple_of(4096) {
            progress((sim.now - start).num_milliseconds() as f64 / span_ms);
        }
        let next_agenda = agenda.peek().map(|(t, _)| *t);
        let next_done = sim.running.values().map(|r| r.ends).min();
        let next_timer = sim.core.poll_timeout();
        // a gate opening is only observed (what holds the job back from then on), not fed
        let next_gate = sim.core.next_gate().filter(|g| *g > sim.now);
        // the OS state changing by itself (Doze's next phase) is observed too: what holds the
        // jobs that wait for reasons of their own changes with it (a constraint and Doze)
        let next_os = sim
            .core
            .policy()
            .os_state(sim.now)
            .and_then(|s| s.until)
            .filter(|u| *u > sim.now);
        let Some(t) = [next_agenda, next_done, next_timer, next_gate, next_os]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        if t > end {
            break;
        }
        if t == sim.now {
            stuck += 1;
            if stuck > 100_000 {
                return Err(SimError::Profile(format!(
                    "the simulation makes no progress at {t}; the profile keeps asking to wake at the same instant"
                )));
            }
        } else {
            stuck = 0;
        }
        sim.follow_os(t);
        sim.now = t.max(sim.now);
        let mut progressed = false;
        let mut step = Step::RunsEnded;
        while agenda.peek().is_some_and(|(at, _)| *at <= sim.now) {
            let Some((_, item)) = agenda.next() else {
                break;
            };
            progressed = true;
            step = Step::Full;
            match item {
                Item::Event(i) => sim.apply(&scenario.events[i])?,
                Item::Add(i, copy) => {
                    let spec = &scenario.jobs[i];
                    let name = if spec.count > 1 {
                        format!("{}-{}", spec.name, copy + 1)
                    } else {
                        spec.name.clone()
                    };
                    let request = spec.request(KIND, &name, sim.now)?;
                    let mut bytes = [0u8; 10];
                    bytes[2..].copy_from_slice(&(order.len() as u64 + 1).to_be_bytes());
                    let id = JobId::new_v7(sim.now, bytes);
                    let requested = request.schedule.to_string();
                    let event = if spec.after.is_empty() {
                        Event::Enqueue { id, request }
                    } else {
                        // a chain of one link: after the current jobs of each name named
                        // (a job with copies: every copy)
                        let mut after = Vec::new();
                        for a in &spec.after {
                            let copies = scenario.jobs.iter().find(|j| j.name == *a && j.count > 1);
                            let names: Vec<String> = match copies {
                                Some(j) => (1..=j.count).map(|k| format!("{a}-{k}")).collect(),
                                None => vec![a.clone()],
                            };
                            for n in names {
                                let jobs = sim
                                    .core
                                    .resolve(&backwork_scheduler::Selector::Name(n))
                                    .unwrap_or_default();
                                let waited: BTreeSet<JobId> = jobs
                                    .iter()
                                    .filter_map(|j| sim.core.job(*j))
                                    .flat_map(|j| j.prerequisites)
                                    .collect();
                                after.extend(
                                    jobs.into_iter()
                                        .filter(|j| !waited.contains(j))
                                        .map(backwork_scheduler::After::Job),
                                );
                            }
                        }
                        let mut chain = backwork_scheduler::Chain::new();
                        chain.link(request, after);
                        Event::EnqueueChain {
                            ids: vec![id],
                            chain,
                        }
                    };
                    let (warnings, disposition) = match sim.core.handle(sim.now, event) {
                        Ok(Reply::Enqueued {
                            warnings,
                            disposition,
                            ..
                        })
                        | Ok(Reply::ChainEnqueued {
                            warnings,
                            disposition,
                            ..
                        }) => (warnings, Some(disposition)),
                        Ok(_) => (Vec::new(), None),
                        Err(CoreError::Rejected(reason)) => {
                            // the OS refused the submit: the app sees an error; go on
                            sim.rejected.push((sim.now, name, reason));
                            continue;
                        }
                        Err(e) => {
                            return Err(SimError::Job {
                                job: name,
                                detail: e.to_string(),
                            });
                        }
                    };
                    // the schedule as the profile left it (a short interval raised), or as
                    // asked when the add made no job of its own
                    let schedule = sim
                        .core
                        .job(id)
                        .map_or(requested, |j| j.request.schedule.to_string());
                    let not_enqueued = match disposition {
                        Some(Disposition::Kept) => Some(format!(
                            "not enqueued: on_conflict = \"keep\" kept the job named {name} that was already there (see its entry)"
                        )),
                        Some(Disposition::Updated) => Some(format!(
                            "not enqueued as a job of its own: on_conflict = \"update\" gave its request to the job named {name} that was already there (see its entry)"
                        )),
                        _ => None,
                    };
                    sim.spec_of.insert(id, (i, name.clone()));
                    sim.reports.insert(
                        id,
                        JobReport {
                            name,
                            schedule,
                            runs: Vec::new(),
                            succeeded: 0,
                            failed: 0,
                            stopped: 0,
                            per_day: None,
                            warnings,
                            held_back_ms: BTreeMap::new(),
                            batching_ms: 0,
                            quota_hits: 0,
                            stops: BTreeMap::new(),
                            held: Vec::new(),
                            cancelled: None,
                            not_enqueued,
                        },
                    );
                    order.push(id);
                    sim.drain();
                }
            }
        }
        let done: Vec<(JobId, u32, bool, Time)> = sim
            .running
            .iter()
            .filter(|(_, r)| r.ends <= sim.now)
            .map(|(id, r)| (*id, r.attempt, r.fails, r.started))
            .collect();
        for (id, attempt, fails, started) in done {
            progressed = true;
            if sim.running.remove(&id).is_none() {
                // stopped at this same instant by what an earlier end set off (a quota or a
                // window used up): recorded once, as stopped
                continue;
            }
            sim.record(
                id,
                started,
                if fails {
                    RunResult::Retry
                } else {
                    RunResult::Success
                },
            );
            let outcome = if fails {
                RunOutcome::Retry(None)
            } else {
                RunOutcome::Success(None)
            };
            sim.feed(Event::Finished {
                id,
                attempt,
                outcome,
            })?;
            if fails {
                sim.note_backoff(id);
            }
        }
        if (!progressed || next_gate == Some(sim.now)) && step == Step::RunsEnded {
            step = Step::GatesOpened; // a job may be held from now on
        }
        let os_changed = next_os == Some(sim.now);
        if os_changed {
            step = Step::Full;
        }
        if sim.core.poll_timeout().is_some_and(|d| d <= sim.now) {
            step = Step::Full;
            sim.wakeups += 1;
            if sim.now < sim.whole_end {
                sim.wakeups_whole_days += 1;
            }
            sim.feed(Event::Timeout)?;
        } else if !progressed && next_gate != Some(sim.now) && !os_changed {
            return Err(SimError::Profile(format!(
                "the simulation stalled at {}; this is a bug in the simulator",
                sim.now
            )));
        }
        sim.observe(step);
    }
    sim.follow_os(end);
    sim.now = end;
    let still: Vec<JobId> = sim
        .held
        .keys()
        .chain(sim.ready.members.keys())
        .copied()
        .collect();
    for id in still {
        sim.release(id);
    }
    let still: Vec<JobId> = sim.batched.keys().copied().collect();
    for id in still {
        sim.close_batched(id);
    }

    // runs per day over the whole days simulated only: a 1-hour scenario says nothing per day
    let whole_days = (end - start).num_days();
    let whole_end = start + chrono::TimeDelta::days(whole_days);
    let mut jobs = Vec::with_capacity(order.len());
    let mut quota_hits = 0;
    for id in order {
        if let Some(mut r) = sim.reports.remove(&id) {
            let job = sim.core.job(id);
            // the schedule the job ended with: a later add with on_conflict = "update" may
            // have given it another
            if let Some(j) = &job {
                r.schedule = j.request.schedule.to_string();
            }
            r.cancelled = job
                .filter(|j| j.state == backwork_scheduler::JobState::Cancelled)
                .map(|j| match j.stop_reason {
                    // nothing in a scenario cancels a job but a later add of its name
                    // (`on_conflict = "replace"`, an iOS resubmit), which cancels the jobs
                    // waiting for it with it
                    None | Some(backwork_scheduler::StopReason::Cancelled) => {
                        "replaced by a later [[job]] with its name (on_conflict = replace), or by the replacement of a job it waited for".to_string()
                    }
                    Some(s) => s.to_string(),
                });
            r.per_day = (whole_days > 0).then(|| {
                let n = r
                    .runs
                    .iter()
                    .filter(|run| run.start < whole_end && run.outcome == RunResult::Success)
                    .count();
                (n as f64 / whole_days as f64 * 10.0).round() / 10.0
            });
            // the totals are the sums of the intervals (and of the app's held intervals over
            // the job's stretches among the ready jobs, added as it left them), so they agree
            for iv in &r.held {
                let ms = iv.ms();
                match &*iv.code {
                    _ if ms == 0 => {}
                    BATCHING => r.batching_ms += ms,
                    BACKOFF | APP_WIDE => {}
                    code => *r.held_back_ms.entry(code.to_string()).or_default() += ms,
                }
            }
            quota_hits += r.quota_hits;
            jobs.push(r);
        }
    }
    Ok(Report {
        name: scenario.name.clone(),
        profile: scenario.profile.clone(),
        seed: scenario.seed,
        start,
        end,
        wakeups: sim.wakeups,
        wakeups_per_day: (whole_days > 0)
            .then(|| (sim.wakeups_whole_days as f64 / whole_days as f64 * 10.0).round() / 10.0),
        quota_hits,
        reasons: sim.reasons,
        families: sim.families,
        app_held: sim.ready.app_held(),
        os_state: sim.os_state,
        bucket: sim.bucket,
        timeline: sim.timeline,
        device: sim.states,
        rejected: sim.rejected,
        jobs,
    })
}
