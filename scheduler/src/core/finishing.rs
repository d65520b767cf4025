//! Finishing: what happens when a run ends (history, output, retry with backoff, the next
//! slot of a recurring job, a finished state and its dependents), and the commands that end or
//! revive jobs (cancel, retry, run now) and prune finished ones.

use super::*;

impl Scheduler {
    pub(super) fn finished(&mut self, now: Time, id: JobId, attempt: u32, outcome: RunOutcome) {
        if self.active.get(&id).is_none_or(|a| a.attempt != attempt) {
            return; // stale or unknown report
        }
        let Some(active) = self.active.remove(&id) else {
            return;
        };
        let ran_for = since(now, active.started);
        if active.expedited {
            self.ej_ledger.finished(now);
        }
        let mut used_up = false;
        if let Some(job) = self.jobs.get(&id) {
            let view = PolicyJob {
                expedited: active.expedited,
                ..job.policy_view()
            };
            self.policy.on_finished(now, view, ran_for);
            used_up = self.policy.launch_uses_up_request(view);
        }
        let (mut result, output, mut note) = match outcome {
            RunOutcome::Success(out) => (RunResult::Success, out, None),
            RunOutcome::Retry(v) => (RunResult::Retry, v, None),
            RunOutcome::Failure(out) => (RunResult::Failure, out, None),
            RunOutcome::Panicked(msg) => (
                RunResult::Failure,
                None,
                Some(format!("the worker panicked: {msg}")),
            ),
            RunOutcome::Aborted => (
                RunResult::Failure,
                None,
                Some("the run was dropped after its grace period".to_string()),
            ),
            RunOutcome::NotStarted(why) => {
                // a failure that no retry would mend: the same outputs merge the same way
                (RunResult::Failure, None, Some(why))
            }
        };
        let output = match output {
            Some(v) => {
                let size = serde_json::to_string(&v).map_or(usize::MAX, |s| s.len());
                if size > self.config.payload_cap {
                    note = Some(format!(
                        "the output of {size} bytes was dropped: it is over the cap of {} bytes",
                        self.config.payload_cap
                    ));
                    None
                } else {
                    Some(v)
                }
            }
            None => None,
        };
        if active.stop.is_some() {
            result = RunResult::Stopped;
        } else if result == RunResult::Retry && used_up {
            result = RunResult::Failure;
            note.get_or_insert_with(|| {
                "the worker asked for a retry, but its request was used up by its launch (the platform does not launch it again: the app must submit it anew)".to_string()
            });
        } else if result == RunResult::Retry
            && let Some(m) = self
                .jobs
                .get(&id)
                .and_then(|j| j.request.max_attempts.filter(|m| j.attempt >= *m))
        {
            // no retry follows: the run ended the job (or its cycle) as a failure, and its
            // record says so rather than "retry"
            result = RunResult::Failure;
            note.get_or_insert_with(|| {
                if m == 1 {
                    "the worker asked for a retry, but its one attempt is used up".to_string()
                } else {
                    format!("the worker asked for a retry, but all {m} attempts are used up")
                }
            });
        }
        self.push_history(
            id,
            RunRecord {
                attempt,
                started: active.started,
                finished: now,
                result,
                output: output.clone(),
                stop_reason: active.stop.clone(),
                note,
            },
        );
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.set_last_finished(Some(now));
        if job.state.is_finished() {
            // cancelled while it ran: the record is final already
            self.touch(id);
            return;
        }
        let recurring = job.request.schedule.is_recurring();
        if let Some(reason) = active.stop {
            job.set_stop_reason(Some(reason.clone()));
            // a stop that ends the launch (not the process's shutdown) uses the request up
            let ends_launch = used_up && reason != StopReason::Shutdown;
            if reason.is_free() && !ends_launch {
                job.attempt = job.attempt.saturating_sub(1);
                job.state = JobState::Enqueued;
                self.reindex(id);
            } else if ends_launch || matches!(reason, StopReason::Expired(_)) {
                // the request is used up: no retry
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Failed, Some(reason));
                }
            } else {
                self.retry(now, id);
            }
            return;
        }
        match result {
            RunResult::Success => {
                job.set_last_success_started(Some(active.started));
                job.set_stop_reason(None);
                self.set_output(id, output);
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Succeeded, None);
                }
            }
            RunResult::Retry => self.retry(now, id),
            _ => {
                self.set_output(id, output);
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Failed, None);
                }
            }
        }
    }

    /// Job `id`'s last output is now `output`: written to the store (the core keeps none when
    /// a store does), or kept in the table (no store).
    pub(super) fn set_output(&mut self, id: JobId, output: Option<Value>) {
        if !self.persist {
            self.jobs.set_output(id, output);
            return;
        }
        // Without the stored output at hand, a `None` clears it only where an earlier run may
        // have left one (a first run has nothing to clear).
        let earlier = self.jobs.get(&id).is_some_and(|j| j.runs_total > 1);
        if output.is_some() || earlier || self.dirty_outputs.contains_key(&id) {
            self.dirty_outputs.insert(id, output);
        }
    }

    pub(super) fn push_history(&mut self, id: JobId, record: RunRecord) {
        let cap = self.config.history_len.max(1);
        if let Some(job) = self.jobs.get(&id) {
            if self.persist {
                // the run that ended is the last one started: its number is `runs_total`
                self.dirty_runs.push(RunWrite {
                    id,
                    number: job.runs_total,
                    record,
                });
            } else if self.keep_history {
                self.jobs.push_history(id, record, cap);
            }
            self.touch(id);
        }
    }

    /// The attempt failed in a way that may be retried: back off, or give up at `max_attempts`.
    pub(super) fn retry(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let exhausted = job.request.max_attempts.is_some_and(|m| job.attempt >= m);
        if exhausted {
            if job.request.schedule.is_recurring() {
                self.advance_slot(now, id);
            } else {
                self.finish_job(now, id, JobState::Failed, None);
            }
            return;
        }
        let delay = backoff_delay(&job.request.backoff, job.attempt, job.id.seed());
        job.set_not_before(schedule::add(now, delay));
        job.backing_off = true;
        job.state = JobState::Enqueued;
        self.reindex(id);
    }

    /// A recurring job's cycle ended: move to its next slot, with the attempt count reset.
    pub(super) fn advance_slot(&mut self, now: Time, id: JobId) {
        // placed where it is (a job is large: taking it out of the map and back moved it twice,
        // and its neighbours in the map's node, at every run)
        let Some(origin) = self.jobs.get(&id).map(|job| self.schedule_origin(job)) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let cron = cron_of(&mut self.cron_cache, &job.request.schedule);
        job.attempt = 0;
        job.cycle = job.cycle.saturating_add(1);
        job.state = JobState::Enqueued;
        let placed = cron.and_then(|cron| place(job, origin, cron.as_ref()));
        match placed {
            Ok(()) => {
                self.reindex(id);
                // slots that passed while it ran are missed slots too
                self.skip_missed(now, id);
            }
            // a cron expression with no future slot (a year field in the past): the job is done
            Err(_) => self.finish_job(now, id, JobState::Succeeded, None),
        }
    }

    /// Puts a job into a finished state and settles its dependents.
    pub(super) fn finish_job(
        &mut self,
        now: Time,
        id: JobId,
        state: JobState,
        reason: Option<StopReason>,
    ) {
        // a work list, not recursion: a failure or a cancel spreads down a chain of any length
        // (thousands of links) without growing the stack
        let mut work = vec![(id, state, reason)];
        while let Some((id, state, reason)) = work.pop() {
            self.finish_one(now, id, state, reason, &mut work);
        }
    }

    /// Ends `id`; the blocked jobs after it are released (it succeeded) or pushed on `work` to
    /// end the same way (it did not).
    fn finish_one(
        &mut self,
        now: Time,
        id: JobId,
        state: JobState,
        reason: Option<StopReason>,
        work: &mut Vec<(JobId, JobState, Option<StopReason>)>,
    ) {
        self.jobs.finish(id, state, now);
        self.demoted.remove(&id); // a demotion lasts until the job's next start, or its end
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.force = Force::default();
        if reason.is_some() {
            job.set_stop_reason(reason);
        }
        self.deferred.remove(&id);
        self.reindex(id);
        // a finished prerequisite is kept while a dependent of it is unfinished (its output is
        // the dependent's input): once none is, its retention counts again
        let prerequisites = self.jobs.get(&id).map(|j| j.prerequisites().to_vec());
        for p in prerequisites.unwrap_or_default() {
            if !self.has_unfinished_dependent(p) {
                self.jobs.refile_prune(p);
            }
        }
        let dependents = self.jobs.dependents(&id).to_vec();
        for d in dependents {
            let Some(dep) = self.jobs.get(&d) else {
                continue;
            };
            if dep.state != JobState::Blocked {
                continue;
            }
            match state {
                JobState::Succeeded => {
                    let ready = dep.prerequisites().iter().all(|p| {
                        self.jobs
                            .get(p)
                            .is_none_or(|p| p.state == JobState::Succeeded)
                    });
                    if ready {
                        self.unblock(d);
                    }
                }
                other => work.push((d, other, Some(StopReason::PrerequisiteFailed(id)))),
            }
        }
    }

    /// `id`'s last prerequisite succeeded: it is enqueued, its schedule placed again from now
    /// (its delay counts from its unblocking, see [`Scheduler::schedule_origin`]).
    fn unblock(&mut self, id: JobId) {
        let Some(mut placed) = self.jobs.get(&id).cloned() else {
            return;
        };
        placed.state = JobState::Enqueued;
        // the schedule was placed once at the enqueue, so it places again; should it somehow
        // not, the enqueue-time placement stays
        let replaced = self.place(&mut placed).is_ok();
        if let Some(job) = self.jobs.get_mut(&id) {
            job.state = JobState::Enqueued;
            if replaced {
                *job = placed;
            }
        }
        self.reindex(id);
    }

    pub(super) fn cancel(&mut self, now: Time, selector: &Selector) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        let unfinished: Vec<JobId> = ids
            .iter()
            .copied()
            .filter(|id| self.jobs.get(id).is_some_and(|j| !j.state.is_finished()))
            .collect();
        if unfinished.is_empty() {
            match selector {
                Selector::Tag(_) => {}
                _ => match ids.last().and_then(|id| self.jobs.get(id)) {
                    Some(job) => {
                        return Err(CoreError::AlreadyFinished {
                            id: job.id,
                            state: job.state,
                            action: "cancel",
                        });
                    }
                    None => return Err(CoreError::NoSuchJob(selector.to_string())),
                },
            }
        }
        for id in &unfinished {
            self.cancel_one(now, *id, StopReason::Cancelled);
        }
        Ok(Reply::Cancelled(unfinished))
    }

    pub(super) fn cancel_one(&mut self, now: Time, id: JobId, reason: StopReason) {
        if self.active.contains_key(&id) {
            self.request_stop(now, id, StopReason::Cancelled, self.config.grace);
            self.active
                .update(&id, |a| a.stop = Some(StopReason::Cancelled));
        }
        self.finish_job(now, id, JobState::Cancelled, Some(reason));
    }

    /// `Event::Retry`: checks every selected job first, so a refusal changes nothing.
    pub(super) fn retry_finished(
        &mut self,
        now: Time,
        selector: &Selector,
    ) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        if ids.is_empty() {
            return Err(CoreError::NoSuchJob(selector.to_string()));
        }
        // a name means its last job; a tag means its failed and cancelled jobs
        let ids: Vec<JobId> = match selector {
            Selector::Name(_) => ids.last().copied().into_iter().collect(),
            Selector::Tag(_) => ids
                .into_iter()
                .filter(|id| {
                    self.jobs
                        .get(id)
                        .is_some_and(|j| matches!(j.state, JobState::Failed | JobState::Cancelled))
                })
                .collect(),
            _ => ids,
        };
        for id in &ids {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
                return Err(CoreError::NotRetriable {
                    id: *id,
                    state: job.state,
                });
            }
            if self.active.contains_key(id) {
                return Err(CoreError::StillStopping(*id));
            }
            if let Some(name) = job.unique_name()
                && let Some(live) = self
                    .jobs
                    .named(name)
                    .iter()
                    .find(|c| self.jobs.get(c).is_some_and(|j| !j.state.is_finished()))
            {
                return Err(CoreError::NameTaken {
                    name: name.to_string(),
                    live: *live,
                });
            }
            if let Some(p) = job.prerequisites().iter().find(|p| {
                self.jobs
                    .get(p)
                    .is_some_and(|p| matches!(p.state, JobState::Failed | JobState::Cancelled))
            }) {
                return Err(CoreError::PrerequisiteNotDone {
                    id: *id,
                    prerequisite: *p,
                });
            }
        }
        for id in &ids {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            let state = if job.prerequisites().iter().all(|p| {
                self.jobs
                    .get(p)
                    .is_none_or(|p| p.state == JobState::Succeeded)
            }) {
                JobState::Enqueued
            } else {
                JobState::Blocked
            };
            self.jobs.revive(*id, state);
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            job.attempt = 0;
            job.cycle = job.cycle.saturating_add(1);
            job.set_stop_reason(None);
            job.backing_off = false;
            job.force = Force::default();
            if job.request.schedule.is_recurring() {
                let mut placed = job.clone();
                if self.place(&mut placed).is_ok()
                    && let Some(job) = self.jobs.get_mut(id)
                {
                    *job = placed;
                }
            } else {
                job.set_not_before(now);
                job.set_window_end(None);
            }
            self.reindex(*id);
            self.dirty.insert(*id);
        }
        Ok(Reply::Retried(ids))
    }

    pub(super) fn force(&mut self, selector: &Selector, force: Force) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        if ids.is_empty() {
            return Err(CoreError::NoSuchJob(selector.to_string()));
        }
        let mut forced = Vec::new();
        let single = matches!(selector, Selector::Id(_));
        for id in ids {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            match job.state {
                JobState::Enqueued => {
                    job.force.time |= force.time;
                    job.force.constraints |= force.constraints;
                    if force.time {
                        self.deferred.remove(&id);
                    }
                    self.reindex(id);
                    forced.push(id);
                }
                JobState::Running => forced.push(id),
                JobState::Blocked if single => return Err(CoreError::Blocked(id)),
                state if single && state.is_finished() => {
                    return Err(CoreError::AlreadyFinished {
                        id,
                        state,
                        action: "run",
                    });
                }
                _ => {}
            }
        }
        Ok(Reply::Forced(forced))
    }

    /// Removes every finished job that finished at least `age` ago: at retention as time passes
    /// (`expire`), or sooner when asked (`Event::Prune`). A job still winding down after a
    /// cancel is looked at again after its grace period; an entry whose job is gone or live
    /// again (`retry`) is dropped.
    pub(super) fn prune_finished(&mut self, now: Time, age: Duration) {
        // `prune_at` is keyed by the end of retention: finished + retention
        let horizon = if age <= self.config.retention {
            schedule::add(now, self.config.retention - age)
        } else {
            schedule::sub(now, age - self.config.retention)
        };
        let due = self.jobs.prune_due(horizon);
        for (key, id) in due {
            let Some(finished) = self
                .jobs
                .get(&id)
                .filter(|j| j.state.is_finished())
                .and_then(|j| j.finished_at())
            else {
                self.jobs.requeue_prune((key, id), None);
                continue;
            };
            if self.active.contains_key(&id) {
                self.jobs
                    .requeue_prune((key, id), Some(schedule::add(now, self.config.grace)));
            } else if self.has_unfinished_dependent(id) {
                // filed again when its last unfinished dependent finishes (`finish_job`)
                self.jobs.requeue_prune((key, id), None);
            } else if schedule::add(finished, age) <= now {
                self.jobs.requeue_prune((key, id), None);
                self.remove(id);
            } else {
                // younger than `age`: keep it, under its own key (a grace re-check is done)
                let own = schedule::add(finished, self.config.retention);
                if own != key {
                    self.jobs.requeue_prune((key, id), Some(own));
                }
            }
        }
    }

    /// True when a job waits for `id` and has not finished (as WorkManager's `PruneWork`, a
    /// finished job with such a dependent is not pruned).
    pub(super) fn has_unfinished_dependent(&self, id: JobId) -> bool {
        self.jobs
            .dependents(&id)
            .iter()
            .any(|d| self.jobs.get(d).is_some_and(|d| !d.state.is_finished()))
    }

    /// Removes job `id`: from the table (with its payloads and indexes), and from what waits
    /// to be dispatched or written.
    pub(super) fn remove(&mut self, id: JobId) {
        // unfiled first: where it waits is kept on its entry
        self.lanes.remove(&mut self.jobs, id);
        self.demoted.remove(&id);
        if self.jobs.remove(id).is_none() {
            return;
        }
        self.deferred.remove(&id);
        self.dirty.remove(&id);
        self.dirty_inputs.remove(&id);
        self.dirty_outputs.remove(&id);
        self.removed.push(id);
        self.pruned += 1;
    }
}
