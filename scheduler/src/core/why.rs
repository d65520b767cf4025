//! Why a job is not running now: every reason, each with the value that decides it.

use std::fmt;

use backwork_constraints::Unmet;
use serde::{Deserialize, Serialize};

use super::job::{JobId, JobState, StopReason, Time};
use super::{CoreError, PolicyReason, Scheduler};

/// One reason a job is not running now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum WaitReason {
    /// It is running.
    Running {
        /// Since when.
        since: Time,
        /// Which attempt.
        attempt: u32,
    },
    /// It has finished.
    Finished {
        /// Its final state.
        state: JobState,
        /// When.
        at: Option<Time>,
        /// Why it stopped, if it was stopped.
        stop_reason: Option<StopReason>,
    },
    /// It waits for prerequisites.
    Blocked {
        /// The prerequisites that have not succeeded, with their unique names.
        on: Vec<JobRef>,
    },
    /// No worker is registered for its kind.
    NoWorker {
        /// The kind.
        kind: String,
    },
    /// Its scheduled time has not come.
    NotDue {
        /// When it comes.
        until: Time,
    },
    /// It is backing off after a failed attempt.
    Backoff {
        /// Until when.
        until: Time,
        /// The attempt that failed.
        attempt: u32,
        /// What stopped that attempt, when it did not end by itself (`timeout`, a lost
        /// constraint…); absent when the worker failed or asked for a retry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_by: Option<super::job::StopReason>,
    },
    /// Its last successful run started less than its minimum interval ago.
    MinInterval {
        /// When the interval has passed.
        until: Time,
    },
    /// A constraint does not hold.
    Constraint(Unmet),
    /// The OS-emulation policy holds it back.
    Policy {
        /// The policy's reason: a stable code, its kind, a sentence.
        reason: PolicyReason,
        /// Until when, if known.
        until: Option<Time>,
    },
    /// Every run slot is taken.
    ConcurrencyLimit {
        /// Jobs running.
        running: usize,
        /// The limit.
        limit: usize,
    },
    /// The runtime is shutting down.
    ShuttingDown,
    /// The machine is about to sleep (logind's `PrepareForSleep`): nothing starts until it
    /// resumes.
    Sleeping {
        /// Since when.
        since: Time,
    },
    /// It is due and waits to share a wake-up with other work whose time comes a little later
    /// (within its flex window or the batching window): it starts at `until`, or sooner when
    /// something else wakes the scheduler.
    Batched {
        /// The planned wake-up.
        until: Time,
        /// The jobs whose time comes by then, which it waits for (the first eight).
        #[serde(default)]
        with: Vec<JobRef>,
        /// More jobs than those in `with` share the wake-up.
        #[serde(default)]
        more: bool,
    },
}

/// A job named in a reason: its id, and its unique name if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The job's id.
    pub id: JobId,
    /// Its unique name.
    pub name: Option<String>,
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.id),
        }
    }
}

fn at(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

impl WaitReason {
    /// The instant this reason stops holding, for the time gates (due time, batching, backoff,
    /// minimum interval, a policy deferral with an end); `None` for the others.
    pub fn until(&self) -> Option<Time> {
        match self {
            WaitReason::NotDue { until }
            | WaitReason::Batched { until, .. }
            | WaitReason::Backoff { until, .. }
            | WaitReason::MinInterval { until } => Some(*until),
            WaitReason::Policy { until, .. } => *until,
            _ => None,
        }
    }

    /// When a job held by `reasons` may next start, if a time gate holds it: the latest end of
    /// its time gates. `None` when only other reasons hold it (or it runs, or it finished).
    pub fn next_start(reasons: &[WaitReason]) -> Option<Time> {
        reasons.iter().filter_map(WaitReason::until).max()
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Running { since, attempt } => {
                write!(f, "running since {} (attempt {attempt})", at(*since))
            }
            WaitReason::Finished {
                state,
                at: when,
                stop_reason,
            } => {
                write!(f, "finished: {state}")?;
                if let Some(t) = when {
                    write!(f, " at {}", at(*t))?;
                }
                if let Some(r) = stop_reason {
                    write!(f, " ({r})")?;
                }
                Ok(())
            }
            WaitReason::Blocked { on } => {
                let ids: Vec<String> = on.iter().map(|i| i.to_string()).collect();
                write!(f, "blocked: waiting for {} to succeed", ids.join(", "))
            }
            WaitReason::NoWorker { kind } => write!(f, "no worker registered for kind {kind}"),
            WaitReason::NotDue { until } => write!(f, "not due until {}", at(*until)),
            WaitReason::Backoff {
                until,
                attempt,
                stopped_by,
            } => {
                write!(f, "backing off until {} (attempt {attempt} ", at(*until))?;
                match stopped_by {
                    Some(reason) => write!(f, "was stopped: {reason})"),
                    None => f.write_str("failed)"),
                }
            }
            WaitReason::MinInterval { until } => {
                write!(f, "minimum interval: not before {}", at(*until))
            }
            WaitReason::Constraint(u) => write!(f, "constraint {u}"),
            WaitReason::Policy { reason, until } => {
                write!(f, "policy: {reason}")?;
                if let Some(t) = until {
                    write!(f, " (until {})", at(*t))?;
                }
                Ok(())
            }
            WaitReason::ConcurrencyLimit { running, limit } => {
                write!(f, "all {limit} run slots are taken ({running} running)")
            }
            WaitReason::ShuttingDown => f.write_str("the runtime is shutting down"),
            WaitReason::Sleeping { since } => write!(
                f,
                "the machine is going to sleep (since {}): nothing starts until it resumes",
                at(*since)
            ),
            WaitReason::Batched { until, with, more } => {
                write!(f, "batched: starts at {} together with ", at(*until))?;
                let shown: Vec<String> = with.iter().take(3).map(|j| j.to_string()).collect();
                write!(f, "{}", shown.join(", "))?;
                if with.len() > shown.len() || *more {
                    f.write_str(" and others")?;
                }
                Ok(())
            }
        }
    }
}

