//! The command line's grammar (clap).

use std::path::PathBuf;

use backwork_scheduler::core;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "backwork",
    version,
    about = "Durable background jobs with device constraints: run this command every 6 h, but only on AC power and a good network.",
    long_about = "backwork runs one-off, periodic and cron jobs when they are due and the device can serve them \
(network, unmetered network, charging, battery not low, storage not low, idle), retries them with backoff, \
and keeps them across crashes and reboots.\n\n\
`backwork daemon` runs command jobs; the other verbs talk to it through its control socket, or to any app \
that serves one. When nothing answers, they open the store directly. Where the store and the socket are: \
each verb's --store and --socket, or BACKWORK_STORE and BACKWORK_SOCKET. A store named so must be the one \
the server on the socket serves, or the verb refuses.",
    after_help = "Examples:\n  backwork daemon &\n  backwork add --every 6h --requires charging --requires unmetered \\\n      --unique photos-sync -- rsync -a ~/photos nas:photos\n  backwork list\n  backwork why photos-sync\n  backwork run photos-sync --ignore-constraints"
)]
pub struct Cli {
    /// Print less (errors only).
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub quiet: u8,
    /// Print more (repeat for more detail); logs go to stderr.
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

/// Where a verb finds the job store and the daemon. Each is read from its flag, else from its
/// environment variable (an empty variable counts as unset), else the default.
#[derive(Debug, Clone, Default, Args)]
pub struct Paths {
    /// The job store [default: $XDG_DATA_HOME/backwork/store.redb; env: BACKWORK_STORE]; with
    /// a server on the socket, the store it serves.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub store: Option<PathBuf>,
    /// The control socket [default: $XDG_RUNTIME_DIR/backwork/control.sock; env:
    /// BACKWORK_SOCKET].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub socket: Option<PathBuf>,
}

/// The options of every verb that talks to a daemon or opens the store.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientOptions {
    /// The store and the socket.
    #[command(flatten)]
    pub paths: Paths,
    /// How long to wait for a daemon's answer (connect, send and receive together) before
    /// giving up with exit 3 [default: 10s; env: BACKWORK_ANSWER_TIMEOUT].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_parser = humantime::parse_duration,
        value_name = "DURATION"
    )]
    pub answer_timeout: Option<std::time::Duration>,
    /// Print records as JSON Lines (one object per line; see docs/cli.md for the fields).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

/// The shortest answer timeout accepted: a daemon answers a local request in well under this,
/// and a zero timeout would blame a healthy daemon.
pub const MIN_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// The value of the environment variable `name`, unless it is unset or empty.
fn env_value(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

impl Paths {
    /// The store: `--store`, else `BACKWORK_STORE`; `None` for the default.
    pub fn store(&self) -> Option<PathBuf> {
        self.store
            .clone()
            .or_else(|| env_value("BACKWORK_STORE").map(PathBuf::from))
    }

    /// The control socket: `--socket`, else `BACKWORK_SOCKET`, else the default.
    pub fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| env_value("BACKWORK_SOCKET").map(PathBuf::from))
            .unwrap_or_else(backwork_control::default_socket_path)
    }
}

