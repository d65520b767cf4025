//! Just enough of `/proc` to contain command jobs: a process's parent, group and start time
//! (`/proc/PID/stat`, proc(5)), and the processes descended from one.
//!
//! A pid alone does not name a process for long: once it is reaped the kernel may hand the number
//! to another. A [`Stamp`] adds the process's start time (field 22 of `/proc/PID/stat`, in clock
//! ticks since boot), which two processes with the same pid never share within one boot, so a
//! recorded process is only ever signalled while it is still the same process.

use std::collections::BTreeMap;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The fields of `/proc/PID/stat` containment needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 1: the process id.
    pub pid: i32,
    /// Field 3: the state (`R`, `S`, `D`, `Z` zombie, …).
    pub state: char,
    /// Field 4: the parent's pid.
    pub ppid: i32,
    /// Field 5: the process group.
    pub pgrp: i32,
    /// Field 22: when the process started, in clock ticks after boot.
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses, so the fields after it are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    // fields 3, 4, 5, … after the name
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        pid,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        start_time: rest.get(19)?.parse().ok()?,
    })
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist (any more).
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A process named so that a reused pid is never mistaken for it: pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The process id (for a group leader, also the process group id).
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` when it was recorded.
    pub start_time: u64,
}

impl Stamp {
    /// The stamp of the live process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<Stamp> {
        stat(pid).map(|s| Stamp {
            pid,
            start_time: s.start_time,
        })
    }

    /// True while this very process exists and has not exited (a zombie has exited: it only
    /// waits for its parent to collect its status).
    pub fn is_alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start_time == self.start_time && s.state != 'Z')
    }

    /// Sends `sig` to the process if it is still this one; false if it is gone.
    pub fn signal(&self, sig: Signal) -> bool {
        self.is_alive() && kill(Pid::from_raw(self.pid), sig).is_ok()
    }

    /// Sends `sig` to the process group this process leads, if the leader is still this one.
    pub fn signal_group(&self, sig: Signal) -> bool {
        self.is_alive() && nix::sys::signal::killpg(Pid::from_raw(self.pid), sig).is_ok()
    }
}

/// The environment variable a run's command (and so every process it starts, `setsid` or not,
/// unless it clears its environment) carries: `job-id/attempt`. Recovery finds a crashed run's
/// processes by it when no supervisor is left to hold them.
pub const RUN_MARKER: &str = "BACKWORK_RUN";

/// The marker value of attempt `attempt` of `job`.
pub fn run_marker(job: impl std::fmt::Display, attempt: u32) -> String {
    format!("{job}/{attempt}")
}

/// Every live process (not a zombie) in process group `pgrp`, or whose environment holds
/// `RUN_MARKER=marker`. A group id is never handed out again while a member of the group lives,
/// so the members found are the group's own even when its leader is gone.
pub fn members_of_run(pgrp: Option<i32>, marker: &str) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = format!("{RUN_MARKER}={marker}");
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(s) = stat(pid).filter(|s| s.state != 'Z' && s.pid != me) else {
            continue;
        };
        let in_group = pgrp.is_some_and(|g| s.pgrp == g);
        let marked = || {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        };
        if in_group || marked() {
            out.push(s);
        }
    }
    out
}

/// Sends SIGKILL to every process of a run: its command's group and everything marked with
/// its [`RUN_MARKER`]. True if there was any.
pub fn kill_run(command: Option<Stamp>, marker: &str) -> bool {
    // a group whose leader is alive but is another process (the pid was reused after the whole
    // group died) is not ours
    let pgrp = command
        .filter(|c| c.is_alive() || stat(c.pid).is_none())
        .map(|c| c.pid);
    let procs = members_of_run(pgrp, marker);
    for p in &procs {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    !procs.is_empty()
}

/// Every live process whose chain of parents leads to `root` (not `root` itself), parents before
/// their children. A snapshot: a process forked after the scan is not in it.
pub fn descendants(root: i32) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: BTreeMap<i32, Vec<Stat>> = BTreeMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    let mut next = vec![root];
    while let Some(p) = next.pop() {
        for s in children.remove(&p).unwrap_or_default() {
            next.push(s.pid);
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime …
        let line =
            "4242 (a b) c)) S 17 4242 4242 0 -1 4194560 90 0 0 0 1 2 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 4242,
                state: 'S',
                ppid: 17,
                pgrp: 4242,
                start_time: 987_654
            })
        );
        assert_eq!(parse_stat("12 (x) S 1 2"), None, "a cut line is refused");
    }

    #[test]
    fn this_process_has_a_stamp_and_its_children_are_its_descendants() {
        let me = Stamp::of(std::process::id() as i32).expect("own stat");
        assert!(me.is_alive());
        let wrong = Stamp {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!wrong.is_alive(), "another start time is another process");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id() as i32)
            .iter()
            .any(|s| s.pid == child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found, "a child is a descendant");
    }
}
