//! The control socket server: one task beside the runtime, one task per connection.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backwork_constraints::ManualProbe;
use backwork_scheduler::{RuntimeHandle, Service};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::ControlError;
use crate::dispatch::{Context, dispatch};
use crate::path::{SocketFile, check_socket, prepare_dir};
use crate::protocol::{ErrorKind, MAX_REQUEST, MAX_RESPONSE, Request, Response, ServerInfo};

/// The control socket, as a [`Service`] of the runtime: the command line (`backwork list`, `why`,
/// `cancel`, …) then inspects and manages this process's queue.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use backwork_control::ControlSocket;
/// use backwork_scheduler::Runtime;
///
/// let runtime = Runtime::builder()
///     .service(ControlSocket::new(backwork_control::default_socket_path()))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
///
/// The rules: the socket's directory is created 0700 (an existing one must be a directory this
/// user owns with no group or other permissions: a socket in `/tmp` itself is refused); the socket is 0600 whatever the umask;
/// every connection's peer uid (`SO_PEERCRED`) must be this process's uid (root too, with
/// [`ControlSocket::allow_root`]); a path that is a symlink, not a socket, or another user's is
/// refused; a socket left by a killed server is replaced — the runtime starts services only after
/// its store is loaded, so only the process holding the store's lock replaces it — but one a live
/// server answers on is not.
///
/// Limits, so a flood of clients can neither exhaust the process's file descriptors (which its
/// jobs need) nor hold the socket: at most [`DEFAULT_MAX_CONNECTIONS`] connections are served at
/// once ([`ControlSocket::max_connections`]); one beyond that is answered "busy"
/// ([`ErrorKind::Busy`]) and closed at once, without reading it. A connection that does not
/// complete a request frame within [`DEFAULT_FRAME_TIMEOUT`] of connecting or of its previous
/// answer ([`ControlSocket::frame_timeout`]) — or does not take its answer within that time — is
/// closed.
#[derive(Debug, Clone)]
pub struct ControlSocket {
    path: PathBuf,
    info: ServerInfo,
    manual: Option<ManualProbe>,
    allow_root: bool,
    max_connections: usize,
    frame_timeout: Duration,
}

/// How many connections a [`ControlSocket`] serves at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// How long a [`ControlSocket`] waits for a whole request frame (or for a client to take its
/// answer), by default.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

impl ControlSocket {
    /// A control socket at `path`, reporting the host's device state.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let role = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "app".into());
        ControlSocket {
            path: path.into(),
            info: ServerInfo {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").into(),
                role,
                device: "host".into(),
                store: None,
            },
            manual: None,
            allow_root: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
        }
    }

    /// Serve at most `n` connections at once (at least 1; default [`DEFAULT_MAX_CONNECTIONS`]).
    /// Each costs one file descriptor while it lasts.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Close a connection that has not sent a whole request within `timeout` of connecting or
    /// of its previous answer, or has not taken an answer within `timeout` (default
    /// [`DEFAULT_FRAME_TIMEOUT`]; at least 1 ms).
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Names what serves (`daemon`, or the app's name; default: the executable's name).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.info.role = role.into();
        self
    }

    /// Says which store the runtime uses, for `ping`: made absolute against this process's
    /// working directory, so a client elsewhere can tell whether it names the same file.
    pub fn store_path(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.info.store = Some(std::path::absolute(&path).unwrap_or(path));
        self
    }

    /// The runtime's device state is set by hand through `probe`: `backwork device set` changes it.
    pub fn manual_device(mut self, probe: ManualProbe) -> Self {
        self.info.device = "manual".into();
        self.manual = Some(probe);
        self
    }

    /// Also serve connections from root.
    pub fn allow_root(mut self, yes: bool) -> Self {
        self.allow_root = yes;
        self
    }

    /// Checks the path, replaces a stale socket, binds and makes the socket 0600.
    pub fn bind(&self) -> Result<UnixListener, ControlError> {
        let path = &self.path;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        prepare_dir(dir)?;
        if check_socket(path)? == SocketFile::Present {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(ControlError::InUse { path: path.clone() });
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| ControlError::Io {
                        path: path.clone(),
                        action: "remove the stale socket",
                        detail: e.to_string(),
                    })?;
                    tracing::info!(socket = %path.display(), "replaced a stale control socket");
                }
                Err(e) => {
                    return Err(ControlError::Io {
                        path: path.clone(),
                        action: "probe the existing socket",
                        detail: e.to_string(),
                    });
                }
            }
        }
        let io_err = |action: &'static str| {
            move |e: io::Error| ControlError::Io {
                path: path.clone(),
                action,
                detail: e.to_string(),
            }
        };
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(io_err("bind"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("make the socket private (0600)"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("configure the socket"))?;
        UnixListener::from_std(listener).map_err(io_err("register the socket"))
    }
}

