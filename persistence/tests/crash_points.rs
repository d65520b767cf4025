//! Crash points: a storage backend freezes durability at the k-th sync of a workload — nothing
//! written after it survives — for every k. Each frozen image must open, and hold exactly the
//! state of the last commit that returned before the freeze (or of the one in flight).

use std::io;
use std::sync::{Arc, Mutex};

use backwork_persistence::RedbStore;
use backwork_scheduler::{
    AllowAll, ChangeSet, Event, Job, JobId, JobRequest, MemoryStore, RunOutcome, Scheduler, Store,
};

#[derive(Debug, Default)]
struct Image {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    syncs: u64,
    freeze_at: u64,
}

/// A backend in memory whose durable image stops following writes after `freeze_at` syncs.
#[derive(Debug, Clone)]
struct Freezing(Arc<Mutex<Image>>);

impl Freezing {
    fn new(freeze_at: u64, start: Vec<u8>) -> Self {
        Freezing(Arc::new(Mutex::new(Image {
            durable: start.clone(),
            volatile: start,
            syncs: 0,
            freeze_at,
        })))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Image> {
        self.0.lock().unwrap()
    }
}

impl redb::StorageBackend for Freezing {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.lock().volatile.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let img = self.lock();
        let start = offset as usize;
        let end = start + out.len();
        if end > img.volatile.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        out.copy_from_slice(&img.volatile[start..end]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.lock().volatile.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        let mut img = self.lock();
        img.syncs += 1;
        if img.syncs <= img.freeze_at {
            img.durable = img.volatile.clone();
        }
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut img = self.lock();
        let start = offset as usize;
        let end = start + data.len();
        if end > img.volatile.len() {
            img.volatile.resize(end, 0);
        }
        img.volatile[start..end].copy_from_slice(data);
        Ok(())
    }
}

/// A deterministic workload: the change sets a core produces for enqueues, runs and outcomes.
fn workload() -> Vec<ChangeSet> {
    let mut core = Scheduler::new(
        backwork_scheduler::Config {
            retention: std::time::Duration::from_secs(60),
            ..Default::default()
        },
        Box::new(AllowAll),
    );
    let mut now: backwork_scheduler::Time = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut sets = Vec::new();
    let drain = |core: &mut Scheduler, sets: &mut Vec<ChangeSet>| {
        let mut started = Vec::new();
        while let Some(a) = core.poll_action() {
            match a {
                backwork_scheduler::Action::Persist(cs) => sets.push(cs),
                backwork_scheduler::Action::Start(s) => started.push((s.id, s.attempt)),
                _ => {}
            }
        }
        started
    };
    core.handle(now, Event::WorkerRegistered("w".into()))
        .unwrap();
    drain(&mut core, &mut sets);
    let mut running = Vec::new();
    // a diamond chain (a → (b, c) → d, d merging with the array-creating merger) whose links
    // run among the other jobs: its records, prerequisites and merger go through every image
    let chain = backwork_scheduler::Chain::begin_with([JobRequest::once("w")])
        .then([JobRequest::once("w"), JobRequest::once("w")])
        .then([JobRequest::once("w")
            .input_merger(backwork_scheduler::InputMerger::ArrayCreating)
            .input(serde_json::json!({"d": true}))]);
    let ids = (0..4u128)
        .map(|k| JobId::new_v7(now, [0xc0, k as u8, 0, 0, 0, 0, 0, 0, 0, 1]))
        .collect();
    core.handle(now, Event::EnqueueChain { ids, chain })
        .unwrap();
    running.extend(drain(&mut core, &mut sets));
    for i in 0..12u64 {
        let mut b = [0u8; 10];
        b[2..].copy_from_slice(&i.to_be_bytes());
        let req = if i % 3 == 0 {
            JobRequest::periodic("w", std::time::Duration::from_secs(60))
        } else {
            JobRequest::once("w").input(serde_json::json!({ "i": i }))
        };
        core.handle(
            now,
            Event::Enqueue {
                id: JobId::new_v7(now, b),
                request: req,
            },
        )
        .unwrap();
        running.extend(drain(&mut core, &mut sets));
        if let Some((id, attempt)) = running.pop() {
            let outcome = if i % 4 == 0 {
                RunOutcome::Retry(None)
            } else {
                RunOutcome::Success(None)
            };
            core.handle(
                now,
                Event::Finished {
                    id,
                    attempt,
                    outcome,
                },
            )
            .unwrap();
            running.extend(drain(&mut core, &mut sets));
        }
        now += chrono::TimeDelta::seconds(30);
        core.handle(now, Event::Timeout).unwrap();
        running.extend(drain(&mut core, &mut sets));
    }
    sets
}

#[test]
fn every_crash_point_opens_with_a_committed_state() {
    let sets = workload();
    assert!(
        sets.len() > 20,
        "the workload should commit a fair amount: {}",
        sets.len()
    );
    // expected states after each commit prefix
    // (the in-memory store keeps what the redb store keeps: `memory_equals_redb.rs`)
    let mut model = MemoryStore::new();
    let mut expected = vec![std::collections::BTreeMap::new()];
    for cs in &sets {
        model.commit(cs).unwrap();
        let next = model
            .load()
            .unwrap()
            .into_iter()
            .map(|j| (j.id, j))
            .collect();
        expected.push(next);
    }

    // A created, empty store: file stores only ever appear complete (they are created under a
    // temporary name and renamed into place), so crash points start from here.
    let fresh = Freezing::new(u64::MAX, Vec::new());
    drop(RedbStore::with_backend(fresh.clone(), "fresh").unwrap());
    let created = fresh.lock().durable.clone();

    // count the syncs of the whole workload
    let probe = Freezing::new(u64::MAX, created.clone());
    {
        let mut store = RedbStore::with_backend(probe.clone(), "probe").unwrap();
        for cs in &sets {
            store.commit(cs).unwrap();
        }
    }
    let total = probe.lock().syncs;
    assert!(total >= sets.len() as u64);

    for k in 0..=total {
        let backend = Freezing::new(k, created.clone());
        // commits acknowledged (returned) while syncs ≤ k are durable
        let mut acked = 0;
        if let Ok(mut store) = RedbStore::with_backend(backend.clone(), "frozen") {
            for cs in &sets {
                store.commit(cs).unwrap();
                if backend.lock().syncs <= k {
                    acked += 1;
                }
            }
        }
        let image = backend.lock().durable.clone();
        let mut reopened = RedbStore::with_backend(Freezing::new(u64::MAX, image), "image")
            .unwrap_or_else(|e| panic!("crash point {k}/{total}: the image does not open: {e}"));
        let loaded: std::collections::BTreeMap<JobId, Job> = reopened
            .load()
            .unwrap_or_else(|e| panic!("crash point {k}: load failed: {e}"))
            .into_iter()
            .map(|j| (j.id, j))
            .collect();
        let ok = loaded == expected[acked]
            || expected.get(acked + 1).is_some_and(|next| &loaded == next);
        assert!(
            ok,
            "crash point {k}/{total}: the image holds neither the state after commit {acked} nor the next one ({} jobs loaded)",
            loaded.len()
        );
    }
}
