//! The simulator provider: an in-process array, the reference implementation of the provider seam
//! and the fastest test fixture (like libstoragemgmt's `sim://` and stratisd's `--sim`).
//!
//! [`SimBackend::demo`] holds two subsystems: `sim-array-1` with IPv4, IPv6 (one link-local with a
//! scope id) and host-name portals, three targets and their portal groups; and `sim-array-2`, with no
//! portals or targets. A [`SimControl`] changes the simulated array behind the model's back and makes
//! it fail in each documented way (failed subsystem, departed objects, corrupt cache, errors, slow or
//! held operations), so every error path can be driven deterministically. It sends no traffic.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::backend::{
    Applied, Created, Mutation, PortalGroupSnapshot, PortalSnapshot, ProviderBackend, ProviderInfo,
    SubSystemSnapshot, TargetSnapshot,
};
use crate::{
    Error, Health, Hresult, HwProviderType, IscsiPortalStatus, SubSystemFlags, SubSystemStatus,
    VdsIpAddress,
};

/// The most portal groups a simulated target can have; `CreatePortalGroup` past it returns an
/// existing group with `VDS_S_ALREADY_EXISTS`.
pub const MAX_GROUPS_PER_TARGET: usize = 4;

/// The name of the simulator provider unless another is given ([`SimBackend::with_name`]).
pub const SIM_PROVIDER_NAME: &str = "vds-sim";

/// A backend operation, for [`SimControl::fail_next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimOp {
    /// `reenumerate`
    Reenumerate,
    /// `refresh`
    Refresh,
    /// `apply` (every mutation)
    Apply,
}

struct SimArray {
    subsystems: Vec<SubSystemSnapshot>,
    fail_next: HashMap<SimOp, Hresult>,
    corrupt: bool,
    next_target: u32,
    calls: HashMap<SimOp, usize>,
}

/// Which operations a [`SimHold`] holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HoldScope {
    /// Every operation.
    All,
    /// Refreshes and mutations of one subsystem (by key), and every reenumerate.
    Subsystem(String),
}

impl HoldScope {
    fn holds(&self, key: Option<&str>) -> bool {
        match (self, key) {
            (HoldScope::All, _) | (HoldScope::Subsystem(_), None) => true,
            (HoldScope::Subsystem(held), Some(key)) => held == key,
        }
    }
}

struct SimShared {
    array: Mutex<SimArray>,
    /// What a living [`SimHold`] holds; held operations wait for it to turn `None`.
    held: watch::Sender<Option<HoldScope>>,
    /// How many operations reached the hold point since the hold began.
    entered: Mutex<usize>,
    entered_changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The simulator backend. Give it to [`crate::HwProvider::new`]; keep its [`SimControl`] to steer it.
pub struct SimBackend {
    name: String,
    shared: Arc<SimShared>,
}

/// A handle that changes the simulated array and injects failures. Cheap to clone.
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<SimShared>,
}

/// Holds every backend operation that starts while it lives; dropping it (also when a test panics)
/// lets them go on.
pub struct SimHold {
    shared: Arc<SimShared>,
}

fn v4(a: [u8; 4], port: u32) -> VdsIpAddress {
    VdsIpAddress::Ipv4 {
        addr: a.into(),
        port,
    }
}

fn v6(s: &str, scope_id: u32) -> VdsIpAddress {
    VdsIpAddress::Ipv6 {
        addr: s.parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
        flow_info: 0,
        scope_id,
        port: 3260,
    }
}

