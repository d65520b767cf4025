//! Dispatch: filing each enqueued job in the lane of what it waits for, the time gates and the
//! batching slack that decide when it may start, and starting ready jobs while run slots and
//! the policy allow; the device and policy changes that re-file jobs, and the timed work
//! (time limits, grace periods) of runs in progress.

use super::entry::nanos;
use super::lanes::Lane;
use super::*;

/// The time gates of one enqueued job (see `Scheduler::gates`).
#[derive(Debug, Clone)]
pub(super) struct Gates {
    /// The due time of the current cycle, jitter included, or the end of a backoff.
    pub(super) due: Time,
    /// `due` is a backoff's end.
    pub(super) backing_off: bool,
    /// When the minimum interval since the last successful start has passed.
    pub(super) min_interval: Option<Time>,
    /// A policy deferral: until when (if known), and why.
    pub(super) policy: Option<(Option<Time>, PolicyReason)>,
}

impl Gates {
    /// The instant all of them are open (a denial without an end does not count: the policy is
    /// asked again when the world changes).
    pub(super) fn open_at(&self) -> Time {
        let mut at = self.due;
        if let Some(t) = self.min_interval {
            at = at.max(t);
        }
        if let Some((Some(until), _)) = &self.policy {
            at = at.max(*until);
        }
        at
    }
}

impl Scheduler {
    /// Files every job whose time gates opened, then starts ready jobs the policy allows, in due
    /// order, while slots last.
    pub(super) fn dispatch(&mut self, now: Time) {
        // a job demoted to ordinary work during a pass is filed again where the pass may have
        // gone by: another pass (each job is demoted at most once before it starts)
        loop {
            let demotions = self.demotions;
            self.dispatch_once(now);
            if self.demotions == demotions {
                break;
            }
        }
        // a policy that let a batch go may release the jobs it held for that batch
        if self.policy.wants_reask() {
            self.ask_policy_again();
            self.dispatch_once(now);
        }
    }

    pub(super) fn dispatch_once(&mut self, now: Time) {
        if self.shutting_down || self.asleep_since.is_some() {
            return;
        }
        while let Some((key, id)) = self.lanes.pop_due(&mut self.jobs, now) {
            self.classify(key, id);
        }
        if self
            .app_hold
            .as_ref()
            .is_some_and(|h| h.until.is_some_and(|u| u <= now))
        {
            self.app_hold = None; // its time is up: the policy is asked again
        }
        let mut cursor = None;
        // whether the policy's app-wide hold was asked since the last start
        let mut asked = false;
        while self.active.len() < self.config.max_concurrent.max(1) {
            if self.app_hold.is_some() {
                // only forced jobs pass an app-wide hold; the others stay parked, unasked
                let Some((key, id)) = self.lanes.next_ready_forced(cursor) else {
                    break;
                };
                cursor = Some(key);
                let forced = self.jobs.get(&id).is_some_and(|j| j.force.time);
                if !forced && !self.expedited_may_start(now, id) {
                    continue;
                }
                self.start(now, id);
                continue;
            }
            let Some((key, id)) = self.lanes.next_ready(cursor) else {
                break;
            };
            cursor = Some(key);
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            let expedited = !job.force.time && self.is_expedited(job);
            if expedited {
                // the expedited quota, not the policy's holds (and not counted as asking it)
                if !self.expedited_may_start(now, id) {
                    continue;
                }
            } else if !job.force.time {
                if !asked {
                    asked = true;
                    if let Some((until, reason)) = self.policy.app_hold(now) {
                        // as for a deferral, a hold must end in the future
                        let until =
                            until.map(|u| u.max(schedule::add(now, Duration::from_secs(1))));
                        self.app_hold = Some(AppHold { until, reason });
                        continue; // this job is parked with the others
                    }
                }
                let Some(job) = self.jobs.get(&id) else {
                    continue;
                };
                let cx = PolicyContext {
                    device: &self.device,
                    running: self.active.len(),
                    pending: self.lanes.len() + self.active.len(),
                    pending_by_tag: &[],
                };
                match self.policy.before_start(now, job.policy_view(), cx) {
                    Decision::Allow => {
                        self.deferred.remove(&id);
                    }
                    Decision::Defer { until, reason } => {
                        // a deferral must end in the future, or the job would wait for a
                        // wake-up that never comes
                        let until = until.max(schedule::add(now, Duration::from_secs(1)));
                        self.deferred.insert(id, (Some(until), reason));
                        let dirty = self.dirty.contains(&id);
                        self.reindex(id);
                        if !dirty {
                            self.dirty.remove(&id);
                        }
                        continue;
                    }
                    Decision::Deny { reason } => {
                        self.deferred.insert(id, (None, reason));
                        self.lanes.note(id); // no longer ready: held for a reason of its own
                        continue;
                    }
                }
            }
            self.start(now, id);
            asked = false; // a start may use up what the app is allowed
        }
    }

