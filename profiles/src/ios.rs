//! The iOS profile: BGTaskScheduler's app-refresh and processing tasks, their pending limits and
//! run budgets, and force-quit.
//!
//! A job is an app-refresh task when tagged [`REFRESH_TAG`], a processing task when tagged
//! [`PROCESSING_TAG`] (untagged jobs count as refresh tasks). iOS has no periodic tasks — an app
//! resubmits its request from each run — so a periodic job stands for that resubmission, at least
//! 15 minutes apart.

use std::time::Duration;

use backwork_constraints::DeviceState;
use backwork_scheduler::{
    Decision, HoldKind, JobRequest, Policy, PolicyContext, PolicyJob, PolicyReason, PolicyStop,
    Time,
};
use serde::{Deserialize, Serialize};

use crate::android::{AppControl, force_quit_decision, force_quit_reason};

/// The tag of app-refresh tasks.
pub const REFRESH_TAG: &str = "ios:refresh";
/// The tag of processing tasks.
pub const PROCESSING_TAG: &str = "ios:processing";

/// The iOS profile's numbers, each overridable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IosSettings {
    /// App-refresh requests pending at once.
    pub max_refresh_pending: usize,
    /// Processing requests pending at once.
    pub max_processing_pending: usize,
    /// How long an app-refresh run may take before iOS stops it.
    #[serde(with = "humantime_serde")]
    pub refresh_budget: Duration,
    /// How long a processing run may take.
    #[serde(with = "humantime_serde")]
    pub processing_budget: Duration,
    /// The least time between two app-refresh runs.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for IosSettings {
    fn default() -> Self {
        IosSettings {
            max_refresh_pending: 1,
            max_processing_pending: 10,
            refresh_budget: Duration::from_secs(30),
            processing_budget: Duration::from_secs(10 * 60),
            refresh_interval: Duration::from_secs(15 * 60),
        }
    }
}

fn is_processing(tags: &std::collections::BTreeSet<String>) -> bool {
    tags.contains(PROCESSING_TAG)
}

/// The iOS policy.
#[derive(Debug)]
pub struct IosPolicy {
    settings: IosSettings,
    app: AppControl,
    device: DeviceState,
    last_refresh: Option<Time>,
}

impl IosPolicy {
    /// A policy with these settings.
    pub fn new(settings: IosSettings) -> Self {
        IosPolicy {
            settings,
            app: AppControl::default(),
            device: DeviceState::default(),
            last_refresh: None,
        }
    }

    /// A handle that force-quits and reopens the app.
    pub fn control(&self) -> AppControl {
        self.app.clone()
    }
}

impl Policy for IosPolicy {
    fn admit(&mut self, _now: Time, r: &JobRequest, cx: PolicyContext<'_>) -> Result<(), String> {
        let (tag, max, what) = if is_processing(&r.tags) {
            (
                PROCESSING_TAG,
                self.settings.max_processing_pending,
                "processing",
            )
        } else {
            (
                REFRESH_TAG,
                self.settings.max_refresh_pending,
                "app-refresh",
            )
        };
        let pending = cx
            .pending_by_tag
            .iter()
            .find(|(t, _)| t == tag)
            .map_or(0, |(_, n)| *n);
        if pending >= max {
            return Err(format!(
                "iOS allows {max} pending {what} request(s) per app; submit with the same identifier (unique name) to replace one"
            ));
        }
        Ok(())
    }

    fn before_start(&mut self, now: Time, job: PolicyJob<'_>, _cx: PolicyContext<'_>) -> Decision {
        if self.app.state().force_quit {
            return force_quit_decision();
        }
        if is_processing(&job.request.tags) {
            // BGProcessingTaskRequest: external power and network only when the request asks
            // for them (`requiresExternalPower`, `requiresNetworkConnectivity`, both false by
            // default) — the job's own constraints; the device being idle always
            if self.device.screen_on {
                return Decision::Deny {
                    reason: PolicyReason::new(
                        "ios_processing_idle",
                        HoldKind::DeviceIdle,
                        "iOS runs processing tasks while the device is idle (screen off)",
                    ),
                };
            }
            return Decision::Allow;
        }
        if let Some(last) = self.last_refresh {
            let next = backwork_scheduler::core::add(last, self.settings.refresh_interval);
            if now < next {
                return Decision::Defer {
                    until: next,
                    reason: PolicyReason::new(
                        "ios_refresh_spacing",
                        HoldKind::Spacing,
                        format!(
                            "iOS spaces app refreshes at least {} apart",
                            humantime::format_duration(self.settings.refresh_interval)
                        ),
                    ),
                };
            }
        }
        Decision::Allow
    }

    /// A force-quit app runs nothing until it is opened again.
    fn app_hold(&mut self, _now: Time) -> Option<(Option<Time>, PolicyReason)> {
        self.app
            .state()
            .force_quit
            .then(|| (None, force_quit_reason()))
    }

    fn run_deadline(&mut self, now: Time, job: PolicyJob<'_>) -> Option<(Time, PolicyStop)> {
        let (budget, what, code) = if is_processing(&job.request.tags) {
            (
                self.settings.processing_budget,
                "processing",
                "ios_processing_budget",
            )
        } else {
            (
                self.settings.refresh_budget,
                "app-refresh",
                "ios_refresh_budget",
            )
        };
        Some((
            backwork_scheduler::core::add(now, budget),
            PolicyStop::new(
                code,
                format!(
                    "the iOS {what} budget of {} ran out",
                    humantime::format_duration(budget)
                ),
            ),
        ))
    }

    /// A request is used up by its launch: the system does not launch its task again unless
    /// the app submits a new request (BGTaskScheduler `submit(_:)`; a task whose budget runs
    /// out has its `expirationHandler` called and is over). Whatever the run's outcome — done,
    /// failed, asking for a retry, its own time limit or the budget running out — a one-off
    /// job ends with its run; a periodic job, which models the app resubmitting from its
    /// handler, moves on to its next slot.
    fn launch_uses_up_request(&self, _job: PolicyJob<'_>) -> bool {
        true
    }

    fn on_device(&mut self, _now: Time, device: &DeviceState) {
        self.device = *device;
    }

    /// Apple, `BGProcessingTask`: "Processing tasks run only when the device is idle. The
    /// system terminates any background processing tasks running when the user starts using
    /// the device. Background refresh tasks aren't affected." A processing run is stopped as
    /// the screen comes on; its launch is over (the request is used up by it:
    /// [`Policy::launch_uses_up_request`]).
    fn deadline_after_device(
        &mut self,
        now: Time,
        job: PolicyJob<'_>,
    ) -> Option<(Time, PolicyStop)> {
        (self.device.screen_on && is_processing(&job.request.tags)).then(|| {
            (
                now,
                PolicyStop::new(
                    "ios_processing_user_active",
                    "the user started using the device: iOS terminates processing tasks then",
                ),
            )
        })
    }

    fn on_started(&mut self, now: Time, job: PolicyJob<'_>) {
        if !is_processing(&job.request.tags) {
            self.last_refresh = Some(now);
        }
    }
}
