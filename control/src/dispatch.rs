//! Answering requests with a runtime: shared by the socket server and by the command line when no
//! server answers and it opens the store itself.

use backwork_constraints::ManualProbe;
use backwork_scheduler::{
    After, Chain, CoreError, JobId, Reply, RuntimeError, RuntimeHandle, Selector, StoreError,
    WaitReason,
};

use crate::protocol::{
    ErrorKind, JobDetail, JobReasons, JobView, ProgressView, Request, Response, ServerInfo,
};

/// What a server knows besides its runtime.
#[derive(Debug, Clone)]
pub struct Context {
    /// Who is serving (the answer to [`Request::Ping`]).
    pub info: ServerInfo,
    /// The probe `device set` changes, when the device state is set by hand.
    pub manual: Option<ManualProbe>,
}

/// The kind of a runtime error, which sets the command line's exit code.
pub fn runtime_error_kind(e: &RuntimeError) -> ErrorKind {
    match e {
        RuntimeError::Rejected(
            CoreError::NoSuchJob(_)
            | CoreError::AmbiguousPrefix { .. }
            | CoreError::NoSuchPrerequisite(_),
        ) => ErrorKind::NotFound,
        RuntimeError::Rejected(_) => ErrorKind::Invalid,
        RuntimeError::Store(s) => store_error_kind(s),
        _ => ErrorKind::Unavailable,
    }
}

/// The error response for a runtime error.
pub fn error_response(e: &RuntimeError) -> Response {
    Response::error(runtime_error_kind(e), e.to_string())
}

/// The kind of a store error: a damaged or too-new store (or a file that is no store) is
/// `Corrupt`, anything else
/// `Unavailable`.
pub fn store_error_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::Corrupt { .. }
        | StoreError::Truncated { .. }
        | StoreError::Empty { .. }
        | StoreError::NotAStore { .. }
        | StoreError::NotAFile { .. }
        | StoreError::NewerSchema { .. } => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    }
}

/// The jobs `text` names as a prerequisite: the job of an id or short-id prefix, or the last
/// jobs of a unique name's sequence (those no other job of the name waits for).
async fn prerequisites_named(
    runtime: &RuntimeHandle,
    text: &str,
) -> Result<Result<Vec<JobId>, Response>, RuntimeError> {
    let selector = match text.parse::<JobId>() {
        Ok(id) => Selector::Id(id),
        Err(_) => Selector::Prefix(text.to_string()),
    };
    let jobs: Vec<backwork_scheduler::Job> = match runtime.inspect(Some(selector.clone())).await {
        Ok(found) => found.into_iter().map(|(job, _)| job).collect(),
        Err(e) => return Ok(Err(error_response(&e))),
    };
    if jobs.is_empty() {
        return Ok(Err(Response::error(
            ErrorKind::NotFound,
            format!(
                "--after {}: no job has this name or id; `backwork list --all` shows the jobs a job can run after",
                text
            ),
        )));
    }
    let waited_for: std::collections::BTreeSet<JobId> = jobs
        .iter()
        .flat_map(|j| j.prerequisites.iter().copied())
        .collect();
    Ok(Ok(jobs
        .iter()
        .map(|j| j.id)
        .filter(|id| !waited_for.contains(id))
        .collect()))
}

/// Answers `Request::AddChain` (and `Add` with `after`): each link's `after` resolved (a
/// label of an earlier link, else a queued job), then the whole chain enqueued in one commit.
async fn add_chain(
    runtime: &RuntimeHandle,
    chain: crate::NewChain,
) -> Result<Response, RuntimeError> {
    let invalid = |m: String| Ok(Response::error(ErrorKind::Invalid, m));
    let mut core_chain = Chain::new();
    core_chain.unique = match chain.unique.as_ref().map(crate::UniqueSpec::unique) {
        Some(Err(e)) => return invalid(e.to_string()),
        Some(Ok(u)) => Some(u),
        None => None,
    };
    let mut labels: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (i, link) in chain.links.iter().enumerate() {
        let request = match link.request() {
            Ok(r) => r,
            Err(e) => return invalid(format!("link {}: {e}", i + 1)),
        };
        let mut after = Vec::new();
        for text in &link.after {
            if let Some(&j) = labels.get(text.as_str()) {
                after.push(After::Link(j));
                continue;
            }
            match prerequisites_named(runtime, text).await? {
                Ok(ids) => after.extend(ids.into_iter().map(After::Job)),
                Err(response) => return Ok(response),
            }
        }
        if let Some(label) = &link.label
            && labels.insert(label, i).is_some()
        {
            return invalid(format!(
                "two links of the chain have the label `{label}`; give each link its own"
            ));
        }
        core_chain.link(request, after);
    }
    let receipt = runtime.enqueue_chain(core_chain).await?;
    Ok(Response::ChainAdded {
        ids: receipt.ids,
        disposition: receipt.disposition,
        warnings: receipt.warnings,
    })
}

