//! The client side: what the command line uses to talk to a daemon or an app.
//!
//! Every call is bounded in time: connecting, sending and reading the answer together take at
//! most the client's timeout ([`DEFAULT_ANSWER_TIMEOUT`] unless told), so a stopped (`SIGSTOP`)
//! or wedged server gives [`ControlError::NoAnswer`], never a hang. A server that is serving its
//! maximum of connections answers "busy" without reading the request; the client then tries
//! again after a short pause, within the same time bound.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::ControlError;
use crate::path::{SocketFile, check_socket};
use crate::protocol::{ErrorKind, MAX_RESPONSE, Request, Response};

/// How long a client waits for a server, by default: to connect, send a request and read its
/// answer, all together.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a control socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    framed: Framed<UnixStream, LengthDelimitedCodec>,
    timeout: Duration,
}

/// The first pause before trying again after a "busy" answer; it doubles up to 500 ms.
const BUSY_PAUSE: Duration = Duration::from_millis(20);

impl Client {
    /// Connects to the server at `path`, waiting at most [`DEFAULT_ANSWER_TIMEOUT`]. `Ok(None)`
    /// means nobody serves there (no socket, or a stale one left by a killed server); a
    /// symlink, another kind of file, or another user's socket is an error.
    pub async fn connect(path: &Path) -> Result<Option<Client>, ControlError> {
        Client::connect_within(path, DEFAULT_ANSWER_TIMEOUT).await
    }

    /// Like [`Client::connect`], with `timeout` as the bound of the connection and of each
    /// [`Client::call`].
    pub async fn connect_within(
        path: &Path,
        timeout: Duration,
    ) -> Result<Option<Client>, ControlError> {
        if check_socket(path)? == SocketFile::Absent {
            return Ok(None);
        }
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, UnixStream::connect(path)).await {
            Err(_) => Err(ControlError::NoAnswer {
                path: path.to_path_buf(),
                waited: timeout,
            }),
            Ok(Ok(stream)) => Ok(Some(Client {
                path: path.to_path_buf(),
                framed: framed(stream),
                timeout,
            })),
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                Ok(None)
            }
            Ok(Err(e)) => Err(ControlError::Io {
                path: path.to_path_buf(),
                action: "connect",
                detail: e.to_string(),
            }),
        }
    }

    /// Sends one request and reads its answer, within the client's timeout. A "busy" answer
    /// (the request was not read) is retried on a new connection until the timeout; the last
    /// one is returned if the server stays busy.
    pub async fn call(&mut self, request: &Request) -> Result<Response, ControlError> {
        let deadline = Instant::now() + self.timeout;
        let (path, waited) = (self.path.clone(), self.timeout);
        let no_answer = || ControlError::NoAnswer {
            path: path.clone(),
            waited,
        };
        let mut pause = BUSY_PAUSE;
        loop {
            let answer = tokio::time::timeout_at(deadline, self.call_once(request))
                .await
                .map_err(|_| no_answer())??;
            let busy = matches!(
                answer,
                Response::Error {
                    kind: ErrorKind::Busy,
                    ..
                }
            );
            if !busy || Instant::now() + pause >= deadline {
                return Ok(answer);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            let stream = tokio::time::timeout_at(deadline, UnixStream::connect(&self.path))
                .await
                .map_err(|_| no_answer())?
                .map_err(|e| ControlError::Io {
                    path: self.path.clone(),
                    action: "connect",
                    detail: e.to_string(),
                })?;
            self.framed = framed(stream);
        }
    }

    async fn call_once(&mut self, request: &Request) -> Result<Response, ControlError> {
        let io_err = |action: &'static str, e: io::Error| ControlError::Io {
            path: self.path.clone(),
            action,
            detail: e.to_string(),
        };
        let bytes = serde_json::to_vec(request).map_err(|e| ControlError::Protocol {
            detail: format!("the request could not be encoded: {e}"),
        })?;
        // A server that refuses the connection answers and hangs up, maybe before the request
        // is written: then its answer is still there to read.
        if let Err(e) = self.framed.send(Bytes::from(bytes)).await {
            return match self.framed.next().await {
                Some(Ok(frame)) => decode(&frame),
                _ => Err(io_err("send a request", e)),
            };
        }
        let frame = self
            .framed
            .next()
            .await
            .ok_or_else(|| ControlError::Protocol {
                detail: "the server closed the connection without answering".into(),
            })?
            .map_err(|e| io_err("read the answer", e))?;
        decode(&frame)
    }
}

fn framed(stream: UnixStream) -> Framed<UnixStream, LengthDelimitedCodec> {
    Framed::new(
        stream,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_RESPONSE)
            .new_codec(),
    )
}

fn decode(frame: &[u8]) -> Result<Response, ControlError> {
    serde_json::from_slice(frame).map_err(|e| ControlError::Protocol {
        detail: format!(
            "the answer could not be decoded ({e}); is the server the same backwork version?"
        ),
    })
}
