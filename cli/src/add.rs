//! `backwork add`: the flags become a job request for the command worker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backwork_control::{COMMAND_KIND, CommandSpec, NewChain, NewJob, UniqueSpec};
use backwork_scheduler::core::{JobOptions, OptionContext, OptionError};
use backwork_scheduler::{JobRequest, Time};

use crate::args::AddArgs;
use crate::error::CliError;
use crate::time::local_zone;

/// The job request `args` describe, with the environment and directory captured from this
/// process (`env`, `cwd`), at `now`. The schedule and policy flags are read by the core's
/// [`JobOptions::request`] — the one reading scenario files get too.
pub fn request(
    args: &AddArgs,
    env: impl IntoIterator<Item = (String, String)>,
    cwd: &Path,
    now: Time,
) -> Result<JobRequest, CliError> {
    let command = command_spec(args, env, cwd)?;
    let options = JobOptions {
        in_: args.in_.clone(),
        at: args.at.clone(),
        every: args.every.clone(),
        flex: args.flex.clone(),
        anchor: args.anchor.clone(),
        cron: args.cron.clone(),
        tz: args.tz.clone(),
        catch_up: args.catch_up.clone(),
        requires: args.requires.clone(),
        min_interval: args.min_interval.clone(),
        backoff: args.backoff.clone(),
        backoff_jitter: args.backoff_jitter,
        max_attempts: args.max_attempts,
        // a command job has no time limit unless asked (as a systemd service has none; DESIGN
        // §2) — `--timeout` defaults to `none`; the android profile still stops runs at its
        // limit
        timeout: Some(args.timeout.clone()),
        accurate: args.accurate,
        jitter: args.jitter.clone(),
        fixed_jitter: args.fixed_jitter,
        unique: args.unique.clone(),
        on_conflict: args.on_conflict.clone(),
        tags: args.tag.clone(),
        input_merger: args.input_merger.clone(),
        expedited: args.expedited.clone(),
    };
    let cx = OptionContext {
        zone: local_zone(),
        now,
    };
    let request = options.request(COMMAND_KIND, &cx).map_err(option_error)?;
    let input = serde_json::to_value(&command)
        .map_err(|e| CliError::invalid(format!("the command could not be encoded: {e}")))?;
    Ok(request.input(input))
}

/// One job to add as the wire carries it: `args` read by [`request`], with its `--after`,
/// `--label` and `--input-merger`.
pub fn new_job(
    args: &AddArgs,
    env: impl IntoIterator<Item = (String, String)>,
    cwd: &Path,
    now: Time,
) -> Result<NewJob, CliError> {
    let mut job = NewJob::of(&request(args, env, cwd, now)?);
    job.after = args.after.clone();
    job.label = args.label.clone();
    Ok(job)
}

/// The lines of a `--chain` file read as `backwork add` options, one link a line.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true)]
struct Line {
    #[command(flatten)]
    add: AddArgs,
}

/// The chain `text` describes (one link a line: the options and command of `backwork add`,
/// split as sh(1) splits words; blank lines and lines starting with `#` skipped), named by
/// `--unique`/`--on-conflict` of `args`.
pub fn chain(
    args: &AddArgs,
    text: &str,
    env: &[(String, String)],
    cwd: &Path,
    now: Time,
) -> Result<NewChain, CliError> {
    let mut links = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = |m: String| CliError::invalid(format!("--chain line {}: {m}", n + 1));
        let words = shlex::split(trimmed)
            .ok_or_else(|| at("unbalanced quotes or a trailing backslash".into()))?;
        let parsed = <Line as clap::Parser>::try_parse_from(words)
            .map_err(|e| at(e.render().to_string().trim().to_string()))?;
        if parsed.add.chain.is_some() {
            return Err(at("a chain line cannot hold another --chain".into()));
        }
        if parsed.add.unique.is_some() {
            return Err(at(
                "a link has no --unique of its own; give --unique to `backwork add --chain` to name the whole chain"
                    .into(),
            ));
        }
        links.push(
            new_job(&parsed.add, env.iter().cloned(), cwd, now).map_err(|e| at(e.to_string()))?,
        );
    }
    if links.is_empty() {
        return Err(CliError::invalid(
            "the --chain file holds no job; write one `backwork add` line (options -- command) per job",
        ));
    }
    Ok(NewChain {
        links,
        unique: args.unique.as_ref().map(|name| UniqueSpec {
            name: name.clone(),
            on_conflict: args.on_conflict.clone(),
        }),
    })
}

