//! The core's compact per-job entry: what its decisions need, and nothing a person reads only.
//!
//! A [`Job`] is the whole view of a job — its request with the input payload, its last output,
//! its recent run history. The core decides with far less, and it holds one entry per job for
//! as long as the job is kept (a million pending jobs are a million entries), so it keeps an
//! [`Entry`] of 104 bytes: the scheduling fields of a job, its request **without** the input
//! payload, shared ([`Arc`]) between consecutive jobs with equal requests, its instants as
//! [`At`]s (8-byte nanoseconds, the same conversion as the lanes' keys), where it waits in the
//! lanes ([`LanePos`], no allocation), and the parts few jobs have — the last run's instants,
//! the finish time, prerequisites, a stop reason — in one box that exists only while one of
//! them is set. Payloads and history live in the core's side tables (only for the jobs that
//! have them); a [`Job`] is built from an entry and those tables when someone asks for one
//! ([`Scheduler::job`](super::Scheduler::job)).

use std::fmt::Write as _;
use std::num::NonZeroI64;

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::job::{Force, Job, JobId, JobRequest, JobState, RunRecord, StopReason, Time};
use super::lanes::LanePos;

/// An instant as an entry keeps it: nanoseconds since the Unix epoch in 8 bytes, with a niche
/// (`Option<At>` is 8 bytes too), ordered as the instants are. [`nanos`] and [`instant`] convert, as they do for the lanes'
/// keys: instants from 1677 to 2262 are kept exactly (a [`Time`] counts nanoseconds too), and
/// one outside that range is kept as the nearest end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At(NonZeroI64);

impl Ord for At {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // the sign bit flipped: as unsigned integers, in the order of the nanoseconds
        (self.0.get() as u64).cmp(&(other.0.get() as u64))
    }
}

impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl At {
    /// `t`, saturated to the range above.
    pub fn new(t: Time) -> At {
        // `nanos` never gives `i64::MIN`, so the flipped sign bit never leaves zero
        At(NonZeroI64::new(nanos(t) ^ i64::MIN).unwrap_or(NonZeroI64::MAX))
    }

    /// The instant.
    pub fn time(self) -> Time {
        instant(self.0.get() ^ i64::MIN)
    }
}

/// `t` as nanoseconds since the Unix epoch (chrono's `timestamp_nanos_opt`), saturated to
/// `i64::MIN + 1 ..= i64::MAX` (the years 1677–2262): the one conversion of an instant into
/// the core's compact records (the lanes' keys, the entries' instants).
#[inline]
pub(crate) fn nanos(t: Time) -> i64 {
    t.timestamp_nanos_opt()
        .unwrap_or(if t.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
        .max(i64::MIN + 1)
}

/// The instant `nanos` nanoseconds after the Unix epoch (the inverse of [`nanos`] within its
/// range).
#[inline]
pub(crate) fn instant(nanos: i64) -> Time {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

fn at(t: Option<Time>) -> Option<At> {
    t.map(At::new)
}

fn time(t: Option<At>) -> Option<Time> {
    t.map(At::time)
}

/// The parts of an entry that most jobs never have, or not before they run: the instants of
/// their last runs, their prerequisites and a stop reason. Boxed behind one pointer, absent
/// while all of it is empty (a pending job that never ran has none).
#[derive(Debug, Clone, Default, PartialEq)]
struct Rare {
    last_started: Option<At>,
    last_finished: Option<At>,
    last_success_started: Option<At>,
    finished_at: Option<At>,
    prerequisites: Box<[JobId]>,
    stop_reason: Option<StopReason>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.last_started.is_none()
            && self.last_finished.is_none()
            && self.last_success_started.is_none()
            && self.finished_at.is_none()
            && self.prerequisites.is_empty()
            && self.stop_reason.is_none()
    }
}

/// One job as the core keeps it (104 bytes): the scheduling fields of a [`Job`] whose
/// decisions need them, its instants as [`At`]s (read and written through methods named as
/// [`Job`]'s fields), the parts few jobs have in one optional box, and where it waits in the
/// lanes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Identity.
    pub id: JobId,
    /// The request, its input taken out (always `Value::Null` here).
    pub request: Arc<JobRequest>,
    /// When it was first enqueued.
    enqueued_at: At,
    /// Earliest start for the current cycle.
    not_before: At,
    /// Recurring jobs: end of the current slot's window.
    window_end: Option<At>,
    /// The rarely set parts (`None`: all empty).
    rare: Option<Box<Rare>>,
    /// How many runs it has had in all.
    pub runs_total: u64,
    /// How many cycles have ended.
    pub cycle: u64,
    /// Where it waits to be dispatched, if it is filed (the lanes' record, kept here: see
    /// [`lanes`](super::lanes)).
    pub lane: Option<LanePos>,
    /// Attempts charged in the current cycle.
    pub attempt: u32,
    /// Current state.
    pub state: JobState,
    /// True when `not_before` is a backoff delay rather than the schedule.
    pub backing_off: bool,
    /// Pending overrides ("run now").
    pub force: Force,
}

