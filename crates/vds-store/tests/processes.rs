//! The store between processes: concurrent configuration writers, subsystem and provider locks
//! held by another process (and released by its death), and a cache that survives SIGKILL at any
//! moment.
//!
//! The other processes are this test executable run again with `VDS_STORE_CHILD` set: see
//! [`child_process_entry`], which does nothing in a normal test run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use vds_model::{
    CacheHealth, Hresult, IscsiPortalStatus, PortalSnapshot, SubSystemSnapshot, SubSystemStatus,
    VdsIpAddress,
};
use vds_store::{ProviderConfig, Selection, Store, StoreError, SubsystemConfig};

const CHILD: &str = "VDS_STORE_CHILD";
const ROOT: &str = "VDS_STORE_CHILD_ROOT";
const ARG: &str = "VDS_STORE_CHILD_ARG";

/// The provider every test here works on.
const P: &str = "lab";

/// A helper process, killed (by its pid, SIGKILL) if the test ends before it does.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Helper {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Helper {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Runs this test executable again as a helper process in `mode`.
fn spawn_child(mode: &str, root: &Path, arg: &str) -> Helper {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env(ROOT, root)
        .env(ARG, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Helper(child)
}

/// The helper side. Not a test of its own: without `VDS_STORE_CHILD` it returns at once.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    if mode == "default-root" {
        // libtest has already printed "test child_process_entry ... " without a newline.
        println!("\nROOT={}", Store::default_root().display());
        return;
    }
    let root = PathBuf::from(std::env::var_os(ROOT).unwrap());
    let arg = std::env::var(ARG).unwrap_or_default();
    let store = Store::open(&root).unwrap();
    match mode.as_str() {
        "add" => {
            for i in 0..20 {
                add(&store, &format!("{arg}-{i}"));
            }
        }
        "hold-subsystem-lock" => {
            let _lock = store.lock_subsystem(P, &arg).unwrap();
            std::fs::write(root.join("child-ready"), b"").unwrap();
            // Held until killed; the deadline only bounds a forgotten child.
            std::thread::sleep(Duration::from_secs(60));
        }
        "hold-provider-lock" => {
            let _lock = store.lock_provider(&arg).unwrap();
            std::fs::write(root.join("child-ready"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "save-loop" => {
            let (a, b) = (content(false), content(true));
            std::fs::write(root.join("child-ready"), b"").unwrap();
            for i in 0.. {
                let next = if i % 2 == 0 { &b } else { &a };
                store.save(P, next, CacheHealth::Good).unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// Registers subsystem `name` with provider [`P`] (defined by the first change that needs it).
fn add(store: &Store, name: &str) {
    store
        .update_config(|c| {
            if c.provider(P).is_none() {
                c.providers.push(ProviderConfig::new(P, "sendtargets"));
            }
            c.subsystems.push(SubsystemConfig::new(name, P));
            Ok(())
        })
        .unwrap();
}

fn wait_for(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the child exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the child never got ready");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn two_processes_adding_20_subsystems_each_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<Helper> = ["left", "right"]
        .iter()
        .map(|side| spawn_child("add", dir.path(), side))
        .collect();
    // And this process races them too.
    let store = Store::open(dir.path()).unwrap();
    for i in 0..20 {
        add(&store, &format!("parent-{i}"));
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let config = store.config().unwrap();
    assert_eq!(config.providers, [ProviderConfig::new(P, "sendtargets")]);
    assert_eq!(config.subsystems.len(), 60);
    for side in ["left", "right", "parent"] {
        for i in 0..20 {
            assert!(
                config.subsystem(P, &format!("{side}-{i}")).is_some(),
                "{side}-{i}"
            );
        }
        // Each writer's own additions stay in its order.
        let mine: Vec<&str> = config
            .subsystems
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| n.starts_with(&format!("{side}-")))
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("{side}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

/// Asserts that `result` is `Busy` naming `name`, answered without waiting.
fn assert_busy_at_once<T: std::fmt::Debug>(
    what: &str,
    name: &str,
    call: impl FnOnce() -> Result<T, StoreError>,
) {
    let start = Instant::now();
    match call() {
        Err(e @ StoreError::Busy { .. }) => {
            assert!(
                matches!(&e, StoreError::Busy { name: n } if n == name),
                "{what}: {e:?}"
            );
            assert_eq!(e.hresult(), Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        other => panic!("{what}: expected Busy, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{what}: never waits, took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_subsystem_lock_held_by_another_process_is_busy_at_once_and_freed_by_its_death() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child("hold-subsystem-lock", dir.path(), "array1");
    wait_for(&dir.path().join("child-ready"), &mut child);

    let store = Store::open(dir.path()).unwrap();
    // That subsystem: busy, naming it.
    assert_busy_at_once("the same subsystem", "subsystem \"array1\"", || {
        store.lock_subsystem(P, "array1")
    });
    // Another subsystem of the same provider: free (twice, so the first was released on drop).
    drop(store.lock_subsystem(P, "array2").unwrap());
    let other = store.lock_subsystem(P, "array2").unwrap();
    drop(other);
    // The same key under another provider is another subsystem.
    drop(store.lock_subsystem("other-provider", "array1").unwrap());
    // A provider-wide operation waits for nobody: busy while one of its subsystems is locked.
    assert_busy_at_once("the provider", "provider \"lab\"", || {
        store.lock_provider(P)
    });
    drop(store.lock_provider("other-provider").unwrap());

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    // The kernel released the child's locks, and none of the refused calls left one behind here:
    // the provider's exclusive lock (which excludes every shared one) is free.
    let whole = store.lock_provider(P).unwrap();
    drop(whole);
    let lock = store.lock_subsystem(P, "array1").unwrap();
    // Held here now: the same call from another store is busy (locks are per open file, so a
    // second store of this process is as good as another process).
    let second = Store::open(dir.path()).unwrap();
    assert_busy_at_once("held by this process", "subsystem \"array1\"", || {
        second.lock_subsystem(P, "array1")
    });
    drop(lock);
    drop(second.lock_subsystem(P, "array1").unwrap());
}

#[test]
fn a_provider_lock_held_by_another_process_excludes_its_subsystems_until_its_death() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child("hold-provider-lock", dir.path(), P);
    wait_for(&dir.path().join("child-ready"), &mut child);

    let store = Store::open(dir.path()).unwrap();
    assert_busy_at_once("a subsystem", "provider \"lab\"", || {
        store.lock_subsystem(P, "array1")
    });
    assert_busy_at_once("the provider", "provider \"lab\"", || {
        store.lock_provider(P)
    });
    drop(store.lock_subsystem("other-provider", "array1").unwrap());

    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel drops a dead process's flocks as it closes its files; on this VM that has once
    // been seen to lag the child's reaping, so the lock must come free within a deadline rather
    // than at the very instant `wait` returns.
    let a = free_within(|| store.lock_subsystem(P, "array1"));
    let b = store.lock_subsystem(P, "array2").unwrap();
    drop((a, b));
    drop(store.lock_provider(P).unwrap());
}

/// `take` succeeds within 5 s (Busy until then); any other error, or Busy for longer, fails.
fn free_within<T>(take: impl Fn() -> Result<T, StoreError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match take() {
            Ok(t) => return t,
            Err(StoreError::Busy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the lock did not come free: {e}"),
        }
    }
}

/// Two distinct contents of the same 1,000 subsystems × 16 portals (15 in the second).
fn content(second: bool) -> Vec<SubSystemSnapshot> {
    (0..1_000)
        .map(|i| {
            let mut s = SubSystemSnapshot::new(format!("scale-{i}"), SubSystemStatus::Online);
            s.portals = (0..16u8)
                .map(|p| PortalSnapshot {
                    address: VdsIpAddress::Ipv4 {
                        addr: [198, 18, (i % 250) as u8, p].into(),
                        port: 3260,
                    },
                    status: IscsiPortalStatus::Online,
                })
                .collect();
            if second {
                s.friendly_name = format!("second content {i}");
                s.detail = Some("B".into());
                for p in &mut s.portals {
                    p.status = IscsiPortalStatus::Offline;
                }
                s.portals.truncate(15);
            }
            s
        })
        .collect()
}

#[test]
fn sigkill_at_50_random_moments_leaves_one_of_the_two_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (content(false), content(true));
    let save_time = {
        let store = Store::open(dir.path()).unwrap();
        store.save(P, &b, CacheHealth::Good).unwrap();
        let start = Instant::now();
        store.save(P, &a, CacheHealth::Good).unwrap();
        start.elapsed()
    };
    eprintln!("one save of 1,000 × 16 takes {save_time:?} here");
    let ready = dir.path().join("child-ready");
    let mut rng = rand::thread_rng();
    let (mut saw_a, mut saw_b) = (0, 0);
    for round in 0..50 {
        let _ = std::fs::remove_file(&ready);
        let mut child = spawn_child("save-loop", dir.path(), "");
        wait_for(&ready, &mut child);
        // Anywhere within the next few saves, transactions and checkpoints included.
        let max = save_time.as_micros() as u64 * 2 + 1_000;
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..max)));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = Store::open(dir.path()).unwrap();
        let state = store
            .load(P, Selection::All)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(state.health, CacheHealth::Good);
        let state = state.snapshots();
        if state == a {
            saw_a += 1;
        } else if state == b {
            saw_b += 1;
        } else {
            panic!("round {round}: the cache is neither content");
        }
        if round % 10 == 0 {
            store.verify_cache(false).unwrap();
        }
    }
    eprintln!("after 50 kills: {saw_a} × content A, {saw_b} × content B");
    assert!(
        saw_b > 0,
        "the child never completed a save: the test proved nothing"
    );
}

#[test]
fn queries_in_fresh_stores_see_whole_saves_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (content(false), content(true));
    Store::open(dir.path())
        .unwrap()
        .save(P, &a, CacheHealth::Good)
        .unwrap();
    // A query before the writer starts leaves the -shm file: the next ones map it read-only.
    let first = Store::open(dir.path())
        .unwrap()
        .load(P, Selection::One("scale-0"))
        .unwrap();
    assert_eq!(first.snapshots(), [a[0].clone()]);
    let ready = dir.path().join("child-ready");
    let mut child = spawn_child("save-loop", dir.path(), "");
    wait_for(&ready, &mut child);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut queries = 0;
    while Instant::now() < deadline || queries < 50 {
        // A new store per query, as each vdsadm process opens its own.
        let store = Store::open(dir.path()).unwrap();
        let i = queries % 1_000;
        let found = store
            .load(P, Selection::One(&format!("scale-{i}")))
            .unwrap_or_else(|e| panic!("query {queries}: {e}"));
        assert_eq!(found.health, CacheHealth::Good);
        let snaps = found.snapshots();
        assert_eq!(snaps.len(), 1, "every subsystem is in both contents");
        assert!(
            snaps[0] == a[i] || snaps[0] == b[i],
            "query {queries}: a torn subsystem"
        );
        if queries % 20 == 0 {
            let all = store.load(P, Selection::All).unwrap().snapshots();
            assert!(all == a || all == b, "query {queries}: a torn cache");
        }
        queries += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{queries} queries while the other process saved");
    let all = Store::open(dir.path())
        .unwrap()
        .load(P, Selection::All)
        .unwrap()
        .snapshots();
    assert!(all == a || all == b);
}

#[test]
fn default_root_order() {
    let run = |vds_home: Option<&str>, xdg: Option<&str>, home: Option<&str>| -> String {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "default-root")
        .env_remove("VDS_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME");
        for (k, v) in [
            ("VDS_HOME", vds_home),
            ("XDG_STATE_HOME", xdg),
            ("HOME", home),
        ] {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("ROOT=").map(str::to_string))
            .unwrap_or_else(|| panic!("no ROOT= line in {text}"))
    };
    assert_eq!(
        run(Some("/srv/vds"), Some("/x"), Some("/home/u")),
        "/srv/vds"
    );
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        assert_eq!(run(None, Some("/x"), Some("/home/u")), "/var/lib/vds");
        assert_eq!(run(Some(""), None, None), "/var/lib/vds");
    } else {
        assert_eq!(run(None, Some("/x"), Some("/home/u")), "/x/vds");
        assert_eq!(
            run(None, Some("relative"), Some("/home/u")),
            "/home/u/.local/state/vds"
        );
        assert_eq!(run(None, None, None), ".vds");
    }
}
