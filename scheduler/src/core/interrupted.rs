//! What a driver learned about runs its crash interrupted: when they really stopped, and how.
//!
//! On [`Event::Load`](super::Event::Load) the core turns every job found `running` into a
//! `crashed` run that ended "now" — all it can know. A driver that kept its own record of the
//! runs in flight (the daemon's run files) knows better: right after the load it sends
//! [`Event::Interrupted`](super::Event::Interrupted), and the matching history records get the
//! real end and the driver's note. Nothing else changes: the attempt stays charged and the
//! backoff computed on load stands.

use serde::{Deserialize, Serialize};

use super::{JobId, RunWrite, Scheduler, Time};

/// One run a crash interrupted, as its driver found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// The job.
    pub id: JobId,
    /// The attempt that was running (a record of another attempt is left alone).
    pub attempt: u32,
    /// When the run really stopped (its processes were stopped or found gone). Clamped to the
    /// run's start and to the time of the load.
    pub ended: Time,
    /// What happened, for the history (e.g. "interrupted by a daemon crash; …").
    pub note: String,
}

impl Scheduler {
    /// Amends the `crashed` history records that [`Event::Load`](super::Event::Load) just wrote.
    pub(super) fn interrupted(&mut self, now: Time, runs: Vec<Interruption>) {
        for run in runs {
            // only the record the load wrote, while it is still the job's latest
            let Some(job) = self.jobs.get_mut(&run.id) else {
                continue;
            };
            let Some((number, record)) = self.crashed.get(&run.id) else {
                continue;
            };
            if record.attempt != run.attempt || job.runs_total != *number {
                continue;
            }
            let Some((number, mut record)) = self.crashed.remove(&run.id) else {
                continue;
            };
            let ended = run.ended.clamp(record.started, now.max(record.started));
            record.finished = ended;
            record.note = Some(run.note);
            job.set_last_finished(Some(ended));
            if let Some(last) = self.jobs.history_mut(&run.id).and_then(|h| h.back_mut()) {
                *last = record.clone(); // a core without a store keeps the history itself
            }
            if self.persist {
                self.dirty_runs.push(RunWrite {
                    id: run.id,
                    number,
                    record,
                });
            }
            self.dirty.insert(run.id);
        }
    }
}
