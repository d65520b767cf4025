//! Chains of work: a DAG of one-off jobs enqueued in one step, each link `blocked` until its
//! prerequisites succeed (WorkManager's `beginWith(a).then(listOf(b, c)).then(d)`).
//!
//! A chain is admitted whole or not at all: every link is checked before anything changes, and
//! the links, their prerequisites and whatever the unique name's policy did to older jobs are
//! one input's changes — one [`Action::Persist`](super::Action::Persist), one durable commit.
//! After that the links are ordinary jobs: their `prerequisites` are the one dependency
//! mechanism of the core (the `append` policy uses it too), a success unblocks a dependent whose
//! prerequisites have all succeeded, and a failure or a cancellation ends every dependent with
//! [`StopReason::PrerequisiteFailed`] naming the link that ended it.
//!
//! A unique chain (WorkManager's `beginUniqueWork(name, policy, …)`) gives every link the name;
//! the policy is resolved against the name's current sequence as WorkManager's
//! `ExistingWorkPolicy` documents it:
//! - `keep`: if a job of the name is unfinished, nothing is added;
//! - `replace`: the unfinished jobs of the name are cancelled, and the chain starts a new
//!   sequence;
//! - `append`: the chain's first links run after every leaf of the sequence (its jobs no other
//!   job of the name waits for); if a leaf failed or was cancelled, so do the new links;
//! - `append_or_replace`: the same, except that a sequence with a failed or cancelled leaf is
//!   dropped and the chain starts a new one.
//!
//! When a new sequence starts, the jobs of the old one give their name up (WorkManager deletes
//! them; here they are kept, with their history, until their retention ends, and are found by
//! id), so the name always means its current sequence.

use super::*;

/// A prerequisite of a link: an earlier link of the same chain, or a job already queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum After {
    /// The link at this index of the chain (an earlier one).
    Link(usize),
    /// A job the core holds (a one-off job; it may have finished).
    Job(JobId),
}

/// One job of a chain and what it waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainLink {
    /// The job (one-off; without a unique name of its own: a chain's name is the chain's).
    pub request: JobRequest,
    /// Its prerequisites; empty for a first link.
    pub after: Vec<After>,
}

/// A DAG of one-off jobs enqueued together ([`Event::EnqueueChain`]). Build one step by step,
/// as WorkManager's `WorkContinuation`:
///
/// ```
/// use backwork_scheduler::{Chain, InputMerger, JobRequest};
///
/// // a → (b, c) → d
/// let chain = Chain::begin_with([JobRequest::once("a")])
///     .then([JobRequest::once("b"), JobRequest::once("c")])
///     .then([JobRequest::once("d").input_merger(InputMerger::ArrayCreating)]);
/// assert_eq!(chain.links.len(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// The links, each after its prerequisites ([`After::Link`] names only earlier links).
    pub links: Vec<ChainLink>,
    /// A unique name for the whole chain, and what to do when its sequence already exists
    /// (`keep`, `replace`, `append` or `append_or_replace`).
    pub unique: Option<Unique>,
    /// The links of the last step (what [`Chain::then`] appends after).
    last_step: Vec<usize>,
}

impl Chain {
    /// An empty chain, to fill with [`Chain::link`].
    pub fn new() -> Chain {
        Chain::default()
    }

    /// A chain whose first step is `requests`, run in parallel.
    pub fn begin_with(requests: impl IntoIterator<Item = JobRequest>) -> Chain {
        Chain::new().then(requests)
    }

    /// Adds a step: `requests`, run in parallel, each after every link of the previous step.
    pub fn then(mut self, requests: impl IntoIterator<Item = JobRequest>) -> Chain {
        let after: Vec<After> = self.last_step.iter().map(|&i| After::Link(i)).collect();
        let step: Vec<usize> = requests
            .into_iter()
            .map(|r| self.link(r, after.iter().copied()))
            .collect();
        self.last_step = step;
        self
    }

    /// Adds one link after `after` (earlier links or queued jobs) and returns its index; it
    /// becomes the last step.
    pub fn link(&mut self, request: JobRequest, after: impl IntoIterator<Item = After>) -> usize {
        self.links.push(ChainLink {
            request,
            after: after.into_iter().collect(),
        });
        let index = self.links.len() - 1;
        self.last_step = vec![index];
        index
    }

    /// Names the whole chain (WorkManager's `beginUniqueWork`).
    pub fn unique(mut self, name: impl Into<String>, policy: ConflictPolicy) -> Chain {
        self.unique = Some(Unique {
            name: name.into(),
            policy,
        });
        self
    }
}

/// What a unique name's policy decided for a new job or chain.
pub(super) enum NameOutcome {
    /// `keep` found these unfinished jobs: nothing is added.
    Kept(Vec<JobId>),
    /// Add it, after these jobs (the sequence's leaves, for an append).
    Add {
        prerequisites: Vec<JobId>,
        disposition: Disposition,
    },
    /// `append` onto a sequence that ends in a recurring job, which never finishes: refused,
    /// as `--after` such a job is (nothing was changed).
    Refused(CoreError),
}

