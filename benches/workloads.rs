//! The DESIGN §9 workloads on a file-backed store (W10: the simulator; W11 also times the core
//! alone), as a bench binary.
//!
//! ```sh
//! cargo bench --bench workloads            # every workload
//! cargo bench --bench workloads -- W1 W4   # some of them
//! ```
//!
//! Each prints one line: the workload, the figure, and the target. Under `cargo test` (no
//! `--bench` flag) every workload runs at a tiny size, as a smoke test of the bench code.

use std::path::Path;
use std::time::{Duration, Instant};

use backwork::{
    Config, JobRequest, JobState, OpenMode, RedbStore, Runtime, Store, WorkResult, worker_fn,
};

fn store(dir: &Path) -> RedbStore {
    RedbStore::open(dir.join("store.redb"), OpenMode::CreateIfMissing).expect("open store")
}

/// Raw redb: one small row per `Immediate` transaction, rows numbered from `from`.
fn raw_redb_single_commits(db: &redb::Database, from: u64, n: usize) -> Duration {
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
    let payload = vec![7u8; 300];
    let start = Instant::now();
    for i in from..from + n as u64 {
        let txn = db.begin_write().expect("begin");
        {
            let mut t = txn.open_table(table).expect("table");
            t.insert(i, payload.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    start.elapsed()
}

/// W1: sequential durable enqueues (each awaited) through the runtime, against raw redb
/// single-row commits and the store's own commits of the same change sets. The three are
/// measured in alternating rounds (raw, store, runtime, again and again), so a disk whose
/// speed drifts during the run — a shared virtual disk moves by 2× within a minute — slows
/// all three alike, and the ratio compares like with like.
async fn w1(dir: &Path, scale: usize) {
    const ROUNDS: usize = 10;
    let n = 3000 / scale;
    let per = n.div_ceil(ROUNDS);
    let raw_db = redb::Database::create(dir.join("raw.redb")).expect("raw redb");
    // the store alone: one job record per commit, no runtime
    let sub = dir.join("direct");
    std::fs::create_dir_all(&sub).expect("dir");
    let mut direct_store = store(&sub);
    let mut sets = Vec::with_capacity(n);
    {
        let mut core = backwork::Scheduler::new(Config::default(), Box::new(backwork::AllowAll));
        let now = chrono::Utc::now();
        for i in 0..n as u64 {
            let mut b = [0u8; 10];
            b[2..].copy_from_slice(&i.to_be_bytes());
            let id = backwork::JobId::new_v7(now, b);
            let request = JobRequest::once("nobody").input(serde_json::json!(i));
            core.handle(now, backwork::Event::Enqueue { id, request })
                .expect("enqueue");
            while let Some(a) = core.poll_action() {
                if let backwork::Action::Persist(cs) = a {
                    sets.push(cs);
                }
            }
        }
    }
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    let (mut raw, mut direct, mut runtime) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < n {
        let k = per.min(n - done);
        raw += raw_redb_single_commits(&raw_db, done as u64, k);
        let start = Instant::now();
        for cs in &sets[done..done + k] {
            direct_store.commit(cs).expect("commit");
        }
        direct += start.elapsed();
        let start = Instant::now();
        for i in done..done + k {
            rt.enqueue(JobRequest::once("nobody").input(serde_json::json!(i)))
                .await
                .expect("enqueue");
        }
        runtime += start.elapsed();
        done += k;
    }
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "W1 sequential durable enqueue: {:.0} jobs/s; raw redb single commits {:.0}/s; ratio {:.0} % (target ≥ 90 %); the store's own single-job commits {:.0}/s ({:.0} % of raw); {ROUNDS} alternating rounds",
        rate(runtime),
        rate(raw),
        100.0 * raw.as_secs_f64() / runtime.as_secs_f64(),
        rate(direct),
        100.0 * raw.as_secs_f64() / direct.as_secs_f64(),
    );
}

async fn w2(dir: &Path, scale: usize) {
    let (tasks, per) = (64, 2000 / scale);
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let h = rt.handle();
        set.spawn(async move {
            for i in 0..per {
                h.enqueue(JobRequest::once("nobody").input(serde_json::json!([t, i])))
                    .await
                    .expect("enqueue");
            }
        });
    }
    while set.join_next().await.is_some() {}
    let rate = (tasks * per) as f64 / start.elapsed().as_secs_f64();
    let commits = rt.stats().commits;
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    println!(
        "W2 64 concurrent enqueuers: {rate:.0} jobs/s ({} jobs in {commits} commits) (target ≥ 150 000)",
        tasks * per
    );
}

async fn w3(dir: &Path, scale: usize) {
    let n = 20_000 / scale;
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    let reqs: Vec<_> = (0..n)
        .map(|i| JobRequest::once("nobody").input(serde_json::json!(i)))
        .collect();
    let start = Instant::now();
    let results = rt.enqueue_many(reqs).await.expect("bulk");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert!(results.iter().all(|r| r.is_ok()));
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    println!("W3 bulk enqueue of {n}: {rate:.0} jobs/s (target ≥ 500 000 for 20 000)");
}

/// Fills the store at `dir` with `n` pending no-op jobs (their kind has no worker yet), in bulk.
async fn fill_pending(dir: &Path, n: usize) {
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        let reqs = chunk
            .iter()
            .map(|i| JobRequest::once("noop").input(serde_json::json!(i)))
            .collect();
        rt.enqueue_many(reqs).await.expect("fill");
    }
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
}