/// The first subsystem of [`SimBackend::demo`].
pub fn demo_array_1() -> SubSystemSnapshot {
    let p_a = v4([192, 0, 2, 10], 3260);
    let p_b = v4([192, 0, 2, 11], 3260);
    let p_c = v6("2001:db8::10", 0);
    let p_d = v6("fe80::10", 2);
    let p_e = VdsIpAddress::Text {
        text: "array1.example.net".into(),
        port: 3260,
    };
    let portal = |address: &VdsIpAddress, status| PortalSnapshot {
        address: address.clone(),
        status,
    };
    SubSystemSnapshot {
        key: "sim-array-1".into(),
        friendly_name: "vds simulator array 1".into(),
        identification: "SIM-0001".into(),
        flags: SubSystemFlags::SUPPORTS_AUTH_CHAP
            | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP
            | SubSystemFlags::LUN_MASKING_CAPABLE,
        stripe_size_flags: 0,
        status: SubSystemStatus::Online,
        health: Health::Healthy,
        detail: None,
        portals: vec![
            portal(&p_a, IscsiPortalStatus::Online),
            portal(&p_b, IscsiPortalStatus::Online),
            portal(&p_c, IscsiPortalStatus::Online),
            portal(&p_d, IscsiPortalStatus::NotReady),
            portal(&p_e, IscsiPortalStatus::Offline),
        ],
        targets: vec![
            TargetSnapshot {
                iscsi_name: "iqn.2026-11.org.vds.sim:array1.db".into(),
                friendly_name: "db".into(),
                chap_enabled: true,
                lun_count: 2,
                portal_groups: vec![
                    PortalGroupSnapshot {
                        tag: 1,
                        portals: vec![p_a.clone(), p_c.clone()],
                    },
                    PortalGroupSnapshot {
                        tag: 2,
                        portals: vec![p_b.clone()],
                    },
                ],
                connected_initiators: vec!["iqn.1991-05.com.microsoft:db-host".into()],
            },
            TargetSnapshot {
                iscsi_name: "iqn.2026-11.org.vds.sim:array1.web".into(),
                friendly_name: "web".into(),
                chap_enabled: false,
                lun_count: 1,
                portal_groups: vec![PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![p_a, p_e, p_d],
                }],
                connected_initiators: Vec::new(),
            },
            TargetSnapshot {
                iscsi_name: "iqn.2026-11.org.vds.sim:array1.scratch".into(),
                friendly_name: String::new(),
                chap_enabled: false,
                lun_count: 0,
                portal_groups: vec![PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![],
                }],
                connected_initiators: Vec::new(),
            },
        ],
    }
}

/// The second subsystem of [`SimBackend::demo`]: online, with no portals and no targets.
pub fn demo_array_2() -> SubSystemSnapshot {
    let mut s = SubSystemSnapshot::new("sim-array-2", SubSystemStatus::Online);
    s.friendly_name = "vds simulator array 2 (empty)".into();
    s.identification = "SIM-0002".into();
    s.health = Health::Healthy;
    s
}

impl SimBackend {
    /// A simulator holding `subsystems`.
    pub fn with_subsystems(subsystems: Vec<SubSystemSnapshot>) -> SimBackend {
        SimBackend {
            name: SIM_PROVIDER_NAME.to_string(),
            shared: Arc::new(SimShared {
                array: Mutex::new(SimArray {
                    subsystems,
                    fail_next: HashMap::new(),
                    corrupt: false,
                    next_target: 1,
                    calls: HashMap::new(),
                }),
                held: watch::Sender::new(None),
                entered: Mutex::new(0),
                entered_changed: Condvar::new(),
            }),
        }
    }

