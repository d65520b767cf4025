//! A job to add, as the socket carries it (`Request::Add`): a shape this crate owns and
//! `docs/cli.md` documents, in the words `backwork add` takes (`charging`, `after-run`,
//! `append-or-replace`) and milliseconds — so a client in any language can add a job, and the
//! core can change how it models a request without changing the protocol. The server turns it
//! into the core's request with [`NewJob::request`]; a word it does not know is refused with
//! the option's name and the words it takes, and nothing is added.

use std::time::Duration;

use backwork_scheduler::core::{
    ANCHOR_CHOICES, CATCH_UP_CHOICES, Choice, EXPEDITED_CHOICES, INPUT_MERGER_CHOICES,
    ON_CONFLICT_CHOICES, OptionError, REQUIRES_CHOICES, choose, parse_zone,
};
use backwork_scheduler::{
    Backoff, BackoffKind, ConflictPolicy, InputMerger, Jitter, JobRequest, Schedule, Time, Unique,
    core::DEFAULT_TIMEOUT,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::{BackoffView, JitterView};

/// A job to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The worker kind that runs it (`command` for a command job, whose `input` is a
    /// [`crate::CommandSpec`]).
    pub kind: String,
    /// Its input (`null`: none).
    #[serde(default)]
    pub input: Value,
    /// When it runs.
    pub schedule: ScheduleSpec,
    /// Constraints, as `add --requires` names them: `network`, `unmetered`, `charging`,
    /// `battery-not-low`, `storage-not-low`, `idle`.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Do not start if the last successful run started less than this long ago (ms).
    #[serde(default)]
    pub min_interval_ms: Option<u64>,
    /// Retry delays (absent: exponential from 30 s).
    #[serde(default)]
    pub backoff: Option<BackoffView>,
    /// Attempts before the job fails (absent or `null`: retry for ever).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The time limit of each run in milliseconds; absent: 10 minutes; `null`: none.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: Option<u64>,
    /// A unique name and what to do when a live job has it.
    #[serde(default)]
    pub unique: Option<UniqueSpec>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Recurring jobs: `one` (default) or `skip`, for slots missed while the machine was off.
    #[serde(default)]
    pub catch_up: Option<String>,
    /// Start exactly when due, not batched.
    #[serde(default)]
    pub accurate: bool,
    /// A random delay of each due time.
    #[serde(default)]
    pub jitter: Option<JitterView>,
    /// Jobs it runs after (it waits `blocked` until they all succeed): each a unique name (its
    /// sequence's last jobs), an id or a short-id prefix of a queued one-off job — or, in a
    /// [`NewChain`], the `label` of an earlier link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// In a [`NewChain`]: the name other links' `after` give this link (not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How its input is made from its own and its prerequisites' outputs: `overwriting`
    /// (absent: the default) or `array-creating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_merger: Option<String>,
    /// Expedited work, and what to do once the expedited quota is used up: `run-as-regular`
    /// or `drop` (absent or `null`: not expedited).
    #[serde(default)]
    pub expedited: Option<String>,
}

/// Jobs to add together, each after the links or queued jobs its `after` names: all of them,
/// in one durable commit, or none (`Request::AddChain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewChain {
    /// The links, each after the links it names (earlier ones only).
    pub links: Vec<NewJob>,
    /// A unique name for the whole chain (every link carries it), with `keep`, `replace`,
    /// `append` or `append-or-replace`.
    #[serde(default)]
    pub unique: Option<UniqueSpec>,
}

fn default_timeout_ms() -> Option<u64> {
    Some(millis(DEFAULT_TIMEOUT))
}

/// When a new job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// Once: `delay_ms` after it is added, and not before `not_before`.
    Once {
        /// Milliseconds after the add (0: at once).
        #[serde(default)]
        delay_ms: u64,
        /// An instant before which it does not start.
        #[serde(default)]
        not_before: Option<Time>,
    },
    /// Every period.
    Periodic {
        /// The period, in milliseconds.
        every_ms: u64,
        /// The flex window at the end of each period (ms; `null`: the whole period).
        #[serde(default)]
        flex_ms: Option<u64>,
        /// `grid` or `after-run` (absent: the server's profile's default).
        #[serde(default)]
        anchor: Option<String>,
        /// The delay before the first period (ms).
        #[serde(default)]
        initial_delay_ms: u64,
    },
    /// At the times of a cron expression.
    Cron {
        /// Five crontab fields, six with seconds first, or `@daily` and the like.
        expr: String,
        /// The IANA time zone it is read in.
        tz: String,
    },
}

/// A unique name and its conflict policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueSpec {
    /// The name.
    pub name: String,
    /// `keep`, `replace`, `update`, `append`, `append-or-replace` or `cancel-and-reenqueue`
    /// (absent: `keep`).
    #[serde(default)]
    pub on_conflict: Option<String>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The word of `value` in `choices` (each value the core has is in its table).
fn word<T: PartialEq + Copy>(choices: &'static [Choice<T>], value: T) -> String {
    choices
        .iter()
        .find(|c| c.value == value)
        .map_or("?", |c| c.name)
        .to_string()
}