async fn w4(dir: &Path, concurrency: usize, scale: usize) {
    let n = 100_000 / scale;
    fill_pending(dir, n).await;
    let start = Instant::now();
    let rt = Runtime::builder()
        .store(store(dir))
        .config(Config {
            max_concurrent: concurrency,
            ..Config::default()
        })
        .worker("noop", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .expect("start");
    let loaded = start.elapsed();
    rt.wait_idle().await.expect("idle");
    let elapsed = start.elapsed();
    let commits = rt.stats().commits;
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    let mut check = store(dir);
    let succeeded = check
        .load()
        .expect("load")
        .iter()
        .filter(|j| j.state == JobState::Succeeded)
        .count();
    assert_eq!(succeeded, n, "every job's completion is durable");
    let draining = (elapsed - loaded).as_secs_f64();
    // a start is durable before its worker runs, so a commit carries at most `concurrency`
    // starts: the commit cycle bounds the rate at the default concurrency
    let per_commit = n as f64 / commits.max(1) as f64;
    let cycle_us = 1e6 * draining / commits.max(1) as f64;
    println!(
        "W4 drain {n} no-op jobs (concurrency {concurrency}): {:.0} jobs/s ({elapsed:.2?} incl. {loaded:.2?} load; {commits} commits: {per_commit:.1} jobs and {cycle_us:.0} µs per commit) (target ≥ 100 000)",
        n as f64 / draining
    );
}

/// W5 child: open the store and start running; prints how long from process start to the first
/// job started, then (after `hold`) exits or waits to be killed.
async fn w5_child(dir: &Path, started_at: Instant) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let rt = Runtime::builder()
        .store(store(dir))
        .worker(
            "noop",
            worker_fn(move |_| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(());
                    tokio::time::sleep(Duration::from_secs(3600)).await; // in flight until the kill
                    WorkResult::success()
                }
            }),
        )
        .start()
        .await
        .expect("start");
    rx.recv().await;
    println!("first-start {:?}", started_at.elapsed());
    std::future::pending::<()>().await;
    drop(rt);
}

async fn w5(dir: &Path, scale: usize) {
    let n = 100_000 / scale;
    fill_pending(dir, n).await;
    let run_child = || {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg("W5-child")
            .env("W5_DIR", dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("child");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("read");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        line.trim().trim_start_matches("first-start ").to_string()
    };
    let first = run_child(); // starts 4 jobs, killed with them in flight
    let second = run_child(); // restart after the kill: recovery + first start
    let mut s = store(dir);
    let jobs = s.load().expect("load");
    let crashed = jobs
        .iter()
        .filter(|j| {
            j.history
                .iter()
                .any(|r| r.result == backwork::RunResult::Crashed)
        })
        .count();
    println!(
        "W5 kill -9 with {n} pending, restart to first job started: {second} (the first, killed run: {first}); jobs interrupted by kills: {crashed} (≤ 4 in flight per kill) (target ≤ 0.5 s)"
    );
}

async fn w6(dir: &Path, scale: usize) {
    let n = 10_000 / scale;
    let secs = if scale == 1 { 60 } else { 1 };
    let rt = Runtime::builder()
        .store(store(dir))
        .worker("later", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .expect("start");
    let reqs = (0..n)
        .map(|_| JobRequest::once("later").delay(Duration::from_secs(3 * 3600)))
        .collect();
    rt.enqueue_many(reqs).await.expect("fill");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let switches = || -> u64 {
        let mut total = 0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
                for line in status.lines() {
                    if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                        total += v.trim().parse::<u64>().unwrap_or(0);
                    }
                }
            }
        }
        total
    };
    let (w0, c0) = (rt.stats().wakeups, switches());
    // wait outside the runtime, so the bench itself wakes nothing in it
    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_secs(secs)))
        .await
        .expect("wait");
    let (w1, c1) = (rt.stats().wakeups, switches());
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    println!(
        "W6 idle {secs} s with {n} jobs due in 3 h: {} scheduler wake-ups; {} voluntary context switches in the whole process (the waiting bench thread's own included) (target 0 wake-ups)",
        w1 - w0,
        c1.saturating_sub(c0)
    );
}

