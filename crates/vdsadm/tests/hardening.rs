//! What a hostile array, a careless file and a second user can do, and what they no longer can:
//! each defect of the hardening review, pinned through the built binary.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Adm, ScriptedTarget, SilentArray, terminal_hazard};
use vds_testpeers::{Tgtd, TgtdConfig, free_port, require};

fn no_hazard(what: &str, out: &common::Out) {
    if let Some((at, c)) = terminal_hazard(&out.stdout) {
        panic!("{what}: raw {c:?} at byte {at} of stdout: {out:?}");
    }
    if let Some((at, c)) = terminal_hazard(&out.stderr) {
        panic!("{what}: raw {c:?} at byte {at} of stderr: {out:?}");
    }
}

const EVIL_NAME: &str = "iqn.2026-12.test.evil:\u{1b}]0;PWNED\u{7}\u{1b}[2J";
const RTL_NAME: &str = "iqn.2026-12.test.evil:rtl\u{202e}gnp.exe\u{200b}";

#[test]
fn text_from_an_array_never_reaches_the_terminal_raw() {
    // An array whose answer carries escape sequences in target names and a host name, and one whose
    // login answer carries them in a key value that ends up in an error message.
    let answer = format!(
        "TargetName={EVIL_NAME}\0TargetAddress=127.0.0.1:3260,1\0\
         TargetName={RTL_NAME}\0TargetAddress=127.0.0.1:3260,1\0"
    );
    let evil = ScriptedTarget::start(b"TargetPortalGroupTag=1\0".to_vec(), answer.into_bytes());
    let host = ScriptedTarget::start(
        b"TargetPortalGroupTag=1\0".to_vec(),
        "TargetName=iqn.2026-12.test.evil:x\0TargetAddress=host\u{1b}[31m.example:3260,1\0"
            .as_bytes()
            .to_vec(),
    );
    let bad = ScriptedTarget::start(
        "TargetPortalGroupTag=\u{1b}[31mred\u{9b}1m\0"
            .as_bytes()
            .to_vec(),
        b"".to_vec(),
    );
    let adm = Adm::new();
    let mut outs = Vec::new();
    outs.push((
        "subsystem add evil",
        adm.run(&["subsystem", "add", "evil", "--portal", &evil.portal]),
    ));
    outs.push((
        "subsystem add bad",
        adm.run(&["subsystem", "add", "bad", "--portal", &bad.portal]),
    ));
    outs.push((
        "subsystem add host",
        adm.run(&["subsystem", "add", "host", "--portal", &host.portal]),
    ));
    for args in [
        &["list", "subsystems"][..],
        &["list", "tportals", "--subsystem", "evil"],
        &["list", "targets", "--subsystem", "evil"],
        &[
            "list",
            "tpgroups",
            "--subsystem",
            "evil",
            "--target",
            EVIL_NAME,
        ],
        &["detail", "target", "--subsystem", "evil", RTL_NAME],
        &["detail", "subsystem", "evil"],
        &["detail", "subsystem", "bad"],
        &["detail", "subsystem", "host"],
        &["list", "tportals", "--subsystem", "host"],
        &["list", "tportals", "--subsystem", "bad"],
        &["refresh"],
        &["-vv", "refresh"],
        &["reenumerate"],
        &["discover", &evil.portal],
        &["discover", &bad.portal],
        &["-vv", "discover", &evil.portal],
        &["list", "targets", "--subsystem", "no\u{1b}[1such"],
    ] {
        outs.push(("query", adm.run(args)));
    }
    for (what, out) in &outs {
        no_hazard(what, out);
    }
    // The escapes are visible, not dropped: the administrator sees that something odd was there.
    let targets = adm.run(&["list", "targets", "--subsystem", "evil"]).ok();
    assert!(targets.stdout.contains("\\x1b]0;PWNED\\x07"), "{targets:?}");
    assert!(targets.stdout.contains("\\u{202e}"), "{targets:?}");
    // JSON keeps the exact string, escaped as JSON escapes it.
    let j = adm
        .run(&["--json", "list", "targets", "--subsystem", "evil"])
        .ok();
    assert!(j.stdout.contains("\\u001b]0;PWNED\\u0007"), "{j:?}");
    let names: Vec<String> = j
        .json()
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["iscsi_name"].as_str().expect("name").to_string())
        .collect();
    assert!(names.iter().any(|n| n == EVIL_NAME), "{names:?}");
    assert!(names.iter().any(|n| n == RTL_NAME), "{names:?}");
}

