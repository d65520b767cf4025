//! The `backwork` command line (DESIGN §7): the daemon that runs command jobs, and the verbs that
//! inspect and manage a queue — through the control socket of a daemon or an app, or on the
//! store itself when nothing serves it.
//!
//! `main.rs` only calls [`main`]; everything else lives here so tests can reach it.

#![warn(missing_docs)]

pub mod add;
pub mod args;
pub mod command;
mod complete;
pub mod daemon;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod procfs;
pub mod progress;
pub mod render;
pub mod runs;
pub mod session;
pub mod supervise;
pub mod time;

use std::io::Write;
use std::process::ExitCode;

use backwork_control::{Request, Response};
use backwork_scheduler::{JobId, JobState, Selector};
use clap::CommandFactory;

use args::{Cli, ClientOptions, DeviceAction, Verb};
use error::CliError;
use render::Style;
use session::{Session, store_path};

/// Runs the command line and returns its exit code.
pub fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == supervise::SUBCOMMAND)
    {
        // a run's supervisor, started by the daemon (hidden: not a verb people use)
        return supervise::main();
    }
    // `COMPLETE=bash backwork` prints the shell's registration; the shell then asks here
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = <Cli as clap::Parser>::parse();
    let daemon = matches!(cli.verb, Verb::Daemon(_));
    init_logging(cli.quiet, cli.verbose, daemon);
    let runtime = if daemon {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(CliError::unavailable(format!(
            "could not start the async runtime: {e}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", render::escape(&e.message));
            ExitCode::from(e.code)
        }
    }
}

/// Logs to standard error, or straight to the journal when standard error is the journal
/// (systemd sets `JOURNAL_STREAM` to its device and inode): fields then stay fields and levels
/// stay priorities. The filter is `BACKWORK_LOG`, else `RUST_LOG` (tracing's `EnvFilter`
/// syntax, e.g. `info,backwork_scheduler=debug`), else the `-v`/`-q` level.
fn init_logging(quiet: u8, verbose: u8, daemon: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    // info for the daemon; errors only for the verbs, whose replies carry their warnings as
    // sentences (a local run's log line would say each twice)
    let base = if daemon { 2 } else { 0 };
    let level = match (base + i16::from(verbose) - i16::from(quiet)).max(0) {
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    };
    // an empty variable is unset (`Environment=RUST_LOG=` in a unit); a filter that does not
    // parse is named on stderr and the default is used, rather than logging nothing
    // (a verb still says what the store itself warns about when it opens it: a migration's
    // changed cron weekdays, a commit dropped on damage — said once, to the person upgrading)
    let mut filter = if daemon || quiet > 0 {
        tracing_subscriber::EnvFilter::new(level)
    } else {
        tracing_subscriber::EnvFilter::new(format!("{level},backwork_persistence=warn"))
    };
    for name in ["BACKWORK_LOG", "RUST_LOG"] {
        let Some(value) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match tracing_subscriber::EnvFilter::builder().parse(&value) {
            Ok(f) => {
                filter = f;
                break;
            }
            Err(e) => eprintln!(
                "warning: {name}={value:?} is not a log filter ({e}); using {level}. Write it like info or warn,backwork_scheduler=debug"
            ),
        }
    }
    let journal = stderr_is_journal()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match journal {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
}

/// True when standard error is the journal's stream: `JOURNAL_STREAM` (`DEVICE:INODE`, set by
/// systemd for services whose output goes to the journal) names the file standard error is.
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// Writes to stdout; a closed pipe (`backwork list | head`) is not an error.
fn out(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::unavailable(
            format!("could not write to standard output: {e}"),
        )),
        _ => Ok(()),
    }
}

