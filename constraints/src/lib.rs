//! What a backwork job requires of the device ([`Constraints`]), what the device currently offers
//! ([`DeviceState`]), the check between them ([`Constraints::check`], which says *which* constraints
//! fail and *why*), and the probes that report device state ([`Probe`], [`ManualProbe`]).
//!
//! This crate knows nothing of jobs, storage or scheduling: the scheduler asks it one question —
//! "does this device state satisfy these constraints, and if not, what is missing?".
//!
//! ```
//! use backwork_constraints::{Constraints, DeviceState, Network, NetworkRequirement};
//!
//! let wants = Constraints::none().network(NetworkRequirement::Unmetered).charging();
//! let mut device = DeviceState::default(); // a healthy plugged-in machine
//! assert!(wants.check(&device).is_empty());
//!
//! device.network = Network::Metered;
//! device.charging = false;
//! let unmet = wants.check(&device);
//! assert_eq!(unmet.len(), 2);
//! assert_eq!(unmet[0].to_string(), "network: requires an unmetered network, the device is on a metered network");
//! ```

#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod dbus;
#[cfg(target_os = "linux")]
pub mod host;
mod probe;
mod report;
mod state;

#[cfg(target_os = "linux")]
pub use dbus::{Bus, DbusError};
#[cfg(target_os = "linux")]
pub use host::{HostConfig, HostProbe, IdleSource};
pub use probe::{ManualProbe, Probe};
pub use report::{DeviceReadings, DeviceReport, Reading, Source};
pub use state::{
    Constraint, Constraints, DeviceState, LOW_BATTERY_PERCENT, Network, NetworkRequirement,
    SettingError, Unmet,
};
