//! The store as a whole: opening an existing store, and the providers' state files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vds_model::Hresult;
use vds_store::{MAX_STATE_LEN, Selection, Store, StoreError};

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn open_existing_never_creates_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing/here");
    match Store::open_existing(&missing) {
        Err(e @ StoreError::NoStore { .. }) => {
            let StoreError::NoStore { path } = &e else {
                unreachable!()
            };
            assert_eq!(path, &missing);
            assert!(e.to_string().contains("nothing/here"), "{e}");
            assert_eq!(e.hresult(), Hresult::from_code(0x8007_0003));
        }
        other => panic!("{other:?}"),
    }
    assert!(names_in(dir.path()).is_empty(), "nothing was created");

    // A file where the directory should be is an error too, and is left alone.
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Store::open_existing(&file),
        Err(StoreError::Io { .. })
    ));
    assert_eq!(fs::read(&file).unwrap(), b"x");

    // An existing directory opens, and opening reads and writes nothing.
    let root = dir.path().join("store");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
    let store = Store::open_existing(&root).unwrap();
    assert_eq!(store.root(), root);
    assert!(names_in(&root).is_empty());
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o750,
        "an existing directory keeps its mode"
    );
    // It is an ordinary store from then on.
    assert!(
        store
            .load("p", Selection::All)
            .unwrap()
            .subsystems
            .is_empty()
    );
    assert!(root.join("cache.sqlite").exists());
}

#[test]
fn open_creates_the_root_private() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/store");
    let store = Store::open(&root).unwrap();
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        names_in(&root).is_empty(),
        "opening reads and writes nothing"
    );
    assert_eq!(store.config_path(), root.join("vds.toml"));
    assert_eq!(store.cache_path(), root.join("cache.sqlite"));
    assert_eq!(store.secrets_dir(), root.join("secrets"));
    // Opening it again as an existing store works.
    Store::open_existing(&root).unwrap();
}

#[test]
fn a_state_file_round_trips_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let state = store.state_file("sim1");
    assert_eq!(state.read().unwrap(), None, "absent at first");
    assert!(
        !dir.path().join("state").exists(),
        "reading creates nothing"
    );

    state.write(b"first").unwrap();
    assert_eq!(state.read().unwrap().as_deref(), Some(&b"first"[..]));
    // Replacing, with bytes of any kind, and empty.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    state.write(&bytes).unwrap();
    assert_eq!(state.read().unwrap(), Some(bytes));
    state.write(b"").unwrap();
    assert_eq!(state.read().unwrap(), Some(Vec::new()));

    assert_eq!(
        fs::metadata(state.path()).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(state.path().starts_with(dir.path().join("state")));

    // Each provider has its own file, whatever its name; the same name is the same file.
    let other = store.state_file("sim2");
    assert_ne!(other.path(), state.path());
    assert_eq!(other.read().unwrap(), None);
    let odd = store.state_file("../../etc/passwd \u{1F600}");
    assert!(odd.path().starts_with(dir.path().join("state")));
    odd.write(b"odd").unwrap();
    assert_eq!(
        Store::open(dir.path())
            .unwrap()
            .state_file("../../etc/passwd \u{1F600}")
            .read()
            .unwrap()
            .as_deref(),
        Some(&b"odd"[..])
    );
    assert_eq!(state.read().unwrap(), Some(Vec::new()));
}

#[test]
fn a_state_file_over_the_cap_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let state = store.state_file("sim1");
    state.write(b"x").unwrap();
    // Exactly the cap is read (a sparse file: no 64 MiB written).
    let f = fs::OpenOptions::new()
        .write(true)
        .open(state.path())
        .unwrap();
    f.set_len(MAX_STATE_LEN).unwrap();
    drop(f);
    assert_eq!(
        state.read().unwrap().map(|b| b.len() as u64),
        Some(MAX_STATE_LEN)
    );
    // One byte more is refused, naming the file.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(state.path())
        .unwrap();
    f.set_len(MAX_STATE_LEN + 1).unwrap();
    drop(f);
    match state.read() {
        Err(e @ StoreError::Io { .. }) => {
            let StoreError::Io { path, .. } = &e else {
                unreachable!()
            };
            assert_eq!(path, state.path());
            assert!(
                e.to_string().contains(&state.path().display().to_string()),
                "{e}"
            );
        }
        other => panic!("{:?}", other.map(|b| b.map(|b| b.len()))),
    }
    // Writing replaces it whole, and it reads again.
    state.write(b"small").unwrap();
    assert_eq!(state.read().unwrap().as_deref(), Some(&b"small"[..]));
}

#[test]
fn the_state_lock_serializes_read_modify_write() {
    const PER_THREAD: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let increment = |state: &vds_store::StateFile| {
        let _lock = state.lock().unwrap();
        let n = match state.read().unwrap() {
            None => 0,
            Some(bytes) => String::from_utf8(bytes).unwrap().parse::<u64>().unwrap(),
        };
        // Widen the window between the read and the write: without the lock, updates get lost.
        std::thread::yield_now();
        state.write((n + 1).to_string().as_bytes()).unwrap();
    };
    std::thread::scope(|s| {
        for _ in 0..2 {
            // Each thread opens its own store and state file, as another process would.
            let root = dir.path();
            s.spawn(move || {
                let store = Store::open(root).unwrap();
                let state = store.state_file("sim1");
                for _ in 0..PER_THREAD {
                    increment(&state);
                }
            });
        }
    });
    let total = store.state_file("sim1").read().unwrap().unwrap();
    assert_eq!(
        String::from_utf8(total).unwrap(),
        (2 * PER_THREAD).to_string(),
        "no update lost"
    );

    // The lock is one per provider: holding one provider's does not hold up another's.
    let held = store.state_file("sim1").lock().unwrap();
    let other = store.state_file("sim2").lock().unwrap();
    drop((held, other));
}