/// One JSON object per line.
fn json_lines<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Result<(), CliError> {
    let mut text = String::new();
    for item in items {
        let line = serde_json::to_string(&item)
            .map_err(|e| CliError::unavailable(format!("could not encode a record: {e}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    out(&text)
}

fn note(quiet: u8, text: &str) {
    if quiet == 0 {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// An id if it parses as one; a short id or a prefix of one (4 to 12 hex digits — a job named
/// exactly that still wins); else a unique name.
pub fn parse_target(s: &str) -> Selector {
    if let Ok(id) = s.parse::<JobId>() {
        return Selector::Id(id);
    }
    let hex = s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex
        && (backwork_scheduler::MIN_PREFIX_LEN..=backwork_scheduler::SHORT_ID_LEN)
            .contains(&s.len())
    {
        Selector::Prefix(s.to_string())
    } else {
        Selector::Name(s.to_string())
    }
}

fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(cols) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(cols);
    }
    if !std::io::stdout().is_terminal() {
        return None; // a pipe gets whole lines
    }
    terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
}

/// A progress bar on stderr that appears only once a run has taken a second, and only on a
/// terminal.
struct Progress {
    started: std::time::Instant,
    bar: std::cell::OnceCell<indicatif::ProgressBar>,
    enabled: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: std::time::Instant::now(),
            bar: std::cell::OnceCell::new(),
            enabled: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn show(&self, fraction: f64, what: &str) {
        if !self.enabled || self.started.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let b = indicatif::ProgressBar::new(1000);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({elapsed})")
            {
                b.set_style(style);
            }
            b.set_message(what.to_string());
            b
        });
        bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
    }

    fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

/// `backwork completions SHELL`: the registration script of the dynamic completion — what
/// `COMPLETE=SHELL backwork` prints — which completes verbs and flags, and job names and short
/// ids by asking this binary at each `Tab`.
fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::unavailable(format!("cannot find this program's path ({e})")))?;
    let output = std::process::Command::new(&exe)
        .env("COMPLETE", shell.to_string())
        .output()
        .map_err(|e| CliError::unavailable(format!("cannot run {}: {e}", exe.display())))?;
    if !output.status.success() || output.stdout.is_empty() {
        return Err(CliError::invalid(format!(
            "no dynamic completion for {shell}; try bash, zsh, fish or elvish"
        )));
    }
    out(&String::from_utf8_lossy(&output.stdout))
}

/// `backwork man`: the manual pages, rendered by clap_mangen from the same grammar as `--help`.
fn manual(dir: Option<&std::path::Path>) -> Result<(), CliError> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let Some(dir) = dir else {
        let page = man_page(root).map_err(|e| {
            CliError::unavailable(format!("the manual page could not be rendered: {e}"))
        })?;
        return out(&String::from_utf8_lossy(&page));
    };
    let pages = 1 + root.get_subcommands().map(count_pages).sum::<usize>();
    fn count_pages(cmd: &clap::Command) -> usize {
        1 + cmd.get_subcommands().map(count_pages).sum::<usize>()
    }
    fn write_all(cmd: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            write_all(sub.clone(), dir)?;
        }
        let file = dir.join(clap_mangen::Man::new(cmd.clone()).get_filename());
        std::fs::write(file, man_page(cmd)?)
    }
    write_all(root, dir).map_err(|e| {
        CliError::invalid(format!(
            "cannot write the manual pages to {} ({e}); give an existing, writable directory",
            dir.display()
        ))
    })?;
    out(&format!(
        "wrote {pages} manual pages (backwork.1, backwork-add.1, …) to {}\n",
        dir.display()
    ))
}

/// The man page of `cmd`, with its help's examples in an EXAMPLES section printed as written
/// (no filling or justifying: a re-wrapped example does not paste back into a shell).
fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let after = cmd
        .get_after_help()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.after_help(None::<&'static str>)).render(&mut page)?;
    // roff: a backslash is `\e`, a minus `\-` (a plain `-` may print as a hyphen), and a
    // line that starts with `.` or `'` would be a request
    let roff = |line: &str| {
        let text = line.replace('\\', "\\e").replace('-', "\\-");
        if text.starts_with(['.', '\'']) {
            format!("\\&{text}")
        } else {
            text
        }
    };
    let mut lines = after.lines().peekable();
    let mut prose = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() == "Examples:" {
            page.extend_from_slice(b".SH EXAMPLES\n.nf\n");
            while let Some(example) = lines.next_if(|l| !l.trim().is_empty()) {
                page.extend_from_slice(
                    roff(example.strip_prefix("  ").unwrap_or(example)).as_bytes(),
                );
                page.push(b'\n');
            }
            page.extend_from_slice(b".fi\n");
        } else if !line.trim().is_empty() {
            prose.push(roff(line));
        }
    }
    if !prose.is_empty() {
        page.extend_from_slice(b".SH NOTES\n");
        page.extend_from_slice(prose.join("\n").as_bytes());
        page.push(b'\n');
    }
    Ok(page)
}