    /// The same simulator under another provider name (from which the provider's id, and so every
    /// object id, is derived).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> SimBackend {
        self.name = name.into();
        self
    }

    /// The demonstration array: `sim-array-1` (portals, targets, groups) and `sim-array-2` (empty).
    pub fn demo() -> SimBackend {
        SimBackend::with_subsystems(vec![demo_array_1(), demo_array_2()])
    }

    /// A simulator with `subsystems` subsystems of `portals` IPv4 portals each (192.0.2.x / 198.18.x.y
    /// documentation and benchmark ranges; never contacted), one target each; for scale tests.
    pub fn scaled(subsystems: usize, portals: usize) -> SimBackend {
        let snaps = (0..subsystems)
            .map(|s| {
                let mut snap =
                    SubSystemSnapshot::new(format!("sim-scale-{s}"), SubSystemStatus::Online);
                snap.portals = (0..portals)
                    .map(|p| PortalSnapshot {
                        address: v4(
                            [198, 18, (p / 256 % 256) as u8, (p % 256) as u8],
                            3260 + (p / 65536) as u32,
                        ),
                        status: IscsiPortalStatus::Online,
                    })
                    .collect();
                snap
            })
            .collect();
        SimBackend::with_subsystems(snaps)
    }

    /// The control handle for this simulator.
    pub fn control(&self) -> SimControl {
        SimControl {
            shared: self.shared.clone(),
        }
    }

    /// Counts the call, waits while it is held, and answers with the array's truth (or the failure
    /// injected for `op`). `key` is the subsystem a refresh or mutation is about.
    async fn enter(&self, op: SimOp, key: Option<&str>) -> Result<Vec<SubSystemSnapshot>, Error> {
        // Held operations wait here, before looking at the array, so a test can act meanwhile.
        let mut held = self.shared.held.subscribe();
        if held.borrow().as_ref().is_some_and(|scope| scope.holds(key)) {
            {
                let mut entered = lock(&self.shared.entered);
                *entered += 1;
                self.shared.entered_changed.notify_all();
            }
            // The sender lives in `self.shared`, so the channel cannot close while we wait.
            let _ = held
                .wait_for(|scope| !scope.as_ref().is_some_and(|s| s.holds(key)))
                .await;
        }
        let mut array = lock(&self.shared.array);
        *array.calls.entry(op).or_default() += 1;
        if let Some(hr) = array.fail_next.remove(&op) {
            return Err(Error::new(hr).because("injected by the simulator"));
        }
        Ok(array.subsystems.clone())
    }
}

