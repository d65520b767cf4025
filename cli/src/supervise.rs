//! The per-run supervisor: `backwork __supervise`, a small process the daemon starts for each
//! command run, which starts the command and makes sure nothing of it outlives the run.
//!
//! It is a *child subreaper* (`PR_SET_CHILD_SUBREAPER`): a descendant whose parent exits — a
//! grandchild that called `setsid` and was left behind, say — is re-parented to the supervisor
//! instead of to init, so the command's whole tree stays below it whatever process group or
//! session its members move to. To stop the run it signals every descendant (found through
//! `/proc`) and the command's process group: SIGTERM, then SIGKILL once the grace period has
//! passed, repeated until it has no child left — and as every orphan of the tree becomes its
//! child, "no child left" means "no process of the run left".
//!
//! It stops the run when the daemon asks (`stop`, or `kill` to skip the grace period), when it
//! gets SIGTERM or SIGINT, when the command exits and left processes behind, and when the daemon
//! dies: its end of the control socket (the supervisor's stdin) reaches end-of-file, and
//! `PR_SET_PDEATHSIG` sends SIGHUP. (The kernel sends the death signal when the *thread* that
//! forked the supervisor exits, so SIGHUP only counts once the parent pid has changed.)
//!
//! The protocol on the control socket is one JSON line each way and then short words: the daemon
//! sends a [`Setup`] (only after it has recorded the supervisor durably, so no command starts
//! unrecorded), the supervisor answers [`Report::Started`] or [`Report::SpawnFailed`]; later the
//! daemon may send `stop` or `kill`, and the supervisor ends with [`Report::Exited`] once the
//! whole tree is gone. If the daemon died, it writes the time the tree was gone to
//! [`Setup::ended_file`] instead, for the history of the interrupted run.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use backwork_control::CommandSpec;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid};
use serde::{Deserialize, Serialize};

use crate::procfs;

/// The hidden first argument that makes `backwork` a supervisor.
pub const SUBCOMMAND: &str = "__supervise";

/// How long the supervisor keeps sending SIGKILL to a tree that will not die (a process stuck in
/// uninterruptible sleep) before it reports anyway.
const KILL_PATIENCE: Duration = Duration::from_secs(10);

/// What the daemon sends first: the command, the grace period, where to note a lonely end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// The command to run.
    pub spec: CommandSpec,
    /// Time between SIGTERM and SIGKILL when the tree is stopped, in milliseconds.
    pub grace_ms: u64,
    /// Where to write the instant (RFC 3339) the tree was gone, if the daemon died meanwhile.
    pub ended_file: Option<PathBuf>,
    /// The run's marker, set as `BACKWORK_RUN` in the command's environment
    /// ([`crate::procfs::RUN_MARKER`]).
    #[serde(default)]
    pub marker: String,
    /// The descriptor the daemon gave the supervisor for the command's progress lines, passed
    /// on to the command as it is and named in its environment (`BACKWORK_PROGRESS_FD`);
    /// `None`: none was given.
    #[serde(default)]
    pub progress_fd: Option<i32>,
}

/// What the supervisor tells the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Report {
    /// The command runs, as the leader of its own process group.
    Started {
        /// The command's pid and start time (its group id is its pid).
        command: procfs::Stamp,
    },
    /// The command could not be started.
    SpawnFailed {
        /// A sentence for the run's history, naming what is missing when something is.
        message: String,
        /// True when retrying cannot help (the program or directory is gone).
        permanent: bool,
    },
    /// The command ended and no process of its tree is left.
    Exited {
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// How many processes it left behind that had to be stopped.
        leftovers: usize,
    },
}

/// A start error, judged: may a retry help, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The sentence for the history.
    pub message: String,
    /// True when retrying cannot help.
    pub permanent: bool,
}