fn not_found(target: &Selector) -> Response {
    let what = match target {
        Selector::Id(id) => format!("no job has the id {id}"),
        Selector::Name(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!(
                "no job has the name `{n}`, and a short-id prefix needs at least {} hex digits",
                backwork_scheduler::MIN_PREFIX_LEN
            )
        }
        Selector::Name(n) => format!("no job has the name `{n}`"),
        Selector::Tag(t) => format!("no unfinished job has the tag `{t}`"),
        Selector::Prefix(p) => format!(
            "no job has the name `{p}` or a short id starting with {p} (a short id is the last {} hex digits of an id, as `list` shows it; the first digits are a timestamp shared by jobs added together)",
            backwork_scheduler::SHORT_ID_LEN
        ),
    };
    Response::error(
        ErrorKind::NotFound,
        format!("{what}; list the jobs with `backwork list`"),
    )
}

/// What a name means to a person: its live job (a name is unique among live jobs, but an
/// `append` chain has several), else the last job that had it — not every job that ever did.
/// Other selectors pass through.
fn live<T>(
    target: &Selector,
    jobs: Vec<(backwork_scheduler::Job, T)>,
) -> Vec<(backwork_scheduler::Job, T)> {
    if !matches!(target, Selector::Name(_) | Selector::Prefix(_)) {
        return jobs;
    }
    if jobs.iter().any(|(j, _)| !j.state.is_finished()) {
        jobs.into_iter()
            .filter(|(j, _)| !j.state.is_finished())
            .collect()
    } else {
        jobs.into_iter().last().into_iter().collect()
    }
}

/// The progress of `job` among the runtime's progress records, if it is running the attempt
/// that reported it (the two are read one after the other: a run may have ended between).
fn progress_of(
    progress: &std::collections::BTreeMap<
        backwork_scheduler::JobId,
        backwork_scheduler::JobProgress,
    >,
    job: &backwork_scheduler::Job,
) -> Option<ProgressView> {
    progress
        .get(&job.id)
        .filter(|p| job.state == backwork_scheduler::JobState::Running && p.attempt == job.attempt)
        .map(ProgressView::of)
}

/// Answers one request with `runtime`.
pub async fn dispatch(runtime: &RuntimeHandle, ctx: &Context, request: Request) -> Response {
    let target = request.target().cloned();
    match (answer(runtime, ctx, request).await, target) {
        (Ok(r), _) => r,
        // every verb that names a job says "not found" the same way
        (Err(RuntimeError::Rejected(CoreError::NoSuchJob(_))), Some(target)) => not_found(&target),
        (Err(e), _) => error_response(&e),
    }
}

