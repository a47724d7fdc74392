//! The hardware provider (`IVdsProvider` + `IVdsHwProvider`): its cache, its gates, its life.
//!
//! # Rules every method follows
//!
//! Each method checks, in this order, and answers the first that applies:
//! 1. the provider was not initialized → `VDS_E_INITIALIZE_NOT_CALLED`;
//! 2. the cache is flagged corrupt → `VDS_E_PROVIDER_CACHE_CORRUPT` (see below);
//! 3. the object the handle names is no longer in the cache → `VDS_E_OBJECT_DELETED`;
//! 4. method-specific rules (a failed subsystem, a busy object, bad arguments).
//!
//! # Concurrency: when `VDS_E_ANOTHER_CALL_IN_PROGRESS` is returned
//!
//! Nothing ever waits for another operation; a conflicting call fails at once.
//! - `refresh()` and `reenumerate()` are provider-wide: while one runs, a second one, and every
//!   mutating call on any object (`set_status`, `create_target`, `add_portal`, …), answers
//!   `VDS_E_ANOTHER_CALL_IN_PROGRESS`. A refresh also refuses to start while a mutating call runs.
//! - Mutating calls are gated per subsystem: two at once on objects of the same subsystem, the second
//!   answers `VDS_E_ANOTHER_CALL_IN_PROGRESS`; calls on different subsystems proceed in parallel.
//! - Queries (`query_*`, `get_*`) read the last committed picture and are never refused during a
//!   refresh or a mutation. The one exception: while `reenumerate()` is replacing the provider's set of
//!   subsystems, `query_sub_systems()` and each subsystem's `query_portals()`/`query_targets()`
//!   answer `VDS_E_ANOTHER_CALL_IN_PROGRESS`, because the subsystem they ask about may be about to
//!   depart. Property reads (`get_properties`) still answer during a reenumerate.
//! - Notification sinks run while the operation that raised them still holds its gate, so a sink that
//!   calls `refresh()` gets `VDS_E_ANOTHER_CALL_IN_PROGRESS` instead of starting an endless loop.
//!
//! # The cache and `VDS_E_PROVIDER_CACHE_CORRUPT`
//!
//! The cache is flagged corrupt when the backend reports it (`Err(VDS_E_PROVIDER_CACHE_CORRUPT)` from
//! `refresh`/`reenumerate`), when a persisted cache loaded with [`HwProvider::from_cache`] breaks an
//! invariant, or when the owner calls [`HwProvider::mark_cache_corrupt`]. From then on every
//! cached-path method answers `VDS_E_PROVIDER_CACHE_CORRUPT`. `refresh()` alone does not clear it (it
//! answers the same code and does nothing); `reenumerate()` rebuilds the subsystem set from the
//! backend without trusting the old cache and leaves the flag at [`CacheHealth::Rebuilt`]; the next
//! successful `refresh()` clears it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::backend::{Applied, Mutation, ProviderBackend, ProviderInfo};
use crate::objects::SubSystem;
use crate::state::{State, SubState, diff};
use crate::{
    EnumVdsObject, Hresult, Notification, ObjectId, ProviderProp, ProviderType, SubSystemSnapshot,
};

/// A callback that receives batches of notifications (`IVdsAdviseSink::OnNotify`).
pub type NotificationSink = dyn Fn(&[Notification]) + Send + Sync;

/// The state of the provider's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CacheHealth {
    /// Consistent.
    Good,
    /// Corrupt: cached-path methods answer `VDS_E_PROVIDER_CACHE_CORRUPT` until `reenumerate()` and
    /// then `refresh()` have run.
    Corrupt,
    /// `reenumerate()` rebuilt the subsystem set; still answers `VDS_E_PROVIDER_CACHE_CORRUPT` until a
    /// `refresh()` succeeds.
    Rebuilt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProviderOp {
    Refresh,
    Reenumerate,
}

#[derive(Default)]
struct Busy {
    provider_op: Option<ProviderOp>,
    subsystems: HashSet<ObjectId>,
}

pub(crate) struct Inner {
    pub(crate) id: ObjectId,
    info: ProviderInfo,
    backend: Box<dyn ProviderBackend>,
    initialized: AtomicBool,
    pub(crate) state: ArcSwap<State>,
    cache: Mutex<CacheHealth>,
    busy: Mutex<Busy>,
    sinks: Mutex<Vec<(u32, Arc<NotificationSink>)>>,
    next_cookie: AtomicU32,
}