    pub(super) fn start(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let ignore_constraints = job.force.constraints;
        let expedited = job.request.expedited.is_some() && !self.demoted.remove(&id);
        job.state = JobState::Running;
        job.attempt = job.attempt.saturating_add(1);
        job.runs_total = job.runs_total.saturating_add(1);
        job.set_last_started(Some(now));
        job.set_stop_reason(None);
        job.force = Force::default();
        let start = StartJob {
            id,
            kind: job.request.kind.clone(),
            attempt: job.attempt,
            cycle: job.cycle,
            prerequisites: job.prerequisites().into(),
            input_merger: job.request.input_merger,
        };
        let deadline = job.request.timeout.map(|d| schedule::add(now, d));
        let policy_deadline = self.policy.run_deadline(now, job.policy_view());
        self.active.insert(
            id,
            Active {
                attempt: start.attempt,
                started: now,
                deadline,
                policy_deadline,
                ignore_constraints,
                stop: None,
                abort_at: None,
                expedited,
            },
        );
        if expedited {
            self.ej_ledger.started(now);
        }
        self.deferred.remove(&id);
        self.reindex(id);
        if let Some(job) = self.jobs.get(&id) {
            let view = PolicyJob {
                expedited,
                ..job.policy_view()
            };
            self.policy.on_started(now, view);
        }
        self.pending.push(Action::Start(start));
    }

    /// Files a job whose time gates are open (filed under `key`, in nanoseconds as the lanes
    /// keep it) in the lane of what it waits for next.
    pub(super) fn classify(&mut self, key: i64, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let lane = if !self.kinds.contains(&job.request.kind) {
            Lane::NoWorker
        } else if !job.force.constraints && !job.request.constraints.satisfied_by(&self.device) {
            Lane::Device
        } else {
            // expedited work passes the policy's holds as forced work does (JobScheduler runs
            // expedited jobs in Doze and past standby quotas), and goes first among the ready
            let expedited = self.is_expedited(job);
            let forced = job.force.time || expedited;
            let key = if expedited { nanos(min_time()) } else { key };
            self.lanes
                .file(&mut self.jobs, Lane::Ready(forced), key, id);
            return;
        };
        self.lanes.file(&mut self.jobs, lane, key, id);
    }

    /// Whether `job` waits as expedited work: its request is expedited and the expedited quota
    /// has not sent it back to the ordinary queue.
    pub(super) fn is_expedited(&self, job: &Entry) -> bool {
        job.request.expedited.is_some() && !self.demoted.contains(&job.id)
    }

    /// For an expedited job about to start: whether the expedited quota the policy gives now
    /// allows it. If not, its out-of-quota policy applies — run as ordinary work (it is filed
    /// again as such: batched, held by the profile, behind earlier ordinary work) or drop it
    /// (cancelled, the stop reason saying why) — and the answer is `false`.
    fn expedited_may_start(&mut self, now: Time, id: JobId) -> bool {
        let Some(out_of_quota) = self.jobs.get(&id).and_then(|j| j.request.expedited) else {
            return true;
        };
        let quota = self
            .policy
            .expedited_quota(now, &self.config.expedited_quota);
        if self.ej_ledger.allows(now, &quota) {
            return true;
        }
        let used = humanize_approx(self.ej_ledger.used(now, quota.window));
        match out_of_quota {
            OutOfQuotaPolicy::RunAsNonExpedited => {
                self.demoted.insert(id);
                self.demotions += 1;
                let dirty = self.dirty.contains(&id);
                self.reindex(id);
                if !dirty {
                    self.dirty.remove(&id); // a demotion is not part of the record
                }
            }
            OutOfQuotaPolicy::Drop => {
                let limit = quota.limit.map(humanize_approx).unwrap_or_default();
                let reason = StopReason::Policy(PolicyStop::new(
                    "expedited_quota",
                    format!(
                        "the expedited quota is used up ({used} of {limit} in the last {}), and the job asked to be dropped then (out-of-quota policy: drop)",
                        humanize_approx(quota.window)
                    ),
                ));
                self.cancel_one(now, id, reason);
            }
        }
        false
    }