/// Judges why `program` could not be started in `cwd` (with `PATH` = `path`): errors the system
/// may get over — out of file descriptors (EMFILE, ENFILE), memory (ENOMEM) or processes
/// (EAGAIN), a busy executable (ETXTBSY), an interruption — are transient; a missing or
/// unusable program or working directory is permanent and the message names the path. Errors
/// of unknown kind count as transient: the job's `--max-attempts` still bounds them.
pub fn classify_start_error(
    err: &std::io::Error,
    program: &str,
    cwd: &std::path::Path,
    path: Option<&str>,
) -> StartError {
    let errno = err.raw_os_error().map(Errno::from_raw);
    let transient = |why: &str| StartError {
        message: format!(
            "could not start `{program}` for now ({why}: {err}); a transient error, retried with backoff unless the job's attempts are used up"
        ),
        permanent: false,
    };
    match errno {
        Some(Errno::EMFILE | Errno::ENFILE) => transient("out of file descriptors"),
        Some(Errno::ENOMEM | Errno::ENOBUFS) => transient("out of memory"),
        Some(Errno::EAGAIN) => transient("out of processes or another resource"),
        Some(Errno::ETXTBSY | Errno::EINTR | Errno::EBUSY) => transient("the system was busy"),
        Some(
            Errno::ENOENT
            | Errno::ENOTDIR
            | Errno::EACCES
            | Errno::ELOOP
            | Errno::ENAMETOOLONG
            | Errno::ENOEXEC
            | Errno::EPERM
            | Errno::EISDIR
            | Errno::E2BIG,
        ) => {
            let message = if !cwd.is_dir() {
                format!(
                    "could not start `{program}`: its working directory {} is gone; \
                     add the job again with an existing --cwd",
                    cwd.display()
                )
            } else if program.contains('/') {
                format!(
                    "could not start `{program}`: the program {} cannot be run ({err}); \
                     install it or add the job again with the right path",
                    cwd.join(program).display()
                )
            } else {
                format!(
                    "could not start `{program}`: it was not found or cannot be run in the \
                     job's PATH ({}) ({err}); add the job again with the full path or a \
                     --env PATH=… that holds it",
                    path.unwrap_or("unset")
                )
            };
            StartError {
                message,
                permanent: true,
            }
        }
        _ => transient("an unexpected error"),
    }
}

/// The supervisor's entry point (`backwork __supervise`, stdin = the control socket).
pub fn main() -> ExitCode {
    match supervise() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr is the command's; the daemon sees this in the run's output
            let _ = writeln!(std::io::stderr(), "backwork supervisor: {e}");
            ExitCode::from(70)
        }
    }
}

/// Where the run is in being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing asked for yet.
    Running,
    /// SIGTERM sent; SIGKILL at the instant.
    Terminating(Instant),
    /// SIGKILL sent (and repeated); give up waiting at the instant.
    Killing(Instant),
}

struct Tree {
    me: i32,
    /// The command's pid (= its group) while it has not been reaped.
    main: Option<i32>,
    phase: Phase,
    grace: Duration,
    leftovers: usize,
}

impl Tree {
    /// Signals the command's group and every descendant; returns how many processes it found.
    fn signal_all(&self, sig: Signal) -> usize {
        if let Some(m) = self.main {
            // the group cannot have been handed to another process: its leader is not reaped
            let _ = killpg(Pid::from_raw(m), sig);
        }
        let all = procfs::descendants(self.me);
        for s in &all {
            let _ = kill(Pid::from_raw(s.pid), sig);
        }
        all.len()
    }

    fn terminate(&mut self) {
        if self.phase == Phase::Running {
            self.signal_all(Signal::SIGTERM);
            self.phase = Phase::Terminating(Instant::now() + self.grace);
        }
    }

    fn kill(&mut self) {
        self.signal_all(Signal::SIGKILL);
        if !matches!(self.phase, Phase::Killing(_)) {
            self.phase = Phase::Killing(Instant::now() + KILL_PATIENCE);
        }
    }
}