impl Entry {
    /// A new job's entry: enqueued at `now`, due then (until it is placed), nothing else set.
    pub fn new(id: JobId, request: Arc<JobRequest>, state: JobState, now: Time) -> Entry {
        Entry {
            id,
            request,
            enqueued_at: At::new(now),
            not_before: At::new(now),
            window_end: None,
            rare: None,
            runs_total: 0,
            cycle: 0,
            lane: None,
            attempt: 0,
            state,
            backing_off: false,
            force: Force::default(),
        }
    }

    /// What a policy's hooks see of this job.
    pub fn policy_view(&self) -> super::PolicyJob<'_> {
        super::PolicyJob {
            id: self.id,
            request: &self.request,
            attempt: self.attempt,
            expedited: false,
        }
    }

    /// The entry of `job` (its payloads and history are the caller's to keep), sharing `request`
    /// when it equals the job's request without its input.
    pub fn from_job(job: Job, last: &mut Option<Arc<JobRequest>>) -> (Entry, Payloads) {
        let Job {
            id,
            mut request,
            state,
            enqueued_at,
            attempt,
            not_before,
            backing_off,
            window_end,
            last_started,
            last_finished,
            last_success_started,
            runs_total,
            cycle,
            prerequisites,
            stop_reason,
            output,
            finished_at,
            history,
            force,
        } = job;
        let input = std::mem::take(&mut request.input);
        let rare = Rare {
            last_started: at(last_started),
            last_finished: at(last_finished),
            last_success_started: at(last_success_started),
            finished_at: at(finished_at),
            prerequisites: prerequisites.into_boxed_slice(),
            stop_reason,
        };
        let entry = Entry {
            id,
            request: share(request, last),
            enqueued_at: At::new(enqueued_at),
            not_before: At::new(not_before),
            window_end: at(window_end),
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
            runs_total,
            cycle,
            lane: None,
            attempt,
            state,
            backing_off,
            force,
        };
        (
            entry,
            Payloads {
                input,
                output,
                history,
            },
        )
    }

    /// The whole job: this entry with `payloads`.
    pub fn to_job(&self, payloads: Payloads) -> Job {
        let mut request = JobRequest::clone(&self.request);
        request.input = payloads.input;
        Job {
            id: self.id,
            request,
            state: self.state,
            enqueued_at: self.enqueued_at(),
            attempt: self.attempt,
            not_before: self.not_before(),
            backing_off: self.backing_off,
            window_end: self.window_end(),
            last_started: self.last_started(),
            last_finished: self.last_finished(),
            last_success_started: self.last_success_started(),
            runs_total: self.runs_total,
            cycle: self.cycle,
            prerequisites: self.prerequisites().to_vec(),
            stop_reason: self.stop_reason().cloned(),
            output: payloads.output,
            finished_at: self.finished_at(),
            history: payloads.history,
            force: self.force,
        }
    }

    /// The unique name, if any.
    pub fn unique_name(&self) -> Option<&str> {
        self.request.unique.as_ref().map(|u| u.name.as_str())
    }

    /// When it was first enqueued.
    pub fn enqueued_at(&self) -> Time {
        self.enqueued_at.time()
    }

    /// Earliest start for the current cycle.
    pub fn not_before(&self) -> Time {
        self.not_before.time()
    }

    /// Sets the earliest start for the current cycle.
    pub fn set_not_before(&mut self, t: Time) {
        self.not_before = At::new(t);
    }

    /// Whether the current slot's window (when it has one) ends, and the current cycle's
    /// earliest start is, before `now`: [`Entry::window_end`] and [`Entry::not_before`]
    /// compared without making instants of them.
    pub fn window_passed(&self, now: Time) -> bool {
        self.window_end
            .is_some_and(|end| end.max(self.not_before) < At::new(now))
    }

    /// Whether the current slot has a window (a recurring job's).
    pub fn has_window(&self) -> bool {
        self.window_end.is_some()
    }

    /// Recurring jobs: end of the current slot's window.
    pub fn window_end(&self) -> Option<Time> {
        time(self.window_end)
    }

    /// Sets (or clears) the end of the current slot's window.
    pub fn set_window_end(&mut self, t: Option<Time>) {
        self.window_end = at(t);
    }

    fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// Changes the rarely set parts with `change`, which sets one part to a value that is
    /// empty (`None`, no prerequisites) when `clears`: the box comes when a part is set, and
    /// goes when they are all empty again.
    fn set_rare(&mut self, clears: bool, change: impl FnOnce(&mut Rare)) {
        match &mut self.rare {
            Some(rare) => {
                change(rare);
                if clears && rare.is_empty() {
                    self.rare = None;
                }
            }
            None if clears => {} // already empty
            None => {
                let mut rare = Box::<Rare>::default();
                change(&mut rare);
                self.rare = Some(rare);
            }
        }
    }

    /// Start of the last run.
    pub fn last_started(&self) -> Option<Time> {
        time(self.rare()?.last_started)
    }

    /// Sets the start of the last run.
    pub fn set_last_started(&mut self, t: Option<Time>) {
        self.set_rare(t.is_none(), |r| r.last_started = at(t));
    }

    /// End of the last run.
    pub fn last_finished(&self) -> Option<Time> {
        time(self.rare()?.last_finished)
    }

    /// Sets the end of the last run.
    pub fn set_last_finished(&mut self, t: Option<Time>) {
        self.set_rare(t.is_none(), |r| r.last_finished = at(t));
    }

    /// Start of the last successful run.
    pub fn last_success_started(&self) -> Option<Time> {
        time(self.rare()?.last_success_started)
    }

    /// Sets the start of the last successful run.
    pub fn set_last_success_started(&mut self, t: Option<Time>) {
        self.set_rare(t.is_none(), |r| r.last_success_started = at(t));
    }

    /// When it reached a finished state.
    pub fn finished_at(&self) -> Option<Time> {
        time(self.rare()?.finished_at)
    }

    /// Sets (or clears) when it reached a finished state (see [`Table::finish`](super::table::Table::finish)).
    pub fn set_finished_at(&mut self, t: Option<Time>) {
        self.set_rare(t.is_none(), |r| r.finished_at = at(t));
    }

    /// Jobs that must succeed before this one may run (at most one from an enqueue).
    pub fn prerequisites(&self) -> &[JobId] {
        self.rare().map_or(&[], |r| &r.prerequisites)
    }

    /// Sets the jobs that must succeed before this one may run.
    pub fn set_prerequisites(&mut self, ids: Box<[JobId]>) {
        self.set_rare(ids.is_empty(), |r| r.prerequisites = ids);
    }

    /// Why the last run was stopped or the job ended, if it was.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.rare()?.stop_reason.as_ref()
    }

    /// Sets (or clears) the stop reason.
    pub fn set_stop_reason(&mut self, reason: Option<StopReason>) {
        if reason.is_none() && self.stop_reason().is_none() {
            return; // the usual case: a run starts, none was set
        }
        self.set_rare(reason.is_none(), |r| r.stop_reason = reason);
    }
}

