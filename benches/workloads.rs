//! The DESIGN §9 workloads on a file-backed store, as a bench binary.
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

/// Raw redb: one small row per `Immediate` transaction.
fn raw_redb_single_commits(dir: &Path, n: usize) -> f64 {
    let db = redb::Database::create(dir.join("raw.redb")).expect("raw redb");
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
    let payload = vec![7u8; 300];
    let start = Instant::now();
    for i in 0..n as u64 {
        let txn = db.begin_write().expect("begin");
        {
            let mut t = txn.open_table(table).expect("table");
            t.insert(i, payload.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn w1(dir: &Path, scale: usize) {
    let n = 3000 / scale;
    let raw = raw_redb_single_commits(dir, n);
    let rt = Runtime::builder()
        .store(store(dir))
        .start()
        .await
        .expect("start");
    let start = Instant::now();
    for i in 0..n {
        rt.enqueue(JobRequest::once("nobody").input(serde_json::json!(i)))
            .await
            .expect("enqueue");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    rt.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    println!(
        "W1 sequential durable enqueue: {rate:.0} jobs/s; raw redb single commits {raw:.0}/s; ratio {:.0} % (target ≥ 90 %)",
        100.0 * rate / raw
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

async fn w4(dir: &Path, concurrency: usize, scale: usize) {
    let n = 100_000 / scale;
    // fill the store with pending jobs whose kind has no worker yet
    {
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
    println!(
        "W4 drain {n} no-op jobs (concurrency {concurrency}): {:.0} jobs/s ({elapsed:.2?} incl. {loaded:.2?} load, {commits} commits) (target ≥ 100 000)",
        n as f64 / (elapsed - loaded).as_secs_f64()
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
            w4(fresh().path(), 4, scale).await;
            w4(fresh().path(), 1024, scale).await;
        }
    });
}
