//! Recovery: loading a store's jobs into a fresh core (runs the crash interrupted are charged and
//! backed off), forgetting them for a reload, and the catch-up policy of recurring jobs whose
//! slots were missed while the process was down or the clock jumped.

use super::*;

impl Scheduler {
    /// Drops every job and what refers to them; keeps configuration, policy, kinds and device.
    pub(super) fn forget_jobs(&mut self) {
        self.jobs.clear();
        let log = self.lanes.log.take().map(|_| Vec::new());
        self.lanes = lanes::Lanes::default();
        self.lanes.log = log;
        self.deferred.clear();
        self.app_hold = None;
        self.active.clear();
        self.ej_ledger.drop_runs(self.now);
        self.demoted.clear();
        self.dirty.clear();
        self.dirty_inputs.clear();
        self.dirty_outputs.clear();
        self.dirty_runs.clear();
        self.crashed.clear();
        self.removed.clear();
        self.pending.clear();
        self.actions.clear();
    }

    pub(super) fn load(&mut self, now: Time, jobs: Vec<Job>) -> Result<Reply, CoreError> {
        if !self.jobs.is_empty() {
            return Err(CoreError::AlreadyLoaded);
        }
        let count = jobs.len();
        self.crashed.clear();
        for job in jobs {
            if let Schedule::Cron { expr, .. } = &job.request.schedule {
                // parsed once here, not at every look at the job
                let _ = self.cron(expr);
            }
            self.jobs.insert_job(job);
        }
        let ids: Vec<JobId> = self.jobs.ids().collect();
        let mut recovered = 0;
        for id in ids {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if job.state == JobState::Running {
                recovered += 1;
                let started = job.last_started().unwrap_or(now);
                let attempt = job.attempt;
                job.set_stop_reason(Some(StopReason::Unknown));
                job.set_last_finished(Some(now));
                job.state = JobState::Enqueued;
                let record = RunRecord {
                    attempt,
                    started,
                    finished: now,
                    result: RunResult::Crashed,
                    output: None,
                    stop_reason: Some(StopReason::Unknown),
                    note: Some("the process died during this run".into()),
                };
                // its number: the run that crashed was the last one started
                self.crashed.insert(id, (job.runs_total, record.clone()));
                self.push_history(id, record);
                self.retry(now, id);
            } else if !job.state.is_finished() {
                self.reindex(id);
                self.dirty.remove(&id);
            }
        }
        // a blocked job whose prerequisites have all ended (in a store whose prerequisite was
        // pruned by an older version, say) is settled now, not left waiting for good
        let blocked: Vec<JobId> = self
            .jobs
            .entries()
            .filter(|j| j.state == JobState::Blocked)
            .map(|j| j.id)
            .collect();
        for id in blocked {
            self.settle_blocked(now, id);
        }
        self.apply_catch_up(now);
        Ok(Reply::Loaded {
            jobs: count,
            recovered,
        })
    }

    /// The machine was suspended for `slept` ([`Event::Suspended`]): the runs in progress get
    /// it added to their limits (they were frozen with it), and missed slots follow their
    /// catch-up policy.
    pub(super) fn suspended(&mut self, now: Time, slept: Duration) {
        self.active.update_all(|_, run| {
            for t in [&mut run.deadline, &mut run.abort_at].into_iter().flatten() {
                *t = schedule::add(*t, slept);
            }
            if let Some((t, _)) = &mut run.policy_deadline {
                *t = schedule::add(*t, slept);
            }
        });
        self.apply_catch_up(now);
    }

    /// Missed slots after downtime (see [`Scheduler::skip_missed`]).
    pub(super) fn apply_catch_up(&mut self, now: Time) {
        let ids: Vec<JobId> = self.jobs.ids().collect();
        for id in ids {
            self.skip_missed(now, id);
        }
    }

    /// True when the current slot of an enqueued recurring job (not backing off) can no longer
    /// start on time at `now`: a periodic job's window has ended, a cron slot's latest start
    /// (its jittered due time plus the batching slack) has passed.
    pub(super) fn slot_missed(&self, job: &Entry, now: Time) -> bool {
        if job.state != JobState::Enqueued || job.backing_off {
            return false;
        }
        match &job.request.schedule {
            Schedule::Periodic { .. } => job.window_passed(now),
            Schedule::Cron { .. } if job.has_window() => {
                self.latest_start(job, job.not_before()) < now
            }
            _ => false,
        }
    }

    /// If `id` is a recurring job whose slot was missed at `now`, applies its catch-up policy:
    /// `skip` moves it to the first slot that has not ended; `one` runs it once as soon as
    /// possible — delayed by its jitter, when it has one, so that jobs catching up together do
    /// not all start at the same instant.
    pub(super) fn skip_missed(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if !self.slot_missed(job, now) {
            return;
        }
        if job.request.catch_up == CatchUp::One {
            if job.request.jitter.is_some() {
                let due = self.jittered(job, now);
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.set_not_before(due);
                }
                self.reindex(id);
            }
            return;
        }
        // the first slot that is not missed at `now` — a slot that began before `now` still
        // counts when its jittered start (and batching slack) is ahead, so look from one
        // jitter back
        let Some(mut candidate) = self.jobs.get(&id).cloned() else {
            return;
        };
        let jitter = candidate.request.jitter.map_or(Duration::ZERO, |j| j.max);
        let look_from = sub(now, jitter.saturating_add(self.batch_slack(&candidate)));
        // the current slot is missed (its jitter was decided once); later ones that end
        // before `look_from` cannot be kept either
        let mut after = candidate
            .window_end()
            .map_or(look_from, |end| end.max(look_from));
        let mut placed = false;
        for _ in 0..10_000 {
            let Some((start, end)) = self.slot_after(&candidate, after) else {
                break;
            };
            candidate.attempt = 0;
            candidate.cycle = candidate.cycle.saturating_add(1);
            candidate.set_window_end(Some(end));
            candidate.set_not_before(self.jittered(&candidate, start));
            if !self.slot_missed(&candidate, now) {
                placed = true;
                break;
            }
            after = end;
        }
        if let Some(job) = self.jobs.get_mut(&id) {
            *job = candidate;
        }
        if placed {
            self.reindex(id);
        } else {
            self.finish_job(now, id, JobState::Succeeded, None);
        }
    }

    /// The first slot of a recurring job whose window ends after `after`: its start and end
    /// (for cron, the slot itself twice). `None` for one-off jobs and a cron expression that
    /// never fires again.
    pub(super) fn slot_after(&mut self, job: &Entry, after: Time) -> Option<(Time, Time)> {
        match job.request.schedule.clone() {
            Schedule::Periodic {
                every,
                flex,
                anchor,
                initial_delay,
            } => {
                let at = after + TimeDelta::nanoseconds(1);
                let origin = schedule::add(self.schedule_origin(job), initial_delay);
                let w = periodic_window_at(every, flex, anchor.unwrap_or_default(), origin, at);
                Some((w.start, w.end))
            }
            Schedule::Cron { expr, tz } => {
                let parsed = self.cron(&expr).ok()?;
                next_cron(&parsed, tz, after).map(|slot| (slot, slot))
            }
            Schedule::Once { .. } => None,
        }
    }
}
