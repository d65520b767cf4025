//! The daemon's record of the command runs in flight: one small file per run in a directory
//! beside the store (`<store>.runs/`), written and fsynced *before* the run's command is started,
//! and read on the next start to stop whatever a crash left running before any retry starts.
//!
//! A file names the run (job id and attempt) and its processes by [`Stamp`] — pid and start
//! time, so a pid the kernel has handed to another process since is never signalled: the run's
//! supervisor (see [`crate::supervise`]) and, once started, the command, whose pid is also its
//! process group. The supervisor writes `<job id>.ended` with the instant the run's processes were
//! gone if it outlived the daemon. The directory belongs to the process that holds the store's
//! lock; nothing else writes to it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backwork_scheduler::{Interruption, JobId, Time};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::procfs::{self, Stamp};

/// What is recorded about one run in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFile {
    /// The job.
    pub job: JobId,
    /// The attempt that runs.
    pub attempt: u32,
    /// When the daemon started the run.
    pub started: Time,
    /// The run's supervisor.
    pub supervisor: Stamp,
    /// The command (leader of its own process group), once it started.
    #[serde(default)]
    pub command: Option<Stamp>,
}

/// Errors of the run directory.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The directory could not be created or read.
    #[error(
        "could not use the run directory {path}: {source}; check that the store's directory is writable"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run could not be recorded durably.
    #[error(
        "could not record the run in {path}: {source}; the command was not started (it counts as a failed attempt, retried with backoff unless the attempts are used up)"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The directory of run files beside a store.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

impl RunDir {
    /// The run directory of the store at `store` (`<store>.runs`), created (0700) if missing.
    pub fn beside(store: &Path) -> Result<RunDir, RunDirError> {
        let mut name = store.as_os_str().to_owned();
        name.push(".runs");
        RunDir::at(PathBuf::from(name))
    }

    /// The run directory at `path`, created (0700) if missing.
    pub fn at(path: PathBuf) -> Result<RunDir, RunDirError> {
        let err = |source| RunDirError::Directory {
            path: path.clone(),
            source,
        };
        if !path.is_dir() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .or_else(|e| if path.is_dir() { Ok(()) } else { Err(e) })
                .map_err(err)?;
            // (the parent of a bare name such as `store.redb.runs` is "": this directory)
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            sync_dir(parent).map_err(err)?;
        }
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file of `job`'s run.
    pub fn file_of(&self, job: JobId) -> PathBuf {
        self.path.join(format!("{job}.json"))
    }

    /// Where the supervisor of `job`'s run notes when its processes were gone.
    pub fn ended_file_of(&self, job: JobId) -> PathBuf {
        self.path.join(format!("{job}.ended"))
    }

    /// Writes `run`'s file durably: a temporary file, fsynced, renamed into place, and the
    /// directory fsynced — so after a crash the file is there, whole, or was never there. The
    /// first record of a run (no command yet) also removes a stale end note of the job.
    pub fn record(&self, run: &RunFile) -> Result<(), RunDirError> {
        let path = self.file_of(run.job);
        let tmp = self.path.join(format!("{}.json.tmp", run.job));
        let err = |source| RunDirError::Write {
            path: path.clone(),
            source,
        };
        if run.command.is_none() {
            // a new run: an end noted by a supervisor of an earlier run of the job is stale
            let _ = std::fs::remove_file(self.ended_file_of(run.job));
        }
        let bytes = serde_json::to_vec(run).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        sync_dir(&self.path).map_err(err)
    }

    /// Removes `job`'s files once its run is over. Not fsynced: a file that comes back after a
    /// crash names processes that are gone (or a run the store no longer has running), and
    /// recovery finds nothing to stop.
    pub fn forget(&self, job: JobId) {
        let _ = std::fs::remove_file(self.file_of(job));
        let _ = std::fs::remove_file(self.ended_file_of(job));
    }

    /// Stops everything left of the runs recorded here (a crash ended the daemon that started
    /// them) and says, for each, when it really stopped. Call it while holding the store's lock
    /// and before any run starts. Leftover supervisors get SIGTERM (they stop their tree: SIGTERM,
    /// `grace`, SIGKILL) and are waited for up to `grace` and a few seconds; one that is still
    /// there then is stopped by hand: its tree, its command's group, itself, with SIGKILL. The
    /// files are removed afterwards.
    pub fn recover(&self, grace: Duration) -> Result<Vec<Interruption>, RunDirError> {
        let entries = std::fs::read_dir(&self.path).map_err(|source| RunDirError::Directory {
            path: self.path.clone(),
            source,
        })?;
        let mut runs = Vec::new();
        let mut stray = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => match std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<RunFile>(&b).ok())
                {
                    Some(run) => runs.push(run),
                    None => {
                        tracing::warn!(file = %path.display(), "ignoring an unreadable run file");
                        stray.push(path);
                    }
                },
                _ => stray.push(path),
            }
        }
        // ask every live supervisor at once, then wait for them together
        let mut alive = Vec::new();
        for run in &runs {
            if run.supervisor.signal(Signal::SIGTERM) {
                alive.push(run.job);
            }
        }
        let deadline = Instant::now() + grace + Duration::from_secs(3);
        while runs
            .iter()
            .any(|r| alive.contains(&r.job) && r.supervisor.is_alive())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = Vec::with_capacity(runs.len());
        for run in &runs {
            let by_hand = stop_by_hand(run);
            let ended_file = std::fs::read_to_string(self.ended_file_of(run.job))
                .ok()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            let (ended, how) = match ended_file {
                _ if by_hand => (
                    chrono::Utc::now(),
                    "its processes were still running and were killed when the daemon started again",
                ),
                Some(t) if alive.contains(&run.job) => (
                    t,
                    "its processes were still running and were stopped when the daemon started again",
                ),
                Some(t) => (
                    t,
                    "its supervisor stopped its processes when the daemon died",
                ),
                None => (
                    chrono::Utc::now(),
                    "its processes were gone when the daemon started again (the end shown is when that was found)",
                ),
            };
            tracing::warn!(job = %run.job.short(), attempt = run.attempt, "a run the daemon's crash interrupted: {how}");
            out.push(Interruption {
                id: run.job,
                attempt: run.attempt,
                ended,
                note: format!("interrupted by a daemon crash; {how}"),
            });
        }
        for run in &runs {
            self.forget(run.job);
        }
        for path in stray {
            let _ = std::fs::remove_file(path);
        }
        let _ = sync_dir(&self.path);
        Ok(out)
    }
}

/// Kills what is left of a run whose supervisor did not stop it: the supervisor's tree, the
/// command's group, the supervisor. True if anything was found alive.
fn stop_by_hand(run: &RunFile) -> bool {
    let mut found = false;
    if run.supervisor.is_alive() {
        found = true;
        for s in procfs::descendants(run.supervisor.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid), Signal::SIGKILL);
        }
        run.supervisor.signal(Signal::SIGKILL);
    }
    // the command's group — its leader may be gone while members live on — and every process
    // that carries the run's marker, `setsid` ones included
    let marker = procfs::run_marker(run.job, run.attempt);
    if procfs::kill_run(run.command, &marker) {
        found = true;
        // SIGKILL is not instant: the retry may start only once they are gone
        let group = run.command.map(|c| c.pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !procfs::members_of_run(group, &marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    found
}
