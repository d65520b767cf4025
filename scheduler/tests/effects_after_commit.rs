//! The runtime commits one batch while it gathers the next (pipelined group commit). This guards
//! DESIGN §1 and §3 against an effect escaping before its commit: while a commit is held on its
//! way to the disk, the caller whose enqueue it holds is not answered and the worker whose start
//! it holds does not run; a caller whose request was gathered on top of a commit that then fails
//! is refused too (its change is not applied later), and nothing refused reaches the store.
//!
//! The store here holds every commit at a gate the test opens (with success or failure); the
//! runtime runs on real time, and each "nothing happened" check comes after the actor has
//! provably taken the next input and the worker tasks had a bounded while to run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use backwork_scheduler::{
    ChangeSet, Job, JobId, JobRequest, JobState, MemoryStore, Payloads, Runtime, RuntimeError,
    RuntimeHandle, Store, StoreError, WorkResult, worker_fn,
};

/// A [`MemoryStore`] whose commits wait at a gate: each commit takes one verdict from the test
/// (`true`: write it, `false`: fail it) before it returns, until the test opens the gate.
struct GatedStore {
    inner: MemoryStore,
    verdicts: Mutex<mpsc::Receiver<bool>>,
    entered: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
}

impl Store for GatedStore {
    fn load(&mut self) -> Result<Vec<Job>, StoreError> {
        self.inner.load()
    }

    fn payloads(&mut self, ids: &[JobId], history: bool) -> Result<Vec<Payloads>, StoreError> {
        self.inner.payloads(ids, history)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) {
            return self.inner.commit(changes);
        }
        let verdict = self
            .verdicts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
            .unwrap_or(false);
        if verdict {
            self.inner.commit(changes)
        } else {
            Err(StoreError::Io {
                path: "gated".into(),
                action: "commit",
                detail: "the test failed this commit".into(),
            })
        }
    }
}

/// Polls `cond` every millisecond for at most five seconds (real time).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..5000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Gives spawned tasks (a worker that escaped, an answer sent early) a bounded while to show.
async fn let_tasks_run() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

struct Setup {
    rt: Runtime,
    store: MemoryStore,
    verdicts: mpsc::Sender<bool>,
    entered: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
}

impl Setup {
    /// Lets every commit through from now on (the one waiting, if any, too).
    fn open_gate(&self) {
        self.open.store(true, Ordering::SeqCst);
        let _ = self.verdicts.send(true);
    }
}

async fn setup() -> Setup {
    let store = MemoryStore::new();
    let (verdicts, rx) = mpsc::channel();
    let entered = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&started);
    let rt = Runtime::builder()
        .store(GatedStore {
            inner: store.clone(),
            verdicts: Mutex::new(rx),
            entered: Arc::clone(&entered),
            open: Arc::clone(&open),
        })
        .worker(
            "w",
            worker_fn(move |_| {
                s.store(true, Ordering::SeqCst);
                async { WorkResult::success() }
            }),
        )
        .start()
        .await
        .unwrap();
    Setup {
        rt,
        store,
        verdicts,
        entered,
        open,
        started,
    }
}

fn enqueue(
    h: &RuntimeHandle,
) -> tokio::task::JoinHandle<Result<backwork_scheduler::JobId, RuntimeError>> {
    let h = h.clone();
    tokio::spawn(async move { h.enqueue(JobRequest::once("w")).await })
}

