//! The core's jobs and every index over them, kept in step by one type.
//!
//! [`Table`] owns the entries, the payload side tables (inputs, outputs, run histories), the
//! unique-name chains, the dependents of each prerequisite, the per-tag counts of unfinished
//! jobs and the retention queue of finished jobs. A job comes in through [`Table::insert`], goes
//! through [`Table::remove`], crosses into a finished state through [`Table::finish`] and back
//! through [`Table::revive`], and has its request replaced through [`Table::replace_request`]:
//! each of those updates every collection it affects, so none can be forgotten. Other state
//! changes (enqueued, blocked, running: none of them finished) touch no index and are written on
//! the entry itself ([`Table::get_mut`]).
//!
//! The payload side tables are filled only in a table that keeps payloads ([`Table::new`]'s
//! `keep_payloads`: a core whose driver keeps no store). With a store, payloads and runs go to
//! the store in change sets and are read back from it by id; the table's side tables stay
//! empty and every payload method is a no-op, so the same code runs either way.
//!
//! The entries are stored in place ([`Slots`]): a slab of fixed-size chunks with a free list,
//! and an index from id to slot (a `hashbrown::HashTable<u32>`, hashed by id with FxHash,
//! compared through the slot's own id) — no box per entry, no copy of the id beside it.
//!
//! What waits to be dispatched (the lanes, policy deferrals, runs in progress) is the
//! scheduler's, not the table's: it is rebuilt from the entries after a load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use std::hash::Hasher as _;

use hashbrown::HashTable;
use serde_json::Value;

use super::entry::{self, Entry, Payloads};
use super::job::{Job, JobId, JobRequest, JobState, RunRecord, Time};
use super::schedule;

/// Every job the core holds, and the indexes over them.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Every job's compact entry, in place in a slab indexed by id (see [`Slots`]).
    /// Hashed, not ordered: it is looked up many times at every state change, and iterated in
    /// id order only by [`Table::ids`] and [`Table::entries`] (a load, a listing), which sort.
    entries: Slots,
    /// The input payloads that are not null.
    inputs: BTreeMap<JobId, Value>,
    /// The outputs of last runs, for the jobs that have one.
    outputs: BTreeMap<JobId, Value>,
    /// The recent runs of the jobs that ran, oldest first.
    histories: BTreeMap<JobId, std::collections::VecDeque<RunRecord>>,
    /// For each unique name, its jobs, oldest first.
    by_name: BTreeMap<String, Vec<JobId>>,
    /// For each prerequisite, the jobs that wait for it.
    dependents: BTreeMap<JobId, Vec<JobId>>,
    /// For each tag, how many unfinished jobs carry it (so admission never counts every job).
    unfinished_tags: BTreeMap<String, usize>,
    /// Finished jobs by the end of their retention (`finished_at + retention`), and entries
    /// moved to a later instant (a job still winding down).
    prune_at: BTreeSet<(Time, JobId)>,
    /// The request of the job last inserted, shared with the next one when equal.
    last_request: Option<Arc<JobRequest>>,
    /// How long finished jobs are kept.
    retention: Duration,
    /// Whether inputs, outputs and histories are kept here (no store holds them).
    keep_payloads: bool,
}

impl Table {
    /// An empty table whose finished jobs are kept for `retention`, keeping the jobs' payloads
    /// and histories when `keep_payloads` (else they are dropped as they come).
    pub fn new(retention: Duration, keep_payloads: bool) -> Table {
        Table {
            retention,
            keep_payloads,
            ..Table::default()
        }
    }

    /// Drops every job.
    pub fn clear(&mut self) {
        *self = Table::new(self.retention, self.keep_payloads);
    }