    /// The time gates of an enqueued job, each with the instant it opens: the one computation
    /// that dispatch (through [`Scheduler::gate_of`]), `why` and `list` use.
    pub(super) fn gates(&self, job: &Entry) -> Gates {
        let min_interval = match (job.request.min_interval, job.last_success_started()) {
            (Some(mi), Some(last)) => Some(schedule::add(last, mi)),
            _ => None,
        };
        Gates {
            due: job.not_before(),
            backing_off: job.backing_off,
            min_interval,
            policy: self.deferred.get(&job.id).cloned(),
        }
    }

    /// The instant every time gate of an enqueued job is open: due time (with its jitter) or
    /// backoff, min-interval, policy deferral. Forced jobs are open now.
    pub(super) fn gate_of(&self, job: &Entry) -> Time {
        if job.force.time {
            return min_time();
        }
        self.gates(job).open_at()
    }

    /// How long past its gate a job may wait to share a wake-up: its flex window's end for a
    /// periodic job with a flex (unless it backs off), else the batching window; nothing for an
    /// accurate or forced job. Never as late as the job's next slot, so a period or cron slot
    /// shorter than the batching window is not eaten.
    pub(super) fn latest_start(&self, job: &Entry, gate: Time) -> Time {
        let policy_chose =
            matches!(self.deferred.get(&job.id), Some((Some(until), _)) if *until == gate);
        let jittered = if job.backing_off {
            job.request.backoff.jitter > 0.0
        } else {
            job.request.jitter.is_some()
        };
        if job.force.time
            || job.request.accurate
            || self.is_expedited(job)
            || self.config.batch_window.is_zero()
            || policy_chose
            || jittered
        {
            // forced, accurate, batching off, the policy picked the instant itself (a
            // maintenance window opens then), or a jittered start, which is there to spread
            // jobs apart and would be undone by gathering them into one wake-up
            return gate;
        }
        let flexed = matches!(
            job.request.schedule,
            Schedule::Periodic { flex: Some(_), .. }
        ) && !job.backing_off;
        let latest = match job.window_end() {
            Some(end) if flexed && end >= gate => end,
            _ => schedule::add(gate, self.batch_slack(job)),
        };
        match self.next_slot(job) {
            // a margin before the next slot opens (a second, or half the gap if that is less)
            Some(next) if next > gate => {
                let margin = since(next, gate).min(Duration::from_secs(2)) / 2;
                latest.min(next - TimeDelta::from_std(margin).unwrap_or_default())
            }
            Some(_) => gate,
            None => latest,
        }
    }

    /// When the slot after a recurring job's current one opens (before jitter): the next grid
    /// period's window start, or the next cron slot. `None` for one-off jobs and periods anchored
    /// after the run (those begin when this run ends).
    pub(super) fn next_slot(&self, job: &Entry) -> Option<Time> {
        let end = job.window_end()?;
        match &job.request.schedule {
            Schedule::Periodic {
                every,
                flex,
                anchor: Some(Anchor::Grid) | None,
                ..
            } => Some(schedule::add(
                end,
                every.saturating_sub(effective_flex(*every, *flex)),
            )),
            Schedule::Cron { expr, tz } => match self.cron_cache.get(expr) {
                Some(parsed) => next_cron(parsed, *tz, end),
                None => next_cron(&parse_cron(expr).ok()?, *tz, end),
            },
            _ => None,
        }
    }

    /// The batching slack of a job without a flex window.
    pub(super) fn batch_slack(&self, job: &Entry) -> Duration {
        if job.request.accurate {
            Duration::ZERO
        } else {
            self.config.batch_window
        }
    }

    /// Re-files a job after any change (an enqueued job waits for its time gates first), and
    /// marks it for persisting.
    pub(super) fn reindex(&mut self, id: JobId) {
        self.lanes.remove(&mut self.jobs, id);
        self.touch(id);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state != JobState::Enqueued {
            return;
        }
        let key = self.gate_of(job);
        let latest = self.latest_start(job, key);
        self.lanes.wait_for_time(&mut self.jobs, key, latest, id);
    }