#[tokio::test]
async fn a_held_commit_holds_its_answer_and_its_start() {
    let s = setup().await;
    let a = enqueue(&s.rt.handle());
    eventually("the first commit", || s.entered.load(Ordering::SeqCst) == 1).await;
    // a second caller comes while the first commit is on its way: it is taken (and fed to the
    // core) now, but waits for a commit of its own
    let before = s.rt.stats().wakeups;
    let b = enqueue(&s.rt.handle());
    eventually("the actor to take the second enqueue", || {
        s.rt.stats().wakeups > before
    })
    .await;
    let_tasks_run().await;
    assert!(!a.is_finished(), "answered before its commit was durable");
    assert!(!b.is_finished(), "answered before any commit of it");
    assert!(
        !s.started.load(Ordering::SeqCst),
        "the worker started before its start was durable"
    );
    assert!(s.store.snapshot().is_empty());

    s.verdicts.send(true).unwrap();
    let a = a.await.unwrap().unwrap();
    // the second batch (the second enqueue, and the start the first one's commit freed) goes
    // to the disk only now
    eventually("the second commit", || {
        s.entered.load(Ordering::SeqCst) == 2
    })
    .await;
    let_tasks_run().await;
    assert!(!b.is_finished(), "answered before its commit was durable");
    assert_eq!(s.store.snapshot().len(), 1);
    s.verdicts.send(true).unwrap();
    let b = b.await.unwrap().unwrap();
    eventually("the worker", || s.started.load(Ordering::SeqCst)).await;
    // let every later commit (the runs' ends) through
    s.open_gate();
    s.rt.wait_idle().await.unwrap();
    for id in [a, b] {
        assert_eq!(s.store.get(id).unwrap().state, JobState::Succeeded);
    }
    s.rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_refuses_the_batch_gathered_on_top_of_it() {
    let s = setup().await;
    let a = enqueue(&s.rt.handle());
    eventually("the first commit", || s.entered.load(Ordering::SeqCst) == 1).await;
    let before = s.rt.stats().wakeups;
    let b = enqueue(&s.rt.handle());
    eventually("the actor to take the second enqueue", || {
        s.rt.stats().wakeups > before
    })
    .await;
    s.verdicts.send(false).unwrap();
    for (who, caller) in [("first", a), ("second", b)] {
        let answer = tokio::time::timeout(Duration::from_secs(5), caller)
            .await
            .unwrap_or_else(|_| panic!("the {who} caller is never answered"));
        let err = answer.unwrap().unwrap_err();
        assert!(
            matches!(err, RuntimeError::Store(_)),
            "the {who} caller is told the store failed: {err}"
        );
    }
    let_tasks_run().await;
    assert!(
        !s.started.load(Ordering::SeqCst),
        "a start from a failed commit (or from one on top of it) ran"
    );
    assert!(s.store.snapshot().is_empty(), "nothing refused is stored");
    assert!(
        s.rt.jobs().await.unwrap().is_empty(),
        "the runtime goes on from what the store holds"
    );
    // the store took the failure; the next write goes through (the runtime reopened it)
    s.open_gate();
    let c = s.rt.enqueue(JobRequest::once("w")).await.unwrap();
    s.rt.wait_idle().await.unwrap();
    assert!(s.started.load(Ordering::SeqCst));
    assert_eq!(s.store.snapshot().len(), 1);
    assert_eq!(s.store.get(c).unwrap().state, JobState::Succeeded);
    s.rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// On a multi-thread runtime a commit made when nothing can come in meanwhile is made in place
/// on the actor's thread: it holds its answer and its start the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_made_in_place_holds_its_answer_and_its_start() {
    let s = setup().await;
    let a = enqueue(&s.rt.handle());
    eventually("the first commit", || s.entered.load(Ordering::SeqCst) == 1).await;
    let_tasks_run().await;
    assert!(!a.is_finished(), "answered before its commit was durable");
    assert!(
        !s.started.load(Ordering::SeqCst),
        "the worker started before its start was durable"
    );
    assert!(s.store.snapshot().is_empty());
    s.open_gate();
    let a = a.await.unwrap().unwrap();
    eventually("the worker", || s.started.load(Ordering::SeqCst)).await;
    s.rt.wait_idle().await.unwrap();
    assert_eq!(s.store.get(a).unwrap().state, JobState::Succeeded);
    s.rt.shutdown(Duration::from_secs(1)).await.unwrap();
}