fn supervise() -> Result<(), String> {
    let parent = getppid();
    // SAFETY: fd 0 is the control socket the daemon gave as stdin; this is its only owner, for
    // the whole process. The command's stdin is /dev/null, put over fd 0 in the child.
    let control = unsafe { UnixStream::from_raw_fd(0) };
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGHUP);
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("could not block signals: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("could not watch signals: {e}"))?;
    if getppid() != parent {
        return Ok(()); // the daemon died before the death signal was set; nothing started
    }
    let mut reader = BufReader::new(&control);
    let writer = &control;
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .map_err(|e| format!("could not read the setup: {e}"))?
        == 0
    {
        return Ok(()); // the daemon went away before sending the command
    }
    let setup: Setup =
        serde_json::from_str(&line).map_err(|e| format!("the setup is not valid: {e}"))?;
    // words the daemon sent right after the setup may already be in the buffer
    let mut pending = reader.buffer().to_vec();
    let mut reader = &control;
    let send = |mut w: &UnixStream, r: &Report| -> bool {
        serde_json::to_string(r).is_ok_and(|mut s| {
            s.push('\n');
            w.write_all(s.as_bytes()).is_ok()
        })
    };
    let Some((program, args)) = setup.spec.argv.split_first() else {
        send(
            writer,
            &Report::SpawnFailed {
                message: "the job has an empty command; add it again with a command".into(),
                permanent: true,
            },
        );
        return Ok(());
    };
    // the progress descriptor is inherited as it is (it is not close-on-exec here); it is named
    // only if it is really open
    let progress_fd = setup
        .progress_fd
        .filter(|fd| std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists());
    // Only 0–2 and the progress descriptor reach the command: a descriptor the daemon inherited
    // from whoever started it (and passed on, as it is not close-on-exec) is not the command's
    // business — systemd passes a service nothing but its standard streams and LISTEN_FDS.
    close_on_exec_all_but(progress_fd);
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&setup.spec.env)
        .env(crate::procfs::RUN_MARKER, &setup.marker)
        .current_dir(&setup.spec.cwd)
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(fd) = progress_fd {
        cmd.env(crate::progress::PROGRESS_FD_ENV, fd.to_string());
    }
    // The command starts as a service would under systemd: every signal at its default action
    // (an ignored SIGINT or SIGQUIT of whoever started the daemon is not passed on), an empty
    // signal mask — this process blocks SIGTERM, SIGINT, SIGHUP and SIGCHLD for its signalfd,
    // and a mask survives fork and exec (sigprocmask(2)): a command started with SIGTERM
    // blocked ignores every stop request until SIGKILL — and no death signal (fork clears it).
    // SAFETY: sigaction(2) and sigprocmask(2) are async-signal-safe; nothing else runs between
    // fork and exec
    unsafe {
        cmd.pre_exec(|| {
            for sig in Signal::iterator() {
                if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                    let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
                }
            }
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            )?;
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let judged = classify_start_error(
                &e,
                program,
                &setup.spec.cwd,
                setup.spec.env.get("PATH").map(String::as_str),
            );
            send(
                writer,
                &Report::SpawnFailed {
                    message: judged.message,
                    permanent: judged.permanent,
                },
            );
            return Ok(());
        }
    };
    let main_pid = child.id() as i32;
    if let Some(fd) = progress_fd {
        // the command has its copy; the pipe is the command tree's from now on
        // SAFETY: the daemon gave this descriptor to this process alone, and nothing here
        // uses it
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    }
    // the child is never waited through `child`: the loop below reaps everything
    drop(child);
    let stamp = procfs::Stamp::of(main_pid).unwrap_or(procfs::Stamp {
        pid: main_pid,
        start_time: 0,
    });
    let mut daemon_alive = send(writer, &Report::Started { command: stamp });
    let mut control_open = true;
    let mut tree = Tree {
        me: getpid().as_raw(),
        main: Some(main_pid),
        phase: Phase::Running,
        grace: Duration::from_millis(setup.grace_ms),
        leftovers: 0,
    };
    if !daemon_alive {
        tree.terminate();
    }
    let mut status: (Option<i32>, Option<i32>) = (None, None);
    loop {
        take_words(&mut pending, &mut tree);
        // collect every child that ended; the command's status is the run's
        let mut none_left = false;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == main_pid => {
                    status = (Some(code), None);
                    tree.main = None;
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == main_pid => {
                    status = (None, Some(sig as i32));
                    tree.main = None;
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    none_left = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if none_left {
            break;
        }
        if tree.main.is_none() && tree.phase == Phase::Running {
            // the command is done but left processes behind: they go as a stopped run's would
            tree.leftovers = procfs::descendants(tree.me).len();
            tree.terminate();
        }
        let now = Instant::now();
        let timeout = match tree.phase {
            Phase::Running => PollTimeout::NONE,
            Phase::Terminating(at) if at <= now => {
                tree.kill();
                PollTimeout::from(50u16)
            }
            Phase::Terminating(at) => PollTimeout::try_from(at - now).unwrap_or(PollTimeout::MAX),
            Phase::Killing(until) => {
                if now >= until {
                    break;
                }
                tree.kill();
                PollTimeout::from(50u16)
            }
        };
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        // read the socket to its end even once a write failed: a `kill` may wait there
        if control_open {
            fds.push(PollFd::new(reader.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("could not wait for events: {e}")),
        }
        let control_ready = control_open
            && fds
                .get(1)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT) => tree.terminate(),
                Ok(Signal::SIGHUP) if getppid() != parent => {
                    daemon_alive = false;
                    tree.terminate();
                }
                _ => {}
            }
        }
        if control_ready {
            let mut buf = [0u8; 256];
            match reader.read(&mut buf) {
                Ok(0) => {
                    control_open = false;
                    daemon_alive = false;
                    tree.terminate();
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    take_words(&mut pending, &mut tree);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    control_open = false;
                    daemon_alive = false;
                    tree.terminate();
                }
            }
        }
    }
    let report = Report::Exited {
        code: status.0,
        signal: status.1,
        leftovers: tree.leftovers,
    };
    if !(daemon_alive && send(writer, &report))
        && let Some(path) = &setup.ended_file
    {
        let at = chrono::Utc::now().to_rfc3339();
        let _ = std::fs::write(path, at)
            .and_then(|()| std::fs::File::open(path).and_then(|f| f.sync_all()));
    }
    Ok(())
}

