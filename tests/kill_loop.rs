//! Crash loops: a child process runs a seeded workload on a store in a temp dir and is killed with
//! SIGKILL at random points, over and over; between kills the parent checks the store against
//! ledgers the child keeps outside it (DESIGN §10):
//!
//! - every acknowledged job is present (or finished) and the store always opens;
//! - nothing is left running once the store is recovered;
//! - a job that was durably finished is never started again (duplicates only for runs the kill
//!   interrupted);
//! - unique names hold;
//! - a link of a chain (`a → b → c`, enqueued in one commit) starts only after the last run of
//!   its prerequisite begun before it has ended (a run the kill cut short is retried, and the
//!   link waits for the retry), and gets that prerequisite's output;
//! - at the end, every acknowledged job has run to success.
//!
//! Also: a worker that aborts the whole process is counted, backed off and finally failed — it
//! cannot crash-loop its host.
//!
//! The child is this test binary itself, re-run with `--ignored --exact <helper>`. Kill points are
//! chosen by progress (after the k-th ledger line), not by sleeping. `KILL_LOOP_ITERS` sets the
//! number of kills (default 200).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backwork::{
    ConflictPolicy, Event, JobId, JobRequest, JobState, ManualClock, OpenMode, RedbStore, Runtime,
    Scheduler, Store, WorkResult, worker_fn,
};

/// Appends one line to a ledger file, in one `write`. A SIGKILL can still cut that write short
/// where it crosses a page of the file: Linux's `generic_perform_write` (mm/filemap.c) copies a
/// write page by page and stops with what it has copied once a fatal signal is pending. The
/// parent drops such a torn last line after each kill ([`drop_torn_tail`]).
fn ledger(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("ledger");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("ledger write");
}

