//! Constraints defer a run until they hold (they never skip it); a constraint lost mid-run stops
//! the run and requeues it without penalty; min-interval gates the next start.

mod common;

use backwork_scheduler::{
    Constraint, Constraints, DeviceState, Event, Force, JobRequest, JobState, Network,
    NetworkRequirement, RunOutcome, Selector, StopReason, WaitReason,
};
use common::*;

/// (constraint, a device state that fails it, the same device once it holds)
fn cases() -> Vec<(Constraint, DeviceState, DeviceState)> {
    let ok = DeviceState {
        idle: true,
        ..DeviceState::default()
    };
    vec![
        (
            Constraint::Network(NetworkRequirement::Connected),
            DeviceState {
                network: Network::None,
                ..ok
            },
            DeviceState {
                network: Network::Metered,
                ..ok
            },
        ),
        (
            Constraint::Network(NetworkRequirement::Unmetered),
            DeviceState {
                network: Network::Metered,
                ..ok
            },
            ok,
        ),
        (
            Constraint::Charging,
            DeviceState {
                charging: false,
                battery: Some(50),
                ..ok
            },
            ok,
        ),
        (
            Constraint::BatteryNotLow,
            DeviceState {
                charging: false,
                battery: Some(14),
                ..ok
            },
            DeviceState {
                charging: false,
                battery: Some(15),
                ..ok
            },
        ),
        (
            Constraint::StorageNotLow,
            DeviceState {
                storage_low: true,
                ..ok
            },
            ok,
        ),
        (
            Constraint::DeviceIdle,
            DeviceState { idle: false, ..ok },
            ok,
        ),
    ]
}

#[test]
fn each_constraint_defers_the_run_until_it_holds() {
    for (constraint, failing, holding) in cases() {
        let mut h = Harness::new().auto_succeed();
        h.set_device(|d| *d = failing);
        let id = h.enqueue(JobRequest::once(KIND).requires(constraint));
        h.advance(hours(3));
        assert!(
            h.starts(id).is_empty(),
            "{constraint}: must not run while unmet"
        );
        let why = h.core.why(h.now, id).unwrap();
        assert!(
            matches!(&why[..], [WaitReason::Constraint(u)] if u.constraint == constraint),
            "{constraint}: {why:?}"
        );
        h.set_device(|d| *d = holding);
        assert_eq!(
            h.starts(id),
            [h.now],
            "{constraint}: runs as soon as it holds"
        );
        assert_eq!(h.job(id).state, JobState::Succeeded);
    }
}

#[test]
fn why_lists_every_unmet_constraint_with_the_device_value() {
    let mut h = Harness::new();
    h.set_device(|d| {
        d.charging = false;
        d.battery = Some(9);
        d.network = Network::Metered;
    });
    let id = h.enqueue(
        JobRequest::once(KIND).constraints(
            Constraints::none()
                .network(NetworkRequirement::Unmetered)
                .charging()
                .battery_not_low(),
        ),
    );
    let lines: Vec<String> = h
        .core
        .why(h.now, id)
        .unwrap()
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "constraint network: requires an unmetered network, the device is on a metered network",
            "constraint charging: the device is on battery (9 %)",
            "constraint battery-not-low: the battery is at 9 % (needs 15 % or charging)",
        ]
    );
}

#[test]
fn losing_a_constraint_mid_run_stops_it_without_penalty() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).constraints(Constraints::none().charging()));
    assert_eq!(h.running[&id], 1);
    h.set_device(|d| d.charging = false);
    assert_eq!(h.stops(id), ["constraint charging lost"]);
    // the worker winds down and reports; the run is not charged and there is no backoff
    h.finish(id, RunOutcome::Success(None));
    let job = h.job(id);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempt, 0);
    assert!(!job.backing_off);
    assert_eq!(
        job.stop_reason,
        Some(StopReason::ConstraintLost(Constraint::Charging))
    );
    assert_eq!(job.history[0].stop_reason, job.stop_reason);
    // back on the charger: it runs again at once, with the same attempt number
    h.set_device(|d| d.charging = true);
    assert_eq!(h.running[&id], 1);
    assert_eq!(h.starts(id).len(), 2);
}

#[test]
fn a_run_that_ignores_the_stop_is_aborted_after_the_grace_period() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).constraints(Constraints::none().charging()));
    h.set_device(|d| d.charging = false);
    h.advance(secs(4));
    assert_eq!(h.aborts(id), 0);
    h.advance(secs(1));
    assert_eq!(h.aborts(id), 1, "grace is 5 s by default");
    h.finish(id, RunOutcome::Aborted);
    assert_eq!(h.job(id).state, JobState::Enqueued);
    assert_eq!(h.job(id).attempt, 0);
}

#[test]
fn run_now_with_ignore_constraints_runs_a_deferred_job_and_is_not_stopped() {
    let mut h = Harness::new();
    h.set_device(|d| d.network = Network::None);
    let id = h.enqueue(
        JobRequest::once(KIND)
            .delay(hours(2))
            .requires(Constraint::Network(NetworkRequirement::Connected)),
    );
    // "run now" without ignoring constraints: time gates are lifted, the network is still needed
    h.handle(Event::Force {
        selector: Selector::Id(id),
        force: Force {
            time: true,
            constraints: false,
        },
    })
    .unwrap();
    assert!(h.starts(id).is_empty());
    h.handle(Event::Force {
        selector: Selector::Id(id),
        force: Force {
            time: true,
            constraints: true,
        },
    })
    .unwrap();
    assert_eq!(h.starts(id), [h.now]);
    h.set_device(|d| d.network = Network::Metered);
    h.set_device(|d| d.network = Network::None);
    assert!(
        h.stops(id).is_empty(),
        "a forced run is not stopped for its constraints"
    );
}

#[test]
fn min_interval_gates_the_next_start_after_a_success() {
    let mut h = Harness::new().auto_succeed();
    let start = h.now;
    // a periodic job every 10 minutes, but at least 1 hour between successful runs
    let id = h.enqueue(JobRequest::periodic(KIND, mins(10)).min_interval(hours(1)));
    h.advance(mins(30));
    assert_eq!(h.starts(id), [start]);
    let why = h.core.why(h.now, id).unwrap();
    assert!(
        why.contains(&WaitReason::MinInterval {
            until: start + chrono::TimeDelta::hours(1)
        }),
        "{why:?}"
    );
    h.advance(mins(30));
    assert_eq!(h.starts(id), [start, start + chrono::TimeDelta::hours(1)]);
}
