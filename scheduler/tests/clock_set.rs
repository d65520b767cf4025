//! Setting the wall clock is noticed by a timerfd wait. Its own test binary: setting the clock
//! cancels every absolute timerfd wait in the process, which would disturb other tests.

use std::time::Duration;

use backwork_scheduler::{Clock, SystemClock, Wake};
use chrono::{TimeDelta, Utc};

#[cfg(target_os = "linux")]
#[tokio::test]
async fn setting_the_wall_clock_is_noticed_while_waiting() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: setting CLOCK_REALTIME needs root (CAP_SYS_TIME)");
        return;
    }
    let waiting = tokio::spawn(SystemClock.sleep_until(Utc::now() + TimeDelta::hours(1)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // set the clock to what it already says: a "change" that moves nothing
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).unwrap();
    if let Err(e) = nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, now) {
        eprintln!("skipped: clock_settime refused ({e}); this sandbox does not allow it");
        waiting.abort();
        return;
    }
    let wake = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait must end when the clock is set")
        .unwrap();
    assert_eq!(wake, Wake::ClockChanged);
}
