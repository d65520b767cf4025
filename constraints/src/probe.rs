//! Device probes: sources of [`DeviceState`] that tell their subscribers when it changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::{Constraint, DeviceReadings, DeviceReport, DeviceState, SettingError};

/// A source of device state. The runtime subscribes once and is woken only when the state changes:
/// probes are event-driven, never polled by the scheduler.
pub trait Probe: Send + Sync + 'static {
    /// A receiver that always holds the latest device state and is notified on every change.
    fn subscribe(&self) -> watch::Receiver<DeviceState>;

    /// The device state right now.
    fn current(&self) -> DeviceState {
        *self.subscribe().borrow()
    }

    /// The state with where each value came from and why ([`DeviceReport`]), computed with the
    /// values; `None` (the default) when the probe cannot say.
    fn report(&self) -> Option<DeviceReport> {
        None
    }

    /// Told by the runtime whenever the set of constraints that due jobs are waiting on changes.
    /// A probe that has no event source for some of them (storage, idleness) reads them when
    /// they become wanted and may poll them — at most once a minute — only while they are.
    fn waiting_on(&self, _waiting: &BTreeSet<Constraint>) {}

    /// A receiver that holds `true` while the machine is about to sleep — from logind's
    /// `PrepareForSleep(true)` until its `PrepareForSleep(false)` after the resume — and is
    /// notified on every change; `None` (the default) when the probe cannot tell. The runtime
    /// starts nothing while it is `true` and applies catch-up at once when it turns `false`.
    fn sleeping(&self) -> Option<watch::Receiver<bool>> {
        None
    }
}

/// A probe whose state is set by hand: by tests, the simulator, and `backwork daemon --device
/// manual`. It starts as a healthy plugged-in machine ([`DeviceState::default`]). Clones share one
/// state.
///
/// ```
/// use backwork_constraints::{ManualProbe, Probe};
///
/// let probe = ManualProbe::new();
/// probe.apply(["charging=false"]).unwrap();
/// assert!(!probe.current().charging);
/// ```
#[derive(Debug, Clone)]
pub struct ManualProbe {
    tx: Arc<watch::Sender<DeviceState>>,
    sleeping: Arc<watch::Sender<bool>>,
}

impl Default for ManualProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualProbe {
    /// A probe reporting a healthy plugged-in machine.
    pub fn new() -> Self {
        Self::with_state(DeviceState::default())
    }

    /// A probe reporting `state`.
    pub fn with_state(state: DeviceState) -> Self {
        let (tx, _rx) = watch::channel(state);
        ManualProbe {
            tx: Arc::new(tx),
            sleeping: Arc::new(watch::channel(false).0),
        }
    }

    /// Replaces the whole device state. Subscribers are notified only if it differs.
    pub fn set(&self, state: DeviceState) {
        self.tx.send_if_modified(|cur| {
            let changed = *cur != state;
            *cur = state;
            changed
        });
    }

    /// Changes the device state with `f`. Subscribers are notified only if it differs.
    pub fn update(&self, f: impl FnOnce(&mut DeviceState)) {
        let mut next = self.current();
        f(&mut next);
        self.set(next);
    }

    /// Applies `KEY=VALUE` settings (see [`DeviceState::apply_setting`]) all at once; if one is
    /// invalid, none is applied. Returns the new state.
    pub fn apply<'a>(
        &self,
        settings: impl IntoIterator<Item = &'a str>,
    ) -> Result<DeviceState, SettingError> {
        let mut next = self.current();
        for s in settings {
            next.apply_setting(s)?;
        }
        self.set(next);
        Ok(next)
    }

    /// Says the machine is about to sleep (`true`, as logind's `PrepareForSleep(true)`) or has
    /// resumed (`false`); see [`Probe::sleeping`]. Subscribers are notified only on a change.
    pub fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.send_if_modified(|cur| {
            let changed = *cur != sleeping;
            *cur = sleeping;
            changed
        });
    }
}

impl Probe for ManualProbe {
    fn subscribe(&self) -> watch::Receiver<DeviceState> {
        self.tx.subscribe()
    }

    /// Every value set by hand.
    fn report(&self) -> Option<DeviceReport> {
        Some(DeviceReport {
            state: self.current(),
            readings: DeviceReadings::manual(),
        })
    }

    /// What [`ManualProbe::set_sleeping`] last said (`false` until then).
    fn sleeping(&self) -> Option<watch::Receiver<bool>> {
        Some(self.sleeping.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Network;

    #[tokio::test]
    async fn subscribers_see_changes_only() {
        let probe = ManualProbe::new();
        let mut rx = probe.subscribe();
        rx.borrow_and_update();
        probe.set(DeviceState::default());
        assert!(
            !rx.has_changed().unwrap(),
            "identical state must not notify"
        );
        probe.apply(["network=none"]).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().network, Network::None);
    }

    #[test]
    fn apply_is_all_or_nothing() {
        let probe = ManualProbe::new();
        assert!(probe.apply(["charging=false", "battery=900"]).is_err());
        assert!(probe.current().charging);
    }
}