/// Locks a mutex that only guards plain data; a panic elsewhere cannot leave that data half-written,
/// so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds a gate; releases it when dropped.
pub(crate) struct Gate<'a> {
    inner: &'a Inner,
    kind: GateKind,
}

enum GateKind {
    Provider,
    SubSystem(ObjectId),
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut busy = lock(&self.inner.busy);
        match self.kind {
            GateKind::Provider => busy.provider_op = None,
            GateKind::SubSystem(id) => {
                busy.subsystems.remove(&id);
            }
        }
    }
}

impl Inner {
    /// Rules 1 and 2 of the module doc.
    pub(crate) fn check_cache(&self) -> Result<(), Hresult> {
        if !self.initialized.load(Ordering::Acquire) {
            return Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED);
        }
        match *lock(&self.cache) {
            CacheHealth::Good => Ok(()),
            CacheHealth::Corrupt | CacheHealth::Rebuilt => {
                Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT)
            }
        }
    }

    /// Rules 1–3: the current picture of subsystem `id`.
    pub(crate) fn subsystem(&self, id: ObjectId) -> Result<Arc<SubState>, Hresult> {
        self.check_cache()?;
        self.state
            .load()
            .subsystems
            .get(&id)
            .cloned()
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)
    }

    pub(crate) fn reenumerating(&self) -> bool {
        lock(&self.busy).provider_op == Some(ProviderOp::Reenumerate)
    }

    fn gate_provider(&self, op: ProviderOp) -> Result<Gate<'_>, Hresult> {
        let mut busy = lock(&self.busy);
        if busy.provider_op.is_some() || !busy.subsystems.is_empty() {
            return Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        busy.provider_op = Some(op);
        Ok(Gate {
            inner: self,
            kind: GateKind::Provider,
        })
    }

    pub(crate) fn gate_subsystem(&self, id: ObjectId) -> Result<Gate<'_>, Hresult> {
        let mut busy = lock(&self.busy);
        if busy.provider_op.is_some() || !busy.subsystems.insert(id) {
            return Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        Ok(Gate {
            inner: self,
            kind: GateKind::SubSystem(id),
        })
    }

    fn notify(&self, batch: &[Notification]) {
        if batch.is_empty() {
            return;
        }
        let sinks: Vec<Arc<NotificationSink>> =
            lock(&self.sinks).iter().map(|(_, s)| s.clone()).collect();
        for sink in sinks {
            sink(batch);
        }
    }

    /// Runs a mutation on subsystem `sub` (already resolved, gate to be taken here) and commits the
    /// subsystem's new picture. Returns what the backend said.
    pub(crate) fn mutate(
        &self,
        sub: &SubState,
        mutation: Mutation,
    ) -> Result<(Applied, Arc<SubState>), Hresult> {
        let _gate = self.gate_subsystem(sub.id())?;
        let applied = self.backend.apply(&sub.snapshot, &mutation)?;
        if applied.snapshot.key != sub.snapshot.key {
            return Err(Hresult::VDS_E_BAD_PROVIDER_DATA);
        }
        let new_sub = Arc::new(
            SubState::build(self.id, applied.snapshot.clone())
                .map_err(|_| Hresult::VDS_E_BAD_PROVIDER_DATA)?,
        );
        let mut batch = Vec::new();
        self.state.rcu(|current| {
            let next = current.with_subsystem(new_sub.clone());
            batch = diff(current, &next);
            next
        });
        self.notify(&batch);
        Ok((applied, new_sub))
    }
}

/// A hardware provider: the root of the object model. Cheap to clone; clones share one provider.
///
/// ```
/// use vds_model::{HwProvider, sim::SimBackend};
/// let provider = HwProvider::new(SimBackend::demo());
/// provider.initialize().unwrap();
/// provider.reenumerate().unwrap();
/// let subsystems = provider.query_sub_systems().unwrap();
/// assert_eq!(subsystems.len(), 2);
/// ```
#[derive(Clone)]
pub struct HwProvider {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for HwProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HwProvider")
            .field("id", &self.inner.id)
            .field("name", &self.inner.info.name)
            .finish()
    }
}