impl Scheduler {
    /// The leaves of the sequence of unique name `name`: its jobs that no job of the name waits
    /// for, oldest first.
    pub(super) fn leaves(&self, name: &str) -> Vec<JobId> {
        self.jobs
            .named(name)
            .iter()
            .copied()
            .filter(|id| {
                !self.jobs.dependents(id).iter().any(|d| {
                    self.jobs
                        .get(d)
                        .is_some_and(|d| d.unique_name() == Some(name))
                })
            })
            .collect()
    }

    /// The jobs of `name` give it up: a new sequence of the name begins.
    fn release_name(&mut self, name: &str) {
        for id in self.jobs.named(name).to_vec() {
            self.jobs.release_name(id);
            self.touch(id);
        }
    }

    /// Resolves policy `policy` of unique name `name` for a new job or chain (every policy but
    /// `update`, which the caller handles): cancels and releases what it replaces.
    pub(super) fn resolve_name(
        &mut self,
        now: Time,
        name: &str,
        policy: ConflictPolicy,
    ) -> NameOutcome {
        let unfinished: Vec<JobId> = self
            .jobs
            .named(name)
            .iter()
            .copied()
            .filter(|c| self.jobs.get(c).is_some_and(|j| !j.state.is_finished()))
            .collect();
        let mut disposition = Disposition::Inserted;
        match policy {
            ConflictPolicy::Keep | ConflictPolicy::Update => {
                if !unfinished.is_empty() {
                    return NameOutcome::Kept(unfinished);
                }
            }
            ConflictPolicy::Replace | ConflictPolicy::CancelAndReenqueue => {
                for c in &unfinished {
                    self.cancel_one(now, *c, StopReason::Cancelled);
                }
                if !unfinished.is_empty() {
                    disposition = Disposition::Replaced;
                }
            }
            ConflictPolicy::Append | ConflictPolicy::AppendOrReplace => {
                let leaves = self.leaves(name);
                let broken = leaves.iter().any(|l| {
                    self.jobs
                        .get(l)
                        .is_some_and(|j| matches!(j.state, JobState::Failed | JobState::Cancelled))
                });
                let start_anew = broken && policy == ConflictPolicy::AppendOrReplace;
                if !start_anew
                    && let Some(l) = leaves.iter().find(|l| {
                        self.jobs
                            .get(l)
                            .is_some_and(|j| j.request.schedule.is_recurring())
                    })
                {
                    return NameOutcome::Refused(CoreError::RecurringPrerequisite(*l));
                }
                if !leaves.is_empty() && !start_anew {
                    return NameOutcome::Add {
                        prerequisites: leaves,
                        disposition: Disposition::Appended,
                    };
                }
            }
        }
        // a new sequence: the old one, all finished now, gives the name up
        self.release_name(name);
        NameOutcome::Add {
            prerequisites: Vec::new(),
            disposition,
        }
    }

    /// Inserts a new job after `prerequisites`; it ends at once, failed or cancelled, when one
    /// of them did (failed first, as WorkManager's `EnqueueRunnable`).
    pub(super) fn insert_linked(
        &mut self,
        now: Time,
        id: JobId,
        mut request: JobRequest,
        prerequisites: Vec<JobId>,
    ) -> Result<(), CoreError> {
        let input = std::mem::take(&mut request.input);
        let job = self.initial_job(now, id, request, prerequisites)?;
        let prerequisites = Box::<[JobId]>::from(job.prerequisites());
        let input = if self.persist {
            if !input.is_null() {
                // a new job has no stored input to replace: a null one writes nothing
                self.dirty_inputs.insert(id, input);
            }
            Value::Null // the store keeps it, not the core
        } else {
            input
        };
        self.jobs.insert(
            job,
            Payloads {
                input,
                ..Payloads::default()
            },
        );
        self.reindex(id);
        let state_of = |s: JobState| {
            prerequisites
                .iter()
                .copied()
                .find(|p| self.jobs.get(p).is_some_and(|p| p.state == s))
        };
        if let Some(p) = state_of(JobState::Failed) {
            self.finish_job(
                now,
                id,
                JobState::Failed,
                Some(StopReason::PrerequisiteFailed(p)),
            );
        } else if let Some(p) = state_of(JobState::Cancelled) {
            self.finish_job(
                now,
                id,
                JobState::Cancelled,
                Some(StopReason::PrerequisiteFailed(p)),
            );
        }
        Ok(())
    }