    /// The payloads and history the table keeps of job `id` (empty when it keeps none).
    pub fn payloads(&self, id: &JobId) -> Payloads {
        Payloads {
            input: self.input(id),
            output: self.outputs.get(id).cloned(),
            history: self
                .histories
                .get(id)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// How many jobs there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when job `id` is here.
    pub fn contains(&self, id: &JobId) -> bool {
        self.entries.contains_key(id)
    }

    /// The entry of job `id`.
    pub fn get(&self, id: &JobId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The entry of job `id`, to change. A change of state into or out of a finished one goes
    /// through [`Table::finish`] / [`Table::revive`], a new request through
    /// [`Table::replace_request`]; every other field is the caller's.
    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    /// Every job's id, in id order.
    pub fn ids(&self) -> impl Iterator<Item = JobId> + use<> {
        let mut ids: Vec<JobId> = self.entries.values().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.into_iter()
    }

    /// Every entry, in id order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_unstable_by_key(|e| e.id);
        all.into_iter()
    }

    /// The whole job `id`: its entry with the payloads and history the table keeps.
    pub fn whole(&self, e: &Entry) -> Job {
        e.to_job(self.payloads(&e.id))
    }

    /// Entry `e` as a job without its payloads and history: what a change set's upsert gets
    /// (a store takes the payloads and runs from their own lists).
    pub fn upsert_view(&self, e: &Entry) -> Job {
        e.to_job(Payloads::default())
    }

    /// `request` as the table keeps it: shared with the last one inserted when equal. Its
    /// input must already be taken out.
    pub fn share(&mut self, request: JobRequest) -> Arc<JobRequest> {
        entry::share(request, &mut self.last_request)
    }

    /// Adds a whole job (a load).
    pub fn insert_job(&mut self, job: Job) {
        let (entry, payloads) = Entry::from_job(job, &mut self.last_request);
        self.insert(entry, payloads);
    }

    /// Adds `entry` with `payloads` to every collection.
    pub fn insert(&mut self, entry: Entry, payloads: Payloads) {
        let id = entry.id;
        if !self.keep_payloads {
            // a store holds them
        } else if !payloads.input.is_null() {
            self.inputs.insert(id, payloads.input);
        }
        if let Some(output) = payloads.output {
            self.outputs.insert(id, output);
        }
        if !payloads.history.is_empty() {
            self.histories.insert(id, payloads.history.into());
        }
        if entry.state.is_finished() {
            if let Some(at) = entry.finished_at() {
                self.prune_at
                    .insert((schedule::add(at, self.retention), id));
            }
        } else {
            count_tags(&mut self.unfinished_tags, &entry.request.tags, true);
        }
        if let Some(name) = entry.unique_name() {
            self.by_name.entry(name.to_string()).or_default().push(id);
        }
        for p in entry.prerequisites() {
            self.dependents.entry(*p).or_default().push(id);
        }
        self.entries.insert(entry);
    }

    /// Takes job `id` out of every collection.
    pub fn remove(&mut self, id: JobId) -> Option<Entry> {
        let job = self.entries.remove(&id)?;
        self.inputs.remove(&id);
        self.outputs.remove(&id);
        self.histories.remove(&id);
        if job.state.is_finished() {
            if let Some(at) = job.finished_at() {
                self.prune_at
                    .remove(&(schedule::add(at, self.retention), id));
            }
        } else {
            count_tags(&mut self.unfinished_tags, &job.request.tags, false);
        }
        if let Some(name) = job.unique_name()
            && let Some(chain) = self.by_name.get_mut(name)
        {
            chain.retain(|c| *c != id);
            if chain.is_empty() {
                self.by_name.remove(name);
            }
        }
        self.dependents.remove(&id);
        for p in job.prerequisites() {
            if let Some(ds) = self.dependents.get_mut(p) {
                ds.retain(|d| *d != id);
            }
        }
        Some(job)
    }

    /// Puts job `id` into the finished `state`, stamped `now`: counts it out of its tags and
    /// queues it for pruning at the end of its retention.
    pub fn finish(&mut self, id: JobId, state: JobState, now: Time) {
        debug_assert!(state.is_finished());
        let Some(job) = self.entries.get_mut(&id) else {
            return;
        };
        if !job.state.is_finished() {
            count_tags(&mut self.unfinished_tags, &job.request.tags, false);
        }
        job.state = state;
        job.set_finished_at(Some(now));
        self.prune_at
            .insert((schedule::add(now, self.retention), id));
    }

    /// Brings the finished job `id` back to the unfinished `state` (a retry): counts it into its
    /// tags again and takes it off the retention queue.
    pub fn revive(&mut self, id: JobId, state: JobState) {
        debug_assert!(!state.is_finished());
        let Some(job) = self.entries.get_mut(&id) else {
            return;
        };
        if job.state.is_finished() {
            if let Some(at) = job.finished_at() {
                self.prune_at
                    .remove(&(schedule::add(at, self.retention), id));
            }
            count_tags(&mut self.unfinished_tags, &job.request.tags, true);
        }
        job.state = state;
        job.set_finished_at(None);
    }

    /// Replaces job `id`'s request (the `update` conflict policy) and its input, keeping its
    /// unique name (the name's chain is not touched): the tag counts follow.
    pub fn replace_request(&mut self, id: JobId, mut request: JobRequest) {
        let Some(job) = self.entries.get(&id) else {
            return;
        };
        // the lanes find a filed job by its request's kind and constraints
        debug_assert!(
            job.lane.is_none(),
            "a job's request is replaced while it is filed"
        );
        request.unique = job.request.unique.clone();
        let input = std::mem::take(&mut request.input);
        let shared = entry::share(request, &mut self.last_request);
        let Some(job) = self.entries.get_mut(&id) else {
            return;
        };
        if !job.state.is_finished() {
            count_tags(&mut self.unfinished_tags, &job.request.tags, false);
            count_tags(&mut self.unfinished_tags, &shared.tags, true);
        }
        job.request = shared;
        if !self.keep_payloads {
            // a store holds it
        } else if input.is_null() {
            self.inputs.remove(&id);
        } else {
            self.inputs.insert(id, input);
        }
    }

    /// Job `id` gives its unique name up (a new sequence of the name began): it leaves the
    /// name's chain, and its request no longer carries the name.
    pub fn release_name(&mut self, id: JobId) {
        let Some(job) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(unique) = job.request.unique.clone() else {
            return;
        };
        let mut request = JobRequest::clone(&job.request);
        request.unique = None;
        job.request = Arc::new(request);
        if let Some(chain) = self.by_name.get_mut(&unique.name) {
            chain.retain(|c| *c != id);
            if chain.is_empty() {
                self.by_name.remove(&unique.name);
            }
        }
    }

    /// Files finished job `id` for pruning at the end of its retention again (its pruning was
    /// put off while a dependent of it was unfinished).
    pub fn refile_prune(&mut self, id: JobId) {
        if let Some(at) = self
            .entries
            .get(&id)
            .filter(|j| j.state.is_finished())
            .and_then(|j| j.finished_at())
        {
            self.prune_at
                .insert((schedule::add(at, self.retention), id));
        }
    }

    /// Job `id`'s input payload (`Null`: none).
    pub fn input(&self, id: &JobId) -> Value {
        self.inputs.get(id).cloned().unwrap_or_default()
    }

    /// Sets (or clears) job `id`'s last output; true when it changed.
    pub fn set_output(&mut self, id: JobId, output: Option<Value>) -> bool {
        if !self.keep_payloads {
            return false;
        }
        if self.outputs.get(&id) == output.as_ref() || !self.entries.contains_key(&id) {
            return false;
        }
        match output {
            Some(v) => self.outputs.insert(id, v),
            None => self.outputs.remove(&id),
        };
        true
    }

    /// Job `id`'s recent runs, oldest first.
    pub fn history(&self, id: &JobId) -> &std::collections::VecDeque<RunRecord> {
        static NONE: std::collections::VecDeque<RunRecord> = std::collections::VecDeque::new();
        self.histories.get(id).unwrap_or(&NONE)
    }

    /// Job `id`'s recent runs, to amend one.
    pub fn history_mut(
        &mut self,
        id: &JobId,
    ) -> Option<&mut std::collections::VecDeque<RunRecord>> {
        self.histories.get_mut(id)
    }

    /// Adds `record` to job `id`'s history, keeping the last `cap`.
    pub fn push_history(&mut self, id: JobId, record: RunRecord, cap: usize) {
        if !self.keep_payloads || !self.entries.contains_key(&id) {
            return;
        }
        // a ring: the oldest record goes without moving the others
        let history = self.histories.entry(id).or_default();
        history.push_back(record);
        while history.len() > cap.max(1) {
            history.pop_front();
        }
    }

    /// The jobs with unique name `name`, oldest first.
    pub fn named(&self, name: &str) -> &[JobId] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The jobs that wait for `id` to succeed.
    pub fn dependents(&self, id: &JobId) -> &[JobId] {
        self.dependents.get(id).map_or(&[], Vec::as_slice)
    }

    /// How many unfinished jobs carry `tag`.
    pub fn unfinished_with_tag(&self, tag: &str) -> usize {
        self.unfinished_tags.get(tag).copied().unwrap_or(0)
    }

    /// How many finished jobs wait for their retention to end.
    pub fn finished_kept(&self) -> usize {
        self.prune_at.len()
    }

    /// The earliest instant some finished job's retention ends.
    pub fn next_prune(&self) -> Option<Time> {
        self.prune_at.first().map(|&(t, _)| t)
    }

    /// The retention queue's entries due by `horizon`, earliest first.
    pub fn prune_due(&self, horizon: Time) -> Vec<(Time, JobId)> {
        self.prune_at
            .range(..=(horizon, JobId::MAX))
            .copied()
            .collect()
    }

    /// Moves a retention queue entry from `from` to `to` (`None`: drops it).
    pub fn requeue_prune(&mut self, from: (Time, JobId), to: Option<Time>) {
        self.prune_at.remove(&from);
        if let Some(at) = to {
            self.prune_at.insert((at, from.1));
        }
    }
}

/// How many entries a chunk of [`Slots`] holds (a power of two).
const CHUNK: usize = 1024;

/// The entries, stored in place in fixed-size chunks, and an index from a job's id to its
/// slot that does not store the entry: 4 bytes a slot (a `u32`), hashed by id (FxHash),
/// compared through the slot's own id. No box per entry, no key copied beside it, and a
/// growing table never moves its entries (a new chunk is added; a freed slot is reused).
#[derive(Debug, Default)]
struct Slots {
    /// The slots; `None`: free (listed in `free`).
    chunks: Vec<Box<[Option<Entry>]>>,
    /// The free slots, the last freed last.
    free: Vec<u32>,
    /// Each stored entry's slot, by the hash of its id.
    index: HashTable<u32>,
}

/// The hash of `id` in the index.
fn hash(id: &JobId) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_u128(id.as_u128());
    h.finish()
}

impl Slots {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn at(chunks: &[Box<[Option<Entry>]>], slot: u32) -> Option<&Entry> {
        let slot = slot as usize;
        chunks.get(slot / CHUNK)?.get(slot % CHUNK)?.as_ref()
    }

