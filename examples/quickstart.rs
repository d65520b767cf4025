//! A periodic sync job that needs the charger and a network, on a device we script by hand.
//!
//! It registers a worker, enqueues the job while the device is on battery, shows that the job
//! waits (and why), plugs the charger in, and prints every state change the runtime reports.
//!
//! Run it with `cargo run --example quickstart` (about ten seconds of real time).

use std::error::Error;
use std::time::{Duration, Instant};

use backwork::{
    Constraints, JobRequest, ManualProbe, NetworkRequirement, Runtime, WorkResult, worker_fn,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let stamp = move || format!("[{:>5.1}s]", started.elapsed().as_secs_f64());

    // A device on battery (80 %), on an unmetered network.
    let device = ManualProbe::new();
    device.apply(["charging=false", "battery=80"])?;

    let runtime = Runtime::builder()
        .probe(device.clone())
        .worker(
            "sync",
            worker_fn(move |ctx| async move {
                println!(
                    "{} worker: syncing (attempt {}, key {})",
                    stamp(),
                    ctx.attempt(),
                    ctx.idempotency_key()
                );
                WorkResult::success_with(serde_json::json!({ "uploaded": 3 }))
            }),
        )
        .start()
        .await?;

    let mut updates = runtime.subscribe();
    tokio::spawn(async move {
        while let Ok(u) = updates.recv().await {
            if u.progress.is_none() {
                println!("{} state: {} (attempt {})", stamp(), u.state, u.attempt);
            }
        }
    });

    let id = runtime
        .enqueue(
            JobRequest::periodic("sync", Duration::from_secs(2)).constraints(
                Constraints::none()
                    .network(NetworkRequirement::Connected)
                    .charging(),
            ),
        )
        .await?;
    println!(
        "{} enqueued {id}: every 2 s, needs a network and the charger",
        stamp()
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    for reason in runtime.why(id).await? {
        println!("{} why not running: {reason}", stamp());
    }

    println!("{} plugging the charger in", stamp());
    device.apply(["charging=true"])?;
    tokio::time::sleep(Duration::from_millis(4500)).await;

    println!("{} unplugging", stamp());
    device.apply(["charging=false"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for reason in runtime.why(id).await? {
        println!("{} why not running: {reason}", stamp());
    }

    let job = runtime.job(id).await?.ok_or("the job disappeared")?;
    println!(
        "{} done: {} runs, last output {}",
        stamp(),
        job.runs_total,
        job.output.unwrap_or_default()
    );
    runtime.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
