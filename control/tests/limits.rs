//! The control socket's resource limits, seen by a library user: a server with a cap of two
//! connections and a 2 s frame timeout, and a client with a bounded wait. Guards against a
//! flood of idle clients holding the server (a new connection beyond the cap displaces the
//! connection that has waited longest for a request, half-sent ones are dropped after the
//! timeout, and a real client is served at once) and against a client hanging on a server that
//! accepts but never answers.

use std::time::{Duration, Instant};

use backwork_control::protocol::{ErrorKind, Request, Response};
use backwork_control::{Client, ControlError, ControlSocket};
use backwork_scheduler::{ManualProbe, MemoryStore, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Reads one frame (4-byte big-endian length, then JSON), or `None` at end of stream.
async fn read_frame(s: &mut UnixStream) -> Option<serde_json::Value> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    serde_json::from_slice(&body).ok()
}

async fn half_sent(path: &std::path::Path) -> UnixStream {
    let mut s = UnixStream::connect(path).await.unwrap();
    // A server over its cap may have answered and closed already: then the write fails.
    let _ = s.write_all(&[0, 0, 0, 50, b'{']).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_cap_a_new_client_displaces_the_oldest_idle_one_and_half_sent_frames_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run").join("control.sock");
    let runtime = Runtime::builder()
        .store(MemoryStore::new())
        .probe(ManualProbe::new())
        .service(
            ControlSocket::new(&path)
                .max_connections(2)
                .frame_timeout(Duration::from_secs(2)),
        )
        .start()
        .await
        .unwrap();

    // one after the other, so which has waited longest is well defined
    let first = half_sent(&path).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut held = [first, half_sent(&path).await];
    // Let the server take both into their slots.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Every slot holds a connection that sent no whole request: a new client displaces the one
    // that has waited longest and is served at once — idle clients cannot lock others out (the
    // second review held 64 half-sent connections and every CLI call failed).
    let started = Instant::now();
    let mut client = Client::connect_within(&path, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a server");
    let pong = client.call(&Request::Ping).await.unwrap();
    assert!(matches!(pong, Response::Pong { .. }), "{pong:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // the oldest held one was told why and closed (DESIGN §7: busy is exit 3)
    let answer = read_frame(&mut held[0]).await.expect("an answer");
    assert_eq!(answer["kind"], "busy", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("sent no request"),
        "{answer}"
    );
    assert_eq!(ErrorKind::Busy.exit_code(), 3);
    assert!(read_frame(&mut held[0]).await.is_none());
    // the other half-sent one times out with a sentence, and is closed
    let answer = read_frame(&mut held[1]).await.expect("an answer");
    assert_eq!(answer["kind"], "invalid");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("no whole request arrived within 2s"),
        "{answer}"
    );
    assert!(read_frame(&mut held[1]).await.is_none());
    runtime.shutdown(Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_gives_no_answer_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mute.sock");
    // Bound and listening, never accepting: the kernel completes connections into the backlog,
    // as for a stopped (SIGSTOP) server.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let started = Instant::now();
    let mut client = Client::connect_within(&path, Duration::from_millis(300))
        .await
        .unwrap()
        .expect("the socket is there");
    let err = client.call(&Request::Ping).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, ControlError::NoAnswer { waited, .. } if waited == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        err.to_string()
            .contains("did not answer within 0.3 s; is it stopped"),
        "{err}"
    );
}
