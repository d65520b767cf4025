//! When the daemon itself has run out of file descriptors (EMFILE: the lowest free descriptor
//! is at `RLIMIT_NOFILE`, getrlimit(2)) a command cannot start — that must be a retry with
//! backoff, not a failure of the job: a flood of clients is not the job's fault (issue 9,
//! item 4). The limit is lowered in this test process only, so this file holds one test.

use std::time::Duration;

use backwork_cli::command::CommandWorker;
use backwork_control::{CommandOutput, CommandSpec};
use backwork_scheduler::{JobId, WorkResult};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_backwork");

/// The lowest descriptor number not in use: the next one the kernel hands out.
fn lowest_free_fd() -> u64 {
    let used: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !used.contains(n)).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_daemon_out_of_file_descriptors_retries_the_start() {
    let spec = CommandSpec {
        argv: vec!["true".into()],
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
        cwd: "/".into(),
        fail_on_exit: vec![],
    };
    let job: JobId = "01a22912-808a-74a0-9e7b-db25a02bdc3e".parse().unwrap();
    let worker = CommandWorker::new(Duration::from_secs(1)).supervisor(BIN);
    let never = CancellationToken::new();
    // it runs with descriptors to spare
    let ok = worker.execute(&spec, &never, job, 1).await;
    assert!(matches!(ok, WorkResult::Success(_)), "{ok:?}");
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, lowest_free_fd(), hard).unwrap();
    let r = worker.execute(&spec, &never, job, 1).await;
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let WorkResult::Retry(Some(v)) = &r else {
        panic!("EMFILE must be a retry: {r:?}");
    };
    let o: CommandOutput = serde_json::from_value(v.clone()).unwrap();
    let e = o.error.unwrap();
    assert!(e.contains("out of file descriptors"), "{e}");
    // and with descriptors back, it runs again
    let ok = worker.execute(&spec, &never, job, 1).await;
    assert!(matches!(ok, WorkResult::Success(_)), "{ok:?}");
}
