//! Where each enqueued job waits, so that an input only looks at the jobs it can affect.
//!
//! A job whose time gates are closed waits in the **timed** lane, ordered by the instant they
//! open. When that instant comes, it moves to the lane of the next thing it waits for: a worker
//! for its kind, the device (its constraints), or nothing — **ready** to start when a slot is
//! free and the policy allows. A device change revisits only the device lane (and the ready
//! lane); registering a worker revisits only that kind's lane. No input rescans every job.
//!
//! Where a job is filed (its lane and key) is kept on its entry in the [`Table`] (one ordered
//! map fewer per job), so the methods that file or unfile a job take the table.

use std::collections::{BTreeMap, BTreeSet};

use backwork_constraints::Constraint;
use std::ops::Bound::{Excluded, Included, Unbounded};

use super::entry::{instant, nanos};
use super::job::{JobId, JobRequest, Time};
use super::table::Table;

/// The lane a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Waiting for its gates to open; may start as late as the instant held here (batching),
    /// in nanoseconds (see [`nanos`]).
    Timed(i64),
    /// Waiting for a worker of its request's kind.
    NoWorker,
    /// Waiting for the device to satisfy its request's constraints.
    Device,
    /// Ready; `true` for a job forced past its time gates (it passes an app-wide hold too).
    Ready(bool),
}

/// Where a job is filed, as its entry keeps it (24 bytes, no allocation): its lane and the
/// instant it is filed under there, in nanoseconds. What a lane's sets are keyed by beyond
/// that (the kind of a job waiting for a worker, the constraints of one waiting for the
/// device) is its request's: a request is not replaced while its job is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LanePos {
    lane: Lane,
    key: i64,
}

/// A lane's sort key: the instant the job is filed under, as nanoseconds since the epoch,
/// then its id as two integers (big-endian halves: `JobId`'s own order). Integer comparisons
/// instead of a date, a time of day and the id's bytes, in 24 bytes: the lanes are searched at
/// every state change, and most of their keys share an instant.
///
/// The nanoseconds saturate outside the years 1677–2262 (`i64`), which keeps the order (ties
/// there go by id, as ties do); an entry keeps its instants the same way ([`nanos`], one
/// conversion), and `now` — what the keys are compared with — is never that far out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    at: i64,
    hi: u64,
    lo: u64,
}

impl Key {
    fn at_nanos(at: i64, id: JobId) -> Key {
        let id = id.as_u128();
        Key {
            at,
            hi: (id >> 64) as u64,
            lo: id as u64,
        }
    }

    /// The last key at instant `at` (every job filed at `at` sorts before it).
    fn last_at(at: Time) -> Key {
        Key {
            at: nanos(at),
            hi: u64::MAX,
            lo: u64::MAX,
        }
    }

    fn job(self) -> JobId {
        JobId::from_u128((u128::from(self.hi) << 64) | u128::from(self.lo))
    }
}

#[derive(Debug, Default)]
pub(super) struct Lanes {
    timed: BTreeSet<Key>,
    /// The latest instants the timed jobs may start, each with how many jobs have it: the
    /// wake-up planner's input (it needs the instants, not the jobs; jobs enqueued together
    /// share one).
    latest: BTreeMap<i64, usize>,
    no_worker: BTreeMap<String, BTreeSet<Key>>,
    device: BTreeSet<Key>,
    /// How many jobs in the device lane need each constraint.
    device_needs: BTreeMap<Constraint, usize>,
    ready: BTreeSet<Key>,
    /// The forced jobs among the ready ones: the only ones that pass an app-wide hold, found
    /// without walking the jobs it parks.
    ready_forced: BTreeSet<Key>,
    /// How many jobs are filed, in every lane.
    count: usize,
    /// When kept: the jobs that entered or left the ready lane (see
    /// `Scheduler::log_ready_changes`).
    pub log: Option<Vec<JobId>>,
}

impl Lanes {
    /// How many jobs wait, in every lane.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Takes `id` out of whichever lane it is in.
    pub fn remove(&mut self, jobs: &mut Table, id: JobId) {
        self.take(jobs, id);
    }

    /// Takes `id` out of whichever lane it is in; the instant it was filed under (in
    /// nanoseconds: most callers drop it).
    fn take(&mut self, jobs: &mut Table, id: JobId) -> Option<i64> {
        let entry = jobs.get_mut(&id)?;
        let pos = entry.lane.take()?;
        self.count -= 1;
        self.unlink(pos, &entry.request, id);
        Some(pos.key)
    }

