//! Constraints, device state, and the check between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Battery level (percent) below which the battery counts as low, unless the device is charging.
/// This is Android's `BATTERY_LOW` threshold.
pub const LOW_BATTERY_PERCENT: u8 = 15;

/// The network a job requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkRequirement {
    /// Any usable non-loopback network.
    Connected,
    /// A network that is not metered (not cellular, tethered or marked metered by the user).
    Unmetered,
}

impl fmt::Display for NetworkRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkRequirement::Connected => "connected",
            NetworkRequirement::Unmetered => "unmetered",
        })
    }
}

/// What a job requires of the device before it may run. All are optional; a job runs only while all
/// of the ones it sets hold. The default requires nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Constraints {
    /// The network the job needs, if any.
    pub network: Option<NetworkRequirement>,
    /// The device must be on AC / mains power (a machine with no battery counts as on AC).
    pub charging: bool,
    /// The battery must be at or above [`LOW_BATTERY_PERCENT`], or the device charging.
    pub battery_not_low: bool,
    /// Free space on the store's filesystem must not be low.
    pub storage_not_low: bool,
    /// The device must be idle (no user input / low load, depending on the probe's idle source).
    pub device_idle: bool,
}

/// One constraint a job can set; used to name the constraint that failed or was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// A network of the given kind.
    Network(NetworkRequirement),
    /// AC power.
    Charging,
    /// Battery not low.
    BatteryNotLow,
    /// Storage not low.
    StorageNotLow,
    /// Device idle.
    DeviceIdle,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::Network(NetworkRequirement::Connected) => f.write_str("network"),
            Constraint::Network(NetworkRequirement::Unmetered) => f.write_str("unmetered"),
            Constraint::Charging => f.write_str("charging"),
            Constraint::BatteryNotLow => f.write_str("battery-not-low"),
            Constraint::StorageNotLow => f.write_str("storage-not-low"),
            Constraint::DeviceIdle => f.write_str("idle"),
        }
    }
}

/// Parses the names the CLI uses: `network`, `unmetered`, `charging`, `battery-not-low`,
/// `storage-not-low`, `idle`.
impl FromStr for Constraint {
    type Err = SettingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "network" | "connected" => Constraint::Network(NetworkRequirement::Connected),
            "unmetered" => Constraint::Network(NetworkRequirement::Unmetered),
            "charging" => Constraint::Charging,
            "battery-not-low" | "battery_not_low" => Constraint::BatteryNotLow,
            "storage-not-low" | "storage_not_low" => Constraint::StorageNotLow,
            "idle" | "device-idle" | "device_idle" => Constraint::DeviceIdle,
            other => {
                return Err(SettingError::UnknownConstraint {
                    name: other.to_string(),
                });
            }
        })
    }
}

impl Constraints {
    /// No constraints: the job may run on any device state.
    pub fn none() -> Self {
        Self::default()
    }

    /// Requires a network of the given kind.
    pub fn network(mut self, requirement: NetworkRequirement) -> Self {
        self.network = Some(requirement);
        self
    }

    /// Requires AC power.
    pub fn charging(mut self) -> Self {
        self.charging = true;
        self
    }

    /// Requires the battery not to be low.
    pub fn battery_not_low(mut self) -> Self {
        self.battery_not_low = true;
        self
    }

    /// Requires storage not to be low.
    pub fn storage_not_low(mut self) -> Self {
        self.storage_not_low = true;
        self
    }

    /// Requires the device to be idle.
    pub fn device_idle(mut self) -> Self {
        self.device_idle = true;
        self
    }

    /// Adds one constraint by its [`Constraint`] name. A second network constraint replaces the
    /// first unless it is weaker (`unmetered` wins over `connected`).
    pub fn with(mut self, constraint: Constraint) -> Self {
        match constraint {
            Constraint::Network(req) => {
                self.network = Some(self.network.map_or(req, |old| old.max(req)));
            }
            Constraint::Charging => self.charging = true,
            Constraint::BatteryNotLow => self.battery_not_low = true,
            Constraint::StorageNotLow => self.storage_not_low = true,
            Constraint::DeviceIdle => self.device_idle = true,
        }
        self
    }