/// A refused option as a usage error naming its flag (`--min-interval`, `--in`, `--tag`).
pub fn option_error(e: OptionError) -> CliError {
    match e.option() {
        Some(key) => CliError::invalid(format!("--{} {e}", key.replace('_', "-"))),
        None => CliError::invalid(e.to_string()),
    }
}

fn command_spec(
    args: &AddArgs,
    env: impl IntoIterator<Item = (String, String)>,
    cwd: &Path,
) -> Result<CommandSpec, CliError> {
    let current: BTreeMap<String, String> = env.into_iter().collect();
    let mut vars: BTreeMap<String, String> = if args.clear_env {
        BTreeMap::new()
    } else if args.inherit_env {
        current
            .iter()
            .filter(|(k, _)| !NEVER_PASSED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        current
            .iter()
            .filter(|(k, _)| allowed(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if let Some(code) = args.fail_on_exit.iter().find(|c| !(1..=255).contains(*c)) {
        return Err(CliError::invalid(format!(
            "--fail-on-exit {code} can never match: an exit code is 1 to 255 (0 is success; a signal is not an exit code)"
        )));
    }
    for kv in &args.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CliError::invalid(format!(
                "--env {kv:?}: the name {key:?} holds white space or a control character; a variable's name is letters, digits and _"
            )));
        }
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                vars.insert(k.to_string(), v.to_string());
            }
            None if !kv.is_empty() => match current.get(kv) {
                Some(v) => {
                    vars.insert(kv.clone(), v.clone());
                }
                None => {
                    return Err(CliError::invalid(format!(
                        "--env {kv}: {kv} is not set here; write --env {kv}=VALUE"
                    )));
                }
            },
            _ => {
                return Err(CliError::invalid(format!(
                    "--env {kv:?} is not KEY=VALUE or KEY; write it like --env LANG=C or --env LANG"
                )));
            }
        }
    }
    let dir = match &args.cwd {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => cwd.join(d),
        None => cwd.to_path_buf(),
    };
    if !dir.is_dir() {
        return Err(CliError::invalid(format!(
            "the working directory {} does not exist; pass an existing --cwd",
            dir.display()
        )));
    }
    let Some(program) = args.command.first() else {
        return Err(CliError::invalid(
            "no command given; write it after `--`, like: backwork add -- echo hello",
        ));
    };
    if find_program(program, vars.get("PATH").map(String::as_str), &dir).is_none() {
        return Err(CliError::invalid(if program.contains('/') {
            format!("command not found: `{program}` is not an executable file; check the path")
        } else {
            format!(
                "command not found: `{program}` is not an executable file in the job's PATH; give its full path or fix PATH"
            )
        }));
    }
    Ok(CommandSpec {
        argv: args.command.clone(),
        env: vars,
        cwd: dir,
        fail_on_exit: args.fail_on_exit.clone(),
    })
}

/// The variables of the adding shell a command job gets without `--inherit-env` (DESIGN §5):
/// where to find programs, who and where the user is, the language and the time zone — not the
/// tokens and sockets a shell holds.
pub const ALLOWED_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ"];

/// Variables never taken from the adding shell, even with `--inherit-env`: systemd's
/// notification socket and watchdog (sd_notify(3), sd_watchdog_enabled(3): a job would speak
/// for, or be expected to ping on behalf of, whoever started the shell), its socket-activation
/// variables (sd_listen_fds(3)), and the marker of the run the shell may itself be part of.
const NEVER_PASSED: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    crate::procfs::RUN_MARKER,
];

