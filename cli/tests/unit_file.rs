//! The systemd unit in `contrib/` names only documentation that exists (issue 12, item 1: it
//! named `man:backwork(1)`, which nothing installed). systemd.unit(5): `Documentation=` takes
//! `man:` URIs, which `systemctl help` opens with man(1); the install steps in the unit's
//! comments write the pages with `backwork man --dir`.

mod common;

use common::BIN;

/// The pages `backwork man --dir` writes, in a temp dir.
fn man_pages() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

#[test]
fn every_man_page_the_unit_names_is_written_by_backwork_man() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/backwork.service"
    ))
    .unwrap();
    let pages: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation="))
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert!(!pages.is_empty(), "the unit names its documentation");
    let dir = man_pages();
    for page in pages {
        let Some(man) = page.strip_prefix("man:") else {
            panic!("{page}: only man: pages ship with backwork");
        };
        // `name(section)` is the file `name.section`
        let (name, section) = man.trim_end_matches(')').split_once('(').unwrap();
        let file = dir.path().join(format!("{name}.{section}"));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{page}: {} not written ({e})", file.display()));
        assert!(text.contains(".TH backwork"), "{page} is a man page");
    }
}

/// The help's examples reach the man pages unfilled: each is inside a `.nf` (no-fill) block,
/// line for line, so man(1) prints it as written — a justified, re-wrapped example does not
/// paste back into a shell. (groff(7): `.nf` turns filling off; `\-` is a minus, `\e` a
/// backslash.)
#[test]
fn man_pages_print_the_examples_as_written() {
    let dir = man_pages();
    let help = std::process::Command::new(BIN)
        .args(["add", "--help"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let examples: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(examples.len() >= 3, "{help}");
    let page = std::fs::read_to_string(dir.path().join("backwork-add.1")).unwrap();
    let block: Vec<String> = page
        .lines()
        .skip_while(|l| *l != ".nf")
        .skip(1)
        .take_while(|l| *l != ".fi")
        .map(|l| l.replace("\\-", "-").replace("\\e", "\\"))
        .collect();
    for example in examples {
        let as_written = example.strip_prefix("  ").unwrap();
        assert!(
            block.iter().any(|l| l == as_written),
            "{as_written:?} not in the no-fill block {block:?}"
        );
    }
}
