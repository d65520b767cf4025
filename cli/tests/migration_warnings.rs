//! A store of schema 2 or older is migrated by whichever process opens it first — often a plain
//! `backwork list` after an upgrade. The person running it must learn, once, that a cron whose
//! weekday field has numbers now reads them as crontab(5) does (0 or 7 Sunday, 1 Monday …
//! 6 Saturday; schema 2 read 1 as Sunday): the warning went nowhere from a verb (verbs log
//! errors only) and was said twice by the daemon (its check of the file migrates a throw-away
//! copy first). Uses the committed schema-2 fixture, whose job `…030303030303` has such a cron.

mod common;

use common::{backwork, v2_fixture};

const WARNING: &str = "numbers weekdays; they now follow crontab(5)";

#[test]
fn a_verb_that_migrates_the_store_says_once_which_crons_changed_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let store = v2_fixture(dir.path());
    let socket = dir.path().join("none.sock");

    let first = backwork(&["list", "--all"], &store, &socket);
    assert!(first.status.success(), "{first:?}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(stderr.matches(WARNING).count(), 1, "said once: {stderr}");
    assert!(stderr.contains("030303030303"), "naming the job: {stderr}");

    // migrated: nothing more to say
    let again = backwork(&["list", "--all"], &store, &socket);
    assert!(again.status.success(), "{again:?}");
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains(WARNING),
        "{again:?}"
    );
}