#[async_trait::async_trait]
impl ProviderBackend for SimBackend {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    async fn reenumerate(
        &self,
        _previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        let truth = self.enter(SimOp::Reenumerate, None).await?;
        lock(&self.shared.array).corrupt = false;
        Ok(truth)
    }

    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        let truth = self.enter(SimOp::Refresh, Some(&previous.key)).await?;
        if lock(&self.shared.array).corrupt {
            return Err(Error::new(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT)
                .because("the simulated array says its cache is inconsistent"));
        }
        // A departed subsystem comes back Offline with no objects (departures are reenumerate's
        // business).
        Ok(truth
            .into_iter()
            .find(|t| t.key == previous.key)
            .unwrap_or_else(|| {
                let mut gone = previous.clone();
                gone.status = SubSystemStatus::Offline;
                gone.detail = Some("the simulated array is disconnected".into());
                gone.portals.clear();
                gone.targets.clear();
                gone
            }))
    }

    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &Mutation,
    ) -> Result<Applied, Error> {
        self.enter(SimOp::Apply, Some(&subsystem.key)).await?;
        let mut array = lock(&self.shared.array);
        let SimArray {
            subsystems,
            next_target,
            ..
        } = &mut *array;
        let ss = subsystems
            .iter_mut()
            .find(|s| s.key == subsystem.key)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        let mut created = None;
        let mut outcome = Hresult::S_OK;
        match mutation {
            Mutation::SetPortalStatus { portal, status } => {
                let p = ss
                    .portals
                    .iter_mut()
                    .find(|p| &p.address == portal)
                    .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND))?;
                p.status = *status;
            }
            Mutation::CreateTarget {
                iscsi_name,
                friendly_name,
            } => {
                let name = match iscsi_name {
                    Some(n) => n.clone(),
                    None => loop {
                        let n = format!("iqn.2026-11.org.vds.sim:{}.t{}", ss.key, next_target);
                        *next_target += 1;
                        if !ss.targets.iter().any(|t| t.iscsi_name == n) {
                            break n;
                        }
                    },
                };
                if ss.targets.iter().any(|t| t.iscsi_name == name) {
                    return Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE));
                }
                ss.targets.push(TargetSnapshot {
                    iscsi_name: name.clone(),
                    friendly_name: friendly_name.clone(),
                    chap_enabled: false,
                    lun_count: 0,
                    portal_groups: Vec::new(),
                    connected_initiators: Vec::new(),
                });
                created = Some(Created::Target(name));
            }
            Mutation::DeleteTarget { iscsi_name } => {
                let t = target_mut(ss, iscsi_name)?;
                if !t.connected_initiators.is_empty() {
                    return Err(crate::target_in_use(&t.connected_initiators));
                }
                let before = ss.targets.len();
                ss.targets.retain(|t| &t.iscsi_name != iscsi_name);
                if ss.targets.len() == before {
                    return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND));
                }
            }
            Mutation::SetTargetFriendlyName {
                iscsi_name,
                friendly_name,
            } => {
                target_mut(ss, iscsi_name)?.friendly_name = friendly_name.clone();
            }
            Mutation::CreatePortalGroup { iscsi_name } => {
                let t = target_mut(ss, iscsi_name)?;
                if t.portal_groups.len() >= MAX_GROUPS_PER_TARGET {
                    let tag = t
                        .portal_groups
                        .first()
                        .map(|g| g.tag)
                        .ok_or_else(|| Error::new(Hresult::VDS_E_INTERNAL_ERROR))?;
                    outcome = Hresult::VDS_S_ALREADY_EXISTS;
                    created = Some(Created::PortalGroup {
                        iscsi_name: iscsi_name.clone(),
                        tag,
                    });
                } else {
                    let tag = (1..=u16::MAX)
                        .find(|tag| !t.portal_groups.iter().any(|g| g.tag == *tag))
                        .ok_or_else(|| Error::new(Hresult::VDS_E_INTERNAL_ERROR))?;
                    t.portal_groups.push(PortalGroupSnapshot {
                        tag,
                        portals: Vec::new(),
                    });
                    created = Some(Created::PortalGroup {
                        iscsi_name: iscsi_name.clone(),
                        tag,
                    });
                }
            }
            Mutation::DeletePortalGroup { iscsi_name, tag } => {
                let t = target_mut(ss, iscsi_name)?;
                t.portal_groups.retain(|g| g.tag != *tag);
            }
            Mutation::AddPortal {
                iscsi_name,
                tag,
                portal,
            } => {
                if !ss.portals.iter().any(|p| &p.address == portal) {
                    return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND));
                }
                let g = group_mut(target_mut(ss, iscsi_name)?, *tag)?;
                if !g.portals.contains(portal) {
                    g.portals.push(portal.clone());
                }
            }
            Mutation::RemovePortal {
                iscsi_name,
                tag,
                portal,
            } => {
                let g = group_mut(target_mut(ss, iscsi_name)?, *tag)?;
                g.portals.retain(|p| p != portal);
            }
            Mutation::SetTargetSharedSecret {
                iscsi_name,
                secret,
                initiator,
            } => {
                if initiator.is_some() {
                    return Err(Error::new(Hresult::VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED)
                        .because("the simulator keeps one secret per target, as tgt does"));
                }
                // The simulator keeps no secret: it only says whether one is required.
                target_mut(ss, iscsi_name)?.chap_enabled = secret.is_some();
            }
            Mutation::RememberInitiatorSharedSecret { iscsi_name, .. } => {
                // Mutual CHAP is not a property: nothing shows; the target must exist.
                target_mut(ss, iscsi_name)?;
            }
        }
        let mut applied = Applied::done(ss.clone(), created);
        applied.outcome = outcome;
        Ok(applied)
    }
}

fn target_mut<'a>(
    ss: &'a mut SubSystemSnapshot,
    name: &str,
) -> Result<&'a mut TargetSnapshot, Error> {
    ss.targets
        .iter_mut()
        .find(|t| t.iscsi_name == name)
        .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND))
}

