//! The tokio runtime shell on paused tokio time: the real actor, timers, workers and
//! cancellation, with virtual time (no test here waits on the real clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use backwork_scheduler::{
    Constraints, JobId, JobRequest, JobState, ManualProbe, MemoryStore, RunResult, Runtime,
    RuntimeError, Selector, StopReason, Time, TokioClock, WorkResult, worker_fn,
};
use chrono::TimeDelta;

fn t0() -> Time {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

const H: u64 = 3600;

/// A runtime builder with batching off: these tests check the runtime's mechanics at exact
/// instants (batching has its own tests, in `batching.rs`).
fn builder() -> backwork_scheduler::RuntimeBuilder {
    Runtime::builder().config(backwork_scheduler::Config {
        batch_window: Duration::ZERO,
        ..backwork_scheduler::Config::default()
    })
}

async fn sleep(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn a_due_job_runs_and_observers_see_each_state() {
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "hello",
            worker_fn(|_| async { WorkResult::success_with("hi") }),
        )
        .start()
        .await
        .unwrap();
    let mut updates = rt.subscribe();
    let id = rt.enqueue(JobRequest::once("hello")).await.unwrap();
    rt.wait_idle().await.unwrap();
    let mut states = Vec::new();
    while let Ok(u) = updates.try_recv() {
        assert_eq!(u.id, id);
        states.push(u.state);
    }
    assert_eq!(states, [JobState::Running, JobState::Succeeded]);
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.output, Some(serde_json::json!("hi")));
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_runtime_does_not_wake_until_its_deadline() {
    let runs = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&runs);
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "later",
            worker_fn(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
                async { WorkResult::success() }
            }),
        )
        .start()
        .await
        .unwrap();
    for _ in 0..1000 {
        rt.enqueue(JobRequest::once("later").delay(Duration::from_secs(6 * H)))
            .await
            .unwrap();
    }
    rt.wait_idle().await.unwrap();
    let before = rt.stats();
    sleep(6 * H - 1).await; // five hours and change of virtual time pass
    let idle = rt.stats();
    assert_eq!(
        idle.wakeups, before.wakeups,
        "no wake-up while nothing is due"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    sleep(2).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1000);
    let after = rt.stats();
    assert!(
        after.timer_fires >= 1 && after.timer_fires <= 2,
        "{after:?}"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn periodic_job_runs_once_per_period_on_virtual_time() {
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker("tick", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let id = rt
        .enqueue(
            JobRequest::periodic("tick", Duration::from_secs(15 * 60))
                .flex(Duration::from_secs(5 * 60)),
        )
        .await
        .unwrap();
    sleep(24 * H + 1).await;
    rt.wait_idle().await.unwrap();
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.runs_total, 96);
    assert_eq!(
        job.last_started,
        Some(t0() + TimeDelta::hours(24) - TimeDelta::minutes(5))
    );
    assert!(rt.stats().timer_fires <= 100, "{:?}", rt.stats());
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_holds() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "slow",
            worker_fn(move |_| {
                let (n, p) = (Arc::clone(&n), Arc::clone(&p));
                async move {
                    let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(c, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    WorkResult::success()
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let ids: Vec<JobId> = futures_lite(&rt, 20).await;
    sleep(60).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "default limit is 4 and it is used"
    );
    for id in ids {
        assert_eq!(
            rt.job(id).await.unwrap().unwrap().state,
            JobState::Succeeded
        );
    }
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

async fn futures_lite(rt: &Runtime, n: usize) -> Vec<JobId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(rt.enqueue(JobRequest::once("slow")).await.unwrap());
    }
    ids
}

#[tokio::test(start_paused = true)]
async fn a_job_can_enqueue_work_from_inside_its_run() {
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "parent",
            worker_fn(|ctx| async move {
                match ctx.runtime().enqueue(JobRequest::once("child")).await {
                    Ok(id) => WorkResult::success_with(id.to_string()),
                    Err(e) => WorkResult::failure_with(e.to_string()),
                }
            }),
        )
        .worker("child", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let parent = rt.enqueue(JobRequest::once("parent")).await.unwrap();
    rt.wait_idle().await.unwrap();
    let p = rt.job(parent).await.unwrap().unwrap();
    assert_eq!(p.state, JobState::Succeeded);
    let child: JobId = p.output.unwrap().as_str().unwrap().parse().unwrap();
    assert_eq!(
        rt.job(child).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_time_limit_cancels_then_drops_a_hanging_worker() {
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "hang",
            worker_fn(|_| async {
                std::future::pending::<()>().await; // ignores its cancellation token
                WorkResult::success()
            }),
        )
        .worker(
            "polite",
            worker_fn(|ctx| async move {
                ctx.cancellation().cancelled().await;
                WorkResult::Retry(None)
            }),
        )
        .start()
        .await
        .unwrap();
    let hang = rt
        .enqueue(
            JobRequest::once("hang")
                .timeout(Some(Duration::from_secs(60)))
                .max_attempts(1),
        )
        .await
        .unwrap();
    let polite = rt
        .enqueue(
            JobRequest::once("polite")
                .timeout(Some(Duration::from_secs(60)))
                .max_attempts(1),
        )
        .await
        .unwrap();
    sleep(61).await;
    rt.wait_idle().await.unwrap();
    for id in [hang, polite] {
        let job = rt.job(id).await.unwrap().unwrap();
        assert_eq!(
            job.state,
            JobState::Failed,
            "one attempt allowed, and it timed out"
        );
        assert_eq!(job.stop_reason, Some(StopReason::Timeout));
        assert_eq!(job.history[0].result, RunResult::Stopped);
    }
    let h = rt.job(hang).await.unwrap().unwrap().history[0].clone();
    let p = rt.job(polite).await.unwrap().unwrap().history[0].clone();
    assert_eq!(
        h.finished - h.started,
        TimeDelta::seconds(65),
        "dropped after the 5 s grace"
    );
    assert_eq!(
        p.finished - p.started,
        TimeDelta::seconds(60),
        "stopped at once"
    );
    assert!(h.note.unwrap().contains("grace"));
    assert_eq!(rt.stats().timer_fires, 2);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_lost_constraint_fires_the_token_and_requeues_without_penalty() {
    let probe = ManualProbe::new();
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .probe(probe.clone())
        .worker(
            "upload",
            worker_fn(|ctx| async move {
                tokio::select! {
                    () = ctx.cancellation().cancelled() => WorkResult::Retry(None),
                    () = tokio::time::sleep(Duration::from_secs(120)) => WorkResult::success(),
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let id = rt
        .enqueue(JobRequest::once("upload").constraints(Constraints::none().charging()))
        .await
        .unwrap();
    sleep(10).await;
    probe.apply(["charging=false"]).unwrap();
    sleep(1).await;
    rt.wait_idle().await.unwrap();
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempt, 0);
    assert!(!job.backing_off);
    probe.apply(["charging=true"]).unwrap();
    sleep(200).await;
    rt.wait_idle().await.unwrap();
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.runs_total, 2);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_context_carries_attempt_and_idempotency_key() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "flaky",
            worker_fn(move |ctx| {
                s.lock().unwrap().push((
                    ctx.attempt(),
                    ctx.idempotency_key().to_string(),
                    ctx.input().clone(),
                ));
                let attempt = ctx.attempt();
                async move {
                    if attempt < 3 {
                        WorkResult::Retry(None)
                    } else {
                        WorkResult::success()
                    }
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let id = rt
        .enqueue(JobRequest::once("flaky").input(serde_json::json!({ "file": "a.txt" })))
        .await
        .unwrap();
    sleep(100).await;
    rt.wait_idle().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        (1..=3)
            .map(|n| (
                n,
                format!("{id}-0-{n}"),
                serde_json::json!({ "file": "a.txt" })
            ))
            .collect::<Vec<_>>()
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_runs_their_grace_then_persists() {
    let store = MemoryStore::new();
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .store(store.clone())
        .worker(
            "polite",
            worker_fn(|ctx| async move {
                ctx.cancellation().cancelled().await;
                tokio::time::sleep(Duration::from_secs(1)).await; // wind down
                WorkResult::success()
            }),
        )
        .worker(
            "stubborn",
            worker_fn(|_| std::future::pending::<WorkResult>()),
        )
        .start()
        .await
        .unwrap();
    let a = rt.enqueue(JobRequest::once("polite")).await.unwrap();
    let b = rt.enqueue(JobRequest::once("stubborn")).await.unwrap();
    sleep(5).await;
    let started = tokio::time::Instant::now();
    rt.shutdown(Duration::from_secs(3)).await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "waited for the grace period, no longer"
    );
    for id in [a, b] {
        let job = store.get(id).unwrap();
        assert_eq!(
            job.state,
            JobState::Enqueued,
            "an interrupted run is requeued"
        );
        assert_eq!(job.stop_reason, Some(StopReason::Shutdown));
        assert_eq!(job.attempt, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_the_same_store_recovers_a_job_that_was_running() {
    let store = MemoryStore::new();
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .store(store.clone())
        .worker("work", worker_fn(|_| std::future::pending::<WorkResult>()))
        .start()
        .await
        .unwrap();
    let id = rt
        .enqueue(JobRequest::once("work").timeout(None))
        .await
        .unwrap();
    sleep(1).await;
    // the process dies now: what is on "disk" is this snapshot
    let on_disk = store.snapshot();
    assert_eq!(on_disk[0].state, JobState::Running);
    assert_eq!(
        on_disk[0].attempt, 1,
        "the attempt is durable before the worker runs"
    );
    drop(rt);

    let recovered = MemoryStore::with_jobs(on_disk);
    let rt = builder()
        .clock(TokioClock::starting_at(t0() + TimeDelta::minutes(5)))
        .store(recovered.clone())
        .worker("work", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.stop_reason, Some(StopReason::Unknown));
    assert_eq!(
        recovered.get(id).unwrap().state,
        JobState::Enqueued,
        "recovery is persisted"
    );
    sleep(31).await; // backoff after the crash: 30 s
    rt.wait_idle().await.unwrap();
    let job = rt.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 2);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_acknowledges_nothing_and_the_runtime_reopens_the_store() {
    let store = MemoryStore::new();
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .store(store.clone())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let ok = rt
        .enqueue(JobRequest::once("w").delay(Duration::from_secs(H)))
        .await
        .unwrap();
    store.fail_commits(true);
    let err = rt.enqueue(JobRequest::once("w")).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Store(_)), "{err}");
    assert!(err.to_string().contains("failed to commit"));
    assert_eq!(store.snapshot().len(), 1, "the refused job is not stored");
    store.fail_commits(false);
    // the runtime reopened the store (with backoff) and goes on from what is on it
    let jobs = rt.jobs().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [ok]);
    let again = rt.enqueue(JobRequest::once("w")).await.unwrap();
    rt.wait_idle().await.unwrap();
    assert_eq!(
        rt.job(again).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn watch_and_progress() {
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "long",
            worker_fn(|ctx| async move {
                for pct in [25, 50, 75] {
                    ctx.set_progress(serde_json::json!({ "pct": pct }));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                WorkResult::success()
            }),
        )
        .start()
        .await
        .unwrap();
    let mut updates = rt.subscribe();
    let id = rt
        .enqueue(JobRequest::once("long").delay(Duration::from_secs(10)))
        .await
        .unwrap();
    let mut watch = rt.watch(id).await.unwrap().unwrap();
    assert_eq!(watch.borrow_and_update().state, JobState::Enqueued);
    sleep(20).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(watch.borrow_and_update().state, JobState::Succeeded);
    let mut progress = Vec::new();
    while let Ok(u) = updates.try_recv() {
        if let Some(p) = u.progress {
            progress.push(p["pct"].as_u64().unwrap());
        }
    }
    assert_eq!(progress, [25, 50, 75]);
    assert!(rt.watch(JobId::MAX).await.unwrap().is_none());
    assert!(rt.cancel(Selector::Id(JobId::MAX)).await.is_err());
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// A probe that records what the runtime tells it about waiting constraints.
#[derive(Debug, Clone, Default)]
struct Recording {
    inner: ManualProbe,
    told: Arc<std::sync::Mutex<Vec<Vec<backwork_scheduler::Constraint>>>>,
}

impl backwork_scheduler::Probe for Recording {
    fn subscribe(&self) -> tokio::sync::watch::Receiver<backwork_scheduler::DeviceState> {
        self.inner.subscribe()
    }
    fn waiting_on(&self, waiting: &std::collections::BTreeSet<backwork_scheduler::Constraint>) {
        self.told
            .lock()
            .unwrap()
            .push(waiting.iter().copied().collect());
    }
}

#[tokio::test(start_paused = true)]
async fn the_probe_is_told_which_constraints_due_jobs_wait_on() {
    use backwork_scheduler::Constraint;
    let probe = Recording::default();
    probe.inner.apply(["storage=low"]).unwrap();
    let rt = builder()
        .clock(TokioClock::starting_at(t0()))
        .probe(probe.clone())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    // not due yet: nothing to watch
    let id = rt
        .enqueue(
            JobRequest::once("w")
                .delay(Duration::from_secs(60))
                .constraints(Constraints::none().storage_not_low()),
        )
        .await
        .unwrap();
    rt.wait_idle().await.unwrap();
    assert!(probe.told.lock().unwrap().is_empty());
    // due, and waiting on storage: the probe is told
    sleep(61).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(
        *probe.told.lock().unwrap(),
        [vec![Constraint::StorageNotLow]]
    );
    // storage comes back: the job runs and nothing is waited on any more
    probe.inner.apply(["storage=ok"]).unwrap();
    sleep(1).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(
        rt.job(id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert_eq!(
        *probe.told.lock().unwrap(),
        [vec![Constraint::StorageNotLow], vec![]]
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}