impl ClientOptions {
    /// `--answer-timeout`, else `BACKWORK_ANSWER_TIMEOUT`, else 10 s.
    ///
    /// # Errors
    /// A usage error (exit 2) when the variable is set but not a duration.
    pub fn answer_timeout(&self) -> Result<std::time::Duration, crate::error::CliError> {
        let (d, said) = match (self.answer_timeout, env_value("BACKWORK_ANSWER_TIMEOUT")) {
            (Some(d), _) => (
                d,
                format!("--answer-timeout {}", humantime::format_duration(d)),
            ),
            (None, None) => return Ok(backwork_control::DEFAULT_ANSWER_TIMEOUT),
            (None, Some(v)) => {
                let text = v.to_string_lossy().trim().to_string();
                if text.is_empty() {
                    return Ok(backwork_control::DEFAULT_ANSWER_TIMEOUT);
                }
                let d = humantime::parse_duration(&text).map_err(|e| {
                    crate::error::CliError::invalid(format!(
                        "BACKWORK_ANSWER_TIMEOUT={text:?} is not a duration ({e}); set it like 10s or 1m, or unset it"
                    ))
                })?;
                (d, format!("BACKWORK_ANSWER_TIMEOUT={text}"))
            }
        };
        if d < MIN_ANSWER_TIMEOUT {
            return Err(crate::error::CliError::invalid(format!(
                "{said} leaves no time for an answer; give at least 100ms (the default is 10s)"
            )));
        }
        Ok(d)
    }
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Run the scheduler with the command worker on the store and serve the control socket.
    #[command(
        long_about = "Run the scheduler with the built-in command worker on the store, and serve the control \
socket so the other verbs can inspect and manage the queue. Sends READY to systemd when NOTIFY_SOCKET is set. \
SIGTERM or SIGINT shut it down cleanly: running commands get SIGTERM, then SIGKILL after the grace period.",
        after_help = "Examples:\n  backwork daemon\n  backwork daemon --metered yes          # on a phone's hotspot\n  backwork daemon --idle-source always   # a headless box\n  backwork daemon --device manual        # then: backwork device set …\n  backwork daemon --profile android --set deep_idle_after=30m"
    )]
    Daemon(DaemonArgs),
    /// Add a command job; prints its id.
    #[command(
        long_about = "Add a job that runs a command. The command runs directly (no shell: write `sh -c '…'` for one), \
in the current directory, with a few variables of this shell (PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ; \
more with --env), both captured now. Exit code 0 is success; any other \
retries with backoff, unless --fail-on-exit names it. With --after, it runs once those jobs have \
succeeded (and fails or is cancelled with them); its command then finds their standard output in the \
file $BACKWORK_INPUT_STDOUT and their outputs merged, as JSON, in the file $BACKWORK_INPUT. \
--chain FILE adds a whole chain at once, all or nothing.",
        after_help = "Examples:\n  backwork add --in 10m -- notify-send 'tea is ready'\n  backwork add --every 6h --flex 30m --requires charging \\\n      --requires unmetered --unique photos -- rsync -a ~/photos nas:photos\n  backwork add --cron '0 3 * * 1' -- backup-weekly   # Mondays 03:00\n  backwork add --cron '0 0 3 * * *' --tz Europe/Berlin --tag backup \\\n      -- restic backup ~\n  backwork add --at 2026-12-01T03:00 --timeout 2h \\\n      -- sh -c 'make -C ~/src world > ~/build.log'\n  backwork add --unique zip -- sh -c 'tar czf /tmp/a.tgz ~/a && echo /tmp/a.tgz'\n  backwork add --after zip \\\n      -- sh -c 'read f < \"$BACKWORK_INPUT_STDOUT\"; scp \"$f\" nas:'\n  backwork add --chain nightly.chain --unique nightly --on-conflict append\n\nProgress: the command may write lines to the descriptor $BACKWORK_PROGRESS_FD (always 3);\neach line is its latest progress, shown by `show` and `list` while it runs:\n  echo \"40% uploading a.jpg\" >&\"$BACKWORK_PROGRESS_FD\"   # or 40, or words, or a JSON object\nLines are cut at 4096 bytes; see docs/cli.md, \"Progress\"."
    )]
    Add(Box<AddArgs>),
    /// One line per job: ID, NAME, SCHEDULE, STATE, NEXT, LEFT, LAST, RESULT, WAITING ON.
    #[command(
        after_help = "Examples:\n  backwork list\n  backwork list --state enqueued --tag backup\n  backwork list --json | jq -r 'select(.waiting_on != []) | .id'"
    )]
    List(ListArgs),
    /// The whole record of a job and its recent runs, with their output.
    #[command(
        after_help = "Examples:\n  backwork show photos\n  backwork show 019a4b2c-7d1e-7c3a-9f00-1b2c3d4e5f60 --json"
    )]
    Show(Target),
    /// Why a job is not running now: every reason, with the value that decides it.
    #[command(
        after_help = "Examples:\n  backwork why photos\n\nA reason is one of: an unmet constraint with the device's current value; backoff until T \
(attempt n); minimum interval until T; not due until T; a profile window or quota; no worker for kind K; \
finished or cancelled."
    )]
    Why(Target),
    /// Run a job now, past its schedule, backoff and minimum interval.
    #[command(
        after_help = "Examples:\n  backwork run photos\n  backwork run photos --ignore-constraints"
    )]
    Run(RunArgs),
    /// Cancel a job (by id or name) or every job with a tag.
    #[command(after_help = "Examples:\n  backwork cancel photos\n  backwork cancel --tag backup")]
    Cancel(CancelArgs),
    /// The device state as the scheduler sees it, each value with where it came from and why;
    /// `set` changes it (daemon with --device manual).
    #[command(
        after_help = "Examples:\n  backwork device\n  backwork device --json\n  backwork device set charging=false battery=12 network=metered\n\nKeys: network=none|metered|unmetered, charging=true|false, battery=0-100, storage=low|ok, idle=true|false, screen=on|off, moving=true|false."
    )]
    Device(DeviceArgs),
    /// Run a scenario under an emulated OS on a virtual clock.
    #[command(
        after_help = "Examples:\n  backwork simulate examples/scenarios/phone-overnight.toml --svg timeline.svg\n  backwork simulate examples/scenarios/fleet-nightly-upload.toml \\\n      --devices 1000\n\nThe scenario format: docs/simulator.md."
    )]
    Simulate(SimulateArgs),
    /// Give a failed or cancelled job a fresh cycle: it runs again now (a recurring one at its
    /// next slot), with its attempts counted from zero.
    #[command(
        after_help = "Examples:\n  backwork retry photos-backup\n  backwork retry --tag backup"
    )]
    Retry(RetryArgs),
    /// Drop finished jobs: those past the retention, or older than --older-than.
    #[command(after_help = "Examples:\n  backwork prune\n  backwork prune --older-than 1h")]
    Prune(PruneArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  backwork completions bash \\\n      > ~/.local/share/bash-completion/completions/backwork\n  backwork completions zsh > ~/.zfunc/_backwork"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page backwork(1) in roff, or write it and a page per verb
    /// (backwork-add(1), …) to a directory.
    #[command(
        after_help = "Examples:\n  backwork man --dir ~/.local/share/man/man1\n  man backwork-add\n  backwork man | man -l -"
    )]
    Man {
        /// Write backwork.1 and backwork-VERB.1 here (the directory must exist) instead of
        /// printing backwork.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Verb {
    /// The store, socket and output options of a verb that talks to a daemon or the store.
    pub fn client(&self) -> Option<&ClientOptions> {
        match self {
            Verb::Add(a) => Some(&a.client),
            Verb::List(a) => Some(&a.client),
            Verb::Show(a) | Verb::Why(a) => Some(&a.client),
            Verb::Run(a) => Some(&a.client),
            Verb::Cancel(a) => Some(&a.client),
            Verb::Device(a) => Some(&a.client),
            Verb::Retry(a) => Some(&a.client),
            Verb::Prune(a) => Some(&a.client),
            Verb::Daemon(_) | Verb::Simulate(_) | Verb::Completions { .. } | Verb::Man { .. } => {
                None
            }
        }
    }
}