/// The largest scenario file `simulate` reads (4 MiB: far more than any hand-written
/// scenario; a device file or a mistaken path is not read without end).
const MAX_SCENARIO_BYTES: u64 = 4 << 20;

/// The text of the scenario file at `path`: a regular file of at most [`MAX_SCENARIO_BYTES`].
fn read_scenario(path: &std::path::Path) -> Result<String, CliError> {
    read_text_file(
        path,
        "the scenario",
        MAX_SCENARIO_BYTES,
        "give a .toml file (docs/simulator.md)",
        "a scenario is a short TOML file (use count for many copies of a job)",
    )
}

/// The UTF-8 text of `path`, a regular file of at most `max` bytes (`what` names it in errors;
/// `kind_hint` says what to give instead of another kind of file, `size_hint` what to do about
/// a larger one). Opened non-blocking: a FIFO is refused rather than waited on, and a device
/// such as /dev/zero is refused rather than read without end.
fn read_text_file(
    path: &std::path::Path,
    what: &str,
    max: u64,
    kind_hint: &str,
    size_hint: &str,
) -> Result<String, CliError> {
    use std::io::Read as _;
    let path_text = path.display().to_string();
    let shown = render::escape(&path_text);
    let cannot = |e: std::io::Error| CliError::invalid(format!("cannot read {what} {shown}: {e}"));
    // non-blocking: opening a FIFO for reading would otherwise wait for a writer (the file's
    // type is checked on the open descriptor, so it cannot change in between)
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(cannot)?
    };
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(CliError::invalid(format!(
            "{what} {shown} is not a regular file; {kind_hint}"
        )));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(CliError::invalid(format!(
            "{what} {shown} is over {} KiB; {size_hint}",
            max >> 10
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::invalid(format!(
            "{what} {shown} is not UTF-8 text; save it as UTF-8"
        ))
    })
}

/// Writes a drawing of `simulate --svg`.
fn write_svg(path: &std::path::Path, svg: &str) -> Result<(), CliError> {
    std::fs::write(path, svg).map_err(|e| {
        CliError::invalid(format!(
            "cannot write {} ({e}); give a path in a writable directory",
            path.display()
        ))
    })
}

/// `backwork simulate`: runs the scenario and prints its report (and draws it, with `--svg`).
fn simulate(args: &args::SimulateArgs, json: bool) -> Result<(), CliError> {
    let text = read_scenario(&args.scenario)?;
    let scenario = backwork_simulator::Scenario::from_toml(&text)
        .map_err(|e| CliError::invalid(format!("{}: {e}", args.scenario.display())))?;
    let failed = |e: backwork_simulator::SimError| {
        CliError::invalid(format!("{}: {e}", args.scenario.display()))
    };
    let bar = Progress::new();
    if let Some(n) = args.devices {
        let fleet = backwork_simulator::simulate_fleet_with_progress(&scenario, n, &mut |done| {
            bar.show(f64::from(done) / f64::from(n), "devices")
        })
        .map_err(failed)?;
        bar.finish();
        if let Some(path) = &args.svg {
            write_svg(path, &backwork_simulator::fleet_svg(&fleet))?;
        }
        return if json {
            json_lines([&fleet])
        } else {
            out(&fleet.text())
        };
    }
    let report = backwork_simulator::simulate_with_progress(&scenario, &mut |f| {
        bar.show(f, "simulated time")
    })
    .map_err(failed)?;
    bar.finish();
    if let Some(path) = &args.svg {
        write_svg(path, &backwork_simulator::svg(&report))?;
    }
    if json {
        json_lines([&report])
    } else {
        out(&report.text())
    }
}

