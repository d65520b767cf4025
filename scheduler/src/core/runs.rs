//! The runs in progress, and the instants at which the core must act on them, kept in step.
//!
//! Each run may have to be acted on at an instant: its time limit (the request's `timeout`),
//! its policy's limit (Android's 10 minutes, an iOS budget), or — once asked to stop — the end
//! of its grace period, when it is aborted. [`Runs`] files every run under the earliest of
//! those that still count (its [`Active::next_deadline`]), so the core finds the runs whose
//! instant has come, and the next such instant, without looking at every run at every input:
//! with a thousand runs out, an input used to cost a thousand checks.

use std::collections::{BTreeMap, BTreeSet};

use super::Active;
use super::job::{JobId, Time};

/// The runs in progress by job, each filed under its next deadline.
#[derive(Debug, Default)]
pub(super) struct Runs {
    by_job: BTreeMap<JobId, Active>,
    /// `(deadline, job)` for every run that has one: its [`Active::next_deadline`] as filed.
    deadlines: BTreeSet<(Time, JobId)>,
}

impl Active {
    /// The next instant the core must act on this run: before a stop is asked, the earlier of
    /// its time limit and its policy's limit; after, the end of its grace period.
    pub(super) fn next_deadline(&self) -> Option<Time> {
        if self.stop.is_some() {
            self.abort_at
        } else {
            let policy = self.policy_deadline.as_ref().map(|(t, _)| *t);
            [self.deadline, policy].into_iter().flatten().min()
        }
    }
}

impl Runs {
    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        self.by_job.len()
    }

    /// The run of job `id`.
    pub fn get(&self, id: &JobId) -> Option<&Active> {
        self.by_job.get(id)
    }

    /// True when job `id` runs.
    pub fn contains_key(&self, id: &JobId) -> bool {
        self.by_job.contains_key(id)
    }

    /// The jobs that run, in id order.
    pub fn keys(&self) -> impl Iterator<Item = &JobId> {
        self.by_job.keys()
    }

    /// The runs, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&JobId, &Active)> {
        self.by_job.iter()
    }

    /// Records the run of job `id` (replacing one it had).
    pub fn insert(&mut self, id: JobId, run: Active) {
        self.remove(&id);
        if let Some(at) = run.next_deadline() {
            self.deadlines.insert((at, id));
        }
        self.by_job.insert(id, run);
    }

    /// Forgets the run of job `id`, giving it back.
    pub fn remove(&mut self, id: &JobId) -> Option<Active> {
        let run = self.by_job.remove(id)?;
        if let Some(at) = run.next_deadline() {
            self.deadlines.remove(&(at, *id));
        }
        Some(run)
    }

    /// Forgets every run.
    pub fn clear(&mut self) {
        self.by_job.clear();
        self.deadlines.clear();
    }

    /// Changes the run of job `id` with `f` (nothing when it has none), filing it again under
    /// its new deadline; what `f` returns.
    pub fn update<T>(&mut self, id: &JobId, f: impl FnOnce(&mut Active) -> T) -> Option<T> {
        let run = self.by_job.get_mut(id)?;
        let before = run.next_deadline();
        let out = f(run);
        let after = run.next_deadline();
        if before != after {
            if let Some(at) = before {
                self.deadlines.remove(&(at, *id));
            }
            if let Some(at) = after {
                self.deadlines.insert((at, *id));
            }
        }
        Some(out)
    }

    /// Changes every run with `f` (in id order), filing each again under its new deadline.
    pub fn update_all(&mut self, mut f: impl FnMut(&JobId, &mut Active)) {
        let ids: Vec<JobId> = self.by_job.keys().copied().collect();
        for id in ids {
            self.update(&id, |run| f(&id, run));
        }
    }

    /// The jobs whose run's next deadline is at or before `now`, in id order.
    pub fn due(&self, now: Time) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The earliest deadline of any run.
    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.first().map(|(at, _)| *at)
    }
}