/// Where the daemon's device state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceSource {
    /// The machine: power supplies, network, free space, load.
    Host,
    /// Set by hand with `backwork device set` (tests, demos).
    Manual,
}

/// Whether the network counts as metered (`daemon --metered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metered {
    /// As NetworkManager's Metered says when it answers, else as the link that carries the
    /// default route says: cellular, point-to-point and USB tethering are metered.
    Auto,
    /// Every network is metered (a hotspot on a phone, a capped plan).
    Yes,
    /// No network is metered.
    No,
}

/// How the daemon decides the device is idle (`daemon --idle-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdleChoice {
    /// logind's IdleHint of your sessions while logind answers on the system bus, else the
    /// load average (as `load`).
    Auto,
    /// logind's IdleHint of your sessions (of every session when you have none); not idle
    /// while logind does not answer.
    Logind,
    /// Idle while the 1-minute load average is under --idle-load-below, whatever logind says.
    Load,
    /// Never idle: jobs that require idleness wait.
    Never,
    /// Always idle (a headless box).
    Always,
}

/// The OS whose background limits the daemon emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// No limits beyond the job's own.
    Desktop,
    /// Android: Doze, standby buckets, WorkManager minimums.
    Android,
    /// iOS: background task budgets.
    Ios,
}

/// `backwork daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Where the device state comes from.
    #[arg(long, value_enum, default_value_t = DeviceSource::Host)]
    pub device: DeviceSource,
    /// Whether the network counts as metered [default: auto] (host device only).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub metered: Option<Metered>,
    /// How idleness is decided [default: auto] (host device only).
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub idle_source: Option<IdleChoice>,
    /// With `--idle-source load` (or `auto` without logind): idle while the 1-minute load
    /// average is under this
    /// [default: 0.5].
    #[arg(long, value_name = "LOAD", value_parser = parse_load)]
    pub idle_load_below: Option<f64>,
    /// The OS background limits to apply.
    #[arg(long, value_enum, default_value_t = Profile::Desktop)]
    pub profile: Profile,
    /// Override one of the profile's numbers, e.g. `--profile android --set
    /// deep_idle_after=30m` (repeatable; the names are in docs/simulator.md).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// How many jobs may run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_concurrent: usize,
    /// How long a stopped command gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace: std::time::Duration,
    /// Also accept control connections from root.
    #[arg(long)]
    pub allow_root: bool,
    /// Serve at most this many control connections at once; more are answered "busy" and
    /// closed (each costs a file descriptor, which command jobs need too).
    #[arg(long, default_value_t = backwork_control::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Close a control connection that has not sent a whole request within this time.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub frame_timeout: std::time::Duration,
    /// Keep finished jobs (and their runs) this long before they are dropped.
    #[arg(long, default_value = "1d", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retention: std::time::Duration,
    /// The store to run on and the socket to serve.
    #[command(flatten)]
    pub paths: Paths,
}

