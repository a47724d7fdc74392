//! The command line itself: usage errors, help with the exit-code table, completions, man page.

mod common;

use common::{Adm, run_bare};

#[test]
fn usage_errors_exit_2() {
    let adm = Adm::new();
    let out = run_bare(&adm.store(), &["list", "tportals"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = run_bare(
        &adm.store(),
        &["--sim", "detail", "tportal", "--subsystem", "x", "::1:3260"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("brackets"), "{out:?}");
    let out = run_bare(&adm.store(), &["--json", "--sim", "discover", "[::1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.json()["error"]["name"], "E_INVALIDARG");
    let out = run_bare(&adm.store(), &["--json", "frobnicate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.json()["error"]["hresult"], "0x80070057");
    // --chap-user without its secret file is refused by clap.
    let out = run_bare(&adm.store(), &["discover", "127.0.0.1", "--chap-user", "u"]);
    assert_eq!(out.code, 2, "{out:?}");
    // Mutual CHAP needs one-way CHAP.
    let f = adm.file("m", "secret-secret\n");
    let f = f.to_str().expect("utf-8 path");
    let out = run_bare(
        &adm.store(),
        &[
            "discover",
            "127.0.0.1",
            "--mutual-user",
            "t",
            "--mutual-secret-file",
            f,
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!adm.store().exists());
}

#[test]
fn help_lists_the_exit_codes() {
    let adm = Adm::new();
    let out = run_bare(&adm.store(), &["--help"]).ok();
    for line in [
        "0  success",
        "1  any other failure",
        "2  usage error",
        "3  object not found",
        "4  network or login failure",
        "5  subsystem failed",
        "6  provider cache corrupt",
        "7  another call in progress",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing from --help: {}",
            out.stdout
        );
    }
}

#[test]
fn completions_and_man() {
    let adm = Adm::new();
    let bash = run_bare(&adm.store(), &["completions", "bash"]).ok();
    assert!(
        bash.stdout.contains("tportals") && bash.stdout.contains("_vdsadm"),
        "{bash:?}"
    );
    let zsh = run_bare(&adm.store(), &["completions", "zsh"]).ok();
    assert!(zsh.stdout.contains("#compdef vdsadm"), "{zsh:?}");
    let man = run_bare(&adm.store(), &["man"]).ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH vdsadm"),
        "{man:?}"
    );
    assert!(man.stdout.contains("EXIT STATUS") && man.stdout.contains("another call in progress"));
    assert!(!adm.store().exists());
}