    /// True when no constraint is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The constraints that are set, in a fixed order.
    pub fn list(&self) -> Vec<Constraint> {
        self.iter().collect()
    }

    /// The constraints that are set, in the order of [`Constraints::list`], without
    /// allocating (a scheduler checks them at every start).
    pub fn iter(&self) -> impl Iterator<Item = Constraint> + use<> {
        [
            self.network.map(Constraint::Network),
            self.charging.then_some(Constraint::Charging),
            self.battery_not_low.then_some(Constraint::BatteryNotLow),
            self.storage_not_low.then_some(Constraint::StorageNotLow),
            self.device_idle.then_some(Constraint::DeviceIdle),
        ]
        .into_iter()
        .flatten()
    }

    /// Every constraint that `device` does not satisfy, each with the device's current value; empty
    /// when all hold.
    pub fn check(&self, device: &DeviceState) -> Vec<Unmet> {
        self.iter().filter_map(|c| device.unmet(c)).collect()
    }

    /// True when `device` satisfies every constraint.
    pub fn satisfied_by(&self, device: &DeviceState) -> bool {
        self.iter().all(|c| device.unmet(c).is_none())
    }
}

/// The network the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// No usable network.
    None,
    /// A metered network (cellular, tethered, or marked metered).
    Metered,
    /// An unmetered network.
    Unmetered,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::None => "none",
            Network::Metered => "metered",
            Network::Unmetered => "unmetered",
        })
    }
}

/// What the device offers right now, as a probe sees it.
///
/// The default is a healthy plugged-in machine: unmetered network, charging, battery 100 %, storage
/// plentiful, not idle — the state a [`ManualProbe`](crate::ManualProbe) starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceState {
    /// The current network.
    pub network: Network,
    /// On AC / mains power. A machine with no battery reports `true`.
    pub charging: bool,
    /// Battery level in percent, or `None` when the machine has no battery.
    pub battery: Option<u8>,
    /// Free space on the store's filesystem is low.
    pub storage_low: bool,
    /// The device is idle.
    pub idle: bool,
    /// The screen is on (someone is using the device). Mobile OS profiles enter Doze only while
    /// it is off; a desktop reports `true`.
    #[serde(default = "screen_default")]
    pub screen_on: bool,
    /// The device is moving (carried, in a vehicle). Android enters deep Doze only while the
    /// device is stationary (DeviceIdleController's motion sensing); a machine without a motion
    /// sensor reports `false`.
    #[serde(default)]
    pub moving: bool,
}

fn screen_default() -> bool {
    true
}

impl Default for DeviceState {
    fn default() -> Self {
        DeviceState {
            network: Network::Unmetered,
            charging: true,
            battery: Some(100),
            storage_low: false,
            idle: false,
            screen_on: true,
            moving: false,
        }
    }
}

impl DeviceState {
    /// Why `constraint` does not hold on this device, or `None` when it holds.
    pub fn unmet(&self, constraint: Constraint) -> Option<Unmet> {
        let holds = match constraint {
            Constraint::Network(NetworkRequirement::Connected) => self.network != Network::None,
            Constraint::Network(NetworkRequirement::Unmetered) => {
                self.network == Network::Unmetered
            }
            Constraint::Charging => self.charging,
            Constraint::BatteryNotLow => self.battery_not_low(),
            Constraint::StorageNotLow => !self.storage_low,
            Constraint::DeviceIdle => self.idle,
        };
        (!holds).then_some(Unmet {
            constraint,
            device: *self,
        })
    }