/// What a job has besides its scheduling fields: the input payload (`Null`: none), the last
/// output, the recent runs. A store keeps them apart from the job's record and gives them back
/// by id ([`Store::payloads`](crate::Store::payloads)); a core without a store keeps them itself
/// ([`Scheduler::payloads`](super::Scheduler::payloads)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payloads {
    /// The input payload.
    pub input: Value,
    /// Output of the last run.
    pub output: Option<Value>,
    /// Recent runs, oldest first.
    pub history: Vec<RunRecord>,
}

/// `request` as an [`Arc`]: the one in `last` when they are equal (consecutive jobs of a bulk
/// enqueue, or of a load, usually are), else a new one, which becomes `last`.
pub(crate) fn share(request: JobRequest, last: &mut Option<Arc<JobRequest>>) -> Arc<JobRequest> {
    match last {
        Some(shared) if **shared == request => Arc::clone(shared),
        _ => {
            let shared = Arc::new(request);
            *last = Some(Arc::clone(&shared));
            shared
        }
    }
}

/// `"{id}-{cycle}-{attempt}"`, the id encoded straight into the key (formatting it through
/// `Display` was a good share of a simulated run's cost).
pub(crate) fn idempotency_key(id: JobId, cycle: u64, attempt: u32) -> String {
    let mut buf = Uuid::encode_buffer();
    let id = id.0.hyphenated().encode_lower(&mut buf);
    let mut key = String::with_capacity(id.len() + 16);
    key.push_str(id);
    let _ = write!(key, "-{cycle}-{attempt}");
    key
}