fn group_mut(t: &mut TargetSnapshot, tag: u16) -> Result<&mut PortalGroupSnapshot, Error> {
    t.portal_groups
        .iter_mut()
        .find(|g| g.tag == tag)
        .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND))
}

impl SimControl {
    /// Changes the simulated array's truth; the model sees it on its next refresh or reenumerate.
    pub fn edit<R>(&self, f: impl FnOnce(&mut Vec<SubSystemSnapshot>) -> R) -> R {
        f(&mut lock(&self.shared.array).subsystems)
    }

    /// Sets a subsystem's status (for example `Failed`).
    pub fn set_subsystem_status(&self, key: &str, status: SubSystemStatus) {
        self.edit(|subs| {
            subs.iter_mut()
                .filter(|s| s.key == key)
                .for_each(|s| s.status = status)
        });
    }

    /// Disconnects a subsystem: it departs on the next reenumerate (a refresh reports it offline).
    pub fn remove_subsystem(&self, key: &str) {
        self.edit(|subs| subs.retain(|s| s.key != key));
    }

    /// Removes a portal (and its group memberships): it departs on the next refresh.
    pub fn remove_portal(&self, key: &str, address: &VdsIpAddress) {
        self.edit(|subs| {
            for s in subs.iter_mut().filter(|s| s.key == key) {
                s.portals.retain(|p| &p.address != address);
                for t in &mut s.targets {
                    for g in &mut t.portal_groups {
                        g.portals.retain(|p| p != address);
                    }
                }
            }
        });
    }

    /// Removes a target: it departs on the next refresh.
    pub fn remove_target(&self, key: &str, iscsi_name: &str) {
        self.edit(|subs| {
            subs.iter_mut()
                .filter(|s| s.key == key)
                .for_each(|s| s.targets.retain(|t| t.iscsi_name != iscsi_name))
        });
    }

    /// The next `op` fails with `hr` (once).
    pub fn fail_next(&self, op: SimOp, hr: Hresult) {
        lock(&self.shared.array).fail_next.insert(op, hr);
    }

    /// The backend detects its cache is inconsistent: every refresh answers
    /// `VDS_E_PROVIDER_CACHE_CORRUPT` until a reenumerate has run.
    pub fn corrupt_cache(&self) {
        lock(&self.shared.array).corrupt = true;
    }

    /// The simulated array's truth: every subsystem as the array has it now (for example to keep it
    /// across processes).
    pub fn truth(&self) -> Vec<SubSystemSnapshot> {
        lock(&self.shared.array).subsystems.clone()
    }

    /// How many times `op` has been called.
    pub fn calls(&self, op: SimOp) -> usize {
        lock(&self.shared.array)
            .calls
            .get(&op)
            .copied()
            .unwrap_or(0)
    }

    /// Holds every backend operation that starts from now until the returned guard is dropped.
    pub fn hold(&self) -> SimHold {
        self.hold_scope(HoldScope::All)
    }

    /// Holds the refreshes and mutations of subsystem `key` (and every reenumerate) that start from
    /// now until the returned guard is dropped: an array that stops answering while the others
    /// work.
    pub fn hold_subsystem(&self, key: &str) -> SimHold {
        self.hold_scope(HoldScope::Subsystem(key.to_string()))
    }

    fn hold_scope(&self, scope: HoldScope) -> SimHold {
        *lock(&self.shared.entered) = 0;
        self.shared.held.send_replace(Some(scope));
        SimHold {
            shared: self.shared.clone(),
        }
    }
}

impl SimHold {
    /// Waits (up to `timeout`) until at least one operation is being held; true if one is.
    pub fn wait_entered(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut entered = lock(&self.shared.entered);
        while *entered == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            entered = self
                .shared
                .entered_changed
                .wait_timeout(entered, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for SimHold {
    fn drop(&mut self) {
        self.shared.held.send_replace(None);
    }
}
