//! A job request in the words people use — the flags of `backwork add`, the keys of a
//! simulator scenario's `[[job]]` — turned into a [`JobRequest`] in one place.

use std::collections::BTreeSet;
use std::time::Duration;

use backwork_constraints::Constraint;
use chrono_tz::Tz;

use super::job::{
    Anchor, Backoff, CatchUp, ConflictPolicy, Jitter, JobRequest, Schedule, Time, Unique,
};

/// The fields of a request before it is one; parse each from its text, then call
/// [`RequestSpec::request`].
///
/// ```
/// use std::time::Duration;
/// use backwork_scheduler::core::RequestSpec;
///
/// let spec = RequestSpec {
///     every: Some(Duration::from_secs(6 * 3600)),
///     catch_up: Some(backwork_scheduler::CatchUp::Skip),
///     ..RequestSpec::default()
/// };
/// assert!(spec.request("sync").unwrap().schedule.is_recurring());
/// let wrong = RequestSpec { delay: Some(Duration::from_secs(60)), ..spec };
/// assert!(wrong.request("sync").unwrap_err().contains("one schedule"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestSpec {
    /// Periodic: the interval.
    pub every: Option<Duration>,
    /// Periodic: the flex window.
    pub flex: Option<Duration>,
    /// Periodic: how periods are placed.
    pub anchor: Option<Anchor>,
    /// Cron: the expression (five crontab fields, or six with seconds first), kept as written,
    /// and its zone.
    pub cron: Option<(String, Tz)>,
    /// Once, this long after the enqueue.
    pub delay: Option<Duration>,
    /// Once, at this instant.
    pub at: Option<Time>,
    /// Missed-slot policy (recurring jobs only).
    pub catch_up: Option<CatchUp>,
    /// Constraints.
    pub requires: Vec<Constraint>,
    /// Minimum interval between successful starts.
    pub min_interval: Option<Duration>,
    /// Retry backoff.
    pub backoff: Option<Backoff>,
    /// Spread each retry delay by ± this fraction (0 ≤ f < 1), so jobs that fail together do
    /// not all retry at the same instant.
    pub backoff_jitter: Option<f64>,
    /// Attempts before the job fails.
    pub max_attempts: Option<u32>,
    /// Time limit of each run: `Some(None)` for none; `None` for the default.
    pub timeout: Option<Option<Duration>>,
    /// No batching.
    pub accurate: bool,
    /// Random delay of each due time.
    pub jitter: Option<Jitter>,
    /// Unique name and conflict policy (`Replace` means "cancel and enqueue again" for
    /// recurring jobs).
    pub unique: Option<Unique>,
    /// Tags.
    pub tags: BTreeSet<String>,
}

impl RequestSpec {
    /// The request for worker `kind`, or a sentence saying which fields do not fit together.
    /// (The values themselves are checked when the request is enqueued.)
    pub fn request(&self, kind: &str) -> Result<JobRequest, String> {
        let schedules = [
            self.every.is_some(),
            self.cron.is_some(),
            self.delay.is_some(),
            self.at.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if schedules > 1 {
            return Err(
                "give only one schedule: every (periodic), cron, in (a delay) or at (an instant)"
                    .into(),
            );
        }
        if self.every.is_none() && (self.flex.is_some() || self.anchor.is_some()) {
            return Err(
                "flex and anchor apply to periodic jobs only; add every or drop them".into(),
            );
        }
        let mut r = match (&self.every, &self.cron, self.at) {
            (Some(every), _, _) => {
                let mut r = JobRequest::periodic(kind, *every);
                if let Some(f) = self.flex {
                    r = r.flex(f);
                }
                if let Some(a) = self.anchor {
                    r = r.anchor(a);
                }
                r
            }
            (_, Some((expr, tz)), _) => JobRequest::cron(kind, expr.trim(), *tz),
            (_, _, Some(at)) => JobRequest::once(kind).not_before(at),
            _ => JobRequest::once(kind).delay(self.delay.unwrap_or_default()),
        };
        if let Some(c) = self.catch_up {
            if !r.schedule.is_recurring() {
                return Err("catch-up applies to periodic and cron jobs only; drop it".into());
            }
            r = r.catch_up(c);
        }
        for c in &self.requires {
            r = r.requires(*c);
        }
        if let Some(m) = self.min_interval {
            r = r.min_interval(m);
        }
        if let Some(b) = self.backoff {
            r = r.backoff(b);
        }
        if let Some(j) = self.backoff_jitter {
            if !(0.0..1.0).contains(&j) {
                return Err(format!(
                    "the backoff jitter {j} is not a fraction from 0 up to 1; use e.g. 0.5 for ± 50 %"
                ));
            }
            r.backoff.jitter = j;
        }
        if let Some(n) = self.max_attempts {
            r = r.max_attempts(n);
        }
        if let Some(t) = self.timeout {
            r = r.timeout(t);
        }
        if self.accurate {
            r = r.accurate();
        }
        r.jitter = self.jitter;
        if let Some(u) = &self.unique {
            let recurring = !matches!(r.schedule, Schedule::Once { .. });
            let policy = match u.policy {
                ConflictPolicy::Replace if recurring => ConflictPolicy::CancelAndReenqueue,
                p => p,
            };
            r = r.unique(u.name.clone(), policy);
        }
        for t in &self.tags {
            r = r.tag(t.clone());
        }
        Ok(r)
    }
}
