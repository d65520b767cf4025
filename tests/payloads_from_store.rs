//! With a durable store the scheduling core holds no payloads: a job's input, its output and its
//! runs live in the store, and the runtime reads them back by id when a run starts (after the
//! start's commit) and when someone asks for the job. This guards against a worker getting
//! anything but the exact input it was enqueued with — a large one, in the same process and
//! after a restart — against a chained job's input merged from the wrong outputs (or from none)
//! once the prerequisites' outputs are only on disk (or a worker run on an input that could not
//! be merged), and against `job()` answering without the payloads the core no longer keeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork::{
    Chain, Config, JobId, JobRequest, JobState, OpenMode, RedbStore, Runtime, RuntimeHandle,
    TokioClock, WorkResult, worker_fn,
};
use serde_json::{Value, json};

fn t0() -> backwork::Time {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// A 64 KiB input (the blob's 65 536 characters, each position's own digit, so a shifted or cut
/// copy differs), as a user would enqueue it.
fn large_input(tag: &str) -> Value {
    let blob: String = (0..65_536u32)
        .map(|i| char::from_digit((i * 7 + i / 13) % 36, 36).expect("a base-36 digit"))
        .collect();
    json!({ "tag": tag, "blob": blob })
}

/// The inputs the workers got, by job.
type Seen = Arc<Mutex<Vec<(JobId, Value)>>>;

async fn runtime(
    path: &std::path::Path,
    at: backwork::Time,
    kinds: &[&str],
    seen: &Seen,
) -> Runtime {
    let mut builder = Runtime::builder()
        .clock(TokioClock::starting_at(at))
        // above the default cap of 10 KiB (WorkManager's `Data` limit), as an app may set it
        .config(Config {
            payload_cap: 128 * 1024,
            ..Config::default()
        })
        .store(RedbStore::open(path, OpenMode::CreateIfMissing).unwrap());
    for kind in kinds {
        let seen = Arc::clone(seen);
        builder = builder.worker(
            *kind,
            worker_fn(move |ctx| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push((ctx.id(), ctx.input().clone()));
                    // what a link passes on: its own input's tag, and its name
                    let tag = ctx.own_input().get("tag").cloned().unwrap_or(Value::Null);
                    WorkResult::success_with(json!({ "from": ctx.kind(), "tag": tag }))
                }
            }),
        );
    }
    builder.start().await.unwrap()
}

fn input_of(seen: &Seen, id: JobId) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, v)| v.clone())
        .collect()
}

async fn whole(rt: &RuntimeHandle, id: JobId) -> backwork::Job {
    rt.job(id).await.unwrap().expect("the job is known")
}

#[tokio::test(start_paused = true)]
async fn a_large_input_runs_exactly_as_given_in_the_same_process_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let seen: Seen = Arc::default();
    let rt = runtime(&path, t0(), &["w"], &seen).await;
    let now = rt
        .enqueue(JobRequest::once("w").input(large_input("now")))
        .await
        .unwrap();
    let later = rt
        .enqueue(
            JobRequest::once("w")
                .delay(Duration::from_secs(3600))
                .input(large_input("later")),
        )
        .await
        .unwrap();
    rt.wait_idle().await.unwrap();
    assert_eq!(input_of(&seen, now), [large_input("now")], "same process");
    let job = whole(&rt, now).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(
        job.request.input,
        large_input("now"),
        "job() reads the input"
    );
    assert_eq!(job.output, Some(json!({"from": "w", "tag": "now"})));
    assert_eq!(job.history.len(), 1, "job() reads the runs");
    assert_eq!(
        whole(&rt, later).await.request.input,
        large_input("later"),
        "a pending job's input, read from the store"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();

    // a new process, after the delay
    let rt = runtime(&path, t0() + chrono::TimeDelta::hours(2), &["w"], &seen).await;
    rt.wait_idle().await.unwrap();
    assert_eq!(
        input_of(&seen, later),
        [large_input("later")],
        "after a restart"
    );
    assert_eq!(whole(&rt, later).await.state, JobState::Succeeded);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_chained_job_merges_its_prerequisites_outputs_read_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let seen: Seen = Arc::default();
    // the first process runs only the first links: the last one's kind has no worker yet
    let rt = runtime(&path, t0(), &["first"], &seen).await;
    let chain = Chain::begin_with([
        JobRequest::once("first").input(json!({"tag": "a"})),
        JobRequest::once("first").input(json!({"tag": "b"})),
    ])
    .then([JobRequest::once("last").input(json!({"own": true, "from": "me"}))]);
    let ids = rt.enqueue_chain(chain).await.unwrap().ids;
    rt.wait_idle().await.unwrap();
    let last = ids[2];
    assert!(
        input_of(&seen, last).is_empty(),
        "no worker for the last link yet"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();

    let rt = runtime(
        &path,
        t0() + chrono::TimeDelta::minutes(1),
        &["first", "last"],
        &seen,
    )
    .await;
    rt.wait_idle().await.unwrap();
    // WorkManager's OverwritingInputMerger over [own input, output of a, output of b]: a later
    // input's value for a key replaces an earlier one's
    assert_eq!(
        input_of(&seen, last),
        [json!({"own": true, "from": "first", "tag": "b"})]
    );
    assert_eq!(whole(&rt, last).await.state, JobState::Succeeded);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_link_whose_input_cannot_be_merged_fails_without_its_worker_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let ran: Seen = Arc::default();
    let seen = Arc::clone(&ran);
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(t0()))
        .store(RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap())
        // a number is not WorkManager `Data` (a map of keys to values): it cannot be merged
        .worker(
            "first",
            worker_fn(|_| async { WorkResult::success_with(5) }),
        )
        .worker(
            "last",
            worker_fn(move |ctx| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push((ctx.id(), ctx.input().clone()));
                    WorkResult::success()
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let chain = Chain::begin_with([JobRequest::once("first")]).then([JobRequest::once("last")]);
    let ids = rt.enqueue_chain(chain).await.unwrap().ids;
    rt.wait_idle().await.unwrap();
    let last = whole(&rt, ids[1]).await;
    assert_eq!(last.state, JobState::Failed);
    assert!(input_of(&ran, ids[1]).is_empty(), "its worker never ran");
    let run = last.history.last().expect("the attempt is recorded");
    assert_eq!(run.result, backwork::RunResult::Failure);
    let note = run.note.as_deref().unwrap_or("");
    assert!(
        note.contains("not started") && note.contains("number"),
        "the note says why: {note}"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}
