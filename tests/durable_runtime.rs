//! The runtime on the redb store: what it acknowledged is on disk, a clean shutdown leaves a store
//! the next runtime resumes from, a record left `running` by a dead process is recovered, and
//! bulk enqueue writes many jobs in one commit.

use std::time::Duration;

use backwork::{
    ChangeSet, JobRequest, JobState, OpenMode, RedbStore, Runtime, StopReason, Store, TokioClock,
    WorkResult, worker_fn,
};

fn t0() -> backwork::Time {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn acknowledged_jobs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(t0()))
        .store(RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let done = rt.enqueue(JobRequest::once("w")).await.unwrap();
    let later = rt
        .enqueue(JobRequest::periodic("w", Duration::from_secs(3600)).tag("p"))
        .await
        .unwrap();
    rt.wait_idle().await.unwrap();
    rt.shutdown(Duration::from_secs(1)).await.unwrap();

    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    let jobs = store.load().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(store.get(done).unwrap().unwrap().state, JobState::Succeeded);
    assert_eq!(store.get(later).unwrap().unwrap().runs_total, 1);
    drop(store);

    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(
            t0() + chrono::TimeDelta::minutes(30),
        ))
        .store(RedbStore::open(&path, OpenMode::MustExist).unwrap())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(rt.job(later).await.unwrap().unwrap().runs_total, 2);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_record_left_running_is_recovered_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // a process enqueued a job, started it (attempt 1 durable), and died
    {
        let mut core = backwork::Scheduler::new(Default::default(), Box::new(backwork::AllowAll));
        let now = t0();
        core.handle(now, backwork::Event::WorkerRegistered("w".into()))
            .unwrap();
        let id = backwork::JobId::new_v7(now, [1; 10]);
        core.handle(
            now,
            backwork::Event::Enqueue {
                id,
                request: JobRequest::once("w"),
            },
        )
        .unwrap();
        let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        let jobs: Vec<_> = core.jobs().collect();
        assert_eq!(jobs[0].state, JobState::Running);
        store.commit(&ChangeSet::whole(jobs)).unwrap();
    }
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(
            t0() + chrono::TimeDelta::minutes(1),
        ))
        .store(RedbStore::open(&path, OpenMode::MustExist).unwrap())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let job = rt.jobs().await.unwrap().remove(0);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.stop_reason, Some(StopReason::Unknown));
    assert_eq!(job.attempt, 1);
    // the 30 s backoff, plus up to the 1-min batching window
    tokio::time::sleep(Duration::from_secs(91)).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(
        rt.job(job.id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bulk_enqueue_is_one_commit_and_refuses_bad_requests_individually() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(t0()))
        .store(RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap())
        .start()
        .await
        .unwrap();
    let before = rt.stats().commits;
    let mut reqs: Vec<_> = (0..1000)
        .map(|i| JobRequest::once("nobody").input(serde_json::json!(i)))
        .collect();
    reqs.insert(500, JobRequest::once(""));
    let results = rt.enqueue_many(reqs).await.unwrap();
    assert_eq!(results.len(), 1001);
    assert!(results[500].is_err());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1000);
    assert_eq!(
        rt.stats().commits - before,
        1,
        "one durable commit for the whole batch"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        RedbStore::open(&path, OpenMode::MustExist)
            .unwrap()
            .len()
            .unwrap(),
        1000
    );
}
