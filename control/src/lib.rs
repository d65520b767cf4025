//! The backwork control socket.
//!
//! A process that runs a backwork [`Runtime`](backwork_scheduler::Runtime) — the `backwork daemon`,
//! or any app that adds the [`ControlSocket`] service with one builder call — answers requests on
//! a Unix socket, so the `backwork` command line can list its jobs, say why one is waiting, run,
//! cancel or add jobs. When nobody answers, the command line opens the store itself and answers
//! the same requests with the same [`dispatch`] function.
//!
//! - [`protocol`]: the requests, the answers and the job summaries, with the wire format;
//!   [`new_job`] and [`record`]: a job as a client adds it and as it is shown.
//! - [`ControlSocket`]: the server, with the socket's safety rules.
//! - [`Client`]: the client.

#![warn(missing_docs)]

mod client;
mod dispatch;
#[doc(hidden)]
pub mod fuzzing;
pub mod new_job;
mod path;
pub mod protocol;
pub mod record;
mod server;

use std::path::PathBuf;

pub use client::{Client, DEFAULT_ANSWER_TIMEOUT};
pub use dispatch::{Context, dispatch, error_response, runtime_error_kind, store_error_kind};
pub use new_job::{NewChain, NewJob, ScheduleSpec, UniqueSpec};
pub use path::{SocketFile, check_socket, default_socket_path, prepare_dir};
pub use protocol::{
    COMMAND_KIND, CommandOutput, CommandSpec, ErrorKind, JobDetail, JobReasons, JobView,
    MAX_REQUEST, MAX_RESPONSE, ProgressView, Request, Response, ScheduleView, ServerInfo,
    command_line, needs_escape,
};
pub use record::{BackoffView, JitterView, JobRecord, RunView, StopView};
pub use server::{ControlSocket, DEFAULT_FRAME_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

/// An error setting up or using the control socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The path is a symlink.
    #[error("refusing {path}: it is a symlink; use a real path for the socket and its directory")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The path belongs to another user.
    #[error(
        "refusing {path}: it belongs to uid {owner}, not to you; use your own socket path (--socket)"
    )]
    NotOwned {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// The socket's directory lets other users in.
    #[error(
        "refusing {path} as the socket's directory: its mode is {mode:o}, so other users may enter it; put the socket in a private directory (mode 700), e.g. a new one"
    )]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Something other than a socket is at the path.
    #[error(
        "refusing {path}: it exists and is not a socket; choose another path (--socket, BACKWORK_SOCKET)"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A live server already answers on the path.
    #[error(
        "another backwork server already answers on {path}; stop it, or give this one another --socket"
    )]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("could not {action} {path}: {detail}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The system's message.
        detail: String,
    },
    /// The server accepted the connection but did not answer in time.
    #[error(
        "the daemon at {path} did not answer within {} s; is it stopped (SIGSTOP: resume it with kill -CONT) or overloaded? A change you asked for (add, run, cancel) may still be applied: check with `backwork list`. Wait longer with --answer-timeout.",
        waited.as_secs_f64()
    )]
    NoAnswer {
        /// The socket.
        path: PathBuf,
        /// How long the client waited.
        waited: std::time::Duration,
    },
    /// The other side did not speak the protocol.
    #[error("control socket protocol error: {detail}")]
    Protocol {
        /// What went wrong.
        detail: String,
    },
}
