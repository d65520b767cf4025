//! The rules for unique names (DESIGN §2): at most 256 bytes, no control characters, not shaped
//! like a job id. Guards against names that forge output, that cannot be shown, or that shadow
//! another job's id (`backwork show ID` must reach that job). Each refusal is exit 2 with a
//! sentence, and stores nothing.

mod common;

use common::Daemon;

/// `backwork add --unique NAME -- true`: (exit code, stderr).
fn add_named(d: &Daemon, name: &str) -> (Option<i32>, String) {
    let out = d.cli(&["add", "--unique", name, "--", "true"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn names_over_256_bytes_are_refused() {
    let d = Daemon::start(&[]);
    assert_eq!(add_named(&d, &"n".repeat(256)).0, Some(0));
    let (code, err) = add_named(&d, &"n".repeat(257));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("257 bytes long, over the limit of 256"),
        "{err}"
    );
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    let (code, err) = add_named(&d, &"é".repeat(129));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("258 bytes long"), "{err}");
    // The 65 536-byte name of the issue.
    let (code, err) = add_named(&d, &"n".repeat(65_536));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(d.ok(&["list", "--all", "--json"]).lines().count(), 1);
}

#[test]
fn names_with_control_characters_are_refused() {
    let d = Daemon::start(&[]);
    for (name, code_point) in [
        ("a\nb", "U+000A"),
        ("x\u{1b}[31mred", "U+001B"),
        ("tab\tname", "U+0009"),
        ("del\u{7f}", "U+007F"),
        ("c1\u{9b}2J", "U+009B"),
    ] {
        let (code, err) = add_named(&d, name);
        assert_eq!(code, Some(2), "{name:?}: {err}");
        assert!(err.contains(code_point), "{name:?}: {err}");
        // The error itself prints the name escaped: one line, no raw control character.
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    }
    assert_eq!(d.ok(&["list", "--all", "--json"]), "");
}

#[test]
fn id_shaped_names_are_refused_and_cannot_shadow_a_job() {
    let d = Daemon::start(&[]);
    let id = d.add(&["--in", "1h", "--", "true"]);
    let simple: String = id.chars().filter(|c| *c != '-').collect();
    let tail = &simple[simple.len() - 12..];
    for name in [
        id.as_str(),
        &id.to_uppercase(),
        &simple,
        &format!("{{{id}}}"),
        &format!("urn:uuid:{id}"),
        tail,
        "deadbeef",
    ] {
        let (code, err) = add_named(&d, name);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains("looks like a job id"), "{name}: {err}");
    }
    // The job is still reached by its id, and is the only one.
    assert_eq!(d.ok(&["list", "--all", "--json"]).lines().count(), 1);
    assert!(d.ok(&["show", &id]).contains(&id));
    // Names that only contain hex letters among others are fine.
    for ok in ["cafe", "deadbeef-nightly", "2026-12-01", "backup"] {
        assert_eq!(add_named(&d, ok).0, Some(0), "{ok}");
    }
}
