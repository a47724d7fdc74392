//! The configuration file and the secrets, against real files.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use vds_model::Hresult;
use vds_store::{
    CONFIG_VERSION, Config, ProviderConfig, SecretProblem, Store, StoreError, SubsystemConfig,
    V1_PROVIDER_KIND, V1_PROVIDER_NAME,
};

/// The provider most tests register subsystems with.
const P: &str = "st1";

fn provider() -> ProviderConfig {
    ProviderConfig::new(P, "sendtargets")
}

fn full(name: &str) -> SubsystemConfig {
    SubsystemConfig {
        name: name.into(),
        provider: P.into(),
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

/// Registers `subsystem`, defining its provider (kind `sendtargets`) first when it is not.
fn add(store: &Store, subsystem: SubsystemConfig) -> Result<(), StoreError> {
    store.update_config(|c| {
        if c.provider(&subsystem.provider).is_none() {
            c.providers
                .push(ProviderConfig::new(&subsystem.provider, "sendtargets"));
        }
        c.subsystems.push(subsystem);
        Ok(())
    })
}

#[test]
fn config_round_trip_and_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(*store.config().unwrap(), Config::default());
    let mut tgt = ProviderConfig::new("tgt1", "tgt");
    tgt.settings.insert(
        "socket".into(),
        toml::Value::String("/run/tgtd/socket.0".into()),
    );
    tgt.settings
        .insert("portal_port".into(), toml::Value::Integer(3261));
    store
        .update_config(|c| {
            c.providers.push(provider());
            c.providers.push(tgt.clone());
            c.subsystems.push(full("array1"));
            c.subsystems.push(SubsystemConfig::new("array 2", P));
            // The same name under another provider is another subsystem.
            c.subsystems.push(SubsystemConfig::new("array 2", "tgt1"));
            Ok(())
        })
        .unwrap();

    let config = Store::open(dir.path()).unwrap().config().unwrap();
    assert_eq!(
        *config,
        Config {
            providers: vec![provider(), tgt.clone()],
            subsystems: vec![
                full("array1"),
                SubsystemConfig::new("array 2", P),
                SubsystemConfig::new("array 2", "tgt1"),
            ],
            read_version: CONFIG_VERSION,
        }
    );
    assert_eq!(config.provider("tgt1"), Some(&tgt));
    assert_eq!(config.subsystem(P, "array1"), Some(&full("array1")));
    assert_eq!(
        config.subsystem("tgt1", "array 2"),
        Some(&SubsystemConfig::new("array 2", "tgt1"))
    );
    assert_eq!(config.subsystem("tgt1", "array1"), None);
    assert_eq!(
        config
            .subsystems_of(P)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["array1", "array 2"]
    );
    assert_eq!(config.subsystems_of("nobody").count(), 0);

    let text = fs::read_to_string(dir.path().join("vds.toml")).unwrap();
    assert!(text.contains("version = 2"), "{text}");
    assert!(text.contains("[[provider]]"), "{text}");
    assert!(text.contains("[[subsystem]]"), "{text}");
    assert!(text.contains("name = \"array1\""), "{text}");
    assert!(text.contains("socket = \"/run/tgtd/socket.0\""), "{text}");
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
fn changes_breaking_a_rule_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    add(&store, full("a")).unwrap();
    let path = dir.path().join("vds.toml");
    let before = fs::read(&path).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(fs::read(&path).unwrap(), before, "{what}: the file changed");
    };

    // A subsystem twice in one provider.
    let e = add(&store, full("a")).unwrap_err();
    assert!(
        matches!(&e, StoreError::NameExists { what: "subsystem", name } if name == "a"),
        "{e:?}"
    );
    assert_eq!(e.hresult(), Hresult::VDS_E_NAME_NOT_UNIQUE);
    unchanged("duplicate subsystem");

    // A provider twice.
    let e = store
        .update_config(|c| {
            c.providers.push(provider());
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NameExists { what: "provider", name } if name == P),
        "{e:?}"
    );
    unchanged("duplicate provider");

    // A subsystem of a provider that is not defined.
    let e = store
        .update_config(|c| {
            c.subsystems.push(SubsystemConfig::new("b", "nobody"));
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound { what: "provider", name } if name == "nobody"),
        "{e:?}"
    );
    assert_eq!(e.hresult(), Hresult::VDS_E_OBJECT_NOT_FOUND);
    unchanged("undefined provider");

    // Removing a provider that still has subsystems leaves them without one: refused too.
    let e = store
        .update_config(|c| {
            c.providers.clear();
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::NotFound {
                what: "provider",
                ..
            }
        ),
        "{e:?}"
    );
    unchanged("provider removed under its subsystems");

    // Bad names.
    for bad in ["", "tab\there", &"x".repeat(65)] {
        let e = add(&store, SubsystemConfig::new(bad, P)).unwrap_err();
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
        let e = add(&store, SubsystemConfig::new("ok", bad)).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::InvalidName {
                    what: "provider",
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
    }
    let e = store
        .update_config(|c| {
            c.providers.push(ProviderConfig::new("p2", "Send Targets"));
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::InvalidName {
                what: "provider kind",
                ..
            }
        ),
        "{e:?}"
    );
    let e = add(
        &store,
        SubsystemConfig {
            chap_secret: Some("../../etc/shadow".into()),
            ..SubsystemConfig::new("b", P)
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidName { what: "secret", .. }),
        "{e:?}"
    );
    let e = add(
        &store,
        SubsystemConfig {
            portals: vec!["192.0.2.1\n".into()],
            ..SubsystemConfig::new("b", P)
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidName { what: "portal", .. }),
        "{e:?}"
    );
    unchanged("bad names");

    // An error of the edit itself is passed on, and nothing is written either.
    let e = store
        .update_config(|c| -> Result<(), StoreError> {
            c.subsystems.clear();
            Err(StoreError::Busy {
                name: "mine".into(),
            })
        })
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Busy { name } if name == "mine"),
        "{e:?}"
    );
    unchanged("failed edit");

    // remove_subsystem finds by provider and name.
    let e = store.remove_subsystem(P, "zzz").unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound { what: "subsystem", name } if name == "zzz"),
        "{e:?}"
    );
    assert_eq!(e.hresult(), Hresult::VDS_E_OBJECT_NOT_FOUND);
    assert!(matches!(
        store.remove_subsystem("other", "a"),
        Err(StoreError::NotFound {
            what: "subsystem",
            ..
        })
    ));
    unchanged("nothing removed");
    assert_eq!(store.remove_subsystem(P, "a").unwrap(), full("a"));
    assert_eq!(
        *store.config().unwrap(),
        Config {
            providers: vec![provider()],
            subsystems: Vec::new(),
            read_version: CONFIG_VERSION,
        }
    );
}

