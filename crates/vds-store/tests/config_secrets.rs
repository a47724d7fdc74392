//! The configuration file and the secrets, against real files.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use vds_model::Hresult;
use vds_store::{Config, SecretProblem, Store, StoreError, SubsystemConfig};

fn full(name: &str) -> SubsystemConfig {
    SubsystemConfig {
        name: name.into(),
        provider: "sendtargets".into(),
        portals: vec![
            "192.0.2.10".into(),
            "array.example.net:3261".into(),
            "[fe80::10%2]:3260".into(),
        ],
        initiator_name: Some("iqn.2026-11.org.vds:host".into()),
        chap_user: Some("host".into()),
        chap_secret: Some(format!("{name}-chap")),
        mutual_user: Some("array".into()),
        mutual_secret: Some(format!("{name}-mutual")),
    }
}

#[test]
fn config_round_trip_and_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.config().unwrap(), Config::default());
    store.add_subsystem(full("array1")).unwrap();
    store
        .add_subsystem(SubsystemConfig::new("array 2", "sendtargets"))
        .unwrap();

    let config = Store::open(dir.path()).unwrap().config().unwrap();
    assert_eq!(
        config,
        Config {
            subsystems: vec![
                full("array1"),
                SubsystemConfig::new("array 2", "sendtargets")
            ]
        }
    );
    let text = fs::read_to_string(dir.path().join("vds.toml")).unwrap();
    assert!(text.contains("version = 1"), "{text}");
    assert!(text.contains("[[subsystem]]"), "{text}");
    assert!(text.contains("name = \"array1\""), "{text}");
    assert!(text.contains("\"[fe80::10%2]:3260\""), "{text}");
    assert!(text.starts_with('#'), "explains itself: {text}");
    // Nothing but vds.toml and its lock is created by configuration calls.
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["vds.toml", "vds.toml.lock"]);
}

#[test]
fn add_refuses_duplicates_and_bad_names_remove_finds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_subsystem(full("a")).unwrap();
    let e = store.add_subsystem(full("a")).unwrap_err();
    assert!(
        matches!(&e, StoreError::NameExists { name } if name == "a"),
        "{e:?}"
    );
    assert_eq!(e.hresult(), Hresult::VDS_E_NAME_NOT_UNIQUE);

    for bad in ["", "tab\there", &"x".repeat(65)] {
        let e = store
            .add_subsystem(SubsystemConfig::new(bad, "sendtargets"))
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::InvalidName {
                    what: "subsystem",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.hresult(), Hresult::E_INVALIDARG);
    }
    let e = store
        .add_subsystem(SubsystemConfig {
            chap_secret: Some("../../etc/shadow".into()),
            ..SubsystemConfig::new("b", "sendtargets")
        })
        .unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidName { what: "secret", .. }),
        "{e:?}"
    );

    let e = store.remove_subsystem("zzz").unwrap_err();
    assert!(matches!(&e, StoreError::NotFound { name } if name == "zzz"));
    assert_eq!(e.hresult(), Hresult::VDS_E_OBJECT_NOT_FOUND);
    assert_eq!(store.remove_subsystem("a").unwrap(), full("a"));
    assert_eq!(store.config().unwrap(), Config::default());
}

#[test]
fn a_broken_file_is_an_error_with_its_line_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_subsystem(full("a")).unwrap();
    let path = dir.path().join("vds.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\n[[subsystem]]\nname = \"b\nprovider = \"sendtargets\"\n");
    fs::write(&path, &text).unwrap();
    let broken_line = text.lines().position(|l| l == "name = \"b").unwrap() + 1;

    let e = store.config().unwrap_err();
    match &e {
        StoreError::Config { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, broken_line, "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}:{broken_line}:", path.display()))
    );
    assert_eq!(e.hresult(), Hresult::E_INVALIDARG);
    // A write refuses to go on over it, and leaves it as it was.
    assert!(matches!(
        store.add_subsystem(full("c")),
        Err(StoreError::Config { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn hand_edits_are_read_and_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let path = dir.path().join("vds.toml");
    fs::write(
        &path,
        "# mine\n[[subsystem]]\nname = \"hand\"\nprovider = \"sendtargets\"\nportals = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(store.config().unwrap().subsystems[0].name, "hand");
    store.add_subsystem(full("more")).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(store.config().unwrap().subsystems.len(), 2);
}

#[test]
fn concurrent_adds_from_threads_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = &store;
            s.spawn(move || {
                for i in 0..20 {
                    store
                        .add_subsystem(SubsystemConfig::new(format!("t{t}-{i}"), "sendtargets"))
                        .unwrap();
                }
            });
        }
    });
    let config = store.config().unwrap();
    assert_eq!(config.subsystems.len(), 80);
    for t in 0..4 {
        for i in 0..20 {
            assert!(config.subsystem(&format!("t{t}-{i}")).is_some());
        }
    }
}

