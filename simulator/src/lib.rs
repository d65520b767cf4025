//! The backwork simulator: runs the same scheduling core the runtime uses under a virtual clock
//! and an emulated OS profile, and reports when each job ran and why it waited.
//!
//! ```
//! use backwork_simulator::{Scenario, simulate};
//!
//! let scenario = Scenario::from_toml(r#"
//!     profile = "android"
//!     start = "2026-11-23T00:00:00Z"
//!     duration = "1d"
//!     device = { screen = "on", charging = false, battery = 80 }
//!
//!     [[job]]
//!     name = "sync"
//!     every = "15m"
//!     outcome = { duration = "3m" }
//!
//!     [[event]]        # the app falls into the rare bucket
//!     at = "0s"
//!     bucket = "rare"
//! "#).unwrap();
//! let report = simulate(&scenario).unwrap();
//! let sync = &report.jobs[0];
//! assert!(sync.succeeded >= 3 && sync.succeeded <= 4, "{}", sync.succeeded); // 10 min of job time a day
//! ```

#![warn(missing_docs)]

mod engine;
mod fleet;
mod report;
mod scenario;
mod svg;
mod toml_error;

pub use engine::{simulate, simulate_with_progress};
pub use fleet::{
    FleetReport, INSTALL_SPREAD, ROUTINE_SHIFT, simulate_fleet, simulate_fleet_with_progress,
};
pub use report::{HeldInterval, JobReport, Report, RunReport, WaitFamily};
pub use scenario::{
    DeviceSpec, EventSpec, IosTask, JobSpec, OnOff, Outcome, Scenario, StorageSpec,
};
pub use svg::fleet as fleet_svg;
pub use svg::render as svg;

/// Why a scenario could not be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The scenario file does not parse: it is not TOML, or has a key the format does not
    /// have.
    #[error("the scenario does not parse: {0}")]
    Parse(String),
    /// A setting of the scenario is missing, or its value is out of range or means nothing.
    #[error("{setting} {detail}")]
    Setting {
        /// Which setting, in words (`` `device.battery` ``, `` `at` of [[event]] number 2 ``).
        setting: String,
        /// Its value and what it may be, or what to add.
        detail: String,
    },
    /// The scenario as a whole breaks a rule (no job, too many, an event after its end…).
    #[error("{0}")]
    Scenario(String),
    /// A profile name or override is wrong.
    #[error("{0}")]
    Profile(String),
    /// A job is invalid.
    #[error("job `{job}`: {detail}")]
    Job {
        /// The job's name.
        job: String,
        /// What is wrong, and what to do.
        detail: String,
    },
    /// A job's option is refused (the same reading `backwork add` gives its flags).
    #[error("job `{job}`: {}{error}", error.option().map(|o| format!("{o}: ")).unwrap_or_default())]
    JobOption {
        /// The job's name.
        job: String,
        /// The option and why.
        #[source]
        error: backwork_scheduler::core::OptionError,
    },
}