async fn w7(dir: &Path, scale: usize) {
    let n = 2000 / scale;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let rt = Runtime::builder()
        .store(store(dir))
        .max_concurrent(64)
        .worker(
            "timed",
            worker_fn(move |ctx| {
                let late = chrono::Utc::now().timestamp_micros()
                    - ctx.input()["due_us"].as_i64().unwrap_or(0);
                let _ = tx.send(late);
                async { WorkResult::success() }
            }),
        )
        .start()
        .await
        .expect("start");
    let base = chrono::Utc::now() + chrono::TimeDelta::milliseconds(500);
    let reqs = (0..n)
        .map(|i| {
            let due = base + chrono::TimeDelta::milliseconds(3 * i as i64);
            JobRequest::once("timed")
                .not_before(due)
                .accurate() // W7 measures with batching off
                .input(serde_json::json!({ "due_us": due.timestamp_micros() }))
        })
        .collect();
    rt.enqueue_many(reqs).await.expect("enqueue");
    let mut lat = Vec::with_capacity(n);
    while lat.len() < n {
        lat.push(rx.recv().await.expect("latency"));
    }
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "W7 due → started latency over {n} jobs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 ≤ 2 ms)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn w9(dir: &Path, scale: usize) {
    let n = 1_000_000 / scale;
    let before = rss_mb();
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        let reqs = chunk
            .iter()
            .map(|_| JobRequest::once("nobody").delay(Duration::from_secs(3600)))
            .collect();
        rt.enqueue_many(reqs).await.expect("fill");
    }
    let after = rss_mb();
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    println!(
        "W9 memory with {n} pending jobs: {after:.0} MB RSS ({:.0} MB before) (target ≤ 256 MB)",
        before
    );
}

/// Times `probes` tagged enqueues into a core that already holds `n` jobs with the same tag
/// (no store): µs per enqueue.
fn core_tagged_enqueue(n: usize, probes: usize) -> f64 {
    let mut core = backwork::Scheduler::new(Config::default(), Box::new(backwork::AllowAll));
    let now = chrono::Utc::now();
    let mut next = 0u64;
    let mut id = || {
        next += 1;
        let mut b = [0u8; 10];
        b[2..].copy_from_slice(&next.to_be_bytes());
        backwork::JobId::new_v7(now, b)
    };
    let req = || {
        JobRequest::once("nobody")
            .delay(Duration::from_secs(3600))
            .tag("sync")
    };
    for _ in 0..n {
        let request = req();
        core.handle(now, backwork::Event::Enqueue { id: id(), request })
            .expect("fill");
        while core.poll_action().is_some() {}
    }
    let start = Instant::now();
    for _ in 0..probes {
        let request = req();
        core.handle(now, backwork::Event::Enqueue { id: id(), request })
            .expect("enqueue");
        while core.poll_action().is_some() {}
    }
    start.elapsed().as_secs_f64() * 1e6 / probes as f64
}

/// Times `probes` sequential durable tagged enqueues through a runtime whose store holds `n`
/// jobs with the same tag: ms per enqueue.
async fn runtime_tagged_enqueue(dir: &Path, n: usize, probes: usize) -> f64 {
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    let req = || {
        JobRequest::once("nobody")
            .delay(Duration::from_secs(3600))
            .tag("sync")
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        rt.enqueue_many(chunk.iter().map(|_| req()).collect())
            .await
            .expect("fill");
    }
    let start = Instant::now();
    for _ in 0..probes {
        rt.enqueue(req()).await.expect("enqueue");
    }
    let each = start.elapsed().as_secs_f64() * 1e3 / probes as f64;
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    each
}