    /// Takes `id`, filed at `pos` with `request`, out of that lane's sets.
    fn unlink(&mut self, pos: LanePos, request: &JobRequest, id: JobId) {
        let k = Key::at_nanos(pos.key, id);
        match pos.lane {
            Lane::Timed(latest) => {
                self.timed.remove(&k);
                if let Some(n) = self.latest.get_mut(&latest) {
                    *n -= 1;
                    if *n == 0 {
                        self.latest.remove(&latest);
                    }
                }
            }
            Lane::NoWorker => {
                let kind = &request.kind;
                if let Some(set) = self.no_worker.get_mut(kind) {
                    set.remove(&k);
                    if set.is_empty() {
                        self.no_worker.remove(kind);
                    }
                }
            }
            Lane::Device => {
                self.device.remove(&k);
                for c in request.constraints.iter() {
                    if let Some(n) = self.device_needs.get_mut(&c) {
                        *n -= 1;
                        if *n == 0 {
                            self.device_needs.remove(&c);
                        }
                    }
                }
            }
            Lane::Ready(forced) => {
                self.ready.remove(&k);
                if forced {
                    self.ready_forced.remove(&k);
                }
                self.note(id);
            }
        }
    }

    /// Logs `id` as a job that may have become, or stopped being, ready (when a log is kept).
    pub fn note(&mut self, id: JobId) {
        if let Some(log) = &mut self.log {
            log.push(id);
        }
    }

    fn put(&mut self, jobs: &mut Table, lane: Lane, key: Time, id: JobId) {
        self.file(jobs, lane, nanos(key), id);
    }

    /// Files `id` in `lane` under `key` (nanoseconds, see [`nanos`]).
    pub fn file(&mut self, jobs: &mut Table, lane: Lane, key: i64, id: JobId) {
        let Some(entry) = jobs.get_mut(&id) else {
            return; // only a job of the table is filed
        };
        let pos = LanePos { lane, key };
        // a job filed elsewhere (callers take it out first) is unlinked
        match entry.lane.replace(pos) {
            Some(old) => self.unlink(old, &entry.request, id),
            None => self.count += 1,
        }
        let k = Key::at_nanos(pos.key, id);
        match lane {
            Lane::Timed(latest) => {
                self.timed.insert(k);
                *self.latest.entry(latest).or_default() += 1;
            }
            Lane::NoWorker => match self.no_worker.get_mut(&entry.request.kind) {
                Some(set) => {
                    set.insert(k);
                }
                None => {
                    self.no_worker
                        .insert(entry.request.kind.clone(), BTreeSet::from([k]));
                }
            },
            Lane::Device => {
                self.device.insert(k);
                for c in entry.request.constraints.iter() {
                    *self.device_needs.entry(c).or_default() += 1;
                }
            }
            Lane::Ready(forced) => {
                self.ready.insert(k);
                if forced {
                    self.ready_forced.insert(k);
                }
                self.note(id);
            }
        }
    }