impl HwProvider {
    /// A provider over `backend`, not yet initialized and with an empty cache. Until
    /// [`initialize`](Self::initialize), every method answers `VDS_E_INITIALIZE_NOT_CALLED`.
    pub fn new(backend: impl ProviderBackend) -> HwProvider {
        let info = backend.info();
        HwProvider {
            inner: Arc::new(Inner {
                id: ObjectId::provider(&info.name),
                info,
                backend: Box::new(backend),
                initialized: AtomicBool::new(false),
                state: ArcSwap::from_pointee(State::default()),
                cache: Mutex::new(CacheHealth::Good),
                busy: Mutex::new(Busy::default()),
                sinks: Mutex::new(Vec::new()),
                next_cookie: AtomicU32::new(1),
            }),
        }
    }

    /// An initialized provider whose cache is loaded from `cached` (as saved by [`export`](Self::export))
    /// with the given health. A cache that breaks an invariant (a duplicate key, a group naming a
    /// portal the subsystem lacks, …) is not loaded and the provider starts with its cache flagged
    /// [`CacheHealth::Corrupt`]; the error says what was wrong.
    pub fn from_cache(
        backend: impl ProviderBackend,
        cached: Vec<SubSystemSnapshot>,
        health: CacheHealth,
    ) -> (HwProvider, Option<crate::InvariantError>) {
        let provider = HwProvider::new(backend);
        provider.inner.initialized.store(true, Ordering::Release);
        match State::build(provider.inner.id, cached) {
            Ok(state) => {
                provider.inner.state.store(Arc::new(state));
                *lock(&provider.inner.cache) = health;
                (provider, None)
            }
            Err(e) => {
                *lock(&provider.inner.cache) = CacheHealth::Corrupt;
                (provider, Some(e))
            }
        }
    }

    /// `IVdsProviderPrivate::OnLoad`: marks the provider initialized. Touches no network; the cache
    /// stays as it is (empty for a new provider) until `reenumerate()`.
    pub fn initialize(&self) -> Result<(), Hresult> {
        self.inner.initialized.store(true, Ordering::Release);
        Ok(())
    }

    /// The provider's id.
    pub fn id(&self) -> ObjectId {
        self.inner.id
    }