const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_r(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read_dir") {
            chown_r(&e.expect("entry").path(), uid, gid);
        }
    }
}

fn files_of(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read_dir") {
            out.extend(files_of(&e.expect("entry").path()));
        }
    }
    out
}

fn tgtd() -> Tgtd {
    if let Err(e) = require(&["tgtd", "tgtadm"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
    let t = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{}", free_port())],
    })
    .expect("tgtd");
    t.add_target(1, "iqn.2026-12.test.vds:hard")
        .expect("target");
    t
}

/// The bytes of the CHAP secret file `config` names for subsystem `sub`.
fn secret_of(adm: &Adm, config: &str, sub: &str) -> Vec<u8> {
    let block = config
        .split("[[subsystem]]")
        .find(|b| b.contains(&format!("name = \"{sub}\"")))
        .expect("block");
    let file = block
        .lines()
        .find_map(|l| l.strip_prefix("chap_secret = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("chap_secret");
    std::fs::read(adm.store().join("secrets").join(file)).expect("secret")
}

fn secret_names(adm: &Adm) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(adm.store().join("secrets"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn secret_files_never_collide_and_belong_to_one_subsystem() {
    let silent = SilentArray::start();
    let adm = Adm::new();
    let add = |name: &str, secret: &str| {
        let f = adm.file(&format!("in-{}", name.len()), &format!("{secret}\n"));
        adm.run(&[
            "subsystem",
            "add",
            name,
            "--portal",
            &silent.portal,
            "--chap-user",
            "u",
            "--chap-secret-file",
            f.to_str().expect("utf-8"),
            "--no-refresh",
        ])
        .ok();
    };
    // "a b" is not a plain file name, "a_b" is the name its secret would take, "a_b-2" the next.
    add("a b", "secret-of-a-space-b");
    add("a_b", "secret-of-a-underscore-b");
    add("a_b-2", "secret-of-a_b-2-itself");
    let names = secret_names(&adm);
    assert_eq!(names.len(), 3, "{names:?}");
    let config = std::fs::read_to_string(adm.store().join("vds.toml")).expect("config");
    assert_eq!(secret_of(&adm, &config, "a b"), b"secret-of-a-space-b");
    assert_eq!(secret_of(&adm, &config, "a_b"), b"secret-of-a-underscore-b");
    assert_eq!(secret_of(&adm, &config, "a_b-2"), b"secret-of-a_b-2-itself");
    // Removing one removes its secret alone.
    adm.run(&["subsystem", "remove", "a_b"]).ok();
    assert_eq!(secret_names(&adm).len(), 2);
    let config = std::fs::read_to_string(adm.store().join("vds.toml")).expect("config");
    assert!(!config.contains("name = \"a_b\"\n"), "{config}");
    assert_eq!(secret_of(&adm, &config, "a b"), b"secret-of-a-space-b");
    assert_eq!(secret_of(&adm, &config, "a_b-2"), b"secret-of-a_b-2-itself");
    // A configuration in which two subsystems name one secret file is refused, with its line.
    let edited = config.replacen(
        &format!(
            "chap_secret = \"{}\"",
            config
                .lines()
                .filter_map(|l| l.strip_prefix("chap_secret = \""))
                .nth(1)
                .and_then(|l| l.strip_suffix('"'))
                .expect("second secret")
        ),
        &format!(
            "chap_secret = \"{}\"",
            config
                .lines()
                .find_map(|l| l.strip_prefix("chap_secret = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("first secret")
        ),
        1,
    );
    std::fs::write(adm.store().join("vds.toml"), &edited).expect("edit");
    let out = adm
        .run(&["list", "subsystems"])
        .fails(1, "E_INVALIDARG", "0x80070057");
    assert!(
        out.stderr.contains("vds.toml:") && out.stderr.contains("same secret file"),
        "{out:?}"
    );
}

#[test]
fn one_unusable_registration_fails_alone_and_says_why() {
    let t = tgtd();
    let good = t.portals()[0].clone();
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "good", "--portal", &good])
        .ok();
    let secrets = adm.store().join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets");
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let p = secrets.join(name);
        std::fs::write(&p, bytes).expect("write");
        chmod(&p, mode);
    };
    write("open.chap", b"an-open-secret-here", 0o640);
    write("empty.chap", b"", 0o600);
    write("real.chap", b"the-real-secret-1", 0o600);
    std::os::unix::fs::symlink(secrets.join("real.chap"), secrets.join("link.chap")).expect("ln");
    let mut config = std::fs::read_to_string(adm.store().join("vds.toml")).expect("config");
    let sub = |name: &str, extra: &str| {
        format!("\n[[subsystem]]\nname = \"{name}\"\nprovider = \"vds-sendtargets\"\n{extra}")
    };
    config.push_str(&sub(
        "missing",
        &format!("portals = [\"{good}\"]\nchap_user = \"u\"\nchap_secret = \"gone.chap\"\n"),
    ));
    config.push_str(&sub(
        "open",
        &format!("portals = [\"{good}\"]\nchap_user = \"u\"\nchap_secret = \"open.chap\"\n"),
    ));
    config.push_str(&sub(
        "empty",
        &format!("portals = [\"{good}\"]\nchap_user = \"u\"\nchap_secret = \"empty.chap\"\n"),
    ));
    config.push_str(&sub(
        "linked",
        &format!("portals = [\"{good}\"]\nchap_user = \"u\"\nchap_secret = \"link.chap\"\n"),
    ));
    config.push_str(&sub("badportal", "portals = [\"127.0.0.1:99999\"]\n"));
    config.push_str(&sub("noportal", "portals = []\n"));
    config.push_str(&sub(
        "mutualonly",
        &format!("portals = [\"{good}\"]\nmutual_user = \"m\"\nmutual_secret = \"real.chap\"\n"),
    ));
    config.push_str(
        "\n[[subsystem]]\nname = \"orphan\"\nprovider = \"nope\"\nportals = [\"127.0.0.1\"]\n",
    );
    std::fs::write(adm.store().join("vds.toml"), &config).expect("config");

    let bad = [
        ("missing", "no such secret"),
        ("open", "chmod 600"),
        ("empty", "length 0"),
        ("linked", "not a regular file"),
        ("badportal", "99999"),
        ("noportal", "no discovery portal"),
        ("mutualonly", "one-way"),
    ];
    for op in ["reenumerate", "refresh"] {
        let out = adm.run(&["--json", op]);
        assert_ne!(
            out.code, 0,
            "{op}: not everything succeeded, and the status says so: {out:?}"
        );
        let j = out.json();
        let failed: Vec<&str> = j["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .map(|f| f["subsystem"].as_str().expect("subsystem"))
            .collect();
        for (name, _) in bad {
            assert!(failed.contains(&name), "{op}: {name} not reported: {j}");
        }
        assert!(failed.contains(&"orphan"), "{op}: {j}");
        let good_row = j["subsystems"]
            .as_array()
            .expect("subsystems")
            .iter()
            .find(|s| s["name"] == "good")
            .cloned()
            .expect("good");
        assert_eq!(good_row["status"], "ONLINE", "{op}: {j}");
    }
    let rows = adm.run(&["--json", "list", "subsystems"]).ok().json();
    for (name, why) in bad.iter().chain([("orphan", "does not define it")].iter()) {
        let row = rows
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["name"] == *name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {rows}"));
        assert_eq!(row["status"], "FAILED", "{name}: {row}");
        let detail = row["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(why),
            "{name}: {detail:?} should say {why:?}"
        );
    }
    // A refresh of one of them alone fails with the reason; the good one works.
    adm.run(&["refresh", "--subsystem", "open"])
        .fails(1, "E_ACCESSDENIED", "0x80070005");
    adm.run(&["refresh", "--subsystem", "good"]).ok();
    t.stop().expect("stop tgtd");
}

#[test]
fn secret_files_given_are_regular_files_read_with_limits() {
    let adm = Adm::new();
    let fifo = adm.dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    // A discovery with CHAP whose secret file is refused before anything is contacted.
    let refused = |file: &str| {
        adm.run(&[
            "discover",
            "127.0.0.1:9",
            "--chap-user",
            "u",
            "--chap-secret-file",
            file,
        ])
        .fails(2, "E_INVALIDARG", "0x80070057")
    };
    for (file, why) in [
        ("/dev/zero", "not a regular file (device)"),
        (fifo.to_str().expect("utf-8"), "not a regular file (FIFO)"),
        ("/tmp", "not a regular file (directory)"),
    ] {
        let start = Instant::now();
        let out = refused(file);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{file}: it waited"
        );
        assert!(
            out.stderr.contains(file) && out.stderr.contains(why),
            "{file}: {out:?}"
        );
    }
    let big = adm.file("big", &"x".repeat(1025));
    let out = refused(big.to_str().expect("utf-8"));
    assert!(
        out.stderr.contains("1024") && out.stderr.contains("big"),
        "{out:?}"
    );
    let out = adm.run(&[
        "discover",
        "127.0.0.1:9",
        "--chap-user",
        "u",
        "--chap-secret-file",
        "/nonexistent/secret",
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("/nonexistent/secret"), "{out:?}");
}

#[test]
fn limits_are_the_protocol_s_checked_where_typed() {
    let silent = SilentArray::start();
    let adm = Adm::new();
    let add = |extra: &[&str]| {
        let mut args = vec![
            "subsystem",
            "add",
            "x",
            "--portal",
            &silent.portal,
            "--no-refresh",
        ];
        args.extend_from_slice(extra);
        adm.run(&args)
    };
    let long_secret = adm.file("long", &"s".repeat(1025));
    let long_user = "u".repeat(256);
    let long_iqn = format!("iqn.2026-12.test.vds:{}", "n".repeat(210));
    for (what, args) in [
        (
            "secret",
            vec![
                "--chap-user",
                "u",
                "--chap-secret-file",
                long_secret.to_str().expect("p"),
            ],
        ),
        (
            "user",
            vec![
                "--chap-user",
                long_user.as_str(),
                "--chap-secret-file",
                long_secret.to_str().expect("p"),
            ],
        ),
        ("initiator", vec!["--initiator-name", long_iqn.as_str()]),
        ("initiator form", vec!["--initiator-name", "host1"]),
    ] {
        let out = add(&args).fails(2, "E_INVALIDARG", "0x80070057");
        assert!(!out.stderr.contains("store"), "{what}: {out:?}");
    }
    for name in [" lead", &"n".repeat(65)] {
        let out = adm
            .run(&[
                "subsystem",
                "add",
                name,
                "--portal",
                &silent.portal,
                "--no-refresh",
            ])
            .fails(2, "E_INVALIDARG", "0x80070057");
        assert!(out.stderr.contains("subsystem"), "{out:?}");
    }
    assert!(!adm.store().exists(), "nothing was written");
    // Accepted with a warning: a short secret, the same secret both ways.
    let short = adm.file("short", "tooshort\n");
    let out = add(&[
        "--chap-user",
        "u",
        "--chap-secret-file",
        short.to_str().expect("p"),
        "--mutual-user",
        "m",
        "--mutual-secret-file",
        short.to_str().expect("p"),
    ])
    .ok();
    assert!(out.stderr.contains("96 bits"), "{out:?}");
    assert!(out.stderr.contains("both directions"), "{out:?}");
}

#[test]
fn json_means_one_document_whatever_the_mistake() {
    let adm = Adm::new();
    for args in [
        &["--json", "list"][..],
        &["--json", "subsystem"],
        &["--json=true", "list"],
    ] {
        let out = adm.run(args);
        assert_eq!(out.code, 2, "{out:?}");
        let j = out.json();
        assert_eq!(j["error"]["name"], "E_INVALIDARG");
    }
    let out = adm
        .run(&["--json=true", "--sim", "list", "subsystems"])
        .ok();
    assert!(out.json().is_array());
    let out = adm
        .run(&["--json=false", "--sim", "list", "subsystems"])
        .ok();
    assert!(out.stdout.contains("Subsystem ###"), "{out:?}");
}

#[test]
fn root_working_in_a_users_store_leaves_every_file_to_its_owner() {
    let t = tgtd();
    let adm = Adm::new();
    chmod(adm.dir.path(), 0o755);
    let store = adm.store();
    std::fs::create_dir(&store).expect("store");
    chmod(&store, 0o700);
    chown_r(&store, NOBODY, NOBODY);
    let secret = adm.file("s", "a-secret-of-nobody\n");
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    adm.run(&[
        "subsystem",
        "add",
        "arr",
        "--portal",
        &t.portals()[0],
        "--chap-user",
        "u",
        "--chap-secret-file",
        secret.to_str().expect("p"),
    ])
    .ok();
    adm.run(&["refresh"]).ok();
    adm.run(&[
        "offline",
        "tportal",
        "--subsystem",
        "sim-array-1",
        "192.0.2.10:3260",
    ])
    .ok();
    for f in files_of(&store) {
        let m = std::fs::symlink_metadata(&f).expect("meta");
        assert_eq!(
            (m.uid(), m.gid()),
            (NOBODY, NOBODY),
            "{} belongs to {}:{}",
            f.display(),
            m.uid(),
            m.gid()
        );
    }
    // The owner works in it afterwards.
    adm.run_as(NOBODY, NOBODY, &[], &["refresh"]).ok();
    adm.run_as(
        NOBODY,
        NOBODY,
        &[],
        &[
            "online",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "192.0.2.10:3260",
        ],
    )
    .ok();
    t.stop().expect("stop tgtd");
}

#[test]
fn a_store_others_could_change_is_refused_with_the_fix() {
    let adm = Adm::new();
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    let store = adm.store();
    chmod(&store, 0o777);
    let out = adm
        .run(&["list", "subsystems"])
        .fails(1, "E_ACCESSDENIED", "0x80070005");
    assert!(
        out.stderr
            .contains(&format!("chmod go-w {}", store.display())),
        "{out:?}"
    );
    adm.run(&["refresh"])
        .fails(1, "E_ACCESSDENIED", "0x80070005");
    chmod(&store, 0o700);
    std::fs::create_dir_all(store.join("secrets")).expect("secrets");
    chmod(&store.join("secrets"), 0o770);
    let out = adm
        .run(&["list", "subsystems"])
        .fails(1, "E_ACCESSDENIED", "0x80070005");
    assert!(out.stderr.contains("secrets"), "{out:?}");
    chmod(&store.join("secrets"), 0o700);
    adm.run(&["list", "subsystems"]).ok();
    // Another user's store (not root's) is not used by a third user.
    chmod(adm.dir.path(), 0o755);
    chmod(&store, 0o755);
    chown_r(&store, 2, 2);
    let out = adm
        .run_as(NOBODY, NOBODY, &[], &["list", "subsystems"])
        .fails(1, "E_ACCESSDENIED", "0x80070005");
    assert!(out.stderr.contains("belongs to user 2"), "{out:?}");
}

#[test]
fn an_empty_vds_home_is_ignored_and_an_empty_store_is_a_mistake() {
    let adm = Adm::new();
    chmod(adm.dir.path(), 0o755);
    // As a user whose default store is under the temp dir's $HOME (it does not exist).
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            common::BIN,
            "list",
            "subsystems",
        ])
        .env("VDS_HOME", "")
        .env("HOME", adm.dir.path())
        .env_remove("XDG_STATE_HOME")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/.local/state/vds", adm.dir.path().display())),
        "{stderr}"
    );
    let out = common::run_bare(adm.dir.path(), &["--store", "", "list", "subsystems"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn a_redirect_is_logged_and_the_failing_portal_named() {
    let closed = free_port();
    let to = format!("127.0.0.1:{closed}");
    let redirecting = ScriptedTarget::redirecting(&to);
    let adm = Adm::new();
    let out = adm
        .run(&["-v", "discover", &redirecting.portal])
        .fails_logged(4);
    assert!(out.stderr.contains("login redirected"), "{out:?}");
    let last = out.stderr.lines().last().unwrap_or("");
    assert!(last.contains(&format!("redirected to {to}")), "{out:?}");
    let j = adm
        .run(&[
            "--json",
            "subsystem",
            "add",
            "r",
            "--portal",
            &redirecting.portal,
        ])
        .ok()
        .json();
    let detail = j["subsystem"]["detail"].as_str().unwrap_or("");
    assert!(detail.contains(&format!("redirected to {to}")), "{j}");
}

#[test]
fn a_cache_that_is_not_a_file_is_damage_reenumerate_repairs() {
    let adm = Adm::new();
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    let cache = adm.store().join("cache.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", cache.display()));
    }
    std::fs::create_dir(&cache).expect("mkdir");
    let out =
        adm.run(&["list", "subsystems"])
            .fails(6, "VDS_E_PROVIDER_CACHE_CORRUPT", "0x8004241F");
    assert!(out.stderr.contains("directory"), "{out:?}");
    let j = adm.run(&["--json", "reenumerate"]).ok().json();
    let kept = j["corrupt_cache_kept_at"].as_str().expect("kept");
    assert!(Path::new(kept).is_dir(), "{kept}");
    adm.run(&["refresh"]).ok();
    assert_eq!(
        adm.run(&["--json", "list", "subsystems"])
            .ok()
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

/// Every file under `dir` with its size and modification time.
fn sizes_and_times(dir: &Path) -> Vec<(PathBuf, Option<(u64, i64)>)> {
    files_of(dir)
        .into_iter()
        .map(|f| {
            let seen = std::fs::metadata(&f).map(|m| (m.len(), m.mtime())).ok();
            (f, seen)
        })
        .collect()
}

#[test]
fn an_account_that_may_only_read_can_query() {
    let adm = Adm::new();
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    adm.run(&["list", "tportals", "--subsystem", "sim-array-1"])
        .ok();
    let store = adm.store();
    // The monitoring group (here "nogroup") may read the store; nobody may write it but root.
    chmod(adm.dir.path(), 0o755);
    for f in files_of(&store) {
        let mode = if f.is_dir() { 0o750 } else { 0o640 };
        chmod(&f, mode);
        std::os::unix::fs::lchown(&f, Some(0), Some(NOBODY)).expect("chown");
    }
    let before = sizes_and_times(&store);
    // Run as uid 1 (daemon), in group nogroup: neither the owner nor root.
    for args in [
        &["list", "subsystems"][..],
        &["list", "providers"],
        &["list", "tportals", "--subsystem", "sim-array-1"],
        &[
            "--json",
            "detail",
            "target",
            "--subsystem",
            "sim-array-1",
            "iqn.2026-11.org.vds.sim:array1.db",
        ],
    ] {
        adm.run_as(1, 1, &[NOBODY], args).ok();
    }
    let after = sizes_and_times(&store);
    assert_eq!(before, after, "a query wrote to the store");
    // A change is refused, clearly.
    let out = adm.run_as(
        1,
        1,
        &[NOBODY],
        &[
            "offline",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "192.0.2.10:3260",
        ],
    );
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn a_read_only_log_left_by_a_query_does_not_block_later_writes() {
    let adm = Adm::new();
    chmod(adm.dir.path(), 0o755);
    let store = adm.store();
    std::fs::create_dir(&store).expect("store");
    chmod(&store, 0o700);
    chown_r(&store, NOBODY, NOBODY);
    let as_owner = |args: &[&str]| adm.run_as(NOBODY, NOBODY, &[], args);
    as_owner(&["provider", "add", "lab", "--kind", "sim"]).ok();
    let cache = store.join("cache.sqlite");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", cache.display()));
    }
    chmod(&cache, 0o400);
    as_owner(&["list", "tportals", "--subsystem", "sim-array-1"]).ok();
    chmod(&cache, 0o600);
    as_owner(&[
        "offline",
        "tportal",
        "--subsystem",
        "sim-array-1",
        "192.0.2.10:3260",
    ])
    .ok();
    let rows = as_owner(&["--json", "list", "tportals", "--subsystem", "sim-array-1"])
        .ok()
        .json();
    assert_eq!(rows[0]["status"], "OFFLINE");
}

#[test]
fn a_failed_add_leaves_nothing_and_a_killed_one_leaves_nothing_for_long() {
    let t = tgtd();
    let adm = Adm::new();
    let secret = adm.file("s", "a-secret-for-the-add\n");
    let secret = secret.to_str().expect("p").to_string();
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    // A disk that fills up while the new subsystem is saved: files may not grow past 4096 bytes,
    // room for the configuration and the secret but not for one page of the cache's log. The add
    // fails after the registration was written, and takes itself back.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize=4096 {} --store {} subsystem add full --portal {} \
             --chap-user u --chap-secret-file {secret}",
            common::BIN,
            adm.store().display(),
            t.portals()[0]
        ))
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the registration was taken back"),
        "{stderr}"
    );
    let config = std::fs::read_to_string(adm.store().join("vds.toml")).expect("config");
    assert!(!config.contains("name = \"full\""), "{config}");
    assert_eq!(secret_names(&adm), Vec::<String>::new());
    // Killed at random moments: whatever it left, the next change removes.
    for i in 0..20u64 {
        let mut child = adm
            .command(&[
                "subsystem",
                "add",
                &format!("k{i}"),
                "--portal",
                &t.portals()[0],
                "--chap-user",
                "u",
                "--chap-secret-file",
                &secret,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(500 + i * 997 % 20_000));
        child.kill().ok();
        child.wait().expect("reap");
    }
    adm.run(&[
        "subsystem",
        "add",
        "last",
        "--portal",
        &t.portals()[0],
        "--no-refresh",
    ])
    .ok();
    let config = std::fs::read_to_string(adm.store().join("vds.toml")).expect("config");
    for name in secret_names(&adm) {
        assert!(
            config.contains(&format!("\"{name}\"")),
            "secret file {name} is named by no subsystem: {config}"
        );
    }
    t.stop().expect("stop tgtd");
}

#[test]
fn half_a_credential_in_the_configuration_is_refused_with_its_line() {
    let adm = Adm::new();
    std::fs::create_dir_all(adm.store()).expect("store");
    chmod(&adm.store(), 0o700);
    std::fs::write(
        adm.store().join("vds.toml"),
        "version = 2\n\n[[provider]]\nname = \"vds-sendtargets\"\nkind = \"sendtargets\"\n\n\
         [[subsystem]]\nname = \"lab\"\nprovider = \"vds-sendtargets\"\nportals = [\"127.0.0.1\"]\n\
         chap_user = \"u\"\n",
    )
    .expect("config");
    let out = adm.run(&["refresh"]).fails(1, "E_INVALIDARG", "0x80070057");
    assert!(
        out.stderr.contains("vds.toml:7") && out.stderr.contains("chap_secret"),
        "{out:?}"
    );
}

#[test]
fn names_compare_as_dns_and_rfc_3722_say() {
    let adm = Adm::new();
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    let d = adm
        .run(&[
            "--json",
            "detail",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "ARRAY1.Example.NET:3260",
        ])
        .ok()
        .json();
    assert_eq!(d["address"], "array1.example.net");
    let d = adm
        .run(&[
            "--json",
            "detail",
            "target",
            "--subsystem",
            "sim-array-1",
            "IQN.2026-11.ORG.VDS.SIM:ARRAY1.DB",
        ])
        .ok()
        .json();
    assert_eq!(d["iscsi_name"], "iqn.2026-11.org.vds.sim:array1.db");
    adm.run(&[
        "subsystem",
        "add",
        "x",
        "--portal",
        "localhost:3260",
        "--portal",
        "LOCALHOST:3260",
        "--no-refresh",
    ])
    .fails(2, "E_INVALIDARG", "0x80070057");
}

#[test]
fn an_add_contacts_each_portal_once() {
    let target = ScriptedTarget::start(b"TargetPortalGroupTag=1\0".to_vec(), Vec::new());
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "once", "--portal", &target.portal])
        .ok();
    assert_eq!(target.connections(), 1);
}

