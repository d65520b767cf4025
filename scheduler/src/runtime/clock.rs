//! Clocks the runtime can run on: the system clock, tokio's clock (pausable in tests), and a
//! manual clock the test driver advances.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;

use super::worker::BoxFuture;
use crate::core::{Time, add, since};

/// A source of wall-clock time and a way to wait for an instant. The runtime keeps exactly one
/// such wait pending: the core's next deadline.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Time;

    /// Resolves at (or soon after) `deadline`.
    fn sleep_until(&self, deadline: Time) -> BoxFuture<()>;
}

/// The system's wall clock, waited on with a tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Utc::now()
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<()> {
        let wait = since(deadline, Utc::now());
        Box::pin(tokio::time::sleep(wait))
    }
}

/// Wall-clock time derived from tokio's clock: `start + elapsed`. Under tokio's paused time
/// (`#[tokio::test(start_paused = true)]`) it advances only as tokio auto-advances, so runtime tests
/// run on virtual time with the real timer path.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Time,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now and moves with tokio's clock.
    pub fn starting_at(start: Time) -> Self {
        TokioClock {
            base: start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Time {
        add(self.base, self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<()> {
        let at = self.origin + since(deadline, self.base);
        Box::pin(tokio::time::sleep_until(at))
    }
}

/// A clock that moves only when told. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    tx: Arc<watch::Sender<Time>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Time) -> Self {
        let (tx, _) = watch::channel(start);
        ManualClock { tx: Arc::new(tx) }
    }

    /// Sets the time. Setting it backwards is allowed (a clock jump).
    pub fn set(&self, t: Time) {
        self.tx.send_replace(t);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        let next = add(self.now(), d);
        self.set(next);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        *self.tx.borrow()
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<()> {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