async fn answer(
    runtime: &RuntimeHandle,
    ctx: &Context,
    request: Request,
) -> Result<Response, RuntimeError> {
    Ok(match request {
        Request::Ping => Response::Pong {
            server: ctx.info.clone(),
        },
        Request::List { state, tag, all } => {
            let selector = tag.map(Selector::Tag);
            let progress = runtime.progress().await?;
            // whole: a command job's command line is its input, its result its last run's
            let jobs = runtime
                .inspect_whole(selector)
                .await?
                .into_iter()
                .filter(|(job, _)| match state {
                    Some(s) => job.state == s,
                    None => all || !job.state.is_finished(),
                })
                .map(|(job, why)| {
                    let mut view = JobView::of(&job, why);
                    view.progress = progress_of(&progress, &job);
                    view
                })
                .collect();
            Response::Jobs { jobs }
        }
        Request::Show { target } => {
            let progress = runtime.progress().await?;
            let jobs: Vec<JobDetail> =
                live(&target, runtime.inspect_whole(Some(target.clone())).await?)
                    .into_iter()
                    .map(|(job, reasons)| {
                        let mut record = crate::record::JobRecord::of(&job);
                        record.progress = progress_of(&progress, &job);
                        JobDetail {
                            job: record,
                            reasons,
                        }
                    })
                    .collect();
            if jobs.is_empty() {
                return Ok(not_found(&target));
            }
            Response::Details { jobs }
        }
        Request::Why { target } => {
            let jobs: Vec<JobReasons> = live(&target, runtime.inspect(Some(target.clone())).await?)
                .into_iter()
                .map(|(job, reasons)| JobReasons {
                    id: job.id,
                    name: job.unique_name().map(str::to_string),
                    reasons,
                })
                .collect();
            if jobs.is_empty() {
                return Ok(not_found(&target));
            }
            let waits_on_device = jobs
                .iter()
                .flat_map(|j| &j.reasons)
                .any(|r| matches!(r, WaitReason::Constraint(_)));
            let device = if waits_on_device {
                runtime.device_report().await?.1
            } else {
                None
            };
            Response::Why { jobs, device }
        }
        Request::Add { job } if !job.after.is_empty() => {
            // a job after others is a chain of one link
            let chain = crate::NewChain {
                links: vec![job],
                unique: None,
            };
            match add_chain(runtime, chain).await? {
                Response::ChainAdded {
                    ids,
                    disposition,
                    warnings,
                } => Response::Added {
                    id: ids.first().copied().ok_or(RuntimeError::Stopped)?,
                    disposition,
                    warnings,
                },
                other => other,
            }
        }
        Request::Add { job } => {
            let request = match job.request() {
                Ok(r) => r,
                Err(e) => return Ok(Response::error(ErrorKind::Invalid, e.to_string())),
            };
            let receipt = runtime.enqueue_resolved(request).await?;
            Response::Added {
                id: receipt.id,
                disposition: receipt.disposition,
                warnings: receipt.warnings,
            }
        }
        Request::AddChain { chain } => add_chain(runtime, chain).await?,
        Request::Run {
            target,
            ignore_constraints,
        } => {
            let ids = runtime.run_now(target.clone(), ignore_constraints).await?;
            if ids.is_empty() {
                return Ok(Response::error(
                    ErrorKind::Invalid,
                    format!(
                        "no job named by `{target}` is waiting to run; `backwork show {target}` says what state it is in (a failed or cancelled job runs again with `backwork retry {target}`; a succeeded one-off job is done: add it anew)"
                    ),
                ));
            }
            // what still holds them once the schedule is set aside (a constraint, a slot)
            let mut waiting = Vec::new();
            for id in &ids {
                for (job, reasons) in runtime.inspect(Some(Selector::Id(*id))).await? {
                    let reasons: Vec<WaitReason> = reasons
                        .into_iter()
                        .filter(|r| {
                            !matches!(r, WaitReason::Running { .. } | WaitReason::Finished { .. })
                        })
                        .collect();
                    if !reasons.is_empty() {
                        waiting.push(JobReasons {
                            id: job.id,
                            name: job.unique_name().map(str::to_string),
                            reasons,
                        });
                    }
                }
            }
            Response::Ran { ids, waiting }
        }
        Request::Retry { target } => Response::Retried {
            ids: runtime.retry(target).await?,
        },
        Request::Cancel { target } => {
            let ids = runtime.cancel(target.clone()).await?;
            if ids.is_empty() {
                return Ok(not_found(&target));
            }
            Response::Cancelled { ids }
        }
        Request::Device => {
            let (state, readings) = runtime.device_report().await?;
            Response::Device {
                state,
                source: ctx.info.device.clone(),
                readings,
            }
        }
        Request::DeviceSet { settings } => match &ctx.manual {
            None => Response::error(
                ErrorKind::Invalid,
                format!(
                    "the device state comes from the {} here and cannot be set; start the daemon with `backwork daemon --device manual` to set it by hand",
                    ctx.info.device
                ),
            ),
            Some(probe) => match probe.apply(settings.iter().map(String::as_str)) {
                Err(e) => Response::error(ErrorKind::Invalid, e.to_string()),
                // The runtime's actor takes probe changes before commands, so this read already
                // sees the new state: the answer is what the scheduler now decides by.
                Ok(_) => {
                    let (state, readings) = runtime.device_report().await?;
                    Response::Device {
                        state,
                        source: ctx.info.device.clone(),
                        readings,
                    }
                }
            },
        },
        Request::Prune { older_than } => match runtime.prune(older_than).await? {
            Reply::Pruned { count, kept, age } => Response::Pruned {
                count,
                kept,
                age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            },
            _ => Response::Pruned {
                count: 0,
                kept: 0,
                age_ms: 0,
            },
        },
    })
}
