//! A command job takes only a small allowlist of the adding shell's environment (DESIGN §5: PATH,
//! HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ) plus what `--env` names: a token in the shell is
//! neither stored (it used to sit in the store file in plain text, and in `show --json`) nor
//! seen by the command. Issue 12, item 3.

mod common;

use std::process::Command;

use common::{BIN, Daemon, state};

const SECRET: &str = "ghp_0123456789abcdefSECRET";

#[test]
fn a_secret_in_the_adding_shell_is_not_stored_nor_passed() {
    let d = Daemon::start(&[]);
    let out = Command::new(BIN)
        .args([
            "add",
            "--unique",
            "env-probe",
            "--env",
            "RESTIC_REPOSITORY",
            "--",
            "sh",
            "-c",
            "echo token=${GITHUB_TOKEN:-unset} repo=$RESTIC_REPOSITORY",
        ])
        .env("BACKWORK_STORE", d.store())
        .env("BACKWORK_SOCKET", d.socket())
        .env("GITHUB_TOKEN", SECRET)
        .env("RESTIC_REPOSITORY", "sftp:nas:/backup")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = d.wait_for("env-probe", "the run", |r| state(r) == "succeeded");
    assert_eq!(
        r["job"]["runs"][0]["output"]["stdout"]
            .as_str()
            .unwrap_or_default()
            .trim(),
        "token=unset repo=sftp:nas:/backup",
        "{r:#}"
    );
    let show = d.ok(&["show", "--json", "env-probe"]);
    assert!(!show.contains(SECRET), "{show}");
    let bytes = std::fs::read(d.store()).unwrap();
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the store file holds the secret"
    );
}