    /// `IVdsProvider::GetProperties`.
    pub fn get_properties(&self) -> Result<ProviderProp, Hresult> {
        if !self.inner.initialized.load(Ordering::Acquire) {
            return Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED);
        }
        let info = &self.inner.info;
        Ok(ProviderProp {
            id: self.inner.id,
            name: info.name.clone(),
            version_id: self.inner.id.child("version", &info.version),
            version: info.version.clone(),
            provider_type: ProviderType::Hardware,
            flags: 0,
            stripe_size_flags: 0,
            rebuild_priority: 0,
        })
    }

    /// `IVdsHwProviderType::GetProviderType`.
    pub fn get_provider_type(&self) -> Result<crate::HwProviderType, Hresult> {
        if !self.inner.initialized.load(Ordering::Acquire) {
            return Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED);
        }
        Ok(self.inner.info.hw_type)
    }

    /// `IVdsHwProvider::QuerySubSystems`: the subsystems in the cache (an empty enumerator when there
    /// are none). `VDS_E_ANOTHER_CALL_IN_PROGRESS` while a reenumerate runs.
    pub fn query_sub_systems(&self) -> Result<EnumVdsObject<SubSystem>, Hresult> {
        self.inner.check_cache()?;
        if self.inner.reenumerating() {
            return Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        let state = self.inner.state.load();
        Ok(EnumVdsObject::new(
            state
                .order
                .iter()
                .map(|id| SubSystem::new(self.inner.clone(), *id))
                .collect(),
        ))
    }

    /// The subsystem whose natural key (for the sendtargets provider, its configured name) is `key`.
    /// `VDS_E_OBJECT_NOT_FOUND` when there is none.
    pub fn sub_system_by_key(&self, key: &str) -> Result<SubSystem, Hresult> {
        self.inner.check_cache()?;
        let id = self.inner.id.child("subsystem", key);
        if self.inner.state.load().subsystems.contains_key(&id) {
            Ok(SubSystem::new(self.inner.clone(), id))
        } else {
            Err(Hresult::VDS_E_OBJECT_NOT_FOUND)
        }
    }

    /// `IVdsHwProvider::Reenumerate`: asks the backend which subsystems exist, commits arrivals,
    /// departures and their pictures, and returns the notifications it delivered to sinks.
    pub fn reenumerate(&self) -> Result<Vec<Notification>, Hresult> {
        let inner = &self.inner;
        if !inner.initialized.load(Ordering::Acquire) {
            return Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED);
        }
        let _gate = inner.gate_provider(ProviderOp::Reenumerate)?;
        let health = *lock(&inner.cache);
        let previous = if health == CacheHealth::Good {
            inner.state.load().export()
        } else {
            Vec::new()
        };
        let answer = match inner.backend.reenumerate(&previous) {
            Ok(answer) => answer,
            Err(hr) => return Err(self.backend_failed(hr)),
        };
        // A corrupt cache is not reused, not even for unchanged subsystems.
        let reuse = if health == CacheHealth::Good {
            inner.state.load_full()
        } else {
            Arc::new(State::default())
        };
        let next = State::rebuild(inner.id, answer, &reuse)
            .map_err(|_| Hresult::VDS_E_BAD_PROVIDER_DATA)?;
        let old = inner.state.swap(Arc::new(next));
        {
            let mut cache = lock(&inner.cache);
            if *cache != CacheHealth::Good {
                *cache = CacheHealth::Rebuilt;
            }
        }
        let batch = if health == CacheHealth::Good {
            diff(&old, &inner.state.load())
        } else {
            Vec::new()
        };
        inner.notify(&batch);
        Ok(batch)
    }

    /// `IVdsHwProvider::Refresh`: asks the backend for the current picture of every known subsystem
    /// (finding no new ones), commits it, and returns the notifications it delivered to sinks.
    /// A refresh that fails leaves the cache as it was.
    pub fn refresh(&self) -> Result<Vec<Notification>, Hresult> {
        let inner = &self.inner;
        if !inner.initialized.load(Ordering::Acquire) {
            return Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED);
        }
        let health = *lock(&inner.cache);
        if health == CacheHealth::Corrupt {
            return Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT);
        }
        let _gate = inner.gate_provider(ProviderOp::Refresh)?;
        let old = inner.state.load_full();
        let previous = old.export();
        let answer = match inner.backend.refresh(&previous) {
            Ok(answer) => answer,
            Err(hr) => return Err(self.backend_failed(hr)),
        };
        // Keep the known keys only, in their known order; keys left out keep their picture.
        let mut by_key: std::collections::HashMap<String, SubSystemSnapshot> =
            answer.into_iter().map(|s| (s.key.clone(), s)).collect();
        let merged: Vec<SubSystemSnapshot> = previous
            .into_iter()
            .map(|p| by_key.remove(&p.key).unwrap_or(p))
            .collect();
        let next =
            State::rebuild(inner.id, merged, &old).map_err(|_| Hresult::VDS_E_BAD_PROVIDER_DATA)?;
        let next = Arc::new(next);
        inner.state.store(next.clone());
        *lock(&inner.cache) = CacheHealth::Good;
        let batch = diff(&old, &next);
        inner.notify(&batch);
        Ok(batch)
    }

    fn backend_failed(&self, hr: Hresult) -> Hresult {
        if hr == Hresult::VDS_E_PROVIDER_CACHE_CORRUPT {
            self.mark_cache_corrupt();
        }
        hr
    }

    /// Flags the cache corrupt (for example when its persistent copy failed a check).
    pub fn mark_cache_corrupt(&self) {
        *lock(&self.inner.cache) = CacheHealth::Corrupt;
    }

    /// The cache's health.
    pub fn cache_health(&self) -> CacheHealth {
        *lock(&self.inner.cache)
    }

    /// Every subsystem's snapshot, in enumeration order: what a persistent cache saves. Answers even
    /// when the cache is flagged corrupt (so it can be kept aside for inspection).
    pub fn export(&self) -> Vec<SubSystemSnapshot> {
        self.inner.state.load().export()
    }

    /// `IVdsService::Advise`: registers a sink; returns its cookie.
    pub fn advise(&self, sink: impl Fn(&[Notification]) + Send + Sync + 'static) -> u32 {
        let cookie = self.inner.next_cookie.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.sinks).push((cookie, Arc::new(sink)));
        cookie
    }

    /// `IVdsService::Unadvise`: `VDS_E_BAD_COOKIE` for a cookie that is not registered.
    pub fn unadvise(&self, cookie: u32) -> Result<(), Hresult> {
        let mut sinks = lock(&self.inner.sinks);
        let before = sinks.len();
        sinks.retain(|(c, _)| *c != cookie);
        if sinks.len() == before {
            Err(Hresult::VDS_E_BAD_COOKIE)
        } else {
            Ok(())
        }
    }
}