impl NewJob {
    /// The wire form of `request`.
    pub fn of(request: &JobRequest) -> NewJob {
        let r = request;
        NewJob {
            kind: r.kind.clone(),
            input: r.input.clone(),
            schedule: match &r.schedule {
                Schedule::Once { delay, not_before } => ScheduleSpec::Once {
                    delay_ms: millis(*delay),
                    not_before: *not_before,
                },
                Schedule::Periodic {
                    every,
                    flex,
                    anchor,
                    initial_delay,
                } => ScheduleSpec::Periodic {
                    every_ms: millis(*every),
                    flex_ms: flex.map(millis),
                    anchor: anchor.map(|a| word(ANCHOR_CHOICES, a)),
                    initial_delay_ms: millis(*initial_delay),
                },
                Schedule::Cron { expr, tz } => ScheduleSpec::Cron {
                    expr: expr.clone(),
                    tz: tz.name().to_string(),
                },
            },
            requires: r
                .constraints
                .list()
                .into_iter()
                .map(|c| word(REQUIRES_CHOICES, c))
                .collect(),
            min_interval_ms: r.min_interval.map(millis),
            backoff: Some(BackoffView {
                kind: match r.backoff.kind {
                    BackoffKind::Exponential => "exponential",
                    BackoffKind::Linear => "linear",
                }
                .into(),
                base_ms: millis(r.backoff.base),
                jitter: r.backoff.jitter,
            }),
            max_attempts: r.max_attempts,
            timeout_ms: r.timeout.map(millis),
            unique: r.unique.as_ref().map(|u| UniqueSpec {
                name: u.name.clone(),
                on_conflict: Some(word(ON_CONFLICT_CHOICES, u.policy)),
            }),
            tags: r.tags.iter().cloned().collect(),
            catch_up: r
                .schedule
                .is_recurring()
                .then(|| word(CATCH_UP_CHOICES, r.catch_up)),
            accurate: r.accurate,
            jitter: r.jitter.map(|j| JitterView {
                max_ms: millis(j.max),
                fixed: j.fixed,
            }),
            after: Vec::new(),
            label: None,
            input_merger: (r.input_merger != InputMerger::default())
                .then(|| word(INPUT_MERGER_CHOICES, r.input_merger)),
            expedited: r.expedited.map(|e| word(EXPEDITED_CHOICES, e)),
        }
    }

    /// The core's request, or the first field whose word is unknown (the error names the
    /// field and lists the words it takes). Values the core checks against each other (a flex
    /// longer than its period, a cron expression) are checked when the job is enqueued.
    pub fn request(&self) -> Result<JobRequest, OptionError> {
        let ms = Duration::from_millis;
        let mut r = match &self.schedule {
            ScheduleSpec::Once {
                delay_ms,
                not_before,
            } => {
                let r = JobRequest::once(self.kind.clone()).delay(ms(*delay_ms));
                match not_before {
                    Some(t) => r.not_before(*t),
                    None => r,
                }
            }
            ScheduleSpec::Periodic {
                every_ms,
                flex_ms,
                anchor,
                initial_delay_ms,
            } => {
                let mut r = JobRequest::periodic(self.kind.clone(), ms(*every_ms))
                    .delay(ms(*initial_delay_ms));
                if let Some(f) = flex_ms {
                    r = r.flex(ms(*f));
                }
                if let Some(a) = anchor {
                    r = r.anchor(choose("anchor", ANCHOR_CHOICES, a)?);
                }
                r
            }
            ScheduleSpec::Cron { expr, tz } => {
                JobRequest::cron(self.kind.clone(), expr.clone(), parse_zone(tz)?)
            }
        };
        r.input = self.input.clone();
        for c in &self.requires {
            r = r.requires(choose("requires", REQUIRES_CHOICES, c)?);
        }
        r.min_interval = self.min_interval_ms.map(ms);
        if let Some(b) = &self.backoff {
            r.backoff = Backoff {
                kind: match b.kind.as_str() {
                    "exponential" => BackoffKind::Exponential,
                    "linear" => BackoffKind::Linear,
                    _ => {
                        return Err(OptionError::Backoff {
                            value: b.kind.clone(),
                        });
                    }
                },
                base: ms(b.base_ms),
                jitter: b.jitter,
            };
            if !(0.0..1.0).contains(&b.jitter) {
                return Err(OptionError::Fraction { value: b.jitter });
            }
        }
        if self.max_attempts == Some(0) {
            return Err(OptionError::ZeroAttempts);
        }
        r.max_attempts = self.max_attempts;
        r.timeout = self.timeout_ms.map(ms);
        if let Some(u) = &self.unique {
            let policy = match &u.on_conflict {
                Some(p) => choose("on_conflict", ON_CONFLICT_CHOICES, p)?,
                None => ConflictPolicy::Keep,
            };
            r.unique = Some(Unique {
                name: u.name.clone(),
                policy,
            });
        }
        r.tags = self.tags.iter().cloned().collect();
        if let Some(c) = &self.catch_up {
            r.catch_up = choose("catch_up", CATCH_UP_CHOICES, c)?;
        }
        r.accurate = self.accurate;
        r.jitter = self.jitter.map(|j| Jitter {
            max: ms(j.max_ms),
            fixed: j.fixed,
        });
        if let Some(m) = &self.input_merger {
            r.input_merger = choose("input_merger", INPUT_MERGER_CHOICES, m)?;
        }
        if let Some(e) = &self.expedited {
            r.expedited = Some(choose("expedited", EXPEDITED_CHOICES, e)?);
        }
        Ok(r)
    }
}