    /// A blocked job whose prerequisites ended: enqueued when they all succeeded (or are gone),
    /// failed or cancelled when one of them failed or was cancelled.
    pub(super) fn settle_blocked(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get(&id).filter(|j| j.state == JobState::Blocked) else {
            return;
        };
        let states: Vec<(JobId, Option<JobState>)> = job
            .prerequisites()
            .iter()
            .map(|p| (*p, self.jobs.get(p).map(|p| p.state)))
            .collect();
        let ended = |s: JobState| {
            states
                .iter()
                .find(|(_, st)| *st == Some(s))
                .map(|(p, _)| *p)
        };
        if let Some(p) = ended(JobState::Failed) {
            self.finish_job(
                now,
                id,
                JobState::Failed,
                Some(StopReason::PrerequisiteFailed(p)),
            );
        } else if let Some(p) = ended(JobState::Cancelled) {
            self.finish_job(
                now,
                id,
                JobState::Cancelled,
                Some(StopReason::PrerequisiteFailed(p)),
            );
        } else if states
            .iter()
            .all(|(_, s)| s.is_none_or(|s| s == JobState::Succeeded))
            && let Some(job) = self.jobs.get_mut(&id)
        {
            job.state = JobState::Enqueued;
            self.reindex(id);
            self.touch(id);
        }
    }

    /// `Event::EnqueueChain`: checks every link, then resolves the chain's name and inserts
    /// every link, or changes nothing.
    pub(super) fn enqueue_chain(
        &mut self,
        now: Time,
        ids: Vec<JobId>,
        mut chain: Chain,
    ) -> Result<Reply, CoreError> {
        if chain.links.is_empty() {
            return Err(CoreError::EmptyChain);
        }
        if ids.len() != chain.links.len() {
            return Err(CoreError::ChainIds {
                ids: ids.len(),
                links: chain.links.len(),
            });
        }
        // a lone link may carry the name itself (`backwork add --after X --unique N`)
        if chain.unique.is_none() && chain.links.len() == 1 {
            chain.unique = chain.links[0].request.unique.take();
        }
        if let Some(u) = &chain.unique
            && !matches!(
                u.policy,
                ConflictPolicy::Keep
                    | ConflictPolicy::Replace
                    | ConflictPolicy::Append
                    | ConflictPolicy::AppendOrReplace
            )
        {
            return Err(CoreError::PolicyNotAllowed {
                policy: u.policy.to_string(),
                schedule: "chained",
                allowed: "keep, replace, append or append_or_replace",
            });
        }
        let mut warnings = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, (id, link)) in ids.iter().zip(chain.links.iter_mut()).enumerate() {
            if self.jobs.contains(id) || !seen.insert(*id) {
                return Err(CoreError::DuplicateId(*id));
            }
            if link.request.unique.is_some() {
                return Err(CoreError::NamedLink { link: i });
            }
            if link.request.schedule.is_recurring() {
                return Err(CoreError::RecurringLink { link: i });
            }
            link.request.unique = chain.unique.clone();
            warnings.extend(self.validate(now, &mut link.request)?);
            for after in &link.after {
                match *after {
                    After::Link(j) if j >= i => {
                        return Err(CoreError::LinkOrder { link: i, after: j });
                    }
                    After::Link(_) => {}
                    After::Job(p) => match self.jobs.get(&p) {
                        None => return Err(CoreError::NoSuchPrerequisite(p)),
                        Some(p) if p.request.schedule.is_recurring() => {
                            return Err(CoreError::RecurringPrerequisite(p.id));
                        }
                        Some(_) => {}
                    },
                }
            }
        }
        for link in &chain.links {
            self.admit(now, &link.request)?;
        }

        let (roots_after, disposition) = match &chain.unique {
            Some(u) => match self.resolve_name(now, &u.name, u.policy) {
                NameOutcome::Kept(ids) => {
                    return Ok(Reply::ChainEnqueued {
                        ids,
                        disposition: Disposition::Kept,
                        warnings,
                    });
                }
                NameOutcome::Add {
                    prerequisites,
                    disposition,
                } => (prerequisites, disposition),
                NameOutcome::Refused(e) => return Err(e),
            },
            None => (Vec::new(), Disposition::Inserted),
        };
        for (i, link) in chain.links.into_iter().enumerate() {
            let mut prerequisites: Vec<JobId> = link
                .after
                .iter()
                .map(|a| match *a {
                    After::Link(j) => ids[j],
                    After::Job(p) => p,
                })
                .collect();
            if !link.after.iter().any(|a| matches!(a, After::Link(_))) {
                // a first link of the chain: after the sequence it is appended to
                prerequisites.extend(roots_after.iter().copied());
            }
            // each once, in the order named: the order their outputs are merged in
            let mut named = BTreeSet::new();
            prerequisites.retain(|p| named.insert(*p));
            self.insert_linked(now, ids[i], link.request, prerequisites)?;
        }
        Ok(Reply::ChainEnqueued {
            ids,
            disposition,
            warnings,
        })
    }
}
