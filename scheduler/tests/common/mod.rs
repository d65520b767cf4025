//! A minimal driver for the sans-IO core, used by the semantics tests: it keeps a virtual `now`,
//! drains actions into a log, commits each change set to a `MemoryStore` (the core keeps no
//! payloads when its driver keeps a store: inputs, outputs and histories are read back from
//! it, as the runtime does), and can complete runs automatically.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use backwork_scheduler::core::add;
use backwork_scheduler::{
    Action, AllowAll, Config, CoreError, DeviceState, Event, Job, JobId, JobRequest, MemoryStore,
    MergeError, Policy, Reply, RunOutcome, Scheduler, StartInput, StartJob, Store, Time,
};
use serde_json::Value;

pub const KIND: &str = "work";

pub fn t(s: &str) -> Time {
    s.parse().expect("test instant")
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

pub fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

/// What the harness does with a run as soon as it starts.
pub type Auto = Box<dyn FnMut(&Job, u32) -> Option<RunOutcome>>;

/// The default configuration with batching off.
pub fn accurate() -> Config {
    Config {
        batch_window: Duration::ZERO,
        ..Config::default()
    }
}

pub struct Harness {
    pub core: Scheduler,
    pub now: Time,
    /// Every action with the instant it was emitted.
    pub log: Vec<(Time, Action)>,
    /// Runs in progress: job → attempt.
    pub running: BTreeMap<JobId, u32>,
    /// The deadlines the core asked to be woken at, and was (`advance` stops at each).
    pub wakes: Vec<Time>,
    /// Where every change set is committed, as it comes.
    pub store: MemoryStore,
    /// The input each run's worker got, in start order (a run whose input could not be made
    /// has none: it was reported not started).
    pub inputs: Vec<(JobId, Value)>,
    next_id: u64,
    auto: Option<Auto>,
}

/// The input of run `start`, its payloads read from `store` (as the runtime does after the
/// start's commit).
pub fn start_input(store: &mut MemoryStore, start: &StartJob) -> Result<StartInput, MergeError> {
    let mut ids = vec![start.id];
    ids.extend(start.prerequisites.iter().copied());
    let payloads = store.payloads(&ids, false).expect("a memory store reads");
    let mut payloads = payloads.into_iter();
    let own = payloads.next().map(|p| p.input).unwrap_or_default();
    let outputs: Vec<Option<Value>> = payloads.map(|p| p.output).collect();
    start.input(own, &outputs)
}

impl Harness {
    /// A core with the default configuration but batching off: the semantics tests check due
    /// times to the millisecond (batching has its own tests, in `batching.rs`).
    pub fn new() -> Self {
        Self::with(accurate(), Box::new(AllowAll))
    }

    pub fn with(config: Config, policy: Box<dyn Policy>) -> Self {
        let mut h = Harness {
            core: Scheduler::new(config, policy),
            now: t("2026-01-01T00:00:00Z"),
            log: Vec::new(),
            running: BTreeMap::new(),
            wakes: Vec::new(),
            store: MemoryStore::new(),
            inputs: Vec::new(),
            next_id: 0,
            auto: None,
        };
        h.handle(Event::WorkerRegistered(KIND.into())).unwrap();
        h
    }

    /// Every run that starts succeeds at once.
    pub fn auto_succeed(mut self) -> Self {
        self.auto = Some(Box::new(|_, _| Some(RunOutcome::Success(None))));
        self
    }

    /// Every run that starts ends at once with what `f` says (`None`: leave it running).
    pub fn auto(mut self, f: impl FnMut(&Job, u32) -> Option<RunOutcome> + 'static) -> Self {
        self.auto = Some(Box::new(f));
        self
    }

    pub fn fresh_id(&mut self) -> JobId {
        self.next_id += 1;
        let mut bytes = [0u8; 10];
        bytes[2..].copy_from_slice(&self.next_id.to_be_bytes());
        JobId::new_v7(self.now, bytes)
    }

    pub fn handle(&mut self, event: Event) -> Result<Reply, CoreError> {
        let reply = self.core.handle(self.now, event);
        self.drain();
        reply
    }

    fn drain(&mut self) {
        let mut started = Vec::new();
        let mut not_started = Vec::new();
        while let Some(action) = self.core.poll_action() {
            match &action {
                Action::Persist(changes) => {
                    self.store.commit(changes).expect("a memory store commits");
                }
                Action::Start(s) => match start_input(&mut self.store, s) {
                    Ok(input) => {
                        self.inputs.push((s.id, input.input));
                        self.running.insert(s.id, s.attempt);
                        started.push((s.id, s.attempt));
                    }
                    Err(e) => not_started.push((s.id, s.attempt, RunOutcome::not_started(&e))),
                },
                _ => {}
            }
            self.log.push((self.now, action));
        }
        for (id, attempt, outcome) in not_started {
            let _ = self.core.handle(
                self.now,
                Event::Finished {
                    id,
                    attempt,
                    outcome,
                },
            );
            self.drain();
        }
        if let Some(mut auto) = self.auto.take() {
            for (id, attempt) in started {
                let job = self.job(id);
                if let Some(outcome) = auto(&job, attempt) {
                    self.running.remove(&id);
                    let _ = self.core.handle(
                        self.now,
                        Event::Finished {
                            id,
                            attempt,
                            outcome,
                        },
                    );
                    self.auto = Some(auto);
                    self.drain();
                    auto = self.auto.take().expect("auto restored");
                }
            }
            self.auto = Some(auto);
        }
    }

    pub fn try_enqueue(&mut self, request: JobRequest) -> Result<Reply, CoreError> {
        let id = self.fresh_id();
        self.handle(Event::Enqueue { id, request })
    }

    pub fn enqueue(&mut self, request: JobRequest) -> JobId {
        match self.try_enqueue(request).expect("enqueue accepted") {
            Reply::Enqueued { id, .. } => id,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn finish(&mut self, id: JobId, outcome: RunOutcome) {
        let attempt = self.running.remove(&id).expect("job is running");
        self.handle(Event::Finished {
            id,
            attempt,
            outcome,
        })
        .unwrap();
    }

    pub fn set_device(&mut self, f: impl FnOnce(&mut DeviceState)) {
        let mut d = *self.core.device();
        f(&mut d);
        self.handle(Event::DeviceChanged(d)).unwrap();
    }

    /// Moves to `target`, stopping at every deadline on the way (as a punctual driver does).
    pub fn advance_to(&mut self, target: Time) {
        while let Some(next) = self.core.poll_timeout() {
            if next > target {
                break;
            }
            self.now = next.max(self.now);
            self.wakes.push(self.now);
            self.handle(Event::Timeout).unwrap();
        }
        self.now = target.max(self.now);
        self.handle(Event::Timeout).unwrap();
    }

    pub fn advance(&mut self, d: Duration) {
        let target = add(self.now, d);
        self.advance_to(target);
    }

    /// Jumps to `target` without stopping on the way (the process was down or asleep).
    pub fn jump_to(&mut self, target: Time) {
        self.now = target;
    }

    /// Job `id` whole: the core's entry with its payloads and history from the store.
    pub fn job(&self, id: JobId) -> Job {
        let mut job = self.core.job(id).expect("job exists");
        if let Some(stored) = self.store.get(id) {
            job.request.input = stored.request.input;
            job.output = stored.output;
            job.history = stored.history;
        }
        job
    }

    /// The input the last run of `id` got, if a worker of it ran.
    pub fn started_input(&self, id: JobId) -> Option<Value> {
        self.inputs
            .iter()
            .rev()
            .find_map(|(i, v)| (*i == id).then(|| v.clone()))
    }

    /// Start instants of `id`'s runs, in order.
    pub fn starts(&self, id: JobId) -> Vec<Time> {
        self.log
            .iter()
            .filter_map(|(at, a)| match a {
                Action::Start(s) if s.id == id => Some(*at),
                _ => None,
            })
            .collect()
    }

    /// Every action of a kind, for assertions.
    pub fn stops(&self, id: JobId) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Stop { id: i, reason } if *i == id => Some(reason.to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn aborts(&self, id: JobId) -> usize {
        self.log
            .iter()
            .filter(|(_, a)| matches!(a, Action::Abort { id: i } if *i == id))
            .count()
    }
}