/// W11: a tagged enqueue into a store of 1 M jobs with that tag costs what it costs into an
/// empty one (no per-enqueue scan): the core alone, and durable enqueues through the runtime.
async fn w11(dir: &Path, scale: usize) {
    let n = 1_000_000 / scale;
    let probes = 2000 / scale.min(20);
    let (empty, full) = (
        core_tagged_enqueue(0, probes),
        core_tagged_enqueue(n, probes),
    );
    let (a, b) = (dir.join("empty"), dir.join("full"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&b).expect("dir");
    let durable = probes / 10;
    let (d_empty, d_full) = (
        runtime_tagged_enqueue(&a, 0, durable).await,
        runtime_tagged_enqueue(&b, n, durable).await,
    );
    println!(
        "W11 tagged enqueue: core alone {empty:.1} µs into an empty core, {full:.1} µs into {n} tagged jobs (×{:.2}); durable through the runtime {d_empty:.2} ms into an empty store, {d_full:.2} ms into {n} (×{:.2}) (target: the same cost)",
        full / empty,
        d_full / d_empty
    );
}

/// W10: the simulator, 1 000 periodic jobs (15 min, flex 5 min, network) for 7 simulated days
/// under the android profile, with a screen going on and off and a nightly charger.
fn w10(scale: usize) {
    let jobs = 1000 / scale;
    let scenario = format!(
        r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "7d"
        seed = 10
        overrides = {{ max_scheduled_jobs = {jobs} }}
        device = {{ screen = "on", charging = false, battery = 80, network = "unmetered" }}

        [[event]]
        at = "1h"
        repeat = "6h"
        screen = "off"

        [[event]]
        at = "4h"
        repeat = "6h"
        screen = "on"

        [[event]]
        at = "22h"
        repeat = "24h"
        charging = true

        [[event]]
        at = "30h"
        repeat = "24h"
        charging = false

        [[job]]
        name = "sync"
        every = "15m"
        flex = "5m"
        requires = ["network"]
        count = {jobs}
        outcome = {{ fail = 0.1, duration = "5s" }}
        "#
    );
    let scenario = backwork_simulator::Scenario::from_toml(&scenario).expect("scenario");
    let start = Instant::now();
    let report = backwork_simulator::simulate(&scenario).expect("simulate");
    let took = start.elapsed();
    let runs: usize = report.jobs.iter().map(|j| j.runs.len()).sum();
    println!(
        "W10 simulator, {jobs} jobs x 7 days, android: {took:.2?} ({runs} runs, {} wake-ups) (target ≤ 1 s)",
        report.wakeups
    );
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let scale = if all.iter().any(|a| a == "--bench") {
        1
    } else {
        100
    };
    let args: Vec<String> = all.into_iter().filter(|a| a.starts_with('W')).collect();
    if args.iter().any(|a| a == "W5-child") {
        let started = Instant::now();
        let dir = std::path::PathBuf::from(std::env::var_os("W5_DIR").expect("W5_DIR"));
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio")
            .block_on(w5_child(&dir, started));
        return;
    }
    let want = |w: &str| args.is_empty() || args.iter().any(|a| a == w);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let fresh = || {
            tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| ".".into()))
                .expect("tempdir")
        };
        if want("W1") {
            w1(fresh().path(), scale).await;
        }
        if want("W2") {
            w2(fresh().path(), scale).await;
        }
        if want("W3") {
            w3(fresh().path(), scale).await;
        }
        if want("W4") {
            // the sequential reference: one job at a time, on a tenth of the jobs
            w4(fresh().path(), 1, scale * 10).await;
            w4(fresh().path(), 4, scale).await;
            w4(fresh().path(), 1024, scale).await;
        }
        if want("W5") {
            w5(fresh().path(), scale).await;
        }
        if want("W6") {
            w6(fresh().path(), scale).await;
        }
        if want("W7") {
            w7(fresh().path(), scale).await;
        }
        if want("W9") {
            w9(fresh().path(), scale).await;
        }
        if want("W11") {
            w11(fresh().path(), scale).await;
        }
        if want("W10") {
            w10(scale);
        }
    });
}