#[test]
fn a_secret_file_belongs_to_one_subsystem_and_one_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    add(&store, full("a")).unwrap();
    let path = dir.path().join("vds.toml");
    let before = fs::read(&path).unwrap();

    // Another subsystem (here of another provider) naming a's CHAP secret, as either secret.
    for (chap, mutual) in [(Some("a-chap"), None), (None, Some("a-chap"))] {
        let e = add(
            &store,
            SubsystemConfig {
                chap_user: chap.map(|_| "u".into()),
                chap_secret: chap.map(String::from),
                mutual_user: mutual.map(|_| "m".into()),
                mutual_secret: mutual.map(String::from),
                ..SubsystemConfig::new("b", "other")
            },
        )
        .unwrap_err();
        match &e {
            StoreError::SecretShared {
                secret,
                first,
                second,
            } => {
                assert_eq!(
                    (secret.as_str(), first.as_str(), second.as_str()),
                    ("a-chap", "a", "b")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.hresult(), Hresult::E_INVALIDARG);
        assert!(e.to_string().contains("\"a-chap\""), "{e}");
    }
    // One subsystem using one secret for both directions.
    let e = add(
        &store,
        SubsystemConfig {
            chap_user: Some("u".into()),
            chap_secret: Some("same".into()),
            mutual_user: Some("m".into()),
            mutual_secret: Some("same".into()),
            ..SubsystemConfig::new("c", P)
        },
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::SecretShared { .. }), "{e:?}");
    assert_eq!(fs::read(&path).unwrap(), before, "nothing written");

    // A file edited by hand that shares a secret names the line of the second subsystem.
    let mut text = String::from_utf8(before).unwrap();
    text.push_str(
        "\n[[subsystem]]\nname = \"d\"\nprovider = \"st1\"\nchap_user = \"u\"\nchap_secret = \"a-mutual\"\n",
    );
    fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l == "name = \"d\"").unwrap(); // 1-based: the header
    match store.config().unwrap_err() {
        StoreError::Config {
            line: l, message, ..
        } => {
            assert!((line..=line + 1).contains(&l), "{l} vs {line}: {message}");
            assert!(message.contains("\"a-mutual\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broken_file_is_an_error_with_its_line_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    add(&store, full("a")).unwrap();
    let path = dir.path().join("vds.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\n[[subsystem]]\nname = \"b\nprovider = \"st1\"\n");
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
        add(&store, full("c")),
        Err(StoreError::Config { .. })
    ));
    assert!(matches!(
        store.remove_subsystem(P, "a"),
        Err(StoreError::Config { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    // Not UTF-8: line 1, and kept too.
    fs::write(&path, b"version = 2\n\xff\xfe\n").unwrap();
    assert!(matches!(
        store.config(),
        Err(StoreError::Config { line: 1, .. })
    ));
    // A newer format is refused, not overwritten.
    fs::write(&path, "version = 3\n").unwrap();
    assert!(matches!(
        add(&store, full("c")),
        Err(StoreError::Config { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "version = 3\n");
}

#[test]
fn hand_edits_are_read_and_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let path = dir.path().join("vds.toml");
    // Written by hand, without a version, in the shape of version 1 (the provider kind only).
    let hand = "# mine\n[[subsystem]]\nname = \"hand\"\nprovider = \"sendtargets\"\nportals = [\"192.0.2.1\"]\n";
    fs::write(&path, hand).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let config = store.config().unwrap();
    assert_eq!(config.read_version, 1);
    assert_eq!(
        config.providers,
        [ProviderConfig::new(V1_PROVIDER_NAME, V1_PROVIDER_KIND)]
    );
    assert_eq!(
        config.subsystems,
        [SubsystemConfig {
            portals: vec!["192.0.2.1".into()],
            ..SubsystemConfig::new("hand", V1_PROVIDER_NAME)
        }]
    );

    add(&store, full("more")).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = store.config().unwrap();
    assert_eq!(config.read_version, CONFIG_VERSION);
    assert_eq!(config.subsystems.len(), 2);
    assert!(config.subsystem(V1_PROVIDER_NAME, "hand").is_some());
    assert!(config.subsystem(P, "more").is_some());
    // The hand-written original is kept aside, as it was, with its mode.
    let aside = dir.path().join("vds.toml.v1");
    assert_eq!(fs::read_to_string(&aside).unwrap(), hand);
    assert_eq!(
        fs::metadata(&aside).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A hand-written file with providers and no version is read as the current format.
    fs::write(
        &path,
        "[[provider]]\nname = \"x\"\nkind = \"sim\"\narray = \"demo\"\n\n[[subsystem]]\nname = \"s\"\nprovider = \"x\"\n",
    )
    .unwrap();
    let config = store.config().unwrap();
    assert_eq!(config.read_version, CONFIG_VERSION);
    assert_eq!(
        config.provider("x").unwrap().settings.get("array"),
        Some(&toml::Value::String("demo".into()))
    );
    assert!(config.subsystem("x", "s").is_some());
    add(&store, SubsystemConfig::new("t", "x")).unwrap();
    assert_eq!(
        fs::read_to_string(&aside).unwrap(),
        hand,
        "the version 1 copy is made once"
    );
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
                    // Each thread has its own provider, defined by its first change.
                    add(
                        store,
                        SubsystemConfig::new(format!("t{t}-{i}"), format!("p{t}")),
                    )
                    .unwrap();
                }
            });
        }
    });
    let config = store.config().unwrap();
    assert_eq!(config.providers.len(), 4);
    assert_eq!(config.subsystems.len(), 80);
    for t in 0..4 {
        let names: Vec<String> = config
            .subsystems_of(&format!("p{t}"))
            .map(|s| s.name.clone())
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("t{t}-{i}")).collect();
        assert_eq!(names, expected, "every change landed, in its order");
    }
}

#[test]
fn secrets_are_private_and_never_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let secret = b"s3cr3t-chap-bytes!";
    store.put_secret("array1-chap", secret).unwrap();
    add(&store, full("array1")).unwrap();

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
    assert_eq!(e.hresult(), Hresult::from_code(0x8007_0002));
    assert!(matches!(
        store.remove_secret("b"),
        Err(StoreError::Secret {
            problem: SecretProblem::Missing,
            ..
        })
    ));
    // The longest secret is stored; one byte more is refused.
    let longest = vec![b'k'; vds_store::MAX_SECRET_LEN];
    store.put_secret("long", &longest).unwrap();
    assert_eq!(store.read_secret("long").unwrap().expose(), &longest[..]);
    assert!(matches!(
        store.put_secret("long", &[b'k'; vds_store::MAX_SECRET_LEN + 1]),
        Err(StoreError::Secret {
            problem: SecretProblem::BadLength { .. },
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
    let big = sdir.join("big");
    fs::write(&big, vec![b'x'; vds_store::MAX_SECRET_LEN + 1]).unwrap();
    fs::set_permissions(&big, fs::Permissions::from_mode(0o600)).unwrap();
    match store.read_secret("big") {
        Err(StoreError::Secret {
            problem: SecretProblem::BadLength { len },
            ..
        }) => assert!(len > vds_store::MAX_SECRET_LEN as u64, "{len}"),
        other => panic!("{other:?}"),
    }
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
    // The refused files are neither listed as missing nor hidden: they are there, and named.
    assert_eq!(
        store.secret_names().unwrap(),
        ["big", "dir", "empty", "link", "real"]
    );
}

/// A store keeps the last configuration it parsed, and parses again only a text that differs: a
/// hand edit (even one that keeps the file's length and time) is seen by the next read, and a
/// file that stops parsing is reported, not answered from the copy.
#[test]
fn every_read_sees_the_file_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    add(&store, full("array-a")).unwrap();
    assert_eq!(store.config().unwrap().subsystems[0].name, "array-a");
    assert_eq!(store.config().unwrap().subsystems[0].name, "array-a");
    let path = store.config_path();
    let text = fs::read_to_string(&path).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    // Same length, same modification time, another name.
    fs::write(&path, text.replace("array-a", "array-b")).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(store.config().unwrap().subsystems[0].name, "array-b");
    fs::write(&path, text.replace("[[subsystem]]", "[[subsystem")).unwrap();
    assert!(matches!(store.config(), Err(StoreError::Config { .. })));
    fs::write(&path, &text).unwrap();
    assert_eq!(store.config().unwrap().subsystems[0].name, "array-a");
}