    fn at_mut(chunks: &mut [Box<[Option<Entry>]>], slot: u32) -> Option<&mut Entry> {
        let slot = slot as usize;
        chunks
            .get_mut(slot / CHUNK)?
            .get_mut(slot % CHUNK)?
            .as_mut()
    }

    /// The slot of job `id`.
    fn slot(&self, id: &JobId) -> Option<u32> {
        let chunks = &self.chunks;
        self.index
            .find(hash(id), |&s| {
                Slots::at(chunks, s).is_some_and(|e| e.id == *id)
            })
            .copied()
    }

    fn contains_key(&self, id: &JobId) -> bool {
        self.slot(id).is_some()
    }

    fn get(&self, id: &JobId) -> Option<&Entry> {
        Slots::at(&self.chunks, self.slot(id)?)
    }

    fn get_mut(&mut self, id: &JobId) -> Option<&mut Entry> {
        let slot = self.slot(id)?;
        Slots::at_mut(&mut self.chunks, slot)
    }

    /// Stores `entry`, replacing the entry of the same id if there is one.
    fn insert(&mut self, entry: Entry) {
        if let Some(old) = self.get_mut(&entry.id) {
            *old = entry;
            return;
        }
        let id = entry.id;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let next = self.chunks.len() * CHUNK;
                // 2^32 entries would take over 400 GB: memory runs out long before
                let slot = u32::try_from(next).expect("fewer than 2^32 jobs in one core");
                self.chunks
                    .push(std::iter::repeat_with(|| None).take(CHUNK).collect());
                // the new chunk's slots but the first are free, the lowest taken first (its
                // last slot is at most `u32::MAX`)
                self.free
                    .extend((slot + 1..=slot + (CHUNK as u32 - 1)).rev());
                slot
            }
        };
        if let Some(place) = self
            .chunks
            .get_mut(slot as usize / CHUNK)
            .and_then(|c| c.get_mut(slot as usize % CHUNK))
        {
            *place = Some(entry);
        }
        let chunks = &self.chunks;
        self.index.insert_unique(hash(&id), slot, |&s| {
            Slots::at(chunks, s).map_or(0, |e| hash(&e.id))
        });
    }

    /// Takes job `id`'s entry out, freeing its slot.
    fn remove(&mut self, id: &JobId) -> Option<Entry> {
        let chunks = &self.chunks;
        let (slot, _) = self
            .index
            .find_entry(hash(id), |&s| {
                Slots::at(chunks, s).is_some_and(|e| e.id == *id)
            })
            .ok()?
            .remove();
        let entry = self
            .chunks
            .get_mut(slot as usize / CHUNK)
            .and_then(|c| c.get_mut(slot as usize % CHUNK))
            .and_then(Option::take);
        self.free.push(slot);
        entry
    }

    /// Every entry, in no particular order.
    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.chunks.iter().flat_map(|c| c.iter().flatten())
    }
}

