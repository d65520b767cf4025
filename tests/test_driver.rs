//! The test driver as a library user sees it through the `backwork` facade: a virtual clock,
//! scripted device state, and "constraints / initial delay / period delay met".

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backwork::{
    Constraints, JobRequest, JobState, NetworkRequirement, TestDriver, WaitReason, WorkResult,
    worker_fn,
};

fn counting() -> (Arc<AtomicU32>, impl backwork::Worker) {
    let n = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&n);
    (
        n,
        worker_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { WorkResult::success() }
        }),
    )
}

#[tokio::test]
async fn initial_delay_met_runs_a_delayed_job_now() {
    let (runs, w) = counting();
    let d = TestDriver::builder().worker("w", w).start().await.unwrap();
    let id = d
        .enqueue(JobRequest::once("w").delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    d.run_until_idle().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    d.set_initial_delay_met(id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(d.job(id).await.unwrap().unwrap().state, JobState::Succeeded);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn all_constraints_met_bypasses_the_device_for_one_run() {
    let (runs, w) = counting();
    let d = TestDriver::builder().worker("w", w).start().await.unwrap();
    d.set_device(|s| s.network = backwork::Network::None)
        .await
        .unwrap();
    let id = d
        .enqueue(
            JobRequest::periodic("w", Duration::from_secs(900))
                .constraints(Constraints::none().network(NetworkRequirement::Connected)),
        )
        .await
        .unwrap();
    d.run_until_idle().await.unwrap();
    assert!(matches!(
        &d.why(id).await.unwrap()[..],
        [WaitReason::Constraint(_)]
    ));
    d.set_all_constraints_met(id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // only for that run: the next period waits for the network again
    d.advance(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn advance_steps_through_every_deadline() {
    let (runs, w) = counting();
    let d = TestDriver::builder().worker("w", w).start().await.unwrap();
    let start = d.now();
    let id = d
        .enqueue(
            JobRequest::periodic("w", Duration::from_secs(3600)).flex(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    d.advance(Duration::from_secs(7 * 24 * 3600)).await.unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        168,
        "one run per hour for a week"
    );
    assert_eq!(d.now() - start, chrono::TimeDelta::days(7));
    let job = d.job(id).await.unwrap().unwrap();
    assert_eq!(job.cycle, 168);
    d.set_period_delay_met(id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 169);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_driver_restarted_on_the_same_store_resumes() {
    let (runs, w) = counting();
    let d = TestDriver::builder().worker("w", w).start().await.unwrap();
    let store = d.store().clone();
    let start = d.now();
    let id = d
        .enqueue(JobRequest::periodic("w", Duration::from_secs(3600)))
        .await
        .unwrap();
    // two periods, the last slot's run up to the 1-min batching window late
    d.advance(Duration::from_secs(2 * 3600 + 60)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    d.shutdown().await.unwrap();

    let (runs2, w2) = counting();
    let d = TestDriver::builder()
        .worker("w", w2)
        .store(store)
        .start_at(start + chrono::TimeDelta::minutes(150))
        .start()
        .await
        .unwrap();
    // the 02:00 period already ran; the next is 03:00
    assert_eq!(runs2.load(Ordering::SeqCst), 0);
    d.advance(Duration::from_secs(31 * 60)).await.unwrap();
    assert_eq!(runs2.load(Ordering::SeqCst), 1);
    assert_eq!(d.job(id).await.unwrap().unwrap().runs_total, 4);
    d.shutdown().await.unwrap();
}