/// `backwork prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Drop the finished jobs that finished at least this long ago [default: the daemon's
    /// retention, `daemon --retention`, 1d]; `0s` drops every finished job.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub older_than: Option<std::time::Duration>,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork add`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("schedule").args(["at", "every", "cron"]).multiple(false))]
pub struct AddArgs {
    /// Run once, this long from now (e.g. 10m, 1h 30m). With --every: the delay before the
    /// first period (WorkManager's initial delay).
    #[arg(
        long = "in",
        value_name = "DURATION",
        conflicts_with_all = ["at", "cron"],
        help_heading = "Schedule"
    )]
    pub in_: Option<String>,
    /// Run once, at this time: 03:00 (the next one, as at(1) reads it), tomorrow 03:00,
    /// 2026-12-01T03:00 (in the local zone or --tz), or RFC 3339.
    #[arg(long, value_name = "TIME", help_heading = "Schedule")]
    pub at: Option<String>,
    /// Run once every period (e.g. 6h).
    #[arg(long, value_name = "DURATION", help_heading = "Schedule")]
    pub every: Option<String>,
    /// With --every: run in the last FLEX of each period [default: anywhere in it].
    #[arg(
        long,
        value_name = "DURATION",
        requires = "every",
        help_heading = "Schedule"
    )]
    pub flex: Option<String>,
    /// With --every: periods on a fixed grid, or counted from each run's end.
    #[arg(long, value_parser = choices(core::ANCHOR_CHOICES), requires = "every", help_heading = "Schedule")]
    pub anchor: Option<String>,
    /// Run at the times of a cron expression: five crontab fields as crontab(5) reads them, or
    /// six with seconds first; @daily, @hourly… too (examples below).
    #[arg(long, value_name = "EXPR", help_heading = "Schedule")]
    pub cron: Option<String>,
    /// The time zone of --cron and --at [default: the local zone].
    #[arg(long, value_name = "ZONE", help_heading = "Schedule")]
    pub tz: Option<String>,
    /// Start at the due time exactly, not batched with other work (up to 1 min later).
    #[arg(long, help_heading = "Schedule")]
    pub accurate: bool,
    /// Expedited work (WorkManager's setExpedited): start at once, ahead of other work waiting
    /// for a slot, past the profile's holds, while the expedited quota lasts (desktop: 1 h of
    /// runs per 24 h; android: the standby bucket's); then run as regular work (the default)
    /// or drop the job. A one-off job with no delay, requiring at most the network and storage.
    #[arg(long, value_name = "WHEN-OUT-OF-QUOTA", num_args = 0..=1, require_equals = true,
          default_missing_value = "run-as-regular",
          value_parser = choices(core::EXPEDITED_CHOICES), help_heading = "Schedule")]
    pub expedited: Option<String>,
    /// Delay each due time by a pseudo-random amount up to this (spreads a fleet's load).
    #[arg(long, value_name = "DURATION", help_heading = "Schedule")]
    pub jitter: Option<String>,
    /// With --jitter: the same delay every time (systemd's FixedRandomDelay).
    #[arg(long, requires = "jitter", help_heading = "Schedule")]
    pub fixed_jitter: bool,
    /// Slots missed while the machine was off: run once, or wait for the next.
    #[arg(long, value_parser = choices(core::CATCH_UP_CHOICES), help_heading = "Schedule")]
    pub catch_up: Option<String>,
    /// Run only while this holds (repeatable).
    #[arg(
        long,
        value_parser = choices(core::REQUIRES_CHOICES),
        value_name = "CONSTRAINT",
        help_heading = "Constraints"
    )]
    pub requires: Vec<String>,
    /// Do not start again sooner than this after a successful run's start.
    #[arg(long, value_name = "DURATION", help_heading = "Constraints")]
    pub min_interval: Option<String>,
    /// Retry delays: exponential:BASE or linear:BASE [default: exponential:30s].
    #[arg(long, value_name = "KIND:BASE", help_heading = "Policy")]
    pub backoff: Option<String>,
    /// Spread each retry delay by up to ± this fraction (at least 0, less than 1), so jobs
    /// that fail together do not retry together.
    #[arg(long, value_name = "FRACTION", help_heading = "Policy")]
    pub backoff_jitter: Option<f64>,
    /// Fail the job after this many attempts [default: retry forever].
    #[arg(long, value_name = "N", help_heading = "Policy")]
    pub max_attempts: Option<u32>,
    /// Time limit of each run, or `none` (under `daemon --profile android`, runs stop at
    /// JobScheduler's 10 min anyway).
    #[arg(
        long,
        value_name = "DURATION|none",
        default_value = "none",
        help_heading = "Policy"
    )]
    pub timeout: String,
    /// A unique name: a second add with the same name follows --on-conflict.
    #[arg(long, value_name = "NAME", help_heading = "Policy")]
    pub unique: Option<String>,
    /// With --unique: keep the existing job, replace it, update it, or run after it.
    #[arg(long, value_parser = choices(core::ON_CONFLICT_CHOICES), requires = "unique", help_heading = "Policy")]
    pub on_conflict: Option<String>,
    /// A tag, for `list --tag` and `cancel --tag` (repeatable).
    #[arg(long, value_name = "TAG", help_heading = "Policy")]
    pub tag: Vec<String>,
    /// Treat this exit code as a permanent failure, not a retry (repeatable).
    #[arg(
        long,
        value_name = "CODE",
        help_heading = "Command",
        allow_negative_numbers = true
    )]
    pub fail_on_exit: Vec<i32>,
    /// Set this variable for the command, or pass this one's current value (repeatable).
    /// Without it the command gets only PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_* and TZ of
    /// this shell.
    #[arg(long, value_name = "KEY=VALUE|KEY", help_heading = "Command")]
    pub env: Vec<String>,
    /// Start from an empty environment (plus --env).
    #[arg(long, help_heading = "Command", conflicts_with = "inherit_env")]
    pub clear_env: bool,
    /// Pass this shell's whole environment (stored with the job, in plain text: tokens too).
    #[arg(long, help_heading = "Command")]
    pub inherit_env: bool,
    /// The working directory [default: the current one].
    #[arg(long, value_name = "DIR", help_heading = "Command")]
    pub cwd: Option<PathBuf>,
    /// Run after this job succeeds: its unique name or id (repeatable: after all of them). It
    /// waits `blocked` until then; if one fails or is cancelled, so is this one. It gets their
    /// outputs: see BACKWORK_INPUT in the long help.
    #[arg(
        long,
        value_name = "NAME|ID",
        help_heading = "Chain",
        add = clap_complete::ArgValueCompleter::new(crate::complete::jobs)
    )]
    pub after: Vec<String>,
    /// How the outputs of the --after jobs are merged: a later job's value for a key wins, or
    /// the values are gathered into arrays (WorkManager's two input mergers).
    #[arg(long, value_parser = choices(core::INPUT_MERGER_CHOICES), help_heading = "Chain")]
    pub input_merger: Option<String>,
    /// In a --chain file: the name other lines' --after give this link.
    #[arg(long, value_name = "LABEL", help_heading = "Chain")]
    pub label: Option<String>,
    /// Add a whole chain in one step, all or nothing: FILE (`-`: standard input) holds one job
    /// per line, written as the options and command of `backwork add` (`#` starts a comment
    /// line); a line's --after names an earlier line's --label, or a queued job. --unique and
    /// --on-conflict here name the whole chain.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Chain",
        conflicts_with_all = [
            "after", "label", "input_merger", "command", "in_", "at", "every", "cron", "requires",
            "min_interval", "backoff", "max_attempts", "tag", "env", "cwd", "fail_on_exit",
            "jitter", "clear_env", "inherit_env", "accurate", "catch_up", "backoff_jitter",
            "expedited", "timeout"
        ]
    )]
    pub chain: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required_unless_present = "chain", value_name = "CMD")]
    pub command: Vec<String>,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// A clap parser that takes the words of one job option (the core's choice table, so the