impl Scheduler {
    /// What the policy holds every due job back for at `now`, if anything: its app-wide hold
    /// (the jobs are parked behind it, or about to be: the core is not woken before it ends),
    /// else a hold of every start (Doze) the core has not been woken to ask about.
    fn app_wide_reason(&self, now: Time) -> Option<WaitReason> {
        if let Some(hold) = self.app_hold_at(now) {
            return Some(WaitReason::Policy {
                reason: hold.reason.clone(),
                until: hold.until,
            });
        }
        self.policy
            .hold(now)
            .map(|(until, reason)| WaitReason::Policy {
                reason,
                until: Some(until),
            })
    }

    /// The machine is about to sleep: nothing starts (see [`super::Event::PrepareForSleep`]).
    fn sleeping_reason(&self) -> Option<WaitReason> {
        self.asleep_since
            .map(|since| WaitReason::Sleeping { since })
    }

    /// Why every **ready** job (see [`Scheduler::is_ready`]) waits at `now`: what `why` gives
    /// each of them — the policy's app-wide hold, the run slots, a shutdown — found once for
    /// all. Empty: they start at the next input.
    pub fn ready_reasons(&self, now: Time) -> Vec<WaitReason> {
        let mut out = Vec::new();
        if self.shutting_down {
            out.push(WaitReason::ShuttingDown);
        }
        out.extend(self.sleeping_reason());
        out.extend(self.app_wide_reason(now));
        let limit = self.config.max_concurrent.max(1);
        if out.is_empty() && self.active.len() >= limit {
            out.push(WaitReason::ConcurrencyLimit {
                running: self.active.len(),
                limit,
            });
        }
        out
    }

    /// Every reason job `id` is not running at `now`; empty when nothing holds it back (it starts
    /// on the next input).
    pub fn why(&self, now: Time, id: JobId) -> Result<Vec<WaitReason>, CoreError> {
        let job = self
            .jobs
            .get(&id)
            .ok_or_else(|| CoreError::NoSuchJob(id.to_string()))?;
        let mut out = Vec::new();
        match job.state {
            JobState::Running => out.push(WaitReason::Running {
                since: job.last_started().unwrap_or(now),
                attempt: job.attempt,
            }),
            s if s.is_finished() => out.push(WaitReason::Finished {
                state: s,
                at: job.finished_at(),
                stop_reason: job.stop_reason().cloned(),
            }),
            JobState::Blocked => out.push(WaitReason::Blocked {
                on: job
                    .prerequisites()
                    .iter()
                    .copied()
                    .filter_map(|p| {
                        self.jobs
                            .get(&p)
                            .filter(|p| p.state != JobState::Succeeded)
                            .map(|p| JobRef {
                                id: p.id,
                                name: p.unique_name().map(str::to_string),
                            })
                    })
                    .collect(),
            }),
            _ => {
                if self.shutting_down {
                    out.push(WaitReason::ShuttingDown);
                }
                out.extend(self.sleeping_reason());
                if !self.kinds.contains(&job.request.kind) {
                    out.push(WaitReason::NoWorker {
                        kind: job.request.kind.clone(),
                    });
                }
                if !job.force.time {
                    let gates = self.gates(job);
                    if gates.due > now {
                        out.push(if gates.backing_off {
                            WaitReason::Backoff {
                                until: gates.due,
                                attempt: job.attempt,
                                // the last run's (cleared at each start, set when one
                                // is stopped): the core keeps no history with a store
                                stopped_by: job.stop_reason().cloned(),
                            }
                        } else {
                            WaitReason::NotDue { until: gates.due }
                        });
                    }
                    if let Some(until) = gates.min_interval.filter(|t| *t > now) {
                        out.push(WaitReason::MinInterval { until });
                    }
                    if let Some((until, reason)) = gates.policy {
                        out.push(WaitReason::Policy { reason, until });
                    } else if gates.due <= now
                        && let Some(reason) = self.app_wide_reason(now)
                    {
                        out.push(reason);
                    }
                }
                if !job.force.constraints {
                    out.extend(
                        job.request
                            .constraints
                            .check(&self.device)
                            .into_iter()
                            .map(WaitReason::Constraint),
                    );
                }
                // only time holds it (or nothing): it starts at the planned wake-up, which it
                // may share with work whose time comes later
                let timed_only = out.iter().all(|r| {
                    matches!(
                        r,
                        WaitReason::NotDue { .. }
                            | WaitReason::Backoff { .. }
                            | WaitReason::MinInterval { .. }
                            | WaitReason::Policy { until: Some(_), .. }
                    )
                });
                if timed_only
                    && let Some((until, with, more)) =
                        self.lanes.batched_until(&self.jobs, id, now, 8)
                {
                    let with = with
                        .into_iter()
                        .map(|id| JobRef {
                            id,
                            name: self
                                .jobs
                                .get(&id)
                                .and_then(|j| j.unique_name())
                                .map(str::to_string),
                        })
                        .collect();
                    out.push(WaitReason::Batched { until, with, more });
                }
                let limit = self.config.max_concurrent.max(1);
                if out.is_empty() && self.active.len() >= limit {
                    out.push(WaitReason::ConcurrencyLimit {
                        running: self.active.len(),
                        limit,
                    });
                }
            }
        }
        Ok(out)
    }
}
