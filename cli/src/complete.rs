//! Dynamic shell completion (clap_complete's engine, `COMPLETE=bash backwork`): the verbs that
//! take a job complete its unique name and its short id, asked of the daemon (or read from the
//! store when none answers) at the moment of the `Tab`.

use std::ffi::OsStr;
use std::time::Duration;

use backwork_control::{Request, Response};
use clap_complete::CompletionCandidate;

use crate::session::Session;

/// How long a completion may wait for the daemon: a `Tab` must not hang the shell.
const WAIT: Duration = Duration::from_millis(500);

/// The live jobs' unique names and short ids that start with `current`, each with a line of
/// help (the other of the two, and the schedule). Nothing when no daemon or store answers.
pub fn jobs(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, false)
}

/// For `retry`: the failed and cancelled jobs, the ones it takes.
pub fn retriable_jobs(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, true)
}

fn candidates(current: &OsStr, retriable: bool) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    // the words typed so far are not parsed: the environment says where to look
    let paths = crate::args::Paths::default();
    let (socket, store) = (paths.socket(), paths.store());
    let views = runtime.block_on(async {
        let mut session = Session::open(&socket, store.as_deref(), None, WAIT)
            .await
            .ok()??;
        let answer = session
            .call(Request::List {
                state: None,
                tag: None,
                all: retriable,
            })
            .await;
        let _ = session.close().await;
        match answer {
            Ok(Response::Jobs { jobs }) => Some(jobs),
            _ => None,
        }
    });
    let mut out = Vec::new();
    let wanted = |v: &backwork_control::JobView| {
        !retriable
            || matches!(
                v.state,
                backwork_scheduler::JobState::Failed | backwork_scheduler::JobState::Cancelled
            )
    };
    for v in views.unwrap_or_default().into_iter().filter(wanted) {
        let short = v.id.short();
        if let Some(name) = &v.name
            && name.starts_with(current)
        {
            out.push(
                CompletionCandidate::new(name.clone())
                    .help(Some(format!("{short} · {}", v.schedule).into())),
            );
        }
        if short.starts_with(current) {
            let help = v
                .name
                .clone()
                .or_else(|| v.command.as_ref().map(|argv| argv.join(" ")))
                .unwrap_or_else(|| v.kind.clone());
            out.push(CompletionCandidate::new(short).help(Some(help.into())));
        }
    }
    out
}