/// Adds (`up`) or takes away one job carrying `tags` from the per-tag counts.
fn count_tags(counts: &mut BTreeMap<String, usize>, tags: &BTreeSet<String>, up: bool) {
    for tag in tags {
        if up {
            *counts.entry(tag.clone()).or_insert(0) += 1;
        } else if let Some(n) = counts.get_mut(tag) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::job::ConflictPolicy;

    fn entry(table: &mut Table, n: u128, request: JobRequest, at: Time) -> Entry {
        let request = table.share(request);
        Entry::new(JobId::from_u128(n), request, JobState::Enqueued, at)
    }

    /// Every index follows a job through insert, finish, revive, a new request and remove: the
    /// tag counts count unfinished jobs only, the retention queue holds finished jobs only, and
    /// nothing of a removed job is left.
    #[test]
    fn the_indexes_follow_a_job_through_its_life() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
        let mut t = Table::new(Duration::from_secs(3600), true);
        let request = JobRequest::once("k")
            .tag("a")
            .unique("n", ConflictPolicy::Append)
            .input(serde_json::json!({"x": 1}));
        let mut bare = request.clone();
        bare.input = Value::Null;
        let first = entry(&mut t, 1, bare.clone(), at);
        t.insert(
            first,
            Payloads {
                input: request.input.clone(),
                ..Payloads::default()
            },
        );
        let mut second = entry(&mut t, 2, bare, at);
        second.set_prerequisites(Box::new([JobId::from_u128(1)]));
        t.insert(second, Payloads::default());
        let (one, two) = (JobId::from_u128(1), JobId::from_u128(2));
        assert!(
            Arc::ptr_eq(&t.get(&one).unwrap().request, &t.get(&two).unwrap().request),
            "equal requests are shared"
        );
        assert_eq!(t.unfinished_with_tag("a"), 2);
        assert_eq!(t.named("n"), &[one, two]);
        assert_eq!(t.dependents(&one), &[two]);
        assert_eq!(t.input(&one), serde_json::json!({"x": 1}));
        assert_eq!(t.input(&two), Value::Null);

        t.finish(one, JobState::Failed, at);
        assert_eq!(t.unfinished_with_tag("a"), 1);
        assert_eq!(t.finished_kept(), 1);
        assert_eq!(t.next_prune(), Some(at + chrono::TimeDelta::hours(1)));

        t.revive(one, JobState::Enqueued);
        assert_eq!(t.unfinished_with_tag("a"), 2);
        assert_eq!(t.finished_kept(), 0);

        t.replace_request(one, JobRequest::once("k").tag("b"));
        assert_eq!(
            t.get(&one).unwrap().unique_name(),
            Some("n"),
            "the name is kept"
        );
        assert_eq!(t.unfinished_with_tag("a"), 1);
        assert_eq!(t.unfinished_with_tag("b"), 1);
        assert_eq!(
            t.input(&one),
            Value::Null,
            "the new request's input replaces the old"
        );

        assert!(t.set_output(two, Some(serde_json::json!(7))));
        assert!(!t.set_output(two, Some(serde_json::json!(7))), "no change");
        t.push_history(
            two,
            RunRecord {
                attempt: 1,
                started: at,
                finished: at,
                result: crate::core::job::RunResult::Success,
                output: None,
                stop_reason: None,
                note: None,
            },
            10,
        );
        t.remove(two);
        assert_eq!(t.unfinished_with_tag("a"), 0);
        assert_eq!(t.named("n"), &[one]);
        assert!(t.dependents(&one).is_empty());
        assert!(t.payloads(&two) == Payloads::default());
        t.remove(one);
        assert!(t.is_empty() && t.named("n").is_empty() && t.unfinished_with_tag("b") == 0);
    }

    /// The slab finds every entry by its id through removals and reuses of slots, across
    /// chunks and a growing index: what is looked up is what was stored under that id.
    #[test]
    fn the_slab_finds_each_entry_through_removals_and_reused_slots() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
        let mut t = Table::new(Duration::from_secs(3600), false);
        let n = 3 * CHUNK as u128 + 5;
        for i in 0..n {
            let e = entry(&mut t, i, JobRequest::once("k"), at);
            t.insert(e, Payloads::default());
        }
        // every third job goes, then as many new ones come into the freed slots
        for i in (0..n).step_by(3) {
            assert!(t.remove(JobId::from_u128(i)).is_some());
        }
        assert!(t.remove(JobId::from_u128(0)).is_none(), "already gone");
        for i in (0..n).step_by(3) {
            let mut e = entry(&mut t, n + i, JobRequest::once("k"), at);
            e.attempt = 7;
            t.insert(e, Payloads::default());
        }
        assert_eq!(t.len(), n as usize);
        assert_eq!(t.entries.chunks.len(), 4, "the freed slots were reused");
        for i in 0..n {
            let old = t.get(&JobId::from_u128(i));
            let new = t.get(&JobId::from_u128(n + i));
            if i % 3 == 0 {
                assert!(old.is_none());
                assert_eq!(
                    new.map(|e| (e.id, e.attempt)),
                    Some((JobId::from_u128(n + i), 7))
                );
            } else {
                assert_eq!(
                    old.map(|e| (e.id, e.attempt)),
                    Some((JobId::from_u128(i), 0))
                );
                assert!(new.is_none());
            }
        }
        let ids: Vec<JobId> = t.ids().collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids come in id order");
        assert_eq!(ids.len(), n as usize);
    }
}