/// Acts on the complete words (`stop`, `kill`) at the front of `pending`.
fn take_words(pending: &mut Vec<u8>, tree: &mut Tree) {
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let word: Vec<u8> = pending.drain(..=end).collect();
        match word.trim_ascii() {
            b"stop" => tree.terminate(),
            b"kill" => tree.kill(),
            _ => {}
        }
    }
}

/// Marks every open descriptor above 2 close-on-exec, except `keep`.
fn close_on_exec_all_but(keep: Option<i32>) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && Some(*fd) != keep)
        .collect();
    for fd in fds {
        // SAFETY: `fd` is open in this process (or was, when the directory was read: then the
        // call fails with EBADF, which is ignored); only its close-on-exec flag changes
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            let _ = fcntl(fd, FcntlArg::F_SETFD(flags));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(errno: Errno, cwd: &std::path::Path, program: &str) -> StartError {
        classify_start_error(
            &std::io::Error::from_raw_os_error(errno as i32),
            program,
            cwd,
            Some("/usr/bin:/bin"),
        )
    }

    /// execve(2), fork(2), open(2): which errors a later attempt may not meet again.
    #[test]
    fn resource_shortages_are_transient_and_missing_paths_permanent() {
        let here = std::path::Path::new("/");
        for e in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOMEM,
            Errno::EAGAIN,
            Errno::ETXTBSY,
        ] {
            let j = judge(e, here, "true");
            assert!(!j.permanent, "{e}: {j:?}");
            assert!(j.message.contains("retried with backoff"), "{j:?}");
        }
        for e in [Errno::ENOENT, Errno::EACCES, Errno::ENOEXEC, Errno::ENOTDIR] {
            assert!(judge(e, here, "true").permanent, "{e}");
        }
        // an errno this table does not know: retried (max-attempts still bounds it)
        assert!(!judge(Errno::EIO, here, "true").permanent);
    }

    #[test]
    fn a_permanent_error_names_what_is_gone() {
        let gone = std::path::Path::new("/no/such/dir/anywhere");
        let j = judge(Errno::ENOENT, gone, "make");
        assert!(
            j.message
                .contains("working directory /no/such/dir/anywhere is gone"),
            "{j:?}"
        );
        let j = judge(Errno::ENOENT, std::path::Path::new("/"), "./build.sh");
        assert!(j.message.contains("the program /./build.sh"), "{j:?}");
        let j = judge(Errno::ENOENT, std::path::Path::new("/"), "rsync");
        assert!(
            j.message.contains("`rsync`") && j.message.contains("/usr/bin:/bin"),
            "{j:?}"
        );
    }
}
