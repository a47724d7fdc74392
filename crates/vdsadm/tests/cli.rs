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

/// Each command's parser is defined only when the command is run (`cli::Lazy`); its help must
/// still be what the full definition says. The manual pages come from the full definition: every
/// command's `-h` starts with its page's description, and the `help` subcommand's pages reach
/// down to the leaves (they mirror only what is defined when `help` is made).
#[test]
fn a_command_defined_on_entry_says_what_the_full_definition_says() {
    let adm = Adm::new();
    let dir = adm.dir.path().join("man");
    let dir_arg = dir.to_str().expect("utf-8 path");
    run_bare(&adm.store(), &["man", "--out-dir", dir_arg]).ok();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("pages") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let Some(path) = name
            .strip_suffix(".8")
            .and_then(|n| n.strip_prefix("vdsadm-"))
        else {
            continue;
        };
        // `help` (at every level) takes command names, not options.
        if path.split('-').any(|word| word == "help") {
            continue;
        }
        let page = std::fs::read_to_string(dir.join(&name)).expect("page");
        let described = page
            .lines()
            .skip_while(|l| !l.starts_with(".SH NAME"))
            .nth(1)
            .and_then(|l| l.split_once(" \\- "))
            .map(|(_, d)| d.replace("\\-", "-").replace("\\*(Aq", "'"))
            .unwrap_or_else(|| panic!("{name}: no NAME line"));
        let words: Vec<&str> = path.split('-').chain(["-h"]).collect();
        let help = run_bare(&adm.store(), &words).ok();
        let first = help.stdout.lines().next().unwrap_or_default();
        assert_eq!(first, described, "`vdsadm {}`", words.join(" "));
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} commands checked");
    assert!(dir.join("vdsadm-help-list-tportals.8").exists());
    assert!(dir.join("vdsadm-help-chap-target-set.8").exists());
    let bash = run_bare(&adm.store(), &["completions", "bash"]).ok();
    assert!(
        bash.stdout
            .contains("vdsadm__subcmd__help__subcmd__list__subcmd__tportals"),
        "the help subcommand's completions stop short of the leaves"
    );
    // The deferred definitions still take the global options anywhere, and still suggest.
    let out = run_bare(&adm.store(), &["list", "tportals", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.json()["error"]["name"], "E_INVALIDARG");
    let out = run_bare(&adm.store(), &["list", "tportal"]);
    assert!(out.stderr.contains("'tportals'"), "{out:?}");
}