/// The run numbers of a history of `len` records, oldest first: the last is the latest run that
/// ended, numbered `runs_total` (less one while a newer run is under way), and the ones before
/// it count down by one; never below 1 (see [`Job::history_numbers`]).
pub(crate) fn history_numbers(
    len: usize,
    running: bool,
    runs_total: u64,
) -> impl DoubleEndedIterator<Item = u64> + use<> {
    let len = len as u64;
    let last = runs_total.saturating_sub(u64::from(running)).max(len);
    (0..len).map(move |i| last - (len - 1 - i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, TimeDelta};

    const NANOS_PER_SEC: i64 = 1_000_000_000;
    const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

    /// An entry is at most 112 bytes (W9: 1 M pending jobs in 256 MB, DESIGN §9), and an
    /// optional instant costs no more than an instant.
    #[test]
    fn an_entry_is_compact() {
        assert!(size_of::<Entry>() <= 112, "{} bytes", size_of::<Entry>());
        assert_eq!(size_of::<Option<At>>(), 8);
        assert_eq!(size_of::<Option<LanePos>>(), 24);
    }

    /// Instants within 1677–2262 come back exactly, to the nanosecond; those beyond come back
    /// as the nearest end of that range (the range of `i64` nanoseconds from the Unix epoch).
    #[test]
    fn instants_round_trip_within_the_range_and_saturate_beyond() {
        let exact = [
            DateTime::UNIX_EPOCH,
            DateTime::UNIX_EPOCH - TimeDelta::nanoseconds(1),
            DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid"),
            DateTime::from_timestamp_nanos(i64::MAX),
            DateTime::from_timestamp_nanos(i64::MIN + 1),
        ];
        for t in exact {
            assert_eq!(At::new(t).time(), t);
            assert_eq!(time(at(Some(t))), Some(t));
            for u in exact {
                assert_eq!(At::new(t).cmp(&At::new(u)), t.cmp(&u), "{t} and {u}");
            }
        }
        assert_eq!(
            At::new(DateTime::<chrono::Utc>::MAX_UTC).time(),
            DateTime::from_timestamp_nanos(i64::MAX)
        );
        for early in [
            DateTime::<chrono::Utc>::MIN_UTC,
            DateTime::from_timestamp_nanos(i64::MIN),
        ] {
            assert_eq!(
                At::new(early).time(),
                DateTime::from_timestamp_nanos(i64::MIN + 1)
            );
        }
    }

    /// The conversions give chrono's own values, over the whole range and a leap second.
    #[test]
    fn the_conversions_agree_with_chrono() {
        let mut n: i64 = 0x1234_5678_9abc_def0;
        let mut values = vec![
            0,
            -1,
            1,
            i64::MAX,
            i64::MIN + 1,
            NANOS_PER_DAY,
            -NANOS_PER_DAY,
        ];
        for _ in 0..2000 {
            // an LCG: spread over the whole range, with neighbours on the same day
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            values.extend([n, n.saturating_add(3_600 * NANOS_PER_SEC), n / 1000]);
        }
        for v in values {
            let t = DateTime::from_timestamp_nanos(v);
            assert_eq!(instant(v), t, "{v}");
            assert_eq!(Some(nanos(t)), t.timestamp_nanos_opt(), "{t}");
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("a leap second")
            .and_utc();
        assert_eq!(Some(nanos(leap)), leap.timestamp_nanos_opt());
    }

    /// The rarely set parts take a box only while one of them is set.
    #[test]
    fn the_rare_parts_are_boxed_only_while_set() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let mut e = Entry::new(
            JobId::from_u128(1),
            Arc::new(JobRequest::once("k")),
            JobState::Enqueued,
            now,
        );
        assert!(e.rare.is_none());
        e.set_stop_reason(None);
        assert!(
            e.rare.is_none(),
            "clearing what is not set allocates nothing"
        );
        e.set_last_started(Some(now));
        e.set_stop_reason(Some(StopReason::Timeout));
        assert_eq!(e.last_started(), Some(now));
        assert_eq!(e.stop_reason(), Some(&StopReason::Timeout));
        e.set_last_started(None);
        assert!(e.rare.is_some());
        e.set_stop_reason(None);
        assert!(e.rare.is_none(), "the box goes with the last part set");
        let job = e.to_job(Payloads::default());
        let (back, _) = Entry::from_job(job, &mut None);
        assert_eq!(back, e);
    }
}
