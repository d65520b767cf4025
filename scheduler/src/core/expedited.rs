//! Expedited work, as WorkManager's `WorkRequest.Builder.setExpedited(OutOfQuotaPolicy)` and the
//! expedited jobs of Android's JobScheduler (`JobInfo.Builder.setExpedited`) define it: work the
//! user is waiting for, started at once when its constraints hold — no batching window, past the
//! profile's holds (Doze, standby-bucket quotas: JobScheduler runs expedited jobs in Doze), and
//! ahead of ordinary work at the concurrency limit — under an **expedited quota** of run time
//! per rolling window. When the quota is used up, the request's [`OutOfQuotaPolicy`] decides:
//! run as ordinary work, or drop the job.
//!
//! The quota is counted as AOSP's `QuotaController` counts it for expedited jobs
//! (`mEJPkgTimers`, `mEJTimingSessions`, kept apart from the regular sessions): the time during
//! which at least one expedited job of the app runs, so overlapping runs count once, summed over
//! the sessions that reach into the window. Like QuotaController's, the ledger lives in memory:
//! a restart starts it afresh.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::job::Time;
use super::schedule::since;

/// What happens to an expedited job that would start while the app's expedited quota is used up
/// (WorkManager's `OutOfQuotaPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfQuotaPolicy {
    /// `RUN_AS_NON_EXPEDITED_WORK_REQUEST`: it runs as ordinary work (batched, held by the
    /// profile like any job) for the rest of this attempt's wait.
    RunAsNonExpedited,
    /// `DROP_WORK_REQUEST`: the job is dropped — cancelled, its stop reason saying why.
    Drop,
}

impl std::fmt::Display for OutOfQuotaPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutOfQuotaPolicy::RunAsNonExpedited => "run-as-regular",
            OutOfQuotaPolicy::Drop => "drop",
        })
    }
}

/// An expedited quota: at most `limit` of expedited run time within any rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpeditedQuota {
    /// The run time allowed per window; `None`: no limit (quota free, e.g. while charging).
    #[serde(with = "super::job::millis::option")]
    pub limit: Option<Duration>,
    /// The rolling window.
    #[serde(with = "super::job::millis")]
    pub window: Duration,
}

impl ExpeditedQuota {
    /// The desktop default, and the core's: 1 hour of expedited run time per rolling 24 hours —
    /// twice what Android gives an active app (30 minutes), since a desktop has no battery to
    /// save; it only keeps "expedited" from becoming the way every job is added.
    pub const DESKTOP: ExpeditedQuota = ExpeditedQuota {
        limit: Some(Duration::from_secs(3600)),
        window: Duration::from_secs(86_400),
    };

    /// No limit.
    pub const UNLIMITED: ExpeditedQuota = ExpeditedQuota {
        limit: None,
        window: Duration::from_secs(86_400),
    };
}

impl Default for ExpeditedQuota {
    fn default() -> Self {
        ExpeditedQuota::DESKTOP
    }
}

/// The app's expedited run time: closed timing sessions and the one open now, if any.
#[derive(Debug, Clone, Default)]
pub(super) struct Ledger {
    /// Closed sessions, oldest first: `(start, end)`.
    sessions: VecDeque<(Time, Time)>,
    /// How many expedited runs are out.
    running: usize,
    /// When the open session began (while `running > 0`).
    since: Option<Time>,
}

/// How long closed sessions are kept at most: the longest window a profile uses.
const KEEP: Duration = Duration::from_secs(7 * 86_400);

impl Ledger {
    /// An expedited run started.
    pub(super) fn started(&mut self, now: Time) {
        if self.running == 0 {
            self.since = Some(now);
        }
        self.running += 1;
    }

    /// An expedited run ended.
    pub(super) fn finished(&mut self, now: Time) {
        self.running = self.running.saturating_sub(1);
        if self.running == 0
            && let Some(start) = self.since.take()
        {
            self.sessions.push_back((start, now.max(start)));
            let horizon = now - chrono::TimeDelta::from_std(KEEP).unwrap_or_default();
            while self.sessions.front().is_some_and(|(_, end)| *end < horizon) {
                self.sessions.pop_front();
            }
        }
    }

    /// Every run out was dropped (the core forgot its jobs): the open session ends at `now`.
    pub(super) fn drop_runs(&mut self, now: Time) {
        if self.running > 0 {
            self.running = 1;
            self.finished(now);
        }
    }

    /// Expedited run time within `[now − window, now]`.
    pub(super) fn used(&self, now: Time, window: Duration) -> Duration {
        let from = now - chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX);
        let open = self.since.map(|s| (s, now));
        self.sessions
            .iter()
            .copied()
            .chain(open)
            .filter(|(_, end)| *end > from)
            .map(|(start, end)| since(end, start.max(from)))
            .sum()
    }

    /// Whether an expedited start at `now` is within `quota`.
    pub(super) fn allows(&self, now: Time, quota: &ExpeditedQuota) -> bool {
        quota
            .limit
            .is_none_or(|limit| self.used(now, quota.window) < limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> Time {
        chrono::DateTime::from_timestamp(1_767_225_600 + min * 60, 0).unwrap()
    }

    const M: Duration = Duration::from_secs(60);

    #[test]
    fn overlapping_runs_count_once_and_old_sessions_leave_the_window() {
        let mut l = Ledger::default();
        l.started(t(0));
        l.started(t(5)); // overlaps the first: one session 0..20
        l.finished(t(10));
        l.finished(t(20));
        assert_eq!(l.used(t(30), 24 * 60 * M), 20 * M);
        l.started(t(40));
        assert_eq!(
            l.used(t(45), 24 * 60 * M),
            25 * M,
            "the open session counts"
        );
        l.finished(t(50));
        // a window reaching back to minute 15 sees 5 of the first session and all of the second
        assert_eq!(l.used(t(50), 35 * M), 15 * M);
        let quota = ExpeditedQuota {
            limit: Some(30 * M),
            window: 24 * 60 * M,
        };
        assert_eq!(l.used(t(50), 24 * 60 * M), 30 * M);
        assert!(!l.allows(t(50), &quota), "30 of 30 minutes used");
        assert!(l.allows(t(24 * 60 + 1), &quota), "minute 0 left the window");
        assert!(l.allows(t(50), &ExpeditedQuota::UNLIMITED));
    }
}
