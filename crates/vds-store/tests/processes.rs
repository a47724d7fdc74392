//! The store between processes: concurrent configuration writers, subsystem locks held by another
//! process (and released by its death), and a cache that survives SIGKILL at any moment.
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
use vds_store::{Store, StoreError, SubsystemConfig};

const CHILD: &str = "VDS_STORE_CHILD";
const ROOT: &str = "VDS_STORE_CHILD_ROOT";
const ARG: &str = "VDS_STORE_CHILD_ARG";

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
    let root = PathBuf::from(std::env::var_os(ROOT).unwrap());
    let arg = std::env::var(ARG).unwrap_or_default();
    let store = Store::open(&root).unwrap();
    match mode.as_str() {
        "add" => {
            for i in 0..20 {
                store
                    .add_subsystem(SubsystemConfig::new(format!("{arg}-{i}"), "sendtargets"))
                    .unwrap();
            }
        }
        "hold-lock" => {
            let _lock = store.lock_subsystems(&[&arg]).unwrap();
            std::fs::write(root.join("child-ready"), b"").unwrap();
            // Held until killed; the deadline only bounds a forgotten child.
            std::thread::sleep(Duration::from_secs(60));
        }
        "save-loop" => {
            let (a, b) = (content(false), content(true));
            std::fs::write(root.join("child-ready"), b"").unwrap();
            for i in 0.. {
                let next = if i % 2 == 0 { &b } else { &a };
                store.save_cache(next, CacheHealth::Good).unwrap();
            }
        }
        // libtest has already printed "test child_process_entry ... " without a newline.
        "default-root" => println!("\nROOT={}", Store::default_root().display()),
        other => panic!("unknown child mode {other}"),
    }
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
        store
            .add_subsystem(SubsystemConfig::new(format!("parent-{i}"), "sendtargets"))
            .unwrap();
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let config = store.config().unwrap();
    assert_eq!(config.subsystems.len(), 60);
    for side in ["left", "right", "parent"] {
        for i in 0..20 {
            assert!(
                config.subsystem(&format!("{side}-{i}")).is_some(),
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

#[test]
fn a_lock_held_by_another_process_is_busy_at_once_and_freed_by_its_death() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child("hold-lock", dir.path(), "array1");
    wait_for(&dir.path().join("child-ready"), &mut child);

    let store = Store::open(dir.path()).unwrap();
    let start = Instant::now();
    match store.lock_subsystems(&["other", "array1"]) {
        Err(e @ StoreError::Busy { .. }) => {
            assert!(matches!(&e, StoreError::Busy { name } if name == "array1"));
            assert_eq!(e.hresult(), Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "never waits: {:?}",
        start.elapsed()
    );
    // "other" was not left locked by the failed request.
    drop(store.lock_subsystems(&["other"]).unwrap());

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    let lock = store.lock_subsystems(&["array1", "other"]).unwrap();
    assert_eq!(lock.names(), ["array1", "other"]);
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
        store.save_cache(&b, CacheHealth::Good).unwrap();
        let start = Instant::now();
        store.save_cache(&a, CacheHealth::Good).unwrap();
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
            .load_cache()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(state.health, CacheHealth::Good);
        if state.subsystems == a {
            saw_a += 1;
        } else if state.subsystems == b {
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
        .save_cache(&a, CacheHealth::Good)
        .unwrap();
    // A query before the writer starts leaves the -shm file: the next ones map it read-only.
    Store::open(dir.path())
        .unwrap()
        .load_subsystem("scale-0")
        .unwrap();
    let ready = dir.path().join("child-ready");
    let mut child = spawn_child("save-loop", dir.path(), "");
    wait_for(&ready, &mut child);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut queries = 0;
    while Instant::now() < deadline || queries < 50 {
        // A new store per query, as each vdsadm process opens its own.
        let store = Store::open(dir.path()).unwrap();
        let i = queries % 1_000;
        let (health, found) = store
            .load_subsystem_and_health(&format!("scale-{i}"))
            .unwrap_or_else(|e| panic!("query {queries}: {e}"));
        assert_eq!(health, CacheHealth::Good);
        let (snap, _) = found.expect("every subsystem is in both contents");
        assert!(
            snap == a[i] || snap == b[i],
            "query {queries}: a torn subsystem"
        );
        if queries % 20 == 0 {
            let all = store.load_cache().unwrap().subsystems;
            assert!(all == a || all == b, "query {queries}: a torn cache");
        }
        queries += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{queries} queries while the other process saved");
    let all = Store::open(dir.path()).unwrap().load_cache().unwrap();
    assert!(all.subsystems == a || all.subsystems == b);
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
        .env(ROOT, std::env::temp_dir())
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
