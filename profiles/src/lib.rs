//! OS background-limit profiles (DESIGN §6): the policies that shape *when* eligible work may run,
//! plugged into the core's [`Policy`] hook. The runtime (`backwork daemon --profile`) and the
//! simulator use the same code.
//!
//! - `desktop`: no quotas but the core's expedited one (1 hour of expedited runs per rolling
//!   24 hours, `ExpeditedQuota::DESKTOP`); jobs without a flex window may wait up to the
//!   1-minute batching window to share a wake-up (a job marked `accurate` never waits).
//! - `android`: [`AndroidPolicy`] — Doze, App Standby buckets and their quotas, JobScheduler's
//!   limits, the expedited-job quota of the app's bucket ([`ExpeditedLimits`]) — plus
//!   WorkManager's minimums (15-minute periods, 5-minute flex, raised with a
//!   warning).
//! - `ios`: [`IosPolicy`] — app-refresh and processing tasks (by tag), their pending limits
//!   (1 and 10) and budgets (30 s, minutes), refreshes 15 minutes apart, processing only while
//!   idle and charging, nothing after a force-quit.
//!
//! ```
//! use backwork_profiles::Profile;
//!
//! let p = Profile::by_name("android").unwrap();
//! assert_eq!(p.config.min_period, std::time::Duration::from_secs(900));
//! ```

#![warn(missing_docs)]

mod android;
mod ios;

use std::time::Duration;

use backwork_scheduler::{AllowAll, Anchor, Config, Policy};

pub use android::{
    AndroidPolicy, AndroidSettings, AppControl, AppState, Bucket, BucketLimits, DozePhase,
    ExpeditedLimits,
};
pub use ios::{IosPolicy, IosSettings, PROCESSING_TAG, REFRESH_TAG};

/// The desktop profile's numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopSettings {
    /// How late a job without a flex window may start to share a wake-up (systemd's
    /// `AccuracySec`); `0s` turns batching off.
    #[serde(with = "humantime_serde")]
    pub batch_window: Duration,
}

impl Default for DesktopSettings {
    fn default() -> Self {
        DesktopSettings {
            batch_window: Config::default().batch_window,
        }
    }
}

/// A profile: the core configuration and the policy that together emulate an OS.
#[derive(Debug)]
pub struct Profile {
    /// `desktop`, `android` or `ios`.
    pub name: &'static str,
    /// The core configuration (minimum period and flex, batching window, …).
    pub config: Config,
    /// The policy.
    pub policy: Box<dyn Policy>,
    /// Changes what the OS knows about the app (standby bucket, force-quit).
    pub app: Option<AppControl>,
}

/// A profile that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// An override does not fit the profile.
    #[error("{profile} overrides: {detail}")]
    Override {
        /// The profile.
        profile: String,
        /// What is wrong, and what to do.
        detail: String,
    },
    /// No such profile.
    #[error("unknown profile `{0}`; use desktop, android or ios")]
    Unknown(String),
}

impl Profile {
    /// The desktop profile: no quotas, a 1-minute batching window.
    pub fn desktop() -> Profile {
        Profile::desktop_with(DesktopSettings::default())
    }

    /// The desktop profile with `settings`.
    pub fn desktop_with(settings: DesktopSettings) -> Profile {
        Profile {
            name: "desktop",
            config: Config {
                batch_window: settings.batch_window,
                ..Config::default()
            },
            policy: Box::new(AllowAll),
            app: None,
        }
    }

    /// The android profile with `settings`.
    pub fn android(settings: AndroidSettings) -> Profile {
        let policy = AndroidPolicy::new(settings);
        let app = policy.control();
        Profile {
            name: "android",
            config: Config {
                min_period: Duration::from_secs(15 * 60),
                min_flex: Duration::from_secs(5 * 60),
                raise_short_periods: true,
                // Android batches through Doze, standby buckets and the non-active-app batching
                // of this profile's policy, not the desktop window (DESIGN §6): a WorkManager
                // backoff of 30 s is 30 s, and a flex window is eligible from its start
                batch_window: Duration::ZERO,
                // WorkManager's periodic timing: the next period counts from the end of the
                // last run (`WorkSpec.calculateNextRunTime`: lastEnqueueTime + interval)
                // unless the request names an anchor (DESIGN §6)
                default_anchor: Anchor::AfterRun,
                ..Config::default()
            },
            policy: Box::new(policy),
            app: Some(app),
        }
    }

    /// The ios profile with `settings`.
    pub fn ios(settings: IosSettings) -> Profile {
        let policy = IosPolicy::new(settings);
        let app = policy.control();
        Profile {
            name: "ios",
            config: Config {
                min_period: Duration::from_secs(15 * 60),
                raise_short_periods: true,
                // a periodic job stands for the app resubmitting its request from each run, so
                // the next request counts from that run
                default_anchor: Anchor::AfterRun,
                ..Config::default()
            },
            policy: Box::new(policy),
            app: Some(app),
        }
    }

    /// A profile by name, with some of its numbers overridden (the fields of
    /// [`DesktopSettings`], [`AndroidSettings`] or [`IosSettings`]; durations as text like
    /// `"30m"`).
    pub fn with_overrides(name: &str, overrides: &toml::Table) -> Result<Profile, ProfileError> {
        fn parse<T: serde::de::DeserializeOwned>(
            name: &str,
            overrides: &toml::Table,
        ) -> Result<T, ProfileError> {
            toml::Value::Table(overrides.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    // serde does not say which key: the first that fails alone is the one
                    // (every override is optional, so one key alone is a whole table)
                    let culprit = overrides.iter().find(|(k, v)| {
                        let alone = toml::Table::from_iter([((*k).clone(), (*v).clone())]);
                        toml::Value::Table(alone).try_into::<T>().is_err()
                    });
                    let message = e.message().trim().replace('\n', "; ");
                    ProfileError::Override {
                        profile: name.to_string(),
                        detail: match culprit {
                            Some((k, v)) => format!("`{k}` is {v}: {message}"),
                            None => message,
                        },
                    }
                })
        }
        match name {
            "android" => {
                let settings: AndroidSettings = parse(name, overrides)?;
                settings.check().map_err(|detail| ProfileError::Override {
                    profile: name.to_string(),
                    detail,
                })?;
                Ok(Profile::android(settings))
            }
            "ios" => Ok(Profile::ios(parse(name, overrides)?)),
            "desktop" => Ok(Profile::desktop_with(parse(name, overrides)?)),
            other => Profile::by_name(other),
        }
    }

    /// A profile by name, with its default numbers.
    pub fn by_name(name: &str) -> Result<Profile, ProfileError> {
        match name {
            "desktop" => Ok(Profile::desktop()),
            "android" => Ok(Profile::android(AndroidSettings::default())),
            "ios" => Ok(Profile::ios(IosSettings::default())),
            other => Err(ProfileError::Unknown(other.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An override that does not read names its key and value (serde's message alone named
    /// neither: "invalid value: string \"fast\", expected a duration").
    #[test]
    fn a_bad_override_names_its_key() {
        let overrides: toml::Table =
            toml::from_str("max_scheduled_jobs = 10\ndeep_idle_after = \"fast\"\n").unwrap();
        let Err(err) = Profile::with_overrides("android", &overrides) else {
            panic!("the override was accepted");
        };
        let err = err.to_string();
        assert!(
            err.starts_with("android overrides: `deep_idle_after` is \"fast\": "),
            "{err}"
        );
        assert!(err.contains("expected a duration"), "{err}");
    }
}
