//! Fills a store with pending jobs and reports what a commit costs per job — for measuring the
//! commit path and for making a big store to time `backwork list` on (release build):
//!
//! ```text
//! cargo run --release -p backwork-persistence --example fill_store -- STORE JOBS [CHUNK]
//! ```
//!
//! Jobs are made by the real scheduling core (one-off, kind `noop`, a small JSON input, as the
//! benchmarks' W3 and W4 make them), `CHUNK` (default 20 000) per commit, each chunk's change
//! sets gathered into one as the runtime's group commit does. It prints the time per job spent
//! in `Store::commit` (encoding, table inserts, the durable commit) and, apart, in encoding the
//! job records alone. With `JOBS` 0 it times opening the store (the check included) and
//! loading every job instead — the store's share of `backwork list` without a daemon.

use std::time::{Duration, Instant};

use backwork_persistence::{OpenMode, RedbStore};
use backwork_scheduler::{
    Action, AllowAll, ChangeSet, Event, JobId, JobRequest, Scheduler, Store, Time,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: fill_store STORE JOBS [CHUNK]");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("JOBS is a number");
    let chunk: usize = args
        .next()
        .map_or(20_000, |c| c.parse().expect("CHUNK is a number"));
    if n == 0 {
        let t = Instant::now();
        let mut store = RedbStore::open(&path, OpenMode::MustExist).expect("open the store");
        let opened = t.elapsed();
        let jobs = store.load().expect("load");
        println!(
            "opened (checked) in {opened:.2?}, {} jobs loaded in {:.2?} in all",
            jobs.len(),
            t.elapsed()
        );
        return;
    }
    let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).expect("open the store");
    let now: Time = "2026-06-01T00:00:00Z".parse().unwrap();
    let (mut commit, mut encode, mut made) = (Duration::ZERO, Duration::ZERO, 0usize);
    while made < n {
        let this = chunk.min(n - made);
        let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
        core.handle(now, Event::Load(Vec::new())).expect("load");
        let mut batch = ChangeSet::default();
        for i in made..made + this {
            let mut random = [0u8; 10];
            random[2..].copy_from_slice(&(i as u64).to_be_bytes());
            let request = JobRequest::once("noop").input(serde_json::json!(i));
            let id = JobId::new_v7(now, random);
            core.handle(now, Event::Enqueue { id, request })
                .expect("enqueue");
            while let Some(action) = core.poll_action() {
                if let Action::Persist(cs) = action {
                    batch.upserts.extend(cs.upserts);
                    batch.removes.extend(cs.removes);
                    batch.inputs.extend(cs.inputs);
                    batch.outputs.extend(cs.outputs);
                    batch.runs.extend(cs.runs);
                    batch.history_len = cs.history_len;
                }
            }
        }
        let t = Instant::now();
        for job in &batch.upserts {
            std::hint::black_box(backwork_persistence::fuzzing::encode(job, None));
        }
        encode += t.elapsed();
        let t = Instant::now();
        store.commit(&batch).expect("commit");
        commit += t.elapsed();
        made += this;
    }
    store.close().expect("close");
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{n} jobs in commits of {chunk}: commit {:.2} µs/job ({:.0} jobs/s), of which encoding the records alone {:.2} µs/job",
        per(commit),
        n as f64 / commit.as_secs_f64(),
        per(encode)
    );
}