/// command line, scenarios and the help list the same words with the same meanings).
fn choices<T: Copy + Send + Sync + 'static>(
    table: &'static [backwork_scheduler::core::Choice<T>],
) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        table
            .iter()
            .map(|c| clap::builder::PossibleValue::new(c.name).help(c.help)),
    )
}

/// `backwork list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this state: enqueued, blocked, running, succeeded, failed, cancelled.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Only jobs with this tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Finished jobs too (succeeded, failed, cancelled; kept for the retention).
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// A job named on the command line.
#[derive(Debug, Args)]
pub struct Target {
    /// The job's id, short id (or a prefix of it) or unique name.
    #[arg(value_name = "ID|NAME", add = clap_complete::ArgValueCompleter::new(crate::complete::jobs))]
    pub target: String,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job's id, short id (or a prefix of it) or unique name.
    #[arg(value_name = "ID|NAME", add = clap_complete::ArgValueCompleter::new(crate::complete::jobs))]
    pub target: String,
    /// Also run it if its constraints do not hold.
    #[arg(long)]
    pub ignore_constraints: bool,
    /// Wait for the run to end (printing its progress reports to stderr as they change), print
    /// how it ended, and exit with its result: 0 for a success, the command's exit code,
    /// 128 + N when signal N ended it, 1 for another failure.
    #[arg(long)]
    pub wait: bool,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork cancel`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").args(["target", "tag"]).required(true).multiple(false))]
pub struct CancelArgs {
    /// The job's id, short id (or a prefix of it) or unique name.
    #[arg(value_name = "ID|NAME", add = clap_complete::ArgValueCompleter::new(crate::complete::jobs))]
    pub target: Option<String>,
    /// Every unfinished job with this tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The job's id, short id or unique name.
    #[arg(value_name = "ID|NAME", add = clap_complete::ArgValueCompleter::new(crate::complete::retriable_jobs))]
    pub target: Option<String>,
    /// Every failed or cancelled job with this tag.
    #[arg(long, value_name = "TAG", conflicts_with = "target")]
    pub tag: Option<String>,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork device`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// `set KEY=VALUE…` changes the state.
    #[command(subcommand)]
    pub action: Option<DeviceAction>,
    /// Store, socket, output.
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `backwork device set`.
#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Set device values (only on a daemon started with --device manual).
    Set {
        /// KEY=VALUE settings.
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
}

/// `backwork simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Draw the timeline to this SVG file (with --devices: the requests per minute).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Simulate a fleet of N devices (routines and install times vary) and report the load on
    /// the server: requests per minute, the peak, the 99th percentile.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub devices: Option<u32>,
    /// Print the report as JSON (docs/simulator.md).
    #[arg(long)]
    pub json: bool,
}

