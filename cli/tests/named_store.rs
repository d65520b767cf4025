//! A store named by hand (`--store`, `BACKWORK_STORE`) is the store a verb acts on. When the
//! server on the socket serves another store, the verb refuses (exit 2) and names both, instead
//! of quietly acting on the server's store (a reviewer's `add --store notes.txt` landed in the
//! running daemon's store, and `list --store /dev/null` listed it).

mod common;

use std::process::Command;

use common::{BIN, Daemon, backwork};

#[test]
fn a_verb_naming_another_store_than_the_daemons_is_refused() {
    let d = Daemon::start(&[]);
    let other = d.path("other.redb");
    // the daemon's own store, named: served
    let out = backwork(&["add", "--", "true"], d.store(), d.socket());
    assert!(out.status.success(), "{out:?}");
    for args in [
        &["add", "--", "echo", "elsewhere"][..],
        &["list"],
        &["prune"],
        &["device"],
    ] {
        let out = backwork(args, &other, d.socket());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&d.store().display().to_string())
                && err.contains(&other.display().to_string()),
            "{err}"
        );
    }
    assert!(!other.exists(), "no store was made for the refused verbs");
    assert_eq!(
        d.ok(&["list", "--all", "--json"]).lines().count(),
        1,
        "nothing was added"
    );
    // with --store on the command line, and through a symbolic link to the daemon's store
    let link = d.path("link.redb");
    std::os::unix::fs::symlink(d.store(), &link).unwrap();
    // and a relative name is shown whole, as the daemon's is
    let out = Command::new(BIN)
        .args(["list", "--store", "other.redb"])
        .current_dir(d.path(""))
        .env("BACKWORK_SOCKET", d.socket())
        .env_remove("BACKWORK_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("not {},", other.display())),
        "{out:?}"
    );
    for (store, code) in [(&link, Some(0)), (&other, Some(2))] {
        let out = Command::new(BIN)
            .args(["list", "--store"])
            .arg(store)
            .env("BACKWORK_SOCKET", d.socket())
            .env_remove("BACKWORK_STORE")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), code, "{store:?}: {out:?}");
    }
}
