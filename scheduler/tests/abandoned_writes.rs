//! A write whose caller gave up before the runtime took it (a timed-out CLI call, a dropped
//! future) is never made: nobody would learn whether it happened, and DESIGN §3 says nothing is
//! applied after its caller stopped waiting. On paused tokio time, current-thread: the runtime's
//! actor cannot run between the caller's send and its give-up.

use std::time::Duration;

use backwork_scheduler::{JobRequest, MemoryStore, Runtime, TokioClock, WorkResult, worker_fn};

#[tokio::test(start_paused = true)]
async fn a_write_whose_caller_gave_up_is_not_made() {
    let store = MemoryStore::new();
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ))
        .store(store.clone())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let later = || JobRequest::once("w").delay(Duration::from_secs(3600));
    let kept = rt.enqueue(later()).await.unwrap();
    // sent, then abandoned before any answer could come
    let gave_up = tokio::time::timeout(Duration::ZERO, rt.enqueue(later())).await;
    assert!(gave_up.is_err(), "the call was still waiting");
    let gave_up_many =
        tokio::time::timeout(Duration::ZERO, rt.enqueue_many(vec![later(), later()])).await;
    assert!(gave_up_many.is_err());
    // a caller that waits is still served, after the abandoned ones
    let waited = rt.enqueue(later()).await.unwrap();
    let jobs: Vec<_> = rt.jobs().await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(jobs, [kept, waited]);
    assert_eq!(
        store.snapshot().len(),
        2,
        "nothing abandoned reached the store"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}
