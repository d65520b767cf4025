//! Where each value of the device state came from, and why it is what it is: the answer to
//! "network unmetered — which interface? why?".
//!
//! A probe that can say computes its [`DeviceReport`] with the same code that computes the
//! values (never by a second reading that could disagree): the Linux host probe names the
//! interface that carries the default route and its link type, the sysfs file that said "on
//! AC", the load average against its threshold; a [`ManualProbe`](crate::ManualProbe) says
//! every value was set by hand. Each value has its own [`Source`], so a probe that asks a system
//! service for some values (NetworkManager for the network, say) and the kernel for others
//! names each one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Constraint, DeviceState};

/// Where one value of the device state came from.
///
/// On the wire (`backwork device --json`) a source is an object whose `kind` names the variant,
/// with the variant's fields beside it: `{"kind": "kernel", "paths": ["/proc/loadavg"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Set by hand: `backwork device set` on a daemon started with `--device manual`, or a
    /// program driving a [`ManualProbe`](crate::ManualProbe).
    Manual,
    /// An override on the daemon's command line, as written (`--metered yes`).
    Flag {
        /// The flag and its value.
        flag: String,
    },
    /// Files the kernel exports (sysfs, procfs): the ones read for this value.
    Kernel {
        /// The files (or the folder, when what counts is that it has nothing).
        paths: Vec<PathBuf>,
    },
    /// The free-space statistics (`statvfs(3)`) of the filesystem that holds `path`.
    Statvfs {
        /// The path asked about.
        path: PathBuf,
    },
    /// NetworkManager over D-Bus: properties of one of its objects.
    NetworkManager {
        /// The object read (`/org/freedesktop/NetworkManager`).
        object: String,
        /// The properties that decided the value (`Connectivity`, `Metered`, …).
        properties: Vec<String>,
    },
    /// UPower over D-Bus: properties of one of its objects.
    #[serde(rename = "upower")]
    UPower {
        /// The object read (`/org/freedesktop/UPower`, or its display device).
        object: String,
        /// The properties that decided the value (`OnBattery`, `Percentage`, …).
        properties: Vec<String>,
    },
    /// logind over D-Bus: properties of one of its objects.
    Logind {
        /// The object read (this user's, or the manager's).
        object: String,
        /// The properties that decided the value (`IdleHint`).
        properties: Vec<String>,
    },
    /// Nothing was read: the value every device of this kind has (a Linux machine's screen is
    /// "on" for background work).
    Assumed,
    /// A source this program does not know (sent by a newer server); the reading's text still
    /// says what it is.
    #[serde(other)]
    Other,
}

/// One value's explanation: where it came from, and why it is what it is, as a line for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Where the value came from.
    pub source: Source,
    /// Why the value is what it is, e.g. `wlp2s0 carries the default route (wifi, ARPHRD 1)`.
    pub why: String,
}

impl Reading {
    /// A reading of `source` explained by `why`.
    pub fn new(source: Source, why: impl Into<String>) -> Self {
        Reading {
            source,
            why: why.into(),
        }
    }

    /// A value set by hand.
    pub fn manual() -> Self {
        Reading::new(Source::Manual, "set by hand (backwork device set)")
    }
}

/// The explanation of every value of a [`DeviceState`], field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReadings {
    /// Of [`DeviceState::network`].
    pub network: Reading,
    /// Of [`DeviceState::charging`].
    pub charging: Reading,
    /// Of [`DeviceState::battery`].
    pub battery: Reading,
    /// Of [`DeviceState::storage_low`].
    pub storage: Reading,
    /// Of [`DeviceState::idle`].
    pub idle: Reading,
    /// Of [`DeviceState::screen_on`].
    pub screen: Reading,
}

impl DeviceReadings {
    /// Every value set by hand.
    pub fn manual() -> Self {
        DeviceReadings {
            network: Reading::manual(),
            charging: Reading::manual(),
            battery: Reading::manual(),
            storage: Reading::manual(),
            idle: Reading::manual(),
            screen: Reading::manual(),
        }
    }

    /// The reading of the value `constraint` is decided by (the battery's for
    /// `battery-not-low`, which also holds while charging).
    pub fn of(&self, constraint: Constraint) -> &Reading {
        match constraint {
            Constraint::Network(_) => &self.network,
            Constraint::Charging => &self.charging,
            Constraint::BatteryNotLow => &self.battery,
            Constraint::StorageNotLow => &self.storage,
            Constraint::DeviceIdle => &self.idle,
        }
    }
}

/// A device state with the explanation of each of its values, read together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The values.
    pub state: DeviceState,
    /// Where each came from, and why.
    pub readings: DeviceReadings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_on_the_wire_name_their_kind_and_unknown_kinds_still_decode() {
        let s = Source::Kernel {
            paths: vec!["/proc/loadavg".into()],
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"kernel","paths":["/proc/loadavg"]}"#
        );
        let nm = Source::UPower {
            object: "/org/freedesktop/UPower".into(),
            properties: vec!["OnBattery".into()],
        };
        assert_eq!(
            serde_json::to_string(&nm).unwrap(),
            r#"{"kind":"upower","object":"/org/freedesktop/UPower","properties":["OnBattery"]}"#
        );
        // a newer server's source decodes as Other
        let newer: Source =
            serde_json::from_str(r#"{"kind":"connman","service":"net.connman"}"#).unwrap();
        assert_eq!(newer, Source::Other);
    }
}