    /// True when the battery is at or above [`LOW_BATTERY_PERCENT`], the device is charging, or
    /// there is no battery.
    pub fn battery_not_low(&self) -> bool {
        self.charging || self.battery.is_none_or(|p| p >= LOW_BATTERY_PERCENT)
    }

    /// Applies one `KEY=VALUE` setting, as `backwork device set` takes them:
    /// `network=none|metered|unmetered`, `charging=true|false`, `battery=PERCENT`,
    /// `storage=low|ok`, `idle=true|false`, `screen=on|off`, `moving=true|false`. On error
    /// nothing changes.
    pub fn apply_setting(&mut self, setting: &str) -> Result<(), SettingError> {
        let Some((key, value)) = setting.split_once('=') else {
            return Err(SettingError::NotKeyValue {
                setting: setting.to_string(),
            });
        };
        let bad = || SettingError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        let parse_bool = |v: &str| match v {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(bad()),
        };
        match key.trim() {
            "network" => {
                self.network = match value {
                    "none" => Network::None,
                    "metered" => Network::Metered,
                    "unmetered" => Network::Unmetered,
                    _ => return Err(bad()),
                }
            }
            "charging" => self.charging = parse_bool(value)?,
            "battery" => {
                let p: u8 = value.trim_end_matches('%').parse().map_err(|_| bad())?;
                if p > 100 {
                    return Err(bad());
                }
                self.battery = Some(p);
            }
            "storage" => {
                self.storage_low = match value {
                    "low" => true,
                    "ok" => false,
                    _ => return Err(bad()),
                }
            }
            "idle" => self.idle = parse_bool(value)?,
            "screen" => self.screen_on = parse_bool(value)?,
            "moving" => self.moving = parse_bool(value)?,
            other => {
                return Err(SettingError::UnknownKey {
                    key: other.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// One constraint that the device does not satisfy, with the device state that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unmet {
    /// The constraint that fails.
    pub constraint: Constraint,
    /// The device state it was checked against.
    pub device: DeviceState,
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        match self.constraint {
            Constraint::Network(req) => {
                let needs = match req {
                    NetworkRequirement::Connected => "a network connection",
                    NetworkRequirement::Unmetered => "an unmetered network",
                };
                let has = match d.network {
                    Network::None => "the device has no network".to_string(),
                    other => format!("the device is on a {other} network"),
                };
                write!(f, "network: requires {needs}, {has}")
            }
            Constraint::Charging => match d.battery {
                Some(p) => write!(f, "charging: the device is on battery ({p} %)"),
                None => write!(f, "charging: the device is not on AC power"),
            },
            Constraint::BatteryNotLow => write!(
                f,
                "battery-not-low: the battery is at {} % (needs {LOW_BATTERY_PERCENT} % or charging)",
                d.battery.unwrap_or(0)
            ),
            Constraint::StorageNotLow => {
                f.write_str("storage-not-low: free space on the store's filesystem is low")
            }
            Constraint::DeviceIdle => f.write_str("idle: the device is in use"),
        }
    }
}

/// A device setting or constraint name that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// The setting is not of the form `KEY=VALUE`.
    #[error(
        "`{setting}` is not a KEY=VALUE setting; write for example `charging=false` or `network=metered`"
    )]
    NotKeyValue {
        /// The text given.
        setting: String,
    },
    /// The key is not one of the known device keys.
    #[error(
        "unknown device key `{key}`; the keys are network, charging, battery, storage, idle, screen and moving"
    )]
    UnknownKey {
        /// The key given.
        key: String,
    },
    /// The value does not fit the key.
    #[error(
        "`{value}` is not a valid value for `{key}`; use network=none|metered|unmetered, charging=true|false, battery=0..100, storage=low|ok, idle=true|false, screen=on|off, moving=true|false"
    )]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
    },
    /// The constraint name is unknown.
    #[error(
        "unknown constraint `{name}`; use network, unmetered, charging, battery-not-low, storage-not-low or idle"
    )]
    UnknownConstraint {
        /// The name given.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_battery(percent: u8) -> DeviceState {
        DeviceState {
            charging: false,
            battery: Some(percent),
            ..DeviceState::default()
        }
    }

    #[test]
    fn healthy_device_satisfies_everything_but_idle() {
        let all = Constraints::none()
            .network(NetworkRequirement::Unmetered)
            .charging()
            .battery_not_low()
            .storage_not_low();
        assert!(all.check(&DeviceState::default()).is_empty());
        let idle = Constraints::none().device_idle();
        assert_eq!(
            idle.check(&DeviceState::default())[0].constraint,
            Constraint::DeviceIdle
        );
    }

    #[test]
    fn network_requirements() {
        let connected = Constraints::none().network(NetworkRequirement::Connected);
        let unmetered = Constraints::none().network(NetworkRequirement::Unmetered);
        for (net, c_ok, u_ok) in [
            (Network::None, false, false),
            (Network::Metered, true, false),
            (Network::Unmetered, true, true),
        ] {
            let d = DeviceState {
                network: net,
                ..DeviceState::default()
            };
            assert_eq!(connected.satisfied_by(&d), c_ok, "{net}");
            assert_eq!(unmetered.satisfied_by(&d), u_ok, "{net}");
        }
    }

    #[test]
    fn battery_not_low_threshold_and_charging() {
        let c = Constraints::none().battery_not_low();
        assert!(c.satisfied_by(&on_battery(15)));
        assert!(!c.satisfied_by(&on_battery(14)));
        let charging_low = DeviceState {
            charging: true,
            battery: Some(3),
            ..DeviceState::default()
        };
        assert!(c.satisfied_by(&charging_low));
        let no_battery = DeviceState {
            charging: true,
            battery: None,
            ..DeviceState::default()
        };
        assert!(c.satisfied_by(&no_battery));
        assert!(Constraints::none().charging().satisfied_by(&no_battery));
    }

    #[test]
    fn unmet_messages_carry_the_current_value() {
        let c = Constraints::none().charging().battery_not_low();
        let msgs: Vec<String> = c
            .check(&on_battery(9))
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            msgs,
            [
                "charging: the device is on battery (9 %)",
                "battery-not-low: the battery is at 9 % (needs 15 % or charging)"
            ]
        );
    }

    #[test]
    fn settings_parse_and_bad_ones_change_nothing() {
        let mut d = DeviceState::default();
        d.apply_setting("charging=false").unwrap();
        d.apply_setting("battery=42").unwrap();
        d.apply_setting("network=metered").unwrap();
        d.apply_setting("storage=low").unwrap();
        d.apply_setting("idle=true").unwrap();
        d.apply_setting("screen=off").unwrap();
        d.apply_setting("moving=true").unwrap();
        assert_eq!(
            d,
            DeviceState {
                network: Network::Metered,
                charging: false,
                battery: Some(42),
                storage_low: true,
                idle: true,
                screen_on: false,
                moving: true,
            }
        );
        let before = d;
        for bad in [
            "charging",
            "battery=101",
            "battery=x",
            "network=wifi",
            "colour=blue",
        ] {
            assert!(d.apply_setting(bad).is_err(), "{bad}");
            assert_eq!(d, before);
        }
    }

    #[test]
    fn constraint_names_round_trip() {
        let all = Constraints {
            network: Some(NetworkRequirement::Unmetered),
            charging: true,
            battery_not_low: true,
            storage_not_low: true,
            device_idle: true,
        };
        for c in all.list() {
            assert_eq!(c.to_string().parse::<Constraint>().unwrap(), c);
        }
        assert!("wifi".parse::<Constraint>().is_err());
        let c = Constraints::none()
            .with(Constraint::Network(NetworkRequirement::Unmetered))
            .with(Constraint::Network(NetworkRequirement::Connected));
        assert_eq!(c.network, Some(NetworkRequirement::Unmetered));
    }
}