/// True for the variables in [`ALLOWED_ENV`] and the locale categories (`LC_*`).
fn allowed(key: &str) -> bool {
    ALLOWED_ENV.contains(&key) || key.starts_with("LC_")
}

/// Where `program` resolves: a path (relative to `dir`) if it has a `/`, else the first
/// executable file of that name in `path`.
fn find_program(program: &str, path: Option<&str>, dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = dir.join(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path.unwrap_or("/usr/local/bin:/usr/bin:/bin"))
        .map(|d| dir.join(d).join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backwork_scheduler::{
        Anchor, Backoff, CatchUp, ConflictPolicy, Constraint, NetworkRequirement, Schedule,
        StopReason,
    };
    use chrono_tz::Tz;
    use clap::Parser;
    use std::time::Duration;

    fn parse(line: &[&str]) -> AddArgs {
        let mut argv = vec!["backwork", "add"];
        argv.extend_from_slice(line);
        match crate::args::Cli::parse_from(argv).verb {
            crate::args::Verb::Add(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    fn now() -> Time {
        chrono::DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn env() -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("HOME".into(), "/root".into()),
        ]
    }

    /// A shell's environment with a secret, systemd's socket and the allowlisted variables.
    fn shell_env() -> Vec<(String, String)> {
        let mut e = env();
        e.extend(
            [
                ("GITHUB_TOKEN", "ghp_secret"),
                ("NOTIFY_SOCKET", "/run/user/1000/systemd/notify"),
                ("LC_TIME", "de_DE.UTF-8"),
                ("TZ", "Europe/Berlin"),
                ("RESTIC_REPOSITORY", "sftp:nas:/backup"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        e
    }

    fn spec_of(args: &[&str]) -> CommandSpec {
        let r = request(&parse(args), shell_env(), Path::new("/"), now()).unwrap();
        serde_json::from_value(r.input).unwrap()
    }

    #[test]
    fn a_command_gets_only_the_allowlisted_variables_unless_asked() {
        // DESIGN §5: PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ plus what --env names
        let spec = spec_of(&["--", "true"]);
        let keys: Vec<&str> = spec.env.keys().map(String::as_str).collect();
        assert_eq!(keys, ["HOME", "LC_TIME", "PATH", "TZ"]);

        let spec = spec_of(&["--env", "RESTIC_REPOSITORY", "--env", "X=1", "--", "true"]);
        assert_eq!(spec.env["RESTIC_REPOSITORY"], "sftp:nas:/backup");
        assert_eq!(spec.env["X"], "1");
        assert!(!spec.env.contains_key("GITHUB_TOKEN"));

        let spec = spec_of(&["--inherit-env", "--", "true"]);
        assert_eq!(spec.env["GITHUB_TOKEN"], "ghp_secret");
        assert!(!spec.env.contains_key("NOTIFY_SOCKET"), "{:?}", spec.env);

        let spec = spec_of(&["--clear-env", "--env", "LANG=C", "--", "/bin/true"]);
        assert_eq!(spec.env.keys().collect::<Vec<_>>(), ["LANG"]);
    }

    #[test]
    fn a_command_job_has_no_time_limit_unless_asked() {
        // DESIGN §2: "none for the daemon's command jobs under desktop"
        let r = request(&parse(&["--", "true"]), env(), Path::new("/"), now()).unwrap();
        assert_eq!(r.timeout, None);
        let r = request(
            &parse(&["--timeout", "2h", "--", "true"]),
            env(),
            Path::new("/"),
            now(),
        )
        .unwrap();
        assert_eq!(r.timeout, Some(Duration::from_secs(7200)));
    }

    /// Issue 12's acceptance: a command job added without `--timeout` runs 15 minutes under the
    /// desktop profile without being stopped — driven on the core's virtual clock, with the
    /// desktop profile the daemon uses; a job with `--timeout 10m` is stopped at 10 minutes
    /// (the control: the same drive does stop a limited run).
    #[test]
    fn a_command_job_runs_fifteen_minutes_under_the_desktop_profile_unstopped() {
        use backwork_scheduler::{Action, DeviceState, Event, JobId};
        let drive = |args: &[&str]| -> Vec<(Time, StopReason)> {
            let profile = backwork_profiles::Profile::desktop();
            let mut core = backwork_scheduler::Scheduler::new(profile.config, profile.policy);
            let t0 = now();
            core.handle(t0, Event::WorkerRegistered(COMMAND_KIND.into()))
                .unwrap();
            core.handle(t0, Event::DeviceChanged(DeviceState::default()))
                .unwrap();
            core.handle(t0, Event::Load(Vec::new())).unwrap();
            let id = JobId::new_v7(t0, [1; 10]);
            let request = request(&parse(args), env(), Path::new("/"), t0).unwrap();
            core.handle(t0, Event::Enqueue { id, request }).unwrap();
            let end = t0 + chrono::TimeDelta::minutes(15);
            let mut stops = Vec::new();
            let mut started = false;
            let mut t = t0;
            loop {
                while let Some(action) = core.poll_action() {
                    match action {
                        Action::Start(s) if s.id == id => started = true,
                        Action::Stop {
                            id: stopped,
                            reason,
                        } if stopped == id => {
                            stops.push((t, reason));
                        }
                        _ => {}
                    }
                }
                match core.poll_timeout() {
                    Some(next) if next <= end => {
                        t = next.max(t);
                        core.handle(t, Event::Timeout).unwrap();
                    }
                    _ => break,
                }
            }
            assert!(started, "{args:?}: the run started");
            assert_eq!(
                core.job(id).unwrap().state.to_string(),
                "running",
                "{args:?}"
            );
            stops
        };
        assert_eq!(drive(&["--", "sleep", "3600"]), []);
        let limited = drive(&["--timeout", "10m", "--", "sleep", "3600"]);
        assert_eq!(limited.len(), 1, "{limited:?}");
        assert_eq!(limited[0].1, StopReason::Timeout);
        assert_eq!(limited[0].0, now() + chrono::TimeDelta::minutes(10));
    }

    /// `--in` with `--every` is WorkManager's initial delay of a periodic request; with `--at`
    /// or `--cron` it is a second schedule, refused before anything is written.
    #[test]
    fn in_with_every_delays_the_first_period_and_is_refused_with_at_or_cron() {
        let a = parse(&["--every", "6h", "--in", "10m", "--", "true"]);
        let r = request(&a, env(), Path::new("/"), now()).unwrap();
        assert_eq!(
            r.schedule,
            Schedule::Periodic {
                every: Duration::from_secs(6 * 3600),
                flex: None,
                anchor: None,
                initial_delay: Duration::from_secs(600),
            }
        );
        for other in [["--at", "03:00"], ["--cron", "@daily"]] {
            let mut argv = vec!["backwork", "add", "--in", "10m"];
            argv.extend(other);
            argv.extend(["--", "true"]);
            let err = crate::args::Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        }
    }

    #[test]
    fn every_flag_lands_in_the_request() {
        let a = parse(&[
            "--every",
            "6h",
            "--flex",
            "30m",
            "--anchor",
            "after-run",
            "--requires",
            "charging",
            "--requires",
            "unmetered",
            "--min-interval",
            "1h",
            "--backoff",
            "linear:1m",
            "--max-attempts",
            "5",
            "--timeout",
            "none",
            "--unique",
            "photos",
            "--on-conflict",
            "replace",
            "--tag",
            "a",
            "--tag",
            "b",
            "--catch-up",
            "skip",
            "--fail-on-exit",
            "3",
            "--env",
            "LANG=C",
            "--accurate",
            "--jitter",
            "5m",
            "--fixed-jitter",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]);
        let r = request(&a, env(), Path::new("/"), now()).unwrap();
        assert_eq!(
            r.schedule,
            Schedule::Periodic {
                every: Duration::from_secs(6 * 3600),
                flex: Some(Duration::from_secs(1800)),
                anchor: Some(Anchor::AfterRun),
                initial_delay: Duration::ZERO,
            }
        );
        assert!(r.constraints.list().contains(&Constraint::Charging));
        assert!(
            r.constraints
                .list()
                .contains(&Constraint::Network(NetworkRequirement::Unmetered))
        );
        assert_eq!(r.min_interval, Some(Duration::from_secs(3600)));
        assert_eq!(r.backoff, Backoff::linear(Duration::from_secs(60)));
        assert_eq!(r.max_attempts, Some(5));
        assert_eq!(r.timeout, None);
        let u = r.unique.as_ref().unwrap();
        assert_eq!(
            (u.name.as_str(), u.policy),
            ("photos", ConflictPolicy::CancelAndReenqueue)
        );
        assert_eq!(r.tags.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.catch_up, CatchUp::Skip);
        let spec: CommandSpec = serde_json::from_value(r.input).unwrap();
        assert_eq!(spec.argv, ["sh", "-c", "echo hi"]);
        assert_eq!(spec.env["LANG"], "C");
        assert_eq!(spec.env["HOME"], "/root");
        assert_eq!(spec.cwd, Path::new("/"));
        assert_eq!(spec.fail_on_exit, [3]);
        assert!(r.accurate);
        assert_eq!(
            r.jitter,
            Some(backwork_scheduler::Jitter {
                max: Duration::from_secs(300),
                fixed: true
            })
        );
    }

    #[test]
    fn schedules_from_in_at_and_cron() {
        let r = request(
            &parse(&["--in", "10m", "--", "true"]),
            env(),
            Path::new("/"),
            now(),
        )
        .unwrap();
        assert_eq!(
            r.schedule,
            Schedule::Once {
                delay: Duration::from_secs(600),
                not_before: None
            }
        );
        let r = request(
            &parse(&["--at", "2026-12-01T03:00", "--tz", "UTC", "--", "true"]),
            env(),
            Path::new("/"),
            now(),
        )
        .unwrap();
        assert_eq!(
            r.schedule,
            Schedule::Once {
                delay: Duration::ZERO,
                not_before: Some(
                    backwork_scheduler::core::parse_at("2026-12-01T03:00:00Z", Tz::UTC, now())
                        .unwrap()
                )
            }
        );
        // a crontab line is kept as written
        let r = request(
            &parse(&[
                "--cron",
                "30 3 * * *",
                "--tz",
                "Europe/Berlin",
                "--",
                "true",
            ]),
            env(),
            Path::new("/"),
            now(),
        )
        .unwrap();
        assert_eq!(
            r.schedule,
            Schedule::Cron {
                expr: "30 3 * * *".into(),
                tz: "Europe/Berlin".parse().unwrap()
            }
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_sentence() {
        let cases: &[(&[&str], &str)] = &[
            (&["--in", "soon", "--", "true"], "is not a duration"),
            (&["--at", "2020-01-01T00:00", "--", "true"], "in the past"),
            (
                &["--backoff", "random:1s", "--", "true"],
                "is not a backoff",
            ),
            (
                &[
                    "--cron",
                    "0 0 3 * * *",
                    "--tz",
                    "Mars/Olympus",
                    "--",
                    "true",
                ],
                "unknown time zone",
            ),
            (
                &["--env", "NOVALUE", "--", "true"],
                "NOVALUE is not set here",
            ),
            (&["--env", "=x", "--", "true"], "is not KEY=VALUE or KEY"),
            (&["--", "no-such-program-anywhere"], "command not found"),
            (
                &["--in", "1m", "--catch-up", "one", "--", "true"],
                "drop catch-up",
            ),
            (&["--max-attempts", "0", "--", "true"], "at least 1"),
            (&["--cwd", "/no/such/dir", "--", "true"], "does not exist"),
        ];
        for (line, want) in cases {
            let err = request(&parse(line), env(), Path::new("/"), now()).unwrap_err();
            assert_eq!(err.code, 2, "{line:?}");
            assert!(err.message.contains(want), "{line:?}: {}", err.message);
        }
    }
}