/// Cuts a ledger back to its last whole line. The line a kill tore (see [`ledger`]) was being
/// written after what it records had happened, so dropping it loses a record, never invents
/// one; and the next child's first line does not get glued to the torn one.
fn drop_torn_tail(path: &Path) {
    let Ok(bytes) = std::fs::read(path) else {
        return; // not written yet
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        eprintln!(
            "kill loop: {} ended in a torn line {:?}; cut",
            path.display(),
            String::from_utf8_lossy(&bytes[whole..])
        );
        let f = OpenOptions::new().write(true).open(path).expect("ledger");
        f.set_len(whole as u64).expect("cut the torn line");
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A small deterministic generator for the child's workload choices.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The child: enqueue a seeded stream of jobs and run them, logging every acknowledgement and
/// every run to the ledgers. In drain mode it enqueues nothing and exits once every one-off job
/// has finished.
#[test]
#[ignore = "run by the kill-loop tests as a child process"]
fn kill_loop_child() {
    let Some(dir) = std::env::var_os("KILL_LOOP_DIR").map(PathBuf::from) else {
        return;
    };
    let seed: u64 = std::env::var("KILL_LOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let drain = std::env::var_os("KILL_LOOP_DRAIN").is_some();
    let iter = seed;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = RedbStore::open(dir.join("store.redb"), OpenMode::CreateIfMissing).unwrap();
        let runs = dir.join("runs.log");
        let runs2 = runs.clone();
        let runtime = Runtime::builder()
            .store(store)
            .max_concurrent(3)
            .worker(
                "w",
                worker_fn(move |ctx| {
                    let runs = runs2.clone();
                    async move {
                        ledger(
                            &runs,
                            &format!("start {iter} {} {}", ctx.id(), ctx.attempt()),
                        );
                        // a chain link: what its prerequisite passed on (its output: its id)
                        if let Some(from) = ctx.upstream().and_then(|u| u["from"].as_str()) {
                            ledger(&runs, &format!("input {iter} {} {from}", ctx.id()));
                        }
                        println!("progress");
                        tokio::task::yield_now().await;
                        ledger(&runs, &format!("end {iter} {} {}", ctx.id(), ctx.attempt()));
                        WorkResult::success_with(serde_json::json!({ "from": ctx.id() }))
                    }
                }),
            )
            .start()
            .await
            .unwrap();
        if drain {
            loop {
                runtime.wait_idle().await.unwrap();
                let jobs = runtime.jobs().await.unwrap();
                if jobs.iter().all(|j| j.state.is_finished()) {
                    break;
                }
                // crash-recovered jobs back off for real seconds: run them now instead
                for j in jobs.iter().filter(|j| j.state == JobState::Enqueued) {
                    let _ = runtime.run_now(backwork::Selector::Id(j.id), false).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            runtime.shutdown(Duration::from_secs(5)).await.unwrap();
            println!("drained");
            return;
        }
        let mut rng = Lcg(seed);
        loop {
            if rng.next(5) == 0 {
                // a chain a → b → c, acknowledged as a whole
                let chain = backwork::Chain::begin_with([JobRequest::once("w")])
                    .then([JobRequest::once("w")])
                    .then([JobRequest::once("w")]);
                let receipt = runtime.enqueue_chain(chain).await.unwrap();
                let ids: Vec<String> = receipt.ids.iter().map(JobId::to_string).collect();
                ledger(&dir.join("chains.log"), &ids.join(" "));
                for id in &ids {
                    ledger(&dir.join("acked.log"), id);
                }
                println!("progress");
                continue;
            }
            let mut req = JobRequest::once("w").input(serde_json::json!({ "seed": seed }));
            match rng.next(4) {
                0 => req = req.unique(format!("u{}", rng.next(4)), ConflictPolicy::Keep),
                1 => req = req.unique(format!("r{}", rng.next(4)), ConflictPolicy::Replace),
                _ => {}
            }
            let id = runtime.enqueue(req).await.unwrap();
            ledger(&dir.join("acked.log"), &id.to_string());
            println!("progress");
        }
    });
}

fn spawn_child(dir: &Path, seed: u64, drain: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "kill_loop_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KILL_LOOP_DIR", dir)
    .env("KILL_LOOP_SEED", seed.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if drain {
        cmd.env("KILL_LOOP_DRAIN", "1");
    }
    cmd.spawn().expect("spawn child")
}

/// The store as a fresh process would see it after recovery.
fn recovered(dir: &Path) -> Vec<backwork::Job> {
    let mut store = RedbStore::open(dir.join("store.redb"), OpenMode::MustExist)
        .unwrap_or_else(|e| panic!("the store must always open after a kill: {e}"));
    let jobs = store.load().expect("load");
    let mut core = Scheduler::new(Default::default(), Box::new(backwork::AllowAll));
    core.handle("2026-01-01T00:00:00Z".parse().unwrap(), Event::Load(jobs))
        .expect("load into a core");
    // the core keeps no payloads with a store: the durable ones, read back by id
    let mut jobs: Vec<backwork::Job> = core.jobs().collect();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let payloads = store.payloads(&ids, true).expect("payloads");
    for (job, p) in jobs.iter_mut().zip(payloads) {
        job.request.input = p.input;
        job.output = p.output;
        job.history = p.history;
    }
    jobs
}

#[test]
fn kill_loop_loses_nothing_acknowledged() {
    let iterations: u64 = std::env::var("KILL_LOOP_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    // kept when the test fails (the panic names it), removed at the end when it passes
    let kept = tempfile::Builder::new()
        .prefix("kill-loop-")
        .tempdir()
        .unwrap()
        .keep();
    let dir = kept.as_path();
    eprintln!("kill loop: store and ledgers in {}", dir.display());
    RedbStore::open(dir.join("store.redb"), OpenMode::CreateIfMissing).unwrap();
    let mut rng = Lcg(0x5eed);
    // jobs that were durably succeeded before each iteration started
    let mut done_before: BTreeMap<u64, BTreeSet<JobId>> = BTreeMap::new();
    for iter in 1..=iterations {
        if iter % 100 == 0 {
            eprintln!("kill loop: {iter} of {iterations} kills survived so far");
        }
        let jobs = recovered(dir);
        let acked: BTreeSet<String> = lines(&dir.join("acked.log")).into_iter().collect();
        let present: BTreeSet<String> = jobs.iter().map(|j| j.id.to_string()).collect();
        let lost: Vec<_> = acked.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "iteration {iter}: acknowledged jobs lost: {lost:?}"
        );
        assert!(
            jobs.iter().all(|j| j.state != JobState::Running),
            "iteration {iter}: a job is still running after recovery"
        );
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for j in jobs.iter().filter(|j| !j.state.is_finished()) {
            if let Some(n) = j.unique_name() {
                *names.entry(n).or_default() += 1;
            }
        }
        assert!(
            names.values().all(|&n| n <= 1),
            "iteration {iter}: unique names broken: {names:?}"
        );
        done_before.insert(
            iter,
            jobs.iter()
                .filter(|j| j.state == JobState::Succeeded)
                .map(|j| j.id)
                .collect(),
        );

        let mut child = spawn_child(dir, iter, false);
        let kill_after = 1 + rng.next(40);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        let mut line = String::new();
        while seen < kill_after {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for ledger in ["acked.log", "chains.log", "runs.log"] {
            drop_torn_tail(&dir.join(ledger));
        }
    }

    // Let the last store drain without kills; everything acknowledged must have succeeded.
    let mut child = spawn_child(dir, iterations + 1, true);
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "the drain run failed: {out}"
    );
    assert!(out.contains("drained"));
    let final_jobs = recovered(dir);
    let by_id: BTreeMap<String, &backwork::Job> =
        final_jobs.iter().map(|j| (j.id.to_string(), j)).collect();
    for id in lines(&dir.join("acked.log")) {
        let job = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("acknowledged job {id} lost"));
        assert!(
            matches!(job.state, JobState::Succeeded | JobState::Cancelled),
            "job {id} ended {:?}",
            job.state
        );
    }

    // A job durably finished before an iteration never started again in it.
    for l in lines(&dir.join("runs.log")) {
        let parts: Vec<&str> = l.split(' ').collect();
        if parts.len() != 4 || parts[0] != "start" {
            continue;
        }
        let iter: u64 = parts[1].parse().unwrap();
        let id: JobId = parts[2].parse().unwrap();
        if let Some(done) = done_before.get(&iter) {
            assert!(
                !done.contains(&id),
                "job {id} ran again in iteration {iter} after it had succeeded"
            );
        }
    }
    // Chains: a link starts only after every started run of its prerequisite has ended (a run
    // the kill cut short is retried, and the link waits for the retry's success), and it got
    // its prerequisite's output.
    let log = lines(&dir.join("runs.log"));
    let chains = lines(&dir.join("chains.log"));
    assert!(!chains.is_empty(), "the workload enqueued no chain");
    // each line is `KIND ITER ID REST`: the positions of each (kind, id) in the log, found once
    // (scanning the whole log for every link made this check quadratic in the kills)
    let mut at: BTreeMap<&str, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
    for (i, l) in log.iter().enumerate() {
        let p: Vec<&str> = l.split(' ').collect();
        if p.len() == 4 {
            at.entry(p[0]).or_default().entry(p[2]).or_default().push(i);
        }
    }
    let positions = |kind: &str, id: &str| -> Vec<usize> {
        at.get(kind)
            .and_then(|by_id| by_id.get(id))
            .cloned()
            .unwrap_or_default()
    };
    let mut linked = 0;
    for chain in &chains {
        let ids: Vec<&str> = chain.split(' ').collect();
        for pair in ids.windows(2) {
            let (before, link) = (pair[0], pair[1]);
            let Some(&first_start) = positions("start", link).first() else {
                continue; // never ran: the drain above would have failed
            };
            linked += 1;
            let last_start = positions("start", before)
                .iter()
                .rev()
                .find(|&&i| i < first_start)
                .copied()
                .unwrap_or_else(|| panic!("link {link} started before {before} ever ran"));
            assert!(
                positions("end", before)
                    .iter()
                    .any(|&i| last_start < i && i < first_start),
                "link {link} started before its prerequisite {before}'s last run ended"
            );
            let inputs = positions("input", link);
            for &i in &inputs {
                assert!(
                    log[i].ends_with(&format!(" {before}")),
                    "link {link} got {}, not {before}'s output",
                    log[i]
                );
            }
            assert!(!inputs.is_empty(), "link {link} got no input from {before}");
        }
    }
    assert!(linked > 0, "no chain link ran");
    println!(
        "kill loop: {iterations} kills, {} chains, {} acknowledged jobs, {} runs logged",
        chains.len(),
        lines(&dir.join("acked.log")).len(),
        lines(&dir.join("runs.log"))
            .iter()
            .filter(|l| l.starts_with("start"))
            .count()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The child of the next test: a job whose worker aborts the process. Virtual time: each restart
/// is an hour later, past any backoff.
#[test]
#[ignore = "run by a_worker_that_aborts_the_process_is_failed_after_max_attempts"]
fn abort_child() {
    let Some(dir) = std::env::var_os("ABORT_DIR").map(PathBuf::from) else {
        return;
    };
    let restart: i64 = std::env::var("ABORT_RESTART").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let t0: backwork::Time = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(t0 + chrono::TimeDelta::hours(restart));
        let runtime = Runtime::builder()
            .clock(clock.clone())
            .store(RedbStore::open(dir.join("store.redb"), OpenMode::CreateIfMissing).unwrap())
            .worker("bomb", worker_fn(|_| async { std::process::abort() }))
            .start()
            .await
            .unwrap();
        if restart == 0 {
            runtime
                .enqueue(JobRequest::once("bomb").max_attempts(3))
                .await
                .unwrap();
        }
        // let virtual time pass until the job finishes (or its worker takes the process down)
        loop {
            runtime.wait_idle().await.unwrap();
            let job = runtime.jobs().await.unwrap().remove(0);
            if job.state.is_finished() {
                println!("state {} attempt {}", job.state, job.attempt);
                break;
            }
            match runtime.next_deadline().await.unwrap() {
                Some(t) => clock.set(t),
                None => panic!("the job waits for nothing: {job:?}"),
            }
        }
        runtime.shutdown(Duration::from_secs(1)).await.unwrap();
    });
}

#[test]
fn a_worker_that_aborts_the_process_is_failed_after_max_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut crashes = 0;
    let mut last = String::new();
    for restart in 0..10 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "abort_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ABORT_DIR", tmp.path())
            .env("ABORT_RESTART", restart.to_string())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        last = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            break;
        }
        crashes += 1;
    }
    assert_eq!(
        crashes, 3,
        "three attempts crash the process, then the job is failed: {last}"
    );
    assert!(last.contains("state failed attempt 3"), "{last}");
    let job = recovered(tmp.path()).remove(0);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.history.len(), 3);
    assert!(
        job.history
            .iter()
            .all(|r| r.result == backwork::RunResult::Crashed)
    );
}