/// `run --wait`: asks for the run, then follows the job until a run that started after the
/// request has ended; prints how it ended and exits with its result.
async fn run_and_wait(
    client: &ClientOptions,
    socket: &std::path::Path,
    store: Option<&std::path::Path>,
    request: Request,
) -> Result<(), CliError> {
    let Request::Run { target, .. } = &request else {
        return Err(CliError::invalid("--wait goes with `backwork run`"));
    };
    let Some(mut session) = Session::open(socket, store, None, client.answer_timeout()?).await?
    else {
        return Err(no_store(&target.to_string(), &store_path(store)?));
    };
    if session.is_local() {
        session.close().await?;
        return Err(CliError::unavailable(
            "no daemon is running, so nothing can run the job; start `backwork daemon` (or drop --wait to mark it to run when it starts)",
        ));
    }
    let record = async |session: &mut Session,
                        target: &Selector|
           -> Result<backwork_control::JobDetail, CliError> {
        match session
            .call(Request::Show {
                target: target.clone(),
            })
            .await?
        {
            Response::Details { mut jobs } if !jobs.is_empty() => Ok(jobs.remove(0)),
            _ => Err(CliError::new(
                backwork_control::ErrorKind::NotFound,
                format!("no job matches `{target}`"),
            )),
        }
    };
    let before = record(&mut session, target).await?;
    let id = before.job.id;
    let by_id = Selector::Id(id);
    if let Response::Ran { waiting, .. } = session.call(request.clone()).await? {
        let style = Style {
            now: chrono::Utc::now(),
            zone: time::local_zone(),
            local: false,
        };
        for w in &waiting {
            for r in &w.reasons {
                let _ = writeln!(
                    std::io::stderr(),
                    "waiting: {}",
                    render::escape(&style.reason(r))
                );
            }
        }
    }
    let mut pause = std::time::Duration::from_millis(20);
    let mut shown: Option<serde_json::Value> = None;
    let detail = loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
        let now = record(&mut session, &by_id).await?;
        // the run's progress, each change once (the latest seen at each look)
        if let Some(p) = &now.job.progress
            && shown.as_ref() != Some(&p.value)
        {
            let _ = writeln!(std::io::stderr(), "progress: {}", render::escape(&p.text()));
            shown = Some(p.value.clone());
        }
        let ran = now.job.runs_total > before.job.runs_total;
        if ran && now.job.state != JobState::Running {
            break now;
        }
        if now.job.is_finished() && !ran {
            session.close().await?;
            return Err(CliError::invalid(format!(
                "{} {} ended without running ({})",
                id.short(),
                now.job.name.as_deref().unwrap_or_default(),
                now.job.state
            )));
        }
    };
    session.close().await?;
    let Some(run) = detail.job.last_run() else {
        return Err(CliError::unavailable("the run left no record"));
    };
    use backwork_scheduler::RunResult;
    let output: Option<backwork_control::CommandOutput> = run
        .output
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let verb = match run.result {
        RunResult::Success => "succeeded",
        RunResult::Retry | RunResult::Failure => "failed",
        RunResult::Stopped => "was stopped",
        RunResult::Crashed => "crashed",
    };
    let (code, how) = match (run.result, output.as_ref()) {
        (RunResult::Success, _) => (0, verb.to_string()),
        (_, Some(o)) if o.exit_code.is_some() => {
            let c = o.exit_code.unwrap_or(1);
            (u8::try_from(c).unwrap_or(1), format!("{verb} (exit {c})"))
        }
        (_, Some(o)) if o.signal.is_some() => {
            let n = o.signal.unwrap_or(0);
            let name = command::signal_name(n);
            (
                u8::try_from(128 + n).unwrap_or(1),
                format!("{verb} ({name})"),
            )
        }
        _ => (1, verb.to_string()),
    };
    let again = if run.result != RunResult::Success && !detail.job.state.is_finished() {
        "; it will be retried"
    } else {
        ""
    };
    let took = backwork_scheduler::core::humanize_approx(
        (run.finished - run.started).to_std().unwrap_or_default(),
    );
    let reason = run
        .stop_reason
        .as_ref()
        .map(|r| format!(": {}", r.text))
        .unwrap_or_default();
    if client.json {
        json_lines([serde_json::json!({
            "id": id,
            "name": detail.job.name,
            "result": run.result,
            "exit_code": output.as_ref().and_then(|o| o.exit_code),
            "signal": output.as_ref().and_then(|o| o.signal),
            "stop_reason": run.stop_reason,
            "took_ms": (run.finished - run.started).num_milliseconds(),
            "state": detail.job.state,
        })])?;
    } else {
        out(&format!(
            "{} {}: {how}{reason} after {took}{again}\n",
            id.short(),
            render::escape(detail.job.name.as_deref().unwrap_or_default())
        ))?;
    }
    if code == 0 {
        Ok(())
    } else {
        Err(CliError {
            code,
            message: format!(
                "the run {how}; `backwork show {}` has its output",
                id.short()
            ),
        })
    }
}