impl Service for ControlSocket {
    fn name(&self) -> String {
        format!("control socket {}", self.path.display())
    }

    fn start(
        self: Box<Self>,
        runtime: RuntimeHandle,
        stop: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, String> {
        let listener = self.bind().map_err(|e| e.to_string())?;
        let inode = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        tracing::info!(socket = %self.path.display(), "control socket listening");
        let ctx = Arc::new(Context {
            info: self.info.clone(),
            manual: self.manual.clone(),
        });
        let me = nix::unistd::geteuid().as_raw();
        let limits = Limits {
            me,
            allow_root: self.allow_root,
            frame_timeout: self.frame_timeout,
        };
        let max = self.max_connections;
        let slots = Arc::new(Semaphore::new(max));
        let idle = IdleSet::default();
        let path = self.path.clone();
        Ok(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let ctx = Arc::clone(&ctx);
                            let runtime = runtime.clone();
                            let idle = idle.clone();
                            match Arc::clone(&slots).try_acquire_owned() {
                                Ok(slot) => {
                                    conns.spawn(async move {
                                        serve(stream, runtime, ctx, limits, idle).await;
                                        drop(slot);
                                    });
                                }
                                // full: make room by closing the connection that has waited
                                // longest for a request, so idle clients cannot lock others out
                                Err(_) => match idle.evict_oldest() {
                                    Some(()) => {
                                        let slots = Arc::clone(&slots);
                                        conns.spawn(async move {
                                            let slot = tokio::time::timeout(
                                                limits.frame_timeout,
                                                slots.acquire_owned(),
                                            )
                                            .await;
                                            match slot {
                                                Ok(Ok(slot)) => {
                                                    serve(stream, runtime, ctx, limits, idle)
                                                        .await;
                                                    drop(slot);
                                                }
                                                _ => refuse_busy(&stream, max),
                                            }
                                        });
                                    }
                                    None => refuse_busy(&stream, max),
                                },
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            conns.shutdown().await;
            remove_if_ours(&path, inode);
        }))
    }
}

/// Removes the socket file on shutdown, unless another server has replaced it since.
fn remove_if_ours(path: &Path, inode: Option<u64>) {
    let current = std::fs::symlink_metadata(path).map(|m| m.ino()).ok();
    if current.is_some() && current == inode {
        let _ = std::fs::remove_file(path);
    }
}

/// The connections waiting for a request, oldest first: when every slot is taken, a new
/// connection displaces the one that has waited longest (a client sends its request right
/// after connecting, so only idle or half-sent connections are ever displaced).
#[derive(Debug, Clone, Default)]
struct IdleSet(Arc<std::sync::Mutex<(u64, std::collections::BTreeMap<u64, CancellationToken>)>>);

impl IdleSet {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut (u64, std::collections::BTreeMap<u64, CancellationToken>)) -> T,
    ) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Registers a connection that starts waiting for a request; cancelled when displaced.
    fn wait(&self) -> (u64, CancellationToken) {
        let token = CancellationToken::new();
        let key = self.with(|(next, map)| {
            *next += 1;
            map.insert(*next, token.clone());
            *next
        });
        (key, token)
    }

    /// The connection got its request (or ended).
    fn done(&self, key: u64) {
        self.with(|(_, map)| map.remove(&key));
    }

    /// Displaces the connection that has waited longest; `None` if none is waiting.
    fn evict_oldest(&self) -> Option<()> {
        let token = self.with(|(_, map)| map.pop_first().map(|(_, t)| t))?;
        token.cancel();
        Some(())
    }
}

/// What every connection is held to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The server's uid.
    me: u32,
    /// Root may connect too.
    allow_root: bool,
    /// How long a request frame (or taking an answer) may take.
    frame_timeout: Duration,
}

/// Answers a connection beyond the cap with a busy error, without waiting: the answer is written
/// only if the socket takes it at once (a fresh socket's buffer does), then the connection is
/// closed, so a flood never holds more descriptors than the cap.
fn refuse_busy(stream: &UnixStream, max: usize) {
    let refusal = Response::error(
        ErrorKind::Busy,
        format!(
            "the server is already serving its maximum of {max} connections; try again in a moment (if this persists, something is flooding the socket)"
        ),
    );
    if let Ok(body) = serde_json::to_vec(&refusal)
        && let Ok(len) = u32::try_from(body.len())
    {
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let _ = stream.try_write(&frame);
    }
    tracing::debug!(max, "control socket: refused a connection over the cap");
}