#[test]
fn a_query_never_makes_a_store() {
    let adm = Adm::new();
    let mistyped = adm.dir.path().join("no-such-store");
    let out = common::run_bare(
        adm.dir.path(),
        &[
            "--store",
            mistyped.to_str().expect("p"),
            "list",
            "subsystems",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("there is no store"), "{out:?}");
    assert!(!mistyped.exists());
}

#[test]
fn subsystem_set_changes_portals_and_secrets_in_place() {
    let t = tgtd();
    t.set_discovery_chap("disc", "the-new-secret-2026")
        .expect("chap");
    let silent = SilentArray::start();
    let adm = Adm::new();
    let old = adm.file("old", "the-old-secret-2026\n");
    let new = adm.file("new", "the-new-secret-2026\n");
    adm.run(&[
        "subsystem",
        "add",
        "lab",
        "--portal",
        &silent.portal,
        "--chap-user",
        "disc",
        "--chap-secret-file",
        old.to_str().expect("p"),
        "--no-refresh",
    ])
    .ok();
    let id_before = adm.run(&["--json", "list", "subsystems"]).ok().json()[0]["name"].clone();
    let j = adm
        .run(&[
            "--json",
            "subsystem",
            "set",
            "lab",
            "--portal",
            &t.portals()[0],
            "--chap-user",
            "disc",
            "--chap-secret-file",
            new.to_str().expect("p"),
        ])
        .ok()
        .json();
    assert_eq!(j["subsystem"]["status"], "ONLINE", "{j}");
    assert_eq!(j["portals"][0], t.portals()[0]);
    // One secret file, holding the new secret; the old one is gone.
    let names = secret_names(&adm);
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read(adm.store().join("secrets").join(&names[0])).expect("secret"),
        b"the-new-secret-2026"
    );
    let rows = adm.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(rows[0]["name"], id_before);
    assert_eq!(rows[0]["status"], "ONLINE");
    // Without CHAP, the target refuses the login: the subsystem is recorded FAILED.
    let j = adm
        .run(&["--json", "subsystem", "set", "lab", "--no-chap"])
        .ok()
        .json();
    assert_eq!(j["subsystem"]["status"], "FAILED", "{j}");
    assert!(secret_names(&adm).is_empty());
    adm.run(&["subsystem", "set", "nope", "--no-chap"]).fails(
        3,
        "VDS_E_OBJECT_NOT_FOUND",
        "0x80042405",
    );
    t.stop().expect("stop tgtd");
}