/// "Not found" for a job named `what` when there is no store yet at `store` (exit 1).
fn no_store(what: &str, store: &std::path::Path) -> CliError {
    CliError::new(
        backwork_control::ErrorKind::NotFound,
        format!(
            "no job matches `{what}`: there is no job store yet ({}); add a job first",
            store.display()
        ),
    )
}

/// The answer to `request` when no server answers and there is no store yet (a fresh account):
/// no jobs, the host's device state; nothing is created.
async fn without_store(request: Request, store: &std::path::Path) -> Result<Response, CliError> {
    let no_store = |what: &str| no_store(what, store);
    match request {
        Request::List { .. } => Ok(Response::Jobs { jobs: Vec::new() }),
        Request::Prune { .. } => Ok(Response::Pruned {
            count: 0,
            kept: 0,
            age_ms: 0,
        }),
        Request::Device => {
            use backwork_constraints::Probe;
            let probe = session::host_probe_now(store, session::HostOverrides::default()).await;
            let (state, readings) = match probe.report() {
                Some(r) => (r.state, Some(r.readings)),
                None => (probe.current(), None),
            };
            Ok(Response::Device {
                state,
                source: "host".into(),
                readings,
            })
        }
        Request::Show { target } | Request::Why { target } | Request::Cancel { target } => {
            Err(no_store(&target.to_string()))
        }
        Request::Run { target, .. } | Request::Retry { target } => {
            Err(no_store(&target.to_string()))
        }
        Request::DeviceSet { .. } => Err(CliError::invalid(
            "`device set` changes the device state of a daemon started with --device manual, and none is running",
        )),
        Request::Ping | Request::Add { .. } | Request::AddChain { .. } => {
            Err(CliError::unavailable(format!(
                "there is no job store at {} and nothing answers on the control socket",
                store.display()
            )))
        }
    }
}

const NO_DAEMON: &str = "note: no daemon is running; the change is stored and takes effect when `backwork daemon` starts";

/// The largest `--chain` file read: a chain is sent to the daemon in one request, capped at
/// 1 MiB (docs/cli.md, "The control socket").
const MAX_CHAIN_BYTES: u64 = 1 << 20;