    /// The jobs whose time gates are open at `now` but that have not started (waiting for a
    /// worker, the device, a slot, or a wake-up).
    pub fn due_waiting(&self, now: Time) -> impl Iterator<Item = JobId> + '_ {
        self.timed
            .range(..=Key::last_at(now))
            .chain(self.no_worker.values().flatten())
            .chain(self.device.iter())
            .chain(self.ready.iter())
            .map(|k| k.job())
    }

    /// [`Lanes::due_waiting`] without the ready jobs that were not forced.
    pub fn due_waiting_not_ready(&self, now: Time) -> impl Iterator<Item = JobId> + '_ {
        self.timed
            .range(..=Key::last_at(now))
            .chain(self.no_worker.values().flatten())
            .chain(self.device.iter())
            .chain(self.ready_forced.iter())
            .map(|k| k.job())
    }

    /// If `id` waits in the timed lane for a planned wake-up later than its own gate (and than
    /// `now`), which it shares with other work: that wake-up, and the jobs whose gates open
    /// between its gate and then (the reason it waits). `None` when the job runs at its own
    /// gate, or a later wake-up than the next one will serve it.
    ///
    /// At most `limit` partners are named; the flag says whether there are more (counting them
    /// all would make `why` for every job of a big batch quadratic).
    pub fn batched_until(
        &self,
        jobs: &Table,
        id: JobId,
        now: Time,
        limit: usize,
    ) -> Option<(Time, Vec<JobId>, bool)> {
        let gate = match jobs.get(&id).and_then(|e| e.lane) {
            Some(LanePos {
                lane: Lane::Timed(_),
                key,
            }) => instant(key),
            _ => return None,
        };
        let wake = self.next_wake_after(now)?;
        let from = gate.max(now);
        if gate > wake || wake <= from {
            return None;
        }
        let mut partners = self.gates_in(from, wake).filter(|j| *j != id);
        let with: Vec<JobId> = partners.by_ref().take(limit).collect();
        let more = partners.next().is_some();
        (!with.is_empty()).then_some((wake, with, more))
    }

    /// The timed jobs whose gates open in `(from, to]`.
    pub fn gates_in(&self, from: Time, to: Time) -> impl Iterator<Item = JobId> + '_ {
        self.timed
            .range((Excluded(Key::last_at(from)), Included(Key::last_at(to))))
            .map(|k| k.job())
    }

    /// The earliest instant after `now` at which a timed job's gates open.
    pub fn next_gate_after(&self, now: Time) -> Option<Time> {
        self.timed
            .range((Excluded(Key::last_at(now)), Unbounded))
            .next()
            .map(|k| instant(k.at))
    }

    /// Files `id` to wait for its time gates to open at `key`; it may start as late as `latest`
    /// (at least `key`) so that it shares a wake-up with other jobs.
    pub fn wait_for_time(&mut self, jobs: &mut Table, key: Time, latest: Time, id: JobId) {
        self.put(jobs, Lane::Timed(nanos(latest.max(key))), key, id);
    }

    /// The constraints that jobs waiting for the device need.
    pub fn device_needs(&self) -> BTreeSet<Constraint> {
        self.device_needs.keys().copied().collect()
    }

    /// Whether `id` waits in the ready lane, not forced: held by an app-wide hold when one is
    /// in force.
    pub fn is_parked(&self, jobs: &Table, id: JobId) -> bool {
        matches!(
            jobs.get(&id).and_then(|e| e.lane),
            Some(LanePos {
                lane: Lane::Ready(false),
                ..
            })
        )
    }

    /// How many ready jobs are not forced (held by an app-wide hold when one is in force).
    pub fn parked_len(&self) -> usize {
        self.ready.len() - self.ready_forced.len()
    }

    /// Takes the earliest timed job whose gates are open at `now`, with the instant it was
    /// filed under (as kept: [`Lanes::file`] takes it back as it is).
    pub fn pop_due(&mut self, jobs: &mut Table, now: Time) -> Option<(i64, JobId)> {
        let first = *self.timed.first()?;
        if first.at > nanos(now) {
            return None;
        }
        let id = first.job();
        let key = self.take(jobs, id)?;
        Some((key, id))
    }

    /// When to wake next: the earliest instant after `now` by which a timed job must start,
    /// moved back to the latest gate among the jobs that wake-up serves.
    ///
    /// Each timed job may start anywhere in `[gate, latest]`; a wake-up starts every job whose
    /// gate has opened. Waking at the earliest `latest` is the greedy choice for interval
    /// stabbing ("earliest window end first"), which is optimal: no schedule serves these
    /// windows with fewer wake-ups. The jobs that wake-up serves are those whose gate opens by
    /// then; waking at the latest of their gates serves exactly the same jobs, each as early as
    /// the optimum allows — a job with nothing to share a wake-up with runs at its gate.
    pub fn next_wake_after(&self, now: Time) -> Option<Time> {
        let now = nanos(now);
        let (&latest, _) = self.latest.range((Excluded(now), Unbounded)).next()?;
        let back = self
            .timed
            .range(
                ..=Key {
                    at: latest,
                    hi: u64::MAX,
                    lo: u64::MAX,
                },
            )
            .next_back()
            .map(|k| k.at)
            .filter(|gate| *gate > now);
        Some(instant(back.unwrap_or(latest)))
    }

    /// Takes every job waiting for the device, and every ready job (whose constraints must be
    /// checked again), in due order.
    pub fn take_device_dependent(&mut self, jobs: &mut Table) -> Vec<(Time, JobId)> {
        let mut keys: Vec<Key> = self
            .device
            .iter()
            .chain(self.ready.iter())
            .copied()
            .collect();
        keys.sort();
        self.take_all(jobs, keys)
    }

    /// Takes the jobs of `keys` out of their lanes, in that order, each with its instant.
    fn take_all(&mut self, jobs: &mut Table, keys: Vec<Key>) -> Vec<(Time, JobId)> {
        keys.into_iter()
            .filter_map(|k| {
                let id = k.job();
                self.take(jobs, id).map(|key| (instant(key), id))
            })
            .collect()
    }

    /// Takes every job waiting for a worker of `kind`.
    pub fn take_kind(&mut self, jobs: &mut Table, kind: &str) -> Vec<(Time, JobId)> {
        let keys: Vec<Key> = self
            .no_worker
            .get(kind)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        self.take_all(jobs, keys)
    }

    /// The first ready job after `cursor` (from the start when `None`), with the cursor that
    /// goes on after it.
    pub fn next_ready(&self, cursor: Option<Key>) -> Option<(Key, JobId)> {
        first_after(&self.ready, cursor)
    }

    /// The first forced ready job after `cursor` (from the start when `None`), with the cursor
    /// that goes on after it.
    pub fn next_ready_forced(&self, cursor: Option<Key>) -> Option<(Key, JobId)> {
        first_after(&self.ready_forced, cursor)
    }
}

fn first_after(set: &BTreeSet<Key>, cursor: Option<Key>) -> Option<(Key, JobId)> {
    let next = match cursor {
        None => set.first(),
        Some(c) => set.range((Excluded(c), Unbounded)).next(),
    };
    next.map(|k| (*k, k.job()))
}