#[test]
fn secrets_are_private_and_never_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let secret = b"s3cr3t-chap-bytes!";
    store.put_secret("array1-chap", secret).unwrap();
    store.add_subsystem(full("array1")).unwrap();

    let sdir = dir.path().join("secrets");
    assert_eq!(
        fs::metadata(&sdir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let file = sdir.join("array1-chap");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read(&file).unwrap(), secret);

    let got = store.read_secret("array1-chap").unwrap();
    assert_eq!(got.expose(), secret);
    assert_eq!(format!("{got:?}"), "Secret(<redacted>)");

    let toml = fs::read(dir.path().join("vds.toml")).unwrap();
    assert!(!toml.windows(secret.len()).any(|w| w == secret));
    assert!(String::from_utf8_lossy(&toml).contains("chap_secret = \"array1-chap\""));

    // Replacing keeps the mode; listing skips nothing real.
    store
        .put_secret("array1-chap", b"another-secret-value")
        .unwrap();
    assert_eq!(
        store.read_secret("array1-chap").unwrap().expose(),
        b"another-secret-value"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    store.put_secret("b", b"x").unwrap();
    assert_eq!(store.secret_names().unwrap(), ["array1-chap", "b"]);

    store.remove_secret("b").unwrap();
    let e = store.read_secret("b").unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Secret {
                problem: SecretProblem::Missing,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        store.remove_secret("b"),
        Err(StoreError::Secret {
            problem: SecretProblem::Missing,
            ..
        })
    ));
}

#[test]
fn an_open_secret_file_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_secret("s", b"0123456789ab").unwrap();
    let file = dir.path().join("secrets/s");
    for mode in [0o640, 0o604, 0o660, 0o601, 0o610] {
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        let e = store.read_secret("s").unwrap_err();
        match &e {
            StoreError::Secret {
                problem: SecretProblem::TooOpen { mode: m },
                path,
                ..
            } => {
                assert_eq!(*m, mode);
                assert_eq!(path, &file);
            }
            other => panic!("{mode:o}: {other:?}"),
        }
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(e.hresult(), Hresult::E_ACCESSDENIED);
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(store.read_secret("s").unwrap().expose(), b"0123456789ab");
}

#[test]
fn odd_secret_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_secret("real", b"0123456789ab").unwrap();
    let sdir = dir.path().join("secrets");
    std::os::unix::fs::symlink(sdir.join("real"), sdir.join("link")).unwrap();
    assert!(matches!(
        store.read_secret("link"),
        Err(StoreError::Secret {
            problem: SecretProblem::NotAFile,
            ..
        })
    ));
    fs::create_dir(sdir.join("dir")).unwrap();
    fs::set_permissions(sdir.join("dir"), fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        store.read_secret("dir"),
        Err(StoreError::Secret {
            problem: SecretProblem::NotAFile,
            ..
        })
    ));
    let empty = sdir.join("empty");
    fs::write(&empty, b"").unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        store.read_secret("empty"),
        Err(StoreError::Secret {
            problem: SecretProblem::BadLength { len: 0 },
            ..
        })
    ));
    assert!(matches!(
        store.put_secret("e", b""),
        Err(StoreError::Secret {
            problem: SecretProblem::BadLength { len: 0 },
            ..
        })
    ));
    assert!(matches!(
        store.put_secret("../x", b"abc"),
        Err(StoreError::InvalidName { what: "secret", .. })
    ));
    assert!(matches!(
        store.read_secret("../real"),
        Err(StoreError::InvalidName { what: "secret", .. })
    ));
}