#[test]
fn one_manual_page_per_command_in_one_section() {
    let adm = Adm::new();
    let dir = adm.dir.path().join("man");
    adm.run(&["man", "--out-dir", dir.to_str().expect("p")])
        .ok();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("pages")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "vdsadm.8",
        "vdsadm-list-tportals.8",
        "vdsadm-subsystem-add.8",
        "vdsadm-online-tportal.8",
        "vdsadm-provider-add.8",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} missing: {pages:?}");
    }
    assert!(pages.iter().all(|p| p.ends_with(".8")), "{pages:?}");
    let add = std::fs::read_to_string(dir.join("vdsadm-subsystem-add.8")).expect("page");
    assert!(
        add.contains(".TH vdsadm\\-subsystem\\-add 8")
            || add.contains(".TH vdsadm-subsystem-add 8"),
        "{add}"
    );
    assert!(add.contains("chap\\-secret\\-file"), "options are listed");
    // Every page the main page links to exists.
    let main = std::fs::read_to_string(dir.join("vdsadm.8")).expect("page");
    for line in main.lines().filter(|l| l.contains("(8)")) {
        if let Some(name) = line.split('(').next().map(|n| n.trim().replace("\\-", "-")) {
            let name = name
                .trim_start_matches("\\fB")
                .trim_end_matches("\\fR")
                .to_string();
            if name.starts_with("vdsadm") {
                assert!(
                    dir.join(format!("{name}.8")).exists(),
                    "{name} is linked but missing"
                );
            }
        }
    }
}
