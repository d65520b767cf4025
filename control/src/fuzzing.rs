//! The body of the socket-frame fuzz target (`fuzz/fuzz_targets/socket_frames.rs`), as a plain
//! function that stable tests also call. Not part of the public API.

use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::protocol::{Request, Response};
use crate::server::{Decoded, decode_frame, request_codec};

/// Bytes as a connection would deliver them: split into frames by the server's codec (with its
/// size cap, and end of stream after the last byte), each frame decoded as the server decodes
/// it, until the server would close the connection. Every answer must encode; an `add` request
/// goes on into a scheduling core (validation, dispatch, `why`), as the daemon would take it.
pub fn frames(data: &[u8]) {
    let mut codec = request_codec();
    let mut buf = BytesMut::from(data);
    let now = backwork_scheduler::fuzzing::instant_of(1_764_374_400_i64.to_le_bytes());
    loop {
        let frame = match codec.decode(&mut buf) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => match codec.decode_eof(&mut buf) {
                Ok(Some(frame)) => Ok(frame),
                Ok(None) => return,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match decode_frame(frame) {
            Decoded::Request(request) => {
                let encoded = serde_json::to_vec(&request).expect("a decoded request encodes");
                let again: Request =
                    serde_json::from_slice(&encoded).expect("an encoded request decodes");
                assert_eq!(
                    serde_json::to_value(&again).ok(),
                    serde_json::to_value(&request).ok(),
                    "a request survives the wire"
                );
                if let Request::Add { job } = request
                    && let Ok(request) = job.request()
                {
                    backwork_scheduler::fuzzing::request(request, now);
                }
            }
            Decoded::Refused { answer, go_on } => {
                serde_json::to_vec::<Response>(&answer).expect("a refusal encodes");
                if !go_on {
                    return;
                }
            }
        }
    }
}
