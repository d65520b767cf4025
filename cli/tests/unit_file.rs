//! The systemd unit in `contrib/` names only documentation that exists (issue 12, item 1: it
//! named `man:backwork(1)`, which nothing installed). systemd.unit(5): `Documentation=` takes
//! `man:` URIs, which `systemctl help` opens with man(1); the install steps in the unit's
//! comments write the pages with `backwork man --dir`.

mod common;

use common::BIN;

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
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
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
