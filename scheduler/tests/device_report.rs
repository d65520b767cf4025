//! `RuntimeHandle::device_report`: the device state the scheduler decides by, with the probe's
//! explanation of that very state — a change the probe just published is taken first, a probe
//! that cannot explain gives none, and an explanation of another state than the scheduler's is
//! never handed out as this one's (issue 12, item 8: "`device` explains itself").

use backwork_constraints::{
    DeviceReadings, DeviceReport, DeviceState, ManualProbe, Network, Probe, Reading, Source,
};
use backwork_scheduler::Runtime;
use tokio::sync::watch;

#[tokio::test]
async fn a_change_just_published_is_explained_with_its_state() {
    let probe = ManualProbe::new();
    let rt = Runtime::builder()
        .probe(probe.clone())
        .start()
        .await
        .unwrap();
    probe.apply(["network=metered", "idle=true"]).unwrap();
    let (state, readings) = rt.handle().device_report().await.unwrap();
    assert_eq!(state.network, Network::Metered);
    assert!(state.idle);
    assert_eq!(readings, Some(DeviceReadings::manual()));
    assert_eq!(rt.handle().device().await.unwrap(), state);
}

/// A probe that publishes one state and explains another (or nothing).
struct Disagreeing {
    tx: watch::Sender<DeviceState>,
    explains: Option<DeviceState>,
}

impl Probe for Disagreeing {
    fn subscribe(&self) -> watch::Receiver<DeviceState> {
        self.tx.subscribe()
    }

    fn report(&self) -> Option<DeviceReport> {
        let reading = || Reading::new(Source::Assumed, "the probe's own words");
        self.explains.map(|state| DeviceReport {
            state,
            readings: DeviceReadings {
                network: reading(),
                charging: reading(),
                battery: reading(),
                storage: reading(),
                idle: reading(),
                screen: reading(),
            },
        })
    }
}

#[tokio::test]
async fn no_explanation_rather_than_one_of_another_state() {
    let published = DeviceState::default();
    let other = DeviceState {
        network: Network::None,
        ..published
    };
    for (explains, expected) in [(None, false), (Some(other), false), (Some(published), true)] {
        let (tx, _) = watch::channel(published);
        let rt = Runtime::builder()
            .probe(Disagreeing { tx, explains })
            .start()
            .await
            .unwrap();
        let (state, readings) = rt.handle().device_report().await.unwrap();
        assert_eq!(state, published);
        assert_eq!(readings.is_some(), expected, "{explains:?}");
    }
}
