//! How much heap the model's cache holds per subsystem, portal and target: a provider is loaded with
//! `HwProvider::from_cache` from N subsystems × T targets (each subsystem one IPv4 portal; each
//! target one portal group, tag 1, holding that portal), and a counting allocator reports the live
//! bytes and allocations the picture keeps once its input is gone.
//!
//! The allocator counts what was asked for; malloc adds its own per-chunk overhead on top (glibc:
//! 8 bytes of header, sizes rounded up to 16, 32 bytes at least), so resident memory is about
//! `bytes + 16 × allocations`, which is the estimate printed.
//!
//! Run: `cargo run --release -p vds-model --example footprint [-- SUBSYSTEMS TARGETS]`
//! (defaults 5000 × 100).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};

use async_trait::async_trait;
use vds_model::{
    CacheHealth, Error, HwProvider, HwProviderType, IscsiPortalStatus, PortalGroupSnapshot,
    PortalSnapshot, ProviderBackend, ProviderInfo, SubSystemSnapshot, SubSystemStatus,
    TargetSnapshot, VdsIpAddress,
};

/// The system allocator, counting live bytes and live allocations.
struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; the counters only observe it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live (bytes, allocations) now.
fn live() -> (isize, isize) {
    (
        BYTES.load(Ordering::Relaxed),
        ALLOCS.load(Ordering::Relaxed),
    )
}

/// A backend that is never asked anything: the picture comes from the cache.
struct Idle;

#[async_trait]
impl ProviderBackend for Idle {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "footprint".into(),
            version: "1".into(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        Ok(previous.to_vec())
    }

    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        Ok(previous.clone())
    }
}

/// A string with no spare capacity, as a store hands it over.
fn exact(s: String) -> String {
    let mut s = s;
    s.shrink_to_fit();
    s
}

/// `subsystems` × `targets` as described in the module doc, every `Vec` and `String` exactly sized.
fn picture(subsystems: usize, targets: usize) -> Vec<SubSystemSnapshot> {
    (0..subsystems)
        .map(|i| {
            let mut s =
                SubSystemSnapshot::new(exact(format!("array-{i:05}")), SubSystemStatus::Online);
            s.friendly_name.shrink_to_fit();
            let portal = VdsIpAddress::Ipv4 {
                addr: Ipv4Addr::LOCALHOST,
                port: 3260 + i as u32,
            };
            s.portals = vec![PortalSnapshot {
                address: portal.clone(),
                status: IscsiPortalStatus::Online,
            }];
            s.targets = (0..targets)
                .map(|t| TargetSnapshot {
                    iscsi_name: exact(format!(
                        "iqn.2026-12.org.vds.bench:array-{i:05}.target-{t:03}"
                    )),
                    friendly_name: String::new(),
                    chap_enabled: false,
                    lun_count: 0,
                    portal_groups: vec![PortalGroupSnapshot {
                        tag: 1,
                        portals: vec![portal.clone()],
                    }],
                    connected_initiators: Vec::new(),
                })
                .collect();
            s
        })
        .collect()
}

/// Live heap (bytes, allocations) a provider loaded with `subsystems` × `targets` holds, and the
/// provider, so that the caller can query it.
fn load(subsystems: usize, targets: usize) -> ((isize, isize), HwProvider) {
    let input = picture(subsystems, targets);
    let before = live();
    let input_cost = {
        // What the input itself holds: measured by building a second one and dropping it.
        let (b0, a0) = live();
        let copy = picture(subsystems, targets);
        let (b1, a1) = live();
        drop(copy);
        (b1 - b0, a1 - a0)
    };
    let (provider, err) = HwProvider::from_cache(Idle, input, CacheHealth::Good);
    assert!(err.is_none(), "the picture breaks a rule: {err:?}");
    let after = live();
    // `from_cache` consumed the input: whatever of it the cache kept is counted in `after`, and
    // what it dropped is already gone, so the input's own cost is added back to `before`.
    let held = (
        after.0 - (before.0 - input_cost.0),
        after.1 - (before.1 - input_cost.1),
    );
    (held, provider)
}

/// One walk through every subsystem's targets and their properties, as `list targets` does.
fn walk(provider: &HwProvider) -> (usize, usize) {
    let (mut targets, mut name_bytes) = (0, 0);
    for sub in provider.query_sub_systems().expect("query_sub_systems") {
        for target in sub.query_targets().expect("query_targets") {
            let prop = target.get_properties().expect("get_properties");
            name_bytes += prop.iscsi_name.len();
            for group in target.query_portal_groups().expect("query_portal_groups") {
                let g = group.get_properties().expect("group get_properties");
                assert_eq!(g.tag, 1);
                assert_eq!(group.query_associated_portals().expect("portals").len(), 1);
            }
            targets += 1;
        }
    }
    (targets, name_bytes)
}

fn per(x: isize, n: usize) -> f64 {
    x as f64 / n.max(1) as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: footprint [SUBSYSTEMS [TARGETS]]"))
        .collect();
    let subsystems = args.first().copied().unwrap_or(5000);
    let targets = args.get(1).copied().unwrap_or(100);

    // Subsystems with their portal and no targets: the cost of a subsystem and its portal.
    let ((sub_bytes, sub_allocs), empty) = load(subsystems, 0);
    drop(empty);
    let ((bytes, allocs), provider) = load(subsystems, targets);
    let n = subsystems * targets;
    let (t_bytes, t_allocs) = (bytes - sub_bytes, allocs - sub_allocs);

    println!("{subsystems} subsystems × {targets} targets ({n} targets)");
    println!(
        "  subsystem + its portal : {:>8.1} bytes, {:>5.2} allocations, ≈ {:>7.1} bytes resident",
        per(sub_bytes, subsystems),
        per(sub_allocs, subsystems),
        per(sub_bytes + 16 * sub_allocs, subsystems),
    );
    println!(
        "  target + its group     : {:>8.1} bytes, {:>5.2} allocations, ≈ {:>7.1} bytes resident",
        per(t_bytes, n),
        per(t_allocs, n),
        per(t_bytes + 16 * t_allocs, n),
    );
    println!(
        "  all / targets          : {:>8.1} bytes, {:>5.2} allocations, ≈ {:>7.1} bytes resident",
        per(bytes, n),
        per(allocs, n),
        per(bytes + 16 * allocs, n),
    );
    println!(
        "  total                  : {:.1} MiB counted, ≈ {:.1} MiB resident",
        bytes as f64 / 1048576.0,
        (bytes + 16 * allocs) as f64 / 1048576.0
    );

    let start = std::time::Instant::now();
    let (walked, name_bytes) = walk(&provider);
    println!(
        "  query walk             : {walked} targets, {name_bytes} name bytes, in {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(walked, n);
}
