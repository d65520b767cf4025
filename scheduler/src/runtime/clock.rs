//! Clocks the runtime can run on: the system clock, tokio's clock (pausable in tests), and a
//! manual clock the test driver advances.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;

use super::worker::BoxFuture;
use crate::core::{Time, add, since};

/// Why a clock's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The deadline came.
    Deadline,
    /// The wall clock was set (a jump forwards or backwards) before the deadline came.
    ClockChanged,
}

/// A source of wall-clock time and a way to wait for an instant. The runtime keeps exactly one
/// such wait pending: the core's next deadline.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Time;

    /// Resolves at (or soon after) `deadline`, or earlier if the wall clock is set meanwhile.
    fn sleep_until(&self, deadline: Time) -> BoxFuture<Wake>;

    /// How long the machine has been suspended in all, from an origin of the clock's choosing:
    /// it grows by the time asleep across a suspend, and only then. The runtime feeds each
    /// growth to the core ([`Event::Suspended`](crate::Event::Suspended)) before anything
    /// else it learns on waking, so the time asleep is never counted as run time, whenever the
    /// announcements of the suspend arrive. `Duration::ZERO` (the default) for a clock that
    /// cannot tell, such as a test's virtual clock.
    fn suspended(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// The system's wall clock. On Linux it waits on a `timerfd` set to the absolute deadline on
/// `CLOCK_REALTIME` with `TFD_TIMER_CANCEL_ON_SET`, so the wait follows the wall clock across
/// suspend and notices when the clock is set; elsewhere (or if the timerfd cannot be made, e.g.
/// in a tokio runtime built without IO) it sleeps on a tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Utc::now()
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<Wake> {
        Box::pin(async move {
            #[cfg(target_os = "linux")]
            match timerfd::sleep_until(deadline).await {
                Ok(wake) => return wake,
                Err(e) => tracing::debug!(error = %e, "no timerfd; using a tokio timer"),
            }
            tokio::time::sleep(since(deadline, Utc::now())).await;
            Wake::Deadline
        })
    }

    /// Linux: `CLOCK_BOOTTIME` − `CLOCK_MONOTONIC`, the two clocks clock_gettime(2) describes
    /// as alike except that the first "includes any time that the system is suspended".
    #[cfg(target_os = "linux")]
    fn suspended(&self) -> std::time::Duration {
        use nix::time::{ClockId, clock_gettime};
        match (
            clock_gettime(ClockId::CLOCK_BOOTTIME),
            clock_gettime(ClockId::CLOCK_MONOTONIC),
        ) {
            (Ok(boot), Ok(mono)) => {
                let d =
                    std::time::Duration::from(boot).saturating_sub(std::time::Duration::from(mono));
                // the two readings are a few hundred nanoseconds apart: only whole
                // milliseconds count
                std::time::Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
            _ => std::time::Duration::ZERO,
        }
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use super::Wake;
    use crate::core::Time;

    /// Set once registering a timerfd with tokio failed (a runtime without IO): later waits go
    /// straight to the tokio-timer fallback.
    static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

    struct Timer(TimerFd);

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// Waits for `deadline` on the wall clock; `ClockChanged` if the clock is set first.
    pub(super) async fn sleep_until(deadline: Time) -> io::Result<Wake> {
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "timerfd unavailable in this tokio runtime",
            ));
        }
        let fd = TimerFd::new(
            ClockId::CLOCK_REALTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let at = TimeSpec::new(
            deadline.timestamp(),
            i64::from(deadline.timestamp_subsec_nanos()),
        );
        fd.set(
            Expiration::OneShot(at),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
        )?;
        // tokio panics when its runtime has no IO driver; treat that as "no timerfd".
        let registered = std::panic::catch_unwind(|| {
            // SAFETY: `Timer` owns the timerfd, which stays open, and its `as_raw_fd` returns
            // the same descriptor, for as long as the `AsyncFd` holds it.
            unsafe { AsyncFd::register_with_interest(Timer(fd), Interest::READABLE) }
        });
        let fd = match registered {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => return Err(e.into_parts().1),
            Err(_) => {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                return Err(io::Error::other("the tokio runtime has no IO driver"));
            }
        };
        loop {
            let mut ready = fd.readable().await?;
            match nix::unistd::read(ready.get_inner().0.as_fd(), &mut [0u8; 8]) {
                Ok(_) => return Ok(Wake::Deadline),
                Err(Errno::ECANCELED) => return Ok(Wake::ClockChanged),
                Err(Errno::EAGAIN) => ready.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
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

    fn sleep_until(&self, deadline: Time) -> BoxFuture<Wake> {
        let at = self.origin + since(deadline, self.base);
        Box::pin(async move {
            tokio::time::sleep_until(at).await;
            Wake::Deadline
        })
    }
}

/// A clock that moves only when told. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    tx: Arc<watch::Sender<Time>>,
    /// What [`Clock::suspended`] says: the sum of [`ManualClock::suspend`]s.
    asleep: Arc<std::sync::atomic::AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Time) -> Self {
        let (tx, _) = watch::channel(start);
        ManualClock {
            tx: Arc::new(tx),
            asleep: Arc::default(),
        }
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

    /// The machine sleeps for `d`: the time moves forward by `d` at once (no deadline on the
    /// way is met on time) and [`Clock::suspended`] grows by `d`, as a real suspend looks to
    /// the runtime.
    pub fn suspend(&self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.asleep
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
        self.advance(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        *self.tx.borrow()
    }

    fn suspended(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.asleep.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<Wake> {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            let mut last = *rx.borrow_and_update();
            loop {
                if last >= deadline {
                    return Wake::Deadline;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                let now = *rx.borrow_and_update();
                if now < last {
                    // set backwards: a clock jump
                    return Wake::ClockChanged;
                }
                last = now;
            }
        })
    }
}
