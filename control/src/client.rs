//! The client side: what the command line uses to talk to a daemon or an app.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::ControlError;
use crate::path::{SocketFile, check_socket};
use crate::protocol::{MAX_RESPONSE, Request, Response};

/// A connection to a control socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    framed: Framed<UnixStream, LengthDelimitedCodec>,
}

impl Client {
    /// Connects to the server at `path`. `Ok(None)` means nobody serves there (no socket, or a
    /// stale one left by a killed server); a symlink, another kind of file, or another user's
    /// socket is an error.
    pub async fn connect(path: &Path) -> Result<Option<Client>, ControlError> {
        if check_socket(path)? == SocketFile::Absent {
            return Ok(None);
        }
        match UnixStream::connect(path).await {
            Ok(stream) => Ok(Some(Client {
                path: path.to_path_buf(),
                framed: Framed::new(
                    stream,
                    LengthDelimitedCodec::builder()
                        .max_frame_length(MAX_RESPONSE)
                        .new_codec(),
                ),
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(ControlError::Io {
                path: path.to_path_buf(),
                action: "connect",
                detail: e.to_string(),
            }),
        }
    }

    /// Sends one request and reads its answer.
    pub async fn call(&mut self, request: &Request) -> Result<Response, ControlError> {
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

fn decode(frame: &[u8]) -> Result<Response, ControlError> {
    serde_json::from_slice(frame).map_err(|e| ControlError::Protocol {
        detail: format!(
            "the answer could not be decoded ({e}); is the server the same backwork version?"
        ),
    })
}