impl UniqueSpec {
    /// The core's unique name and policy (absent policy: `keep`).
    pub fn unique(&self) -> Result<Unique, OptionError> {
        Ok(Unique {
            name: self.name.clone(),
            policy: match &self.on_conflict {
                Some(p) => choose("on_conflict", ON_CONFLICT_CHOICES, p)?,
                None => ConflictPolicy::Keep,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backwork_scheduler::{Anchor, Constraint, NetworkRequirement};

    /// Every field survives the wire: request → wire → JSON → wire → request.
    #[test]
    fn a_request_survives_the_wire() {
        let requests = [
            JobRequest::periodic("sync", Duration::from_secs(6 * 3600))
                .flex(Duration::from_secs(1800))
                .anchor(Anchor::AfterRun)
                .delay(Duration::from_secs(600))
                .requires(Constraint::Charging)
                .requires(Constraint::Network(NetworkRequirement::Unmetered))
                .unique("photos", ConflictPolicy::AppendOrReplace)
                .tag("a")
                .input(serde_json::json!({"k": [1, 2]})),
            JobRequest::once("merge").input_merger(InputMerger::ArrayCreating),
            JobRequest::once("mail").delay(Duration::from_secs(10)),
            JobRequest::periodic("plain", Duration::from_secs(3600)),
            JobRequest::cron("report", "0 3 * * 1", "Europe/Berlin".parse().unwrap()),
        ];
        for request in requests {
            let wire = serde_json::to_string(&NewJob::of(&request)).unwrap();
            let back: NewJob = serde_json::from_str(&wire).unwrap();
            assert_eq!(back.request().unwrap(), request, "{wire}");
        }
    }

    /// A client may leave out everything but the kind and the schedule; the defaults are the
    /// core's (10-minute timeout, exponential backoff, `keep`).
    #[test]
    fn a_minimal_job_takes_the_defaults() {
        let job: NewJob =
            serde_json::from_str(r#"{"kind":"upload","schedule":{"type":"once"}}"#).unwrap();
        assert_eq!(job.request().unwrap(), JobRequest::once("upload"));
        let job: NewJob = serde_json::from_str(
            r#"{"kind":"upload","schedule":{"type":"once"},"timeout_ms":null,
                "unique":{"name":"u"}}"#,
        )
        .unwrap();
        let r = job.request().unwrap();
        assert_eq!(r.timeout, None);
        assert_eq!(r.unique.unwrap().policy, ConflictPolicy::Keep);
    }

    /// The `add_chain` shape of docs/cli.md: links with labels, `after` and a merger; the
    /// chain's name with its policy. An unknown merger is refused naming its field.
    #[test]
    fn a_chain_reads_as_documented() {
        let chain: NewChain = serde_json::from_str(
            r#"{"links": [
                {"kind": "w", "schedule": {"type": "once"}, "label": "a"},
                {"kind": "w", "schedule": {"type": "once"}, "after": ["a", "0a1b2c3d"],
                 "input_merger": "array-creating"}],
                "unique": {"name": "sync", "on_conflict": "append-or-replace"}}"#,
        )
        .unwrap();
        assert_eq!(chain.links[0].label.as_deref(), Some("a"));
        assert_eq!(chain.links[1].after, ["a", "0a1b2c3d"]);
        assert_eq!(
            chain.links[1].request().unwrap().input_merger,
            InputMerger::ArrayCreating
        );
        let unique = chain.unique.unwrap().unique().unwrap();
        assert_eq!(unique.policy, ConflictPolicy::AppendOrReplace);
        let mut bad = chain.links[1].clone();
        bad.input_merger = Some("zip".into());
        let e = bad.request().unwrap_err().to_string();
        assert!(e.contains("zip") && e.contains("array-creating"), "{e}");
    }

    /// An unknown word is refused naming the field and the words it takes.
    #[test]
    fn an_unknown_word_names_its_field() {
        let mut job = NewJob::of(&JobRequest::periodic("x", Duration::from_secs(3600)));
        job.requires = vec!["wifi".into()];
        let e = job.request().unwrap_err().to_string();
        assert!(e.contains("wifi") && e.contains("unmetered"), "{e}");
        job.requires.clear();
        job.schedule = ScheduleSpec::Cron {
            expr: "@daily".into(),
            tz: "Mars/Olympus".into(),
        };
        assert!(job.request().is_err());
    }
}
