//! A realistic background sync on the durable default store.
//!
//! Every 20 seconds (flex 10 s) it "uploads" the records that piled up since the last run, but
//! only with a network and a battery that is not low. Now and then the server answers "try again
//! later": the run asks for a retry and the job backs off (10 s, 20 s, …). Each run's output is
//! recorded in the store.
//!
//! Run it, stop it hard (`kill -9`, or Ctrl-C twice), run it again: it resumes where it was — the
//! same job, its run count and history, a run interrupted by the kill counted and retried.
//!
//! ```sh
//! cargo run --example sync                       # on $XDG_DATA_HOME/backwork/store.redb
//! BACKWORK_STORE=/tmp/s.redb cargo run --example sync
//! SYNC_RUN_FOR=1m cargo run --example sync       # stop cleanly after a minute
//! ```
//!
//! It serves the control socket (`$BACKWORK_SOCKET`, default `$XDG_RUNTIME_DIR/backwork/control.sock`),
//! so while it runs `backwork list` and `backwork why background-sync` show its queue.
//!
//! On Linux the constraints are checked against the real machine (power supplies, default
//! route, free space), re-read whenever the kernel reports a change.

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use backwork::{
    Backoff, ConflictPolicy, Constraints, ControlSocket, JobRequest, NetworkRequirement, OpenMode,
    RedbStore, Runtime, WorkResult, default_socket_path, default_store_path, worker_fn,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let path = match std::env::var_os("BACKWORK_STORE") {
        Some(p) => PathBuf::from(p),
        None => default_store_path()?,
    };
    let run_for = match std::env::var("SYNC_RUN_FOR") {
        Ok(s) => Some(humantime::parse_duration(&s)?),
        Err(_) => None,
    };
    let socket = std::env::var_os("BACKWORK_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(default_socket_path);
    let store = RedbStore::open(&path, OpenMode::CreateIfMissing)?;
    println!("store: {}", path.display());

    let builder = Runtime::builder().store(store);
    #[cfg(target_os = "linux")]
    let builder = {
        let probe = backwork::HostProbe::new(backwork::HostConfig {
            storage_path: path.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
            ..Default::default()
        });
        if let Err(e) = probe.listen() {
            eprintln!("not listening for device changes ({e}); the state is read once");
        }
        println!("device: {:?}", backwork::Probe::current(&probe));
        builder.probe(probe)
    };
    let runtime = builder
        .worker(
            "sync",
            worker_fn(|ctx| async move {
                // Pretend work: a second of uploading, interrupted if the scheduler asks.
                tokio::select! {
                    () = ctx.cancellation().cancelled() => return WorkResult::Retry(None),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                // Every fifth attempt key hashes to "server busy": retry with backoff.
                let busy = ctx.idempotency_key().bytes().map(u32::from).sum::<u32>() % 5 == 0;
                if busy {
                    println!("  sync {}: server busy, will retry", ctx.idempotency_key());
                    return WorkResult::Retry(None);
                }
                let uploaded = 3 + ctx.attempt() * 2;
                println!(
                    "  sync {}: uploaded {uploaded} records",
                    ctx.idempotency_key()
                );
                WorkResult::success_with(serde_json::json!({ "uploaded": uploaded }))
            }),
        )
        // the `backwork` command line can inspect this queue: `backwork list`, `backwork why
        // background-sync`, `backwork run background-sync`
        .service(
            ControlSocket::new(&socket)
                .role("sync example")
                .store_path(&path),
        )
        .start()
        .await?;
    println!("control socket: {}", socket.display());

    // One sync job, whatever how often this program starts: a unique name, kept if present.
    let receipt = runtime
        .enqueue_resolved(
            JobRequest::periodic("sync", Duration::from_secs(20))
                .flex(Duration::from_secs(10))
                .constraints(
                    Constraints::none()
                        .network(NetworkRequirement::Connected)
                        .battery_not_low(),
                )
                .backoff(Backoff::exponential(Duration::from_secs(10)))
                .unique("background-sync", ConflictPolicy::Keep),
        )
        .await?;
    let job = runtime
        .job(receipt.id)
        .await?
        .ok_or("the sync job vanished")?;
    println!(
        "sync job {} ({:?}): {} runs so far, last: {}",
        job.id,
        receipt.disposition,
        job.runs_total,
        job.history
            .last()
            .map(|r| format!(
                "{} at {}, output {}",
                r.result,
                r.started.format("%H:%M:%S"),
                r.output.clone().unwrap_or_default()
            ))
            .unwrap_or_else(|| "never".into())
    );

    for reason in runtime.why(job.id).await? {
        println!("waiting: {reason}");
    }

    let mut updates = runtime.subscribe();
    let watcher = tokio::spawn(async move {
        while let Ok(u) = updates.recv().await {
            if u.progress.is_none() {
                println!(
                    "[{}] {}: attempt {}",
                    u.at.format("%H:%M:%S"),
                    u.state,
                    u.attempt
                );
            }
        }
    });

    match run_for {
        Some(d) => tokio::time::sleep(d).await,
        None => {
            tokio::signal::ctrl_c().await?;
        }
    }
    println!("shutting down");
    runtime.shutdown(Duration::from_secs(5)).await?;
    watcher.abort();
    Ok(())
}
