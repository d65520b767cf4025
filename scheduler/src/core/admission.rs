//! Admission: checking a request against the core's limits, resolving it against a unique
//! name's jobs (keep, update, replace, append), and the new job's first placement.

use super::*;

impl Scheduler {
    /// Checks a request, raising short intervals and flex windows when configured to; returns
    /// what it changed.
    /// Whether an enqueue of `request` at `now` would pass this core's checks (its config's
    /// limits; not the policy's admission, nor unique-name conflicts, which depend on the
    /// queue), with the warnings it would give. Changes nothing: a front end calls it before it
    /// creates anything for a request that may be refused.
    ///
    /// # Errors
    /// The [`CoreError`] the enqueue would give.
    pub fn check_request(
        &mut self,
        now: Time,
        request: &JobRequest,
    ) -> Result<Vec<String>, CoreError> {
        self.validate(now, &mut request.clone())
    }

    pub(super) fn validate(
        &mut self,
        now: Time,
        r: &mut JobRequest,
    ) -> Result<Vec<String>, CoreError> {
        let mut warnings = Vec::new();
        if r.kind.trim().is_empty() {
            return Err(CoreError::EmptyKind);
        }
        let size = serde_json::to_string(&r.input).map_or(usize::MAX, |s| s.len());
        if size > self.config.payload_cap {
            return Err(CoreError::PayloadTooLarge {
                size,
                cap: self.config.payload_cap,
            });
        }
        let long = |what: &'static str, d: Duration| {
            if d > MAX_DURATION {
                Err(CoreError::DurationTooLong { what, value: d })
            } else {
                Ok(())
            }
        };
        match &mut r.schedule {
            Schedule::Once { delay, not_before } => {
                long("delay", *delay)?;
                if let Some(t) = not_before {
                    long("wait until the start time", since(*t, now))?;
                }
            }
            Schedule::Periodic {
                every,
                flex,
                anchor,
                initial_delay,
            } => {
                long("interval", *every)?;
                long("initial delay", *initial_delay)?;
                anchor.get_or_insert(self.config.default_anchor);
                if flex.is_some_and(|f| f.is_zero()) {
                    return Err(CoreError::ZeroDuration {
                        what: "flex window",
                    });
                }
                let (min, min_flex) = (self.config.min_period, self.config.min_flex);
                if *every < min {
                    if !self.config.raise_short_periods {
                        return Err(CoreError::IntervalTooShort { every: *every, min });
                    }
                    warnings.push(format!(
                        "the interval {} was raised to the minimum of {}",
                        humanize(*every),
                        humanize(min)
                    ));
                    *every = min;
                }
                if let Some(f) = flex {
                    if *f > *every {
                        if !self.config.raise_short_periods {
                            return Err(CoreError::FlexTooLong {
                                flex: *f,
                                every: *every,
                            });
                        }
                        warnings.push(format!(
                            "the flex window {} was lowered to the interval {}",
                            humanize(*f),
                            humanize(*every)
                        ));
                        *f = *every;
                    }
                    if *f < min_flex {
                        if !self.config.raise_short_periods {
                            return Err(CoreError::FlexTooShort {
                                flex: *f,
                                min: min_flex,
                            });
                        }
                        warnings.push(format!(
                            "the flex window {} was raised to the minimum of {}",
                            humanize(*f),
                            humanize(min_flex)
                        ));
                        *f = min_flex.min(*every);
                    }
                }
            }
            Schedule::Cron { expr, tz } => {
                let parsed = self.cron(expr)?;
                if next_cron(&parsed, *tz, now).is_none() {
                    return Err(CoreError::CronNeverFires { expr: expr.clone() });
                }
            }
        }
        let base = r.backoff.base;
        let clamped = base.clamp(MIN_BACKOFF, MAX_BACKOFF);
        if clamped != base {
            warnings.push(format!(
                "the backoff base {} was {} to {} (WorkManager's range is 10s to 5h)",
                humanize(base),
                if clamped > base { "raised" } else { "lowered" },
                humanize(clamped)
            ));
            r.backoff.base = clamped;
        }
        if let Some(j) = r.jitter {
            let period = match &r.schedule {
                Schedule::Periodic { every, .. } => Some(*every),
                Schedule::Cron { expr, tz } => {
                    let parsed = self.cron(expr)?;
                    next_cron(&parsed, *tz, now)
                        .and_then(|a| next_cron(&parsed, *tz, a).map(|b| since(b, a)))
                }
                Schedule::Once { .. } => None,
            };
            if let Some(period) = period.filter(|p| j.max >= *p) {
                return Err(CoreError::JitterTooLong {
                    jitter: j.max,
                    period,
                });
            }
        }
        let r = &*r;
        if let Some(d) = r.min_interval {
            long("minimum interval", d)?;
        }
        if let Some(d) = r.timeout {
            long("time limit", d)?;
            if d.is_zero() {
                return Err(CoreError::ZeroDuration { what: "time limit" });
            }
        }
        long("backoff base", r.backoff.base)?;
        if let Some(j) = r.jitter {
            long("jitter", j.max)?;
            if j.max.is_zero() {
                return Err(CoreError::ZeroDuration { what: "jitter" });
            }
        }
        if !(0.0..1.0).contains(&r.backoff.jitter) {
            return Err(CoreError::InvalidJitter(r.backoff.jitter));
        }
        if r.max_attempts == Some(0) {
            return Err(CoreError::ZeroMaxAttempts);
        }
        if r.expedited.is_some() {
            match &r.schedule {
                Schedule::Periodic { .. } => {
                    return Err(CoreError::NotExpeditable("a periodic job"));
                }
                Schedule::Cron { .. } => return Err(CoreError::NotExpeditable("a cron job")),
                Schedule::Once { delay, not_before } => {
                    if !delay.is_zero() || not_before.is_some_and(|t| t > now) {
                        return Err(CoreError::NotExpeditable("a delayed job"));
                    }
                }
            }
            // a jitter is a delay too (WorkManager refuses any initial delay on expedited work)
            if r.jitter.is_some() {
                return Err(CoreError::NotExpeditable("a jittered job"));
            }
            let c = &r.constraints;
            if c.charging {
                return Err(CoreError::NotExpeditable("a job that requires charging"));
            }
            if c.battery_not_low {
                return Err(CoreError::NotExpeditable(
                    "a job that requires the battery not low",
                ));
            }
            if c.device_idle {
                return Err(CoreError::NotExpeditable(
                    "a job that requires an idle device",
                ));
            }
        }
        if let Some(tag) = r
            .tags
            .iter()
            .find(|t| t.trim().is_empty() || t.trim() != t.as_str())
        {
            return Err(CoreError::BadTag { tag: tag.clone() });
        }
        if let Some(u) = &r.unique {
            if u.name.trim().is_empty() {
                return Err(CoreError::EmptyUniqueName);
            }
            name::check_unique_name(&u.name)?;
            let recurring = r.schedule.is_recurring();
            let ok = match u.policy {
                ConflictPolicy::Keep | ConflictPolicy::Update | ConflictPolicy::Replace => true,
                ConflictPolicy::Append | ConflictPolicy::AppendOrReplace => !recurring,
                ConflictPolicy::CancelAndReenqueue => recurring,
            };
            if !ok {
                let (schedule, allowed) = if recurring {
                    ("recurring", "keep, update, replace or cancel_and_reenqueue")
                } else {
                    (
                        "one-off",
                        "keep, replace, update, append or append_or_replace",
                    )
                };
                return Err(CoreError::PolicyNotAllowed {
                    policy: u.policy.to_string(),
                    schedule,
                    allowed,
                });
            }
        }
        Ok(warnings)
    }

    pub(super) fn cron(&mut self, expr: &str) -> Result<CronSchedule, CoreError> {
        if let Some(s) = self.cron_cache.get(expr) {
            return Ok(s.clone());
        }
        let parsed = parse_cron(expr).map_err(CoreError::InvalidCron)?;
        self.cron_cache.insert(expr.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// Asks the policy whether `request` may be enqueued now (the unfinished jobs of its
    /// unique name are not counted: it replaces or updates them).
    pub(super) fn admit(&mut self, now: Time, request: &JobRequest) -> Result<(), CoreError> {
        let same_name: Vec<&Entry> = request
            .unique
            .as_ref()
            .map(|u| self.jobs.named(&u.name))
            .into_iter()
            .flatten()
            .filter_map(|id| self.jobs.get(id))
            .filter(|j| !j.state.is_finished())
            .collect();
        let by_tag: Vec<(String, usize)> = request
            .tags
            .iter()
            .map(|tag| {
                let all = self.jobs.unfinished_with_tag(tag);
                let named = same_name
                    .iter()
                    .filter(|j| j.request.tags.contains(tag))
                    .count();
                (tag.clone(), all.saturating_sub(named))
            })
            .collect();
        let cx = PolicyContext {
            device: &self.device,
            running: self.active.len(),
            pending: self.lanes.len() + self.active.len(),
            pending_by_tag: &by_tag,
        };
        self.policy
            .admit(now, request, cx)
            .map_err(CoreError::Rejected)
    }

    pub(super) fn enqueue(
        &mut self,
        now: Time,
        id: JobId,
        request: JobRequest,
    ) -> Result<Reply, CoreError> {
        let mut request = request;
        let warnings = self.validate(now, &mut request)?;
        if self.jobs.contains(&id) {
            return Err(CoreError::DuplicateId(id));
        }
        self.admit(now, &request)?;

        let mut prerequisites = Vec::new();
        let mut disposition = Disposition::Inserted;
        if let Some(u) = request.unique.clone() {
            if u.policy == ConflictPolicy::Update
                && let Some(&existing) = self
                    .jobs
                    .named(&u.name)
                    .iter()
                    .rev()
                    .find(|c| self.jobs.get(c).is_some_and(|j| !j.state.is_finished()))
            {
                self.update_in_place(existing, request);
                return Ok(Reply::Enqueued {
                    id: existing,
                    disposition: Disposition::Updated,
                    warnings,
                });
            }
            match self.resolve_name(now, &u.name, u.policy) {
                chain::NameOutcome::Kept(existing) => {
                    return Ok(Reply::Enqueued {
                        id: existing.last().copied().unwrap_or(id),
                        disposition: Disposition::Kept,
                        warnings,
                    });
                }
                chain::NameOutcome::Add {
                    prerequisites: p,
                    disposition: d,
                } => {
                    prerequisites = p;
                    disposition = d;
                }
                chain::NameOutcome::Refused(e) => return Err(e),
            }
        }
        self.insert_linked(now, id, request, prerequisites)?;
        Ok(Reply::Enqueued {
            id,
            disposition,
            warnings,
        })
    }

    pub(super) fn initial_job(
        &mut self,
        now: Time,
        id: JobId,
        request: JobRequest,
        prerequisites: Vec<JobId>,
    ) -> Result<Entry, CoreError> {
        let blocked = prerequisites.iter().any(|p| {
            self.jobs
                .get(p)
                .is_some_and(|p| p.state != JobState::Succeeded)
        });
        let state = if blocked {
            JobState::Blocked
        } else {
            JobState::Enqueued
        };
        let mut job = Entry::new(id, self.jobs.share(request), state, now);
        job.set_prerequisites(prerequisites.into_boxed_slice());
        self.place(&mut job)?;
        Ok(job)
    }

    pub(super) fn update_in_place(&mut self, id: JobId, mut request: JobRequest) {
        if self.persist && self.jobs.contains(&id) {
            // the new request's input replaces the stored one (`Null`: deletes it)
            self.dirty_inputs
                .insert(id, std::mem::take(&mut request.input));
        }
        // out of its lane first: a lane finds a job by its request's kind and constraints
        self.lanes.remove(&mut self.jobs, id);
        self.jobs.replace_request(id, request);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state == JobState::Enqueued && !job.backing_off {
            let mut placed = job.clone();
            if self.place(&mut placed).is_ok()
                && let Some(job) = self.jobs.get_mut(&id)
            {
                *job = placed;
            }
        }
        self.reindex(id);
    }
}