    pub(super) fn device_changed(&mut self, now: Time, device: DeviceState) {
        self.device = device;
        self.policy.on_device(now, &device);
        // the policy may stop runs in progress by a new instant in the new state
        let (jobs, policy) = (&self.jobs, &mut self.policy);
        self.active.update_all(|id, a| {
            if a.stop.is_some() {
                return;
            }
            let Some(job) = jobs.get(id) else {
                return;
            };
            let view = PolicyJob {
                expedited: a.expedited,
                ..job.policy_view()
            };
            if let Some((at, reason)) = policy.deadline_after_device(now, view)
                && a.policy_deadline.as_ref().is_none_or(|(t, _)| at < *t)
            {
                a.policy_deadline = Some((at.max(now), reason));
            }
        });
        // jobs waiting on the device, and ready ones, are filed again against the new state
        for (key, id) in self.lanes.take_device_dependent(&mut self.jobs) {
            self.lanes.wait_for_time(&mut self.jobs, key, key, id);
        }
        // the policy may see things differently now (a screen that comes on ends Doze)
        self.ask_policy_again();
        let lost: Vec<(JobId, StopReason)> = self
            .active
            .iter()
            .filter(|(_, a)| a.stop.is_none() && !a.ignore_constraints)
            .filter_map(|(id, _)| {
                let job = self.jobs.get(id)?;
                let unmet = job.request.constraints.check(&device);
                unmet
                    .first()
                    .map(|u| (*id, StopReason::ConstraintLost(u.constraint)))
            })
            .collect();
        for (id, reason) in lost {
            self.request_stop(now, id, reason, self.config.grace);
        }
    }

    /// Every job the policy deferred or denied is asked again at the next dispatch, and an
    /// app-wide hold is lifted (the policy is asked again too).
    pub(super) fn ask_policy_again(&mut self) {
        self.app_hold = None;
        let held: Vec<JobId> = self.deferred.keys().copied().collect();
        self.deferred.clear();
        for id in held {
            let dirty = self.dirty.contains(&id);
            self.reindex(id);
            if !dirty {
                self.dirty.remove(&id); // a deferral is not part of the record
            }
        }
    }

    /// Timed work: time limits, grace periods, retention.
    pub(super) fn expire(&mut self, now: Time) {
        if self.asleep_since.is_some() && !self.shutting_down {
            // the runs are frozen with the machine: their limits count again at the resume,
            // moved by the time asleep (`Event::Suspended`); a wall-clock timer that fires as
            // the machine thaws, before logind says it resumed, must not kill them. Pruning
            // waits too. A shutdown's grace periods still run out: stopping must end.
            return;
        }
        // only the runs filed under a deadline that has come are looked at (not every run at
        // every input); each pass goes in id order, as the actions it asks for do
        let due = self.active.due(now);
        let timed_out: Vec<JobId> = due
            .iter()
            .copied()
            .filter(|id| {
                self.active
                    .get(id)
                    .is_some_and(|a| a.stop.is_none() && a.deadline.is_some_and(|d| d <= now))
            })
            .collect();
        for id in timed_out {
            self.request_stop(now, id, StopReason::Timeout, self.config.grace);
        }
        let policy_stops: Vec<(JobId, PolicyStop)> = due
            .iter()
            .filter_map(|id| match self.active.get(id) {
                Some(Active {
                    stop: None,
                    policy_deadline: Some((at, reason)),
                    ..
                }) if *at <= now => Some((*id, reason.clone())),
                _ => None,
            })
            .collect();
        for (id, reason) in policy_stops {
            let expires = self
                .jobs
                .get(&id)
                .is_some_and(|j| self.policy.launch_uses_up_request(j.policy_view()));
            let reason = if expires {
                StopReason::Expired(reason)
            } else {
                StopReason::Policy(reason)
            };
            self.request_stop(now, id, reason, self.config.grace);
        }
        // (the stops just asked for may end their grace at once)
        for id in self.active.due(now) {
            let abort = self.active.update(&id, |a| {
                let due = a.abort_at.is_some_and(|t| t <= now);
                if due {
                    a.abort_at = None;
                }
                due
            });
            if abort == Some(true) {
                self.pending.push(Action::Abort { id });
            }
        }
        self.prune_finished(now, self.config.retention);
    }

    pub(super) fn request_stop(
        &mut self,
        now: Time,
        id: JobId,
        reason: StopReason,
        grace: Duration,
    ) {
        let abort_at = schedule::add(now, grace);
        let asked = self.active.update(&id, |a| {
            if a.stop.is_none() {
                a.stop = Some(reason.clone());
                a.abort_at = Some(abort_at);
                true
            } else {
                if let Some(at) = a.abort_at {
                    a.abort_at = Some(at.min(abort_at));
                }
                false
            }
        });
        if asked == Some(true) {
            self.pending.push(Action::Stop { id, reason });
        }
    }
}