async fn serve(
    stream: UnixStream,
    runtime: RuntimeHandle,
    ctx: Arc<Context>,
    limits: Limits,
    idle: IdleSet,
) {
    let Limits {
        me,
        allow_root: root,
        frame_timeout,
    } = limits;
    let peer = stream.peer_cred().map(|c| c.uid());
    let (read, write) = stream.into_split();
    let mut writer = FramedWrite::new(
        write,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_RESPONSE)
            .new_codec(),
    );
    match peer {
        Ok(uid) if uid == me || (root && uid == 0) => {}
        Ok(uid) => {
            tracing::warn!(
                uid,
                "control socket: refused a connection from another user"
            );
            let refusal = Response::error(
                ErrorKind::Denied,
                format!(
                    "this socket serves uid {me} only, and you are uid {uid}; talk to your own daemon, or run the command as uid {me}"
                ),
            );
            let _ = tokio::time::timeout(frame_timeout, send(&mut writer, &refusal)).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "control socket: cannot read the peer's credentials");
            return;
        }
    }
    let mut reader = FramedRead::new(read, request_codec());
    loop {
        let (key, displaced) = idle.wait();
        let next = tokio::select! {
            next = tokio::time::timeout(frame_timeout, reader.next()) => Some(next),
            () = displaced.cancelled() => None,
        };
        idle.done(key);
        let Some(next) = next else {
            tracing::debug!("control socket: displaced an idle connection to serve a new one");
            let busy = Response::error(
                ErrorKind::Busy,
                "the server is full and this connection sent no request; it was closed to serve \
                 another (send each request right after connecting)",
            );
            let _ = tokio::time::timeout(frame_timeout, send(&mut writer, &busy)).await;
            break;
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                tracing::debug!(
                    "control socket: closed a connection with no whole request within {frame_timeout:?}"
                );
                let late = Response::error(
                    ErrorKind::Invalid,
                    format!(
                        "no whole request arrived within {}; send each request as one frame right after connecting",
                        backwork_scheduler::core::humanize(frame_timeout)
                    ),
                );
                let _ = tokio::time::timeout(frame_timeout, send(&mut writer, &late)).await;
                break;
            }
        };
        let (response, go_on) = match decode_frame(frame) {
            Decoded::Request(request) => (dispatch(&runtime, &ctx, request).await, true),
            Decoded::Refused { answer, go_on } => (answer, go_on),
        };
        let sent = tokio::time::timeout(frame_timeout, send(&mut writer, &response)).await;
        if !matches!(sent, Ok(Ok(()))) || !go_on {
            break;
        }
    }
}

/// The codec of request frames: a 4-byte big-endian length, then that many bytes, at most
/// [`MAX_REQUEST`].
pub(crate) fn request_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_REQUEST)
        .new_codec()
}

/// What the server makes of one frame read from a connection.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A request to dispatch.
    Request(Request),
    /// No request: this answer, then go on reading or close the connection.
    Refused {
        /// The error to send.
        answer: Response,
        /// Whether the connection is still usable (the frame was whole but not a request).
        go_on: bool,
    },
}

/// Decodes one frame (or the codec's error) into a request or a refusal.
pub(crate) fn decode_frame(frame: io::Result<tokio_util::bytes::BytesMut>) -> Decoded {
    let refused = |go_on: bool, message: String| Decoded::Refused {
        answer: Response::error(ErrorKind::Invalid, message),
        go_on,
    };
    match frame {
        Ok(bytes) => match serde_json::from_slice::<Request>(&bytes) {
            Ok(request) => Decoded::Request(request),
            Err(e) => refused(
                true,
                format!(
                    "malformed request ({e}); send one JSON request per length-prefixed frame, as backwork_control::protocol documents"
                ),
            ),
        },
        Err(e) if e.kind() == io::ErrorKind::InvalidData => refused(
            false,
            format!("the request is over the cap of {MAX_REQUEST} bytes; send a smaller one"),
        ),
        Err(e) => refused(
            false,
            format!("the request frame is truncated or unreadable ({e}); send whole frames"),
        ),
    }
}

async fn send(
    writer: &mut FramedWrite<tokio::net::unix::OwnedWriteHalf, LengthDelimitedCodec>,
    response: &Response,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(response).or_else(|e| {
        serde_json::to_vec(&Response::error(
            ErrorKind::Unavailable,
            format!("the answer could not be encoded ({e})"),
        ))
    })?;
    writer.send(Bytes::from(bytes)).await
}