/// A load-average threshold: a finite number above zero.
fn parse_load(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{text}` is not a load average; give a number above 0, like 0.5 or 2"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The help's examples reach an 80-column terminal exactly as written — clap does not wrap
    /// them (a wrapped `… > ~/build.log` pasted back would be a redirection of its own) — and
    /// each of their lines fits in 80 columns.
    #[test]
    fn examples_are_printed_verbatim_at_80_columns() {
        let root = Cli::command().term_width(80);
        let mut commands = vec![root.clone()];
        commands.extend(root.get_subcommands().cloned());
        for cmd in commands {
            let Some(after) = cmd.get_after_help().map(|a| a.to_string()) else {
                continue;
            };
            let help = cmd.clone().term_width(80).render_help().to_string();
            let lines: Vec<&str> = help.lines().collect();
            let examples = after
                .lines()
                .skip_while(|l| !l.starts_with("Examples:"))
                .skip(1)
                .take_while(|l| !l.is_empty());
            for example in examples {
                assert!(
                    example.chars().count() <= 80,
                    "{}: {example:?} is wider than 80 columns",
                    cmd.get_name()
                );
                assert!(
                    lines.contains(&example),
                    "{}: the example {example:?} is not printed as written:\n{help}",
                    cmd.get_name()
                );
            }
        }
    }

    /// Issue 12: global options appear under their own heading, and only on the verbs they
    /// mean something to (`completions --socket`, `simulate --store` did nothing).
    #[test]
    fn store_and_socket_options_are_offered_only_where_they_apply() {
        let root = Cli::command().term_width(80);
        for cmd in root.get_subcommands() {
            let help = cmd.clone().term_width(200).render_help().to_string();
            let takes_paths = !matches!(cmd.get_name(), "simulate" | "completions" | "man");
            for flag in ["--store", "--socket"] {
                assert_eq!(
                    help.contains(flag),
                    takes_paths,
                    "{} {flag}:\n{help}",
                    cmd.get_name()
                );
            }
            let takes_json = !matches!(cmd.get_name(), "daemon" | "completions" | "man");
            assert_eq!(help.contains("--json"), takes_json, "{}", cmd.get_name());
            if takes_paths {
                let heading = help
                    .find("Global options:")
                    .expect("a Global options heading");
                assert!(
                    help.find("--store").unwrap() > heading,
                    "{}: --store is not under Global options",
                    cmd.get_name()
                );
            }
        }
    }
}
