//! Text output escapes control characters (DESIGN §7). Guards against user data — tags, command
//! arguments, a command's output, names already on disk, what an error quotes — forging a row of
//! `list`, a line of `why`/`show`, or sending terminal escape sequences; and against the panic
//! (exit 101) of `backwork list | cat` on a 65 536-byte name: the table padded with a format
//! width, which Rust caps at 65 535.

mod common;

use backwork_persistence::{OpenMode, RedbStore};
use backwork_scheduler::{ChangeSet, Store, Unique};
use common::{Daemon, backwork, state};

const ESC: char = '\u{1b}';

/// No ESC, no carriage return, no other control character but the line ends.
fn assert_clean(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {text:?}"
    );
}

#[test]
fn list_why_and_show_print_control_characters_escaped() {
    let d = Daemon::start(&[]);
    let tag = format!("t\nforged{ESC}[2J");
    let id = d.add(&[
        "--tag",
        &tag,
        "--",
        "sh",
        "-c",
        &format!("printf '{ESC}[31mred\\r\\n'\necho x"),
    ]);
    d.wait_for(&id, "a run", |r| {
        state(r) != "enqueued" && state(r) != "running"
    });

    let list = d.ok(&["list", "--all"]);
    assert_clean(&list);
    assert_eq!(list.lines().count(), 2, "{list}");
    // The command line (the NAME of a job with no name), in the shell's $'…' form.
    assert!(
        list.contains(r"sh -c $'printf \'\E[31mred\\r\\n\'\necho x'"),
        "{list}"
    );

    let why = d.ok(&["why", &id]);
    assert_clean(&why);

    let show = d.ok(&["show", &id]);
    assert_clean(&show);
    assert!(show.contains(r"t\nforged\e[2J"), "{show}");
    assert!(show.contains(r"| \e[31mred"), "{show}");

    // JSON output is JSON: the strings are JSON-escaped and round-trip exactly.
    let json = d.ok(&["list", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["tags"][0], tag.as_str());
}

#[test]
fn an_error_quoting_user_input_is_one_escaped_line() {
    let d = Daemon::start(&[]);
    let out = d.cli(&["show", &format!("x\ny{ESC}[2J")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_clean(&err);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(r"x\ny\e[2J"), "{err}");
}

/// Names are checked when a job is added, but a store written before the rule (or by another
/// program) may hold anything: the renderer must not panic on it.
#[test]
fn a_65536_byte_name_on_disk_lists_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let socket = dir.path().join("run").join("control.sock");
    let added = backwork(&["add", "--unique", "short", "--", "true"], &store, &socket);
    assert!(added.status.success(), "{added:?}");

    let long = "n".repeat(65_536);
    let mut s = RedbStore::open(&store, OpenMode::MustExist).unwrap();
    let mut job = s.load().unwrap().pop().unwrap();
    let policy = job.request.unique.take().unwrap().policy;
    job.request.unique = Some(Unique {
        name: long.clone(),
        policy,
    });
    s.commit(&ChangeSet::whole(vec![job])).unwrap();
    s.close().unwrap();
    drop(s);

    // Not a terminal: whole lines, no width limit.
    let out = backwork(&["list"], &store, &socket);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().contains(&long));

    // A terminal 80 columns wide: the name gives way.
    let out = std::process::Command::new(common::BIN)
        .arg("list")
        .env("BACKWORK_STORE", &store)
        .env("BACKWORK_SOCKET", &socket)
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains('…'), "{text}");
}