/// The text of a `--chain` file (`-`: standard input, read up to the same cap).
fn read_chain_file(file: &std::path::Path) -> Result<String, CliError> {
    const SIZE_HINT: &str =
        "a chain is sent in one request of at most 1 MiB: split it, or add jobs with --after";
    if file != std::path::Path::new("-") {
        return read_text_file(
            file,
            "the --chain file",
            MAX_CHAIN_BYTES,
            "give a file with one `backwork add` line per job, or - for standard input",
            SIZE_HINT,
        );
    }
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_CHAIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            CliError::invalid(format!(
                "--chain -: cannot read standard input ({e}); give a file, or pipe the chain in"
            ))
        })?;
    if bytes.len() as u64 > MAX_CHAIN_BYTES {
        return Err(CliError::invalid(format!(
            "--chain -: standard input is over 1024 KiB; {SIZE_HINT}"
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::invalid("--chain -: standard input is not UTF-8 text; save it as UTF-8")
    })
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let request = match &cli.verb {
        Verb::Daemon(args) => {
            return daemon::run(args.paths.store().as_deref(), &args.paths.socket(), args).await;
        }
        Verb::Completions { shell } => return completions(*shell),
        Verb::Man { dir } => return manual(dir.as_deref()),
        Verb::Simulate(args) => return simulate(args, args.json),
        Verb::Add(args) => {
            let cwd = std::env::current_dir().map_err(|e| {
                CliError::invalid(format!(
                    "the current directory is unreadable ({e}); pass --cwd"
                ))
            })?;
            let env = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
            match &args.chain {
                Some(file) => {
                    let text = read_chain_file(file)?;
                    let env: Vec<(String, String)> = env.collect();
                    Request::AddChain {
                        chain: add::chain(args, &text, &env, &cwd, chrono::Utc::now())?,
                    }
                }
                None => Request::Add {
                    job: add::new_job(args, env, &cwd, chrono::Utc::now())?,
                },
            }
        }
        Verb::List(args) => Request::List {
            state: match &args.state {
                Some(s) => Some(s.parse::<JobState>().map_err(CliError::invalid)?),
                None => None,
            },
            tag: args.tag.clone(),
            all: args.all,
        },
        Verb::Show(t) => Request::Show {
            target: parse_target(&t.target),
        },
        Verb::Why(t) => Request::Why {
            target: parse_target(&t.target),
        },
        Verb::Run(r) => Request::Run {
            target: parse_target(&r.target),
            ignore_constraints: r.ignore_constraints,
        },
        Verb::Cancel(c) => Request::Cancel {
            target: match (&c.target, &c.tag) {
                (_, Some(tag)) => Selector::Tag(tag.clone()),
                (Some(t), None) => parse_target(t),
                (None, None) => {
                    return Err(CliError::invalid("name a job, or give --tag TAG"));
                }
            },
        },
        Verb::Retry(c) => Request::Retry {
            target: match (&c.target, &c.tag) {
                (_, Some(tag)) => Selector::Tag(tag.clone()),
                (Some(t), None) => parse_target(t),
                (None, None) => {
                    return Err(CliError::invalid("name a job, or give --tag TAG"));
                }
            },
        },
        Verb::Device(d) => match &d.action {
            None => Request::Device,
            Some(DeviceAction::Set { settings }) => Request::DeviceSet {
                settings: settings.clone(),
            },
        },
        Verb::Prune(p) => Request::Prune {
            older_than: p.older_than,
        },
    };
    let Some(client) = cli.verb.client() else {
        return Err(CliError::invalid("this verb takes no store or socket"));
    };
    if let Some(w) = time::zone_warning() {
        note(cli.quiet, &w);
    }
    let socket = client.paths.socket();
    let store = client.paths.store();
    let store = store.as_deref();
    let answer_timeout = client.answer_timeout()?;
    if let Verb::Run(r) = &cli.verb
        && r.wait
    {
        return run_and_wait(client, &socket, store, request).await;
    }
    // `add` may create the default store (or BACKWORK_STORE's); a store named with --store
    // that does not exist is more likely a typo (docs/cli.md)
    let create = match &request {
        Request::Add { job } if client.paths.store.is_none() => Some(
            job.request()
                .map_err(|e| CliError::invalid(e.to_string()))?,
        ),
        Request::AddChain { chain } if client.paths.store.is_none() => {
            let mut first = None;
            for job in &chain.links {
                let r = job
                    .request()
                    .map_err(|e| CliError::invalid(e.to_string()))?;
                first.get_or_insert(r);
            }
            first
        }
        _ => None,
    };
    let session = if matches!(request, Request::Device) {
        Session::remote(&socket, store, answer_timeout).await?
    } else {
        Session::open(&socket, store, create.as_ref(), answer_timeout).await?
    };
    let (answer, local) = match session {
        Some(mut session) => {
            let local = session.is_local();
            let answer = session.call(request).await;
            session.close().await?;
            (answer, local)
        }
        None => (without_store(request, &store_path(store)?).await, true),
    };
    let style = Style {
        now: chrono::Utc::now(),
        zone: time::local_zone(),
        local,
    };
    match answer? {
        Response::Added {
            id,
            disposition,
            warnings,
        } => {
            for w in &warnings {
                note(0, &format!("warning: {}", render::escape(w)));
            }
            if client.json {
                json_lines([serde_json::json!({
                    "id": id, "disposition": disposition, "warnings": warnings
                })])?;
            } else {
                out(&format!("{id}\n"))?;
            }
            if disposition == backwork_scheduler::Disposition::Kept {
                note(
                    cli.quiet,
                    "note: a job with this unique name already exists; it was kept and this one dropped (use --on-conflict replace or update)",
                );
            }
            if local {
                note(cli.quiet, NO_DAEMON);
            }
        }
        Response::ChainAdded {
            ids,
            disposition,
            warnings,
        } => {
            for w in &warnings {
                note(0, &format!("warning: {}", render::escape(w)));
            }
            if client.json {
                json_lines([serde_json::json!({
                    "ids": ids, "disposition": disposition, "warnings": warnings
                })])?;
            } else {
                let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
                out(&text)?;
            }
            if disposition == backwork_scheduler::Disposition::Kept {
                note(
                    cli.quiet,
                    "note: jobs of this unique name are unfinished; they were kept and this chain dropped (use --on-conflict append or replace)",
                );
            }
            if local {
                note(cli.quiet, NO_DAEMON);
            }
        }
        Response::Jobs { jobs } => {
            if client.json {
                json_lines(&jobs)?;
            } else {
                out(&render::list(&jobs, &style, terminal_width()))?;
            }
        }
        Response::Details { jobs } => {
            if client.json {
                json_lines(&jobs)?;
            } else {
                let text: Vec<String> = jobs.iter().map(|d| render::show(d, &style)).collect();
                out(&text.join("\n"))?;
            }
        }
        Response::Why { jobs, device } => {
            if client.json {
                json_lines(&jobs)?;
            } else {
                out(&jobs
                    .iter()
                    .map(|j| render::why(j, &style, device.as_ref()))
                    .collect::<String>())?;
            }
        }
        Response::Ran { ids, waiting } if !client.json => {
            let text: String = ids
                .iter()
                .map(|id| match waiting.iter().find(|w| w.id == *id) {
                    Some(w) => format!(
                        "{}: set to run now, but it waits on: {}\n",
                        id.short(),
                        w.reasons
                            .iter()
                            .map(|r| render::escape(&style.reason(r)).into_owned())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    None => format!("{}: runs now\n", id.short()),
                })
                .collect();
            out(&text)?;
            if local {
                note(cli.quiet, NO_DAEMON);
            }
        }
        Response::Retried { ids } if !client.json => {
            let text: String = ids
                .iter()
                .map(|id| format!("{}: retried; a fresh cycle starts\n", id.short()))
                .collect();
            out(&text)?;
            if local {
                note(cli.quiet, NO_DAEMON);
            }
        }
        Response::Ran { ids, .. } | Response::Cancelled { ids } | Response::Retried { ids } => {
            if client.json {
                json_lines(ids.iter().map(|id| serde_json::json!({ "id": id })))?;
            } else {
                out(&ids.iter().map(|id| format!("{id}\n")).collect::<String>())?;
            }
            if local {
                note(cli.quiet, NO_DAEMON);
            }
        }
        Response::Device {
            state,
            source,
            readings,
        } => {
            if client.json {
                let encode_error = |e: serde_json::Error| {
                    CliError::unavailable(format!("could not encode the device state: {e}"))
                };
                let mut v = serde_json::to_value(state).map_err(encode_error)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("source".into(), source.clone().into());
                    if let Some(r) = &readings {
                        o.insert(
                            "readings".into(),
                            serde_json::to_value(r).map_err(encode_error)?,
                        );
                    }
                }
                json_lines([v])?;
            } else {
                out(&render::device(
                    &state,
                    &source,
                    readings.as_ref(),
                    terminal_width(),
                ))?;
            }
        }
        Response::Pruned {
            count,
            kept,
            age_ms,
        } => {
            if client.json {
                json_lines([serde_json::json!({ "pruned": count, "kept": kept })])?;
            } else {
                let age =
                    backwork_scheduler::core::humanize(std::time::Duration::from_millis(age_ms));
                let mut text = format!("pruned {count} finished job(s)");
                if kept > 0 {
                    text.push_str(&format!(
                        "; {kept} finished job(s) kept: they finished less than {age} ago (`backwork prune --older-than 0s` drops them)"
                    ));
                }
                out(&format!("{text}\n"))?;
            }
        }
        Response::Pong { server } => json_lines([server])?,
        Response::Error { kind, message } => return Err(CliError::new(kind, message)),
    }
    Ok(())
}
