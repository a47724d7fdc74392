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
//! - Every subsystem has a gate. A refresh of that subsystem and every mutating call on its objects
//!   (`set_status`, `create_target`, `add_portal`, …) take it; while it is held, another such call
//!   on the same subsystem answers `VDS_E_ANOTHER_CALL_IN_PROGRESS`. Calls on different subsystems
//!   proceed in parallel, so a subsystem whose array does not answer holds up nothing else.
//! - `refresh()` refreshes every subsystem, each under its own gate, concurrently; a subsystem
//!   whose gate is held is reported busy in the [`RefreshReport`] and the others are refreshed.
//! - `reenumerate()` is provider-wide: it starts only when no subsystem gate is held, and while it
//!   runs every refresh and mutating call answers `VDS_E_ANOTHER_CALL_IN_PROGRESS`.
//! - Queries (`query_*`, `get_*`) read the last committed picture and are never refused during a
//!   refresh or a mutation. The one exception: while `reenumerate()` is replacing the provider's set of
//!   subsystems, `query_sub_systems()` and each subsystem's `query_portals()`/`query_targets()`
//!   answer `VDS_E_ANOTHER_CALL_IN_PROGRESS`, because the subsystem they ask about may be about to
//!   depart. Property reads (`get_properties`) still answer during a reenumerate.
//! - Notification sinks run while the operation that raised them still holds its gate, so a sink that
//!   refreshes the subsystem it was told about gets `VDS_E_ANOTHER_CALL_IN_PROGRESS` instead of
//!   starting an endless loop.
//!
//! # The cache and `VDS_E_PROVIDER_CACHE_CORRUPT`
//!
//! The cache is flagged corrupt when the backend reports it (`Err(VDS_E_PROVIDER_CACHE_CORRUPT)` from
//! `refresh`/`reenumerate`), when a persisted cache loaded with [`HwProvider::from_cache`] breaks an
//! invariant, or when the owner calls [`HwProvider::mark_cache_corrupt`]. From then on every
//! cached-path method answers `VDS_E_PROVIDER_CACHE_CORRUPT`. `refresh()` alone does not clear it (it
//! answers the same code and does nothing); `reenumerate()` rebuilds the subsystem set from the
//! backend without trusting the old cache and leaves the flag at [`CacheHealth::Rebuilt`]; the next
//! `refresh()` in which every subsystem was refreshed clears it (refreshing single subsystems does
//! not).
//!
//! # Errors
//!
//! Every method fails with an [`Error`]: the code VDS specifies, the object it concerns, and the
//! cause when the model knows it (why the cache is corrupt, the detail the backend recorded for a
//! failed subsystem).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::backend::{Applied, Mutation, ProviderBackend, ProviderInfo};
use crate::objects::SubSystem;
use crate::state::{State, SubState, diff};
use crate::{
    EnumVdsObject, Error, Hresult, Notification, ObjectId, ProviderProp, ProviderType,
    SubSystemSnapshot, SubSystemStatus, Subject,
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

impl CacheHealth {
    /// `GOOD`, `CORRUPT`, `REBUILT`: the label used in output and in the store.
    pub fn label(self) -> &'static str {
        match self {
            CacheHealth::Good => "GOOD",
            CacheHealth::Corrupt => "CORRUPT",
            CacheHealth::Rebuilt => "REBUILT",
        }
    }

    /// The health whose label is `label` (case-insensitive).
    pub fn from_label(label: &str) -> Option<CacheHealth> {
        [
            CacheHealth::Good,
            CacheHealth::Corrupt,
            CacheHealth::Rebuilt,
        ]
        .into_iter()
        .find(|h| h.label().eq_ignore_ascii_case(label))
    }
}

/// One subsystem's part of a [`HwProvider::refresh_each`]: reported as soon as it is committed.
#[derive(Debug)]
pub struct SubsystemRefreshed<'a> {
    /// The subsystem's id.
    pub id: ObjectId,
    /// Its key.
    pub key: &'a str,
    /// Its picture as committed, or why it was not refreshed (busy, a backend error); the cache
    /// keeps its previous picture then.
    pub result: Result<Committed<'a>, &'a Error>,
    /// The notifications its commit raised (already delivered to sinks).
    pub notifications: &'a [Notification],
}

/// A subsystem's picture as a refresh committed it, written out as a snapshot only when asked
/// (a caller that persists by id never needs it).
#[derive(Clone, Copy)]
pub struct Committed<'a>(&'a SubState);

impl Committed<'_> {
    /// The committed picture.
    pub fn snapshot(&self) -> SubSystemSnapshot {
        self.0.snapshot()
    }
}

impl std::fmt::Debug for Committed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Committed").field(&self.0.key()).finish()
    }
}

/// What an operation report says of one subsystem ([`HwProvider::summarize_each`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubSystemSummary<'a> {
    /// Its natural key.
    pub key: &'a str,
    /// Its status.
    pub status: SubSystemStatus,
    /// How many portals it has.
    pub portals: usize,
    /// How many targets it has.
    pub targets: usize,
    /// Why its status is what it is, as the backend recorded it.
    pub detail: Option<&'a str>,
}

/// What `refresh()` did.
#[derive(Debug, Default)]
pub struct RefreshReport {
    /// Every notification raised, in commit order.
    pub notifications: Vec<Notification>,
    /// How many subsystems were refreshed.
    pub refreshed: usize,
    /// The subsystems that were not refreshed, by id and key, with why.
    pub failures: Vec<(ObjectId, String, Error)>,
}

#[derive(Default)]
struct Busy {
    reenumerating: bool,
    subsystems: HashSet<ObjectId>,
}

struct CacheState {
    health: CacheHealth,
    /// Why the cache is not `Good`, for the errors it causes.
    reason: Option<String>,
}

pub(crate) struct Inner {
    pub(crate) id: ObjectId,
    info: ProviderInfo,
    backend: Box<dyn ProviderBackend>,
    initialized: AtomicBool,
    pub(crate) state: ArcSwap<State>,
    cache: Mutex<CacheState>,
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
    Reenumerate,
    SubSystem(ObjectId),
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut busy = lock(&self.inner.busy);
        match self.kind {
            GateKind::Reenumerate => busy.reenumerating = false,
            GateKind::SubSystem(id) => {
                busy.subsystems.remove(&id);
            }
        }
    }
}

impl Inner {
    fn subject(&self) -> Subject {
        Subject::Provider(self.info.name.clone())
    }

    fn check_initialized(&self) -> Result<(), Error> {
        if self.initialized.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::new(Hresult::VDS_E_INITIALIZE_NOT_CALLED).about(self.subject()))
        }
    }

    fn corrupt_error(&self, cache: &CacheState) -> Error {
        let mut e = Error::new(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT).about(Subject::ProviderCache);
        if let Some(reason) = &cache.reason {
            e = e.because(reason.clone());
        }
        e
    }

    /// Rules 1 and 2 of the module doc.
    pub(crate) fn check_cache(&self) -> Result<(), Error> {
        self.check_initialized()?;
        let cache = lock(&self.cache);
        match cache.health {
            CacheHealth::Good => Ok(()),
            CacheHealth::Corrupt | CacheHealth::Rebuilt => Err(self.corrupt_error(&cache)),
        }
    }

    /// Rules 1–3: the current picture of subsystem `id`.
    pub(crate) fn subsystem(&self, id: ObjectId) -> Result<Arc<SubState>, Error> {
        self.check_cache()?;
        self.state
            .load()
            .subsystems
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))
    }

    pub(crate) fn reenumerating(&self) -> bool {
        lock(&self.busy).reenumerating
    }

    pub(crate) fn busy_error(&self) -> Error {
        Error::new(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS).about(self.subject())
    }

    fn gate_reenumerate(&self) -> Result<Gate<'_>, Error> {
        let mut busy = lock(&self.busy);
        if busy.reenumerating || !busy.subsystems.is_empty() {
            return Err(self.busy_error());
        }
        busy.reenumerating = true;
        Ok(Gate {
            inner: self,
            kind: GateKind::Reenumerate,
        })
    }

    /// The gate of subsystem `sub`; `VDS_E_ANOTHER_CALL_IN_PROGRESS` about it when held, or about
    /// the provider while it reenumerates.
    pub(crate) fn gate_subsystem(&self, sub: &SubState) -> Result<Gate<'_>, Error> {
        let mut busy = lock(&self.busy);
        if busy.reenumerating {
            return Err(self.busy_error());
        }
        if !busy.subsystems.insert(sub.id()) {
            return Err(Error::new(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS)
                .about(Subject::Subsystem(sub.key().to_string())));
        }
        Ok(Gate {
            inner: self,
            kind: GateKind::SubSystem(sub.id()),
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

    fn bad_data(&self, why: impl Into<String>) -> Error {
        Error::new(Hresult::VDS_E_BAD_PROVIDER_DATA)
            .about(self.subject())
            .because(why)
    }

    fn backend_failed(&self, e: Error) -> Error {
        if e == Hresult::VDS_E_PROVIDER_CACHE_CORRUPT {
            let mut cache = lock(&self.cache);
            cache.health = CacheHealth::Corrupt;
            cache.reason = Some(match e.cause() {
                Some(c) => format!("the provider reported it: {c}"),
                None => "the provider reported it".to_string(),
            });
        }
        e.about_if_unset(self.subject())
    }

    /// Commits `snapshot` as the new picture of the subsystem `old` and notifies. The caller holds
    /// the subsystem's gate.
    fn commit_subsystem(
        &self,
        old: &SubState,
        snapshot: SubSystemSnapshot,
    ) -> Result<(Arc<SubState>, Vec<Notification>), Error> {
        if snapshot.key != old.key() {
            return Err(self.bad_data(format!(
                "asked about subsystem {:?}, it answered about {:?}",
                old.key(),
                snapshot.key
            )));
        }
        let new_sub = if old.holds(&snapshot) {
            None
        } else {
            Some(Arc::new(
                SubState::build(self.id, snapshot).map_err(|e| self.bad_data(e.to_string()))?,
            ))
        };
        let Some(new_sub) = new_sub else {
            let current = self
                .state
                .load()
                .subsystems
                .get(&old.id())
                .cloned()
                .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
            return Ok((current, Vec::new()));
        };
        let mut batch = Vec::new();
        self.state.rcu(|current| {
            let next = current.with_subsystem(new_sub.clone());
            batch = diff(current, &next);
            next
        });
        self.notify(&batch);
        Ok((new_sub, batch))
    }

    /// Refreshes subsystem `id` under its gate, and under the guard `outer` gives for its key (a
    /// gate of the caller's, such as a lock between processes), held until the commit. The error is
    /// about the subsystem.
    async fn refresh_one<G>(
        &self,
        id: ObjectId,
        outer: &(dyn Fn(&str) -> Result<G, Error> + Send + Sync),
    ) -> Result<(Arc<SubState>, Vec<Notification>), Error> {
        let old = self
            .state
            .load()
            .subsystems
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        let subject = Subject::Subsystem(old.key().to_string());
        let _gate = self.gate_subsystem(&old)?;
        let _outer = outer(old.key())?;
        // What a mutation committed before we took the gate is the picture to refresh from.
        let old = self
            .state
            .load()
            .subsystems
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED).about(subject.clone()))?;
        // A backend that can answer without the previous picture saves writing it out.
        let answer = match self.backend.refresh_without_previous(old.key()).await {
            Some(answer) => answer.map(|fresh| fresh.finish(|| old.snapshot())),
            None => self.backend.refresh(&old.snapshot()).await,
        };
        let fresh = match answer {
            Ok(fresh) => fresh,
            Err(e) => return Err(self.backend_failed(e.about_if_unset(subject))),
        };
        self.commit_subsystem(&old, fresh)
            .map_err(|e| e.about(subject))
    }

    /// Runs a mutation on subsystem `sub` (already resolved, gate to be taken here) and commits the
    /// subsystem's new picture. Returns what the backend said.
    pub(crate) async fn mutate(
        &self,
        sub: &SubState,
        mutation: Mutation,
    ) -> Result<(Applied, Arc<SubState>), Error> {
        let _gate = self.gate_subsystem(sub)?;
        let subject = Subject::Subsystem(sub.key().to_string());
        let before = sub.snapshot();
        let applied = self
            .backend
            .apply(&before, &mutation)
            .await
            .map_err(|e| self.backend_failed(e.about_if_unset(subject.clone())))?;
        let (new_sub, _) = self
            .commit_subsystem(sub, applied.snapshot.clone())
            .map_err(|e| e.about(subject.clone()))?;
        if let Some(failure) = applied.failure {
            // What the attempt left is committed; the caller learns it failed.
            return Err(self.backend_failed(failure.about_if_unset(subject)));
        }
        Ok((applied, new_sub))
    }
}

/// A hardware provider: the root of the object model. Cheap to clone; clones share one provider.
///
/// ```
/// use vds_model::{HwProvider, sim::SimBackend};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let provider = HwProvider::new(SimBackend::demo());
/// provider.initialize().unwrap();
/// provider.reenumerate().await.unwrap();
/// let subsystems = provider.query_sub_systems().unwrap();
/// assert_eq!(subsystems.len(), 2);
/// # });
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

/// How many subsystems a whole `refresh()` works on at once.
const REFRESHES_AT_ONCE: usize = 128;

impl HwProvider {
    /// A provider over `backend`, not yet initialized and with an empty cache. Until
    /// [`initialize`](Self::initialize), every method answers `VDS_E_INITIALIZE_NOT_CALLED`.
    pub fn new(backend: impl ProviderBackend) -> HwProvider {
        HwProvider::from_box(Box::new(backend))
    }

    /// As [`new`](Self::new), for a backend already boxed (one chosen at run time).
    pub fn from_box(backend: Box<dyn ProviderBackend>) -> HwProvider {
        let info = backend.info();
        HwProvider {
            inner: Arc::new(Inner {
                id: ObjectId::provider(&info.name),
                info,
                backend,
                initialized: AtomicBool::new(false),
                state: ArcSwap::from_pointee(State::default()),
                cache: Mutex::new(CacheState {
                    health: CacheHealth::Good,
                    reason: None,
                }),
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
        cached: impl IntoIterator<Item = SubSystemSnapshot>,
        health: CacheHealth,
    ) -> (HwProvider, Option<crate::InvariantError>) {
        HwProvider::from_cache_boxed(Box::new(backend), cached, health)
    }

    /// As [`from_cache`](Self::from_cache), for a backend already boxed. The snapshots may come
    /// from an iterator that reads them a page at a time: each is indexed as it arrives, so the
    /// whole picture is never held twice.
    pub fn from_cache_boxed(
        backend: Box<dyn ProviderBackend>,
        cached: impl IntoIterator<Item = SubSystemSnapshot>,
        health: CacheHealth,
    ) -> (HwProvider, Option<crate::InvariantError>) {
        let provider = HwProvider::from_box(backend);
        provider.inner.initialized.store(true, Ordering::Release);
        match State::build(provider.inner.id, cached) {
            Ok(state) => {
                provider.inner.state.store(Arc::new(state));
                let mut cache = lock(&provider.inner.cache);
                cache.health = health;
                cache.reason = match health {
                    CacheHealth::Good => None,
                    CacheHealth::Corrupt => Some("the cache is recorded as corrupt".into()),
                    CacheHealth::Rebuilt => Some(
                        "the cache was rebuilt by `vdsadm reenumerate`; a `vdsadm refresh` completes the recovery"
                            .into(),
                    ),
                };
                drop(cache);
                (provider, None)
            }
            Err(e) => {
                provider.mark_cache_corrupt(format!("the cached picture breaks a rule: {e}"));
                (provider, Some(e))
            }
        }
    }

    /// `IVdsProviderPrivate::OnLoad`: marks the provider initialized. Touches no network; the cache
    /// stays as it is (empty for a new provider) until `reenumerate()`.
    pub fn initialize(&self) -> Result<(), Error> {
        self.inner.initialized.store(true, Ordering::Release);
        Ok(())
    }

    /// The provider's id.
    pub fn id(&self) -> ObjectId {
        self.inner.id
    }

    /// The provider's name (from which its id is derived).
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// `IVdsProvider::GetProperties`.
    pub fn get_properties(&self) -> Result<ProviderProp, Error> {
        self.inner.check_initialized()?;
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
    pub fn get_provider_type(&self) -> Result<crate::HwProviderType, Error> {
        self.inner.check_initialized()?;
        Ok(self.inner.info.hw_type)
    }

    /// `IVdsHwProvider::QuerySubSystems`: the subsystems in the cache (an empty enumerator when there
    /// are none). `VDS_E_ANOTHER_CALL_IN_PROGRESS` while a reenumerate runs.
    pub fn query_sub_systems(&self) -> Result<EnumVdsObject<SubSystem>, Error> {
        self.inner.check_cache()?;
        if self.inner.reenumerating() {
            return Err(self.inner.busy_error());
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
    pub fn sub_system_by_key(&self, key: &str) -> Result<SubSystem, Error> {
        self.inner.check_cache()?;
        let id = self.inner.id.child("subsystem", key);
        if self.inner.state.load().subsystems.contains_key(&id) {
            Ok(SubSystem::new(self.inner.clone(), id))
        } else {
            Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Subsystem(key.into())))
        }
    }

    /// The subsystem whose id is `id`. `VDS_E_OBJECT_NOT_FOUND` when there is none.
    pub fn sub_system_by_id(&self, id: ObjectId) -> Result<SubSystem, Error> {
        self.inner.check_cache()?;
        if self.inner.state.load().subsystems.contains_key(&id) {
            Ok(SubSystem::new(self.inner.clone(), id))
        } else {
            Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND))
        }
    }

    /// `IVdsHwProvider::Reenumerate`: asks the backend which subsystems exist, commits arrivals,
    /// departures and their pictures, and returns the notifications it delivered to sinks.
    pub async fn reenumerate(&self) -> Result<Vec<Notification>, Error> {
        let inner = &self.inner;
        inner.check_initialized()?;
        let _gate = inner.gate_reenumerate()?;
        let health = lock(&inner.cache).health;
        let previous = if health == CacheHealth::Good {
            inner.state.load().export()
        } else {
            Vec::new()
        };
        let answer = match inner.backend.reenumerate(&previous).await {
            Ok(answer) => answer,
            Err(e) => return Err(inner.backend_failed(e)),
        };
        // A corrupt cache is not reused, not even for unchanged subsystems.
        let reuse = if health == CacheHealth::Good {
            inner.state.load_full()
        } else {
            Arc::new(State::default())
        };
        let next =
            State::rebuild(inner.id, answer, &reuse).map_err(|e| inner.bad_data(e.to_string()))?;
        let old = inner.state.swap(Arc::new(next));
        {
            let mut cache = lock(&inner.cache);
            if cache.health != CacheHealth::Good {
                cache.health = CacheHealth::Rebuilt;
                cache.reason = Some(
                    "the cache was rebuilt by `vdsadm reenumerate`; a `vdsadm refresh` completes the recovery".into(),
                );
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

    /// `IVdsHwProvider::Refresh`: refreshes every known subsystem (finding no new ones), each under
    /// its own gate and concurrently, committing each as soon as it is done. See
    /// [`refresh_each`](Self::refresh_each).
    pub async fn refresh(&self) -> Result<RefreshReport, Error> {
        self.refresh_with(|_| Ok(()), |_| {}).await
    }

    /// [`refresh`](Self::refresh), with two hooks: `gate` is asked for a guard for each subsystem
    /// (by key) once the model's own gate is taken, and holds it until the subsystem is committed
    /// (a lock between processes, say; an error makes that subsystem fail, as a busy gate does);
    /// `on_done` is called as each subsystem is committed (or found busy, or failed), for example to
    /// persist it at once.
    ///
    /// Errors of the whole call: `VDS_E_INITIALIZE_NOT_CALLED`; `VDS_E_PROVIDER_CACHE_CORRUPT` when the
    /// cache is corrupt (nothing is refreshed) or the backend reported it so; and
    /// `VDS_E_ANOTHER_CALL_IN_PROGRESS` while a reenumerate runs. Every other failure is one
    /// subsystem's, in [`RefreshReport::failures`]. A `Rebuilt` cache becomes `Good` when every
    /// subsystem was refreshed.
    pub async fn refresh_with<G>(
        &self,
        gate: impl Fn(&str) -> Result<G, Error> + Send + Sync,
        on_done: impl Fn(SubsystemRefreshed<'_>) + Send + Sync,
    ) -> Result<RefreshReport, Error> {
        let inner = &self.inner;
        inner.check_initialized()?;
        {
            let cache = lock(&inner.cache);
            if cache.health == CacheHealth::Corrupt {
                return Err(inner.corrupt_error(&cache));
            }
        }
        if inner.reenumerating() {
            return Err(inner.busy_error());
        }
        let state = inner.state.load_full();
        let on_done = &on_done;
        let gate = &gate;
        let runs = state.order.iter().map(|id| {
            let id = *id;
            let key = state
                .subsystems
                .get(&id)
                .map(|s| s.key().to_string())
                .unwrap_or_default();
            async move {
                let result = inner.refresh_one(id, gate).await;
                match &result {
                    Ok((sub, batch)) => on_done(SubsystemRefreshed {
                        id,
                        key: &key,
                        result: Ok(Committed(sub)),
                        notifications: batch,
                    }),
                    Err(e) => on_done(SubsystemRefreshed {
                        id,
                        key: &key,
                        result: Err(e),
                        notifications: &[],
                    }),
                }
                (id, key, result)
            }
        });
        // Made first, then run: a stream over the lazy map would hold its closure across awaits.
        let runs: Vec<_> = runs.collect();
        // A bounded number at once, in order: each run holds its subsystem's picture written out
        // as a snapshot while the backend works, and the backend itself only contacts so many
        // arrays at once (a SendTargets provider, 64).
        let results: Vec<_> = futures_util::StreamExt::collect(futures_util::StreamExt::buffered(
            futures_util::stream::iter(runs),
            REFRESHES_AT_ONCE,
        ))
        .await;
        let mut report = RefreshReport::default();
        let mut corrupt = None;
        for (id, key, result) in results {
            match result {
                Ok((_, batch)) => {
                    report.refreshed += 1;
                    report.notifications.extend(batch);
                }
                Err(e) => {
                    if e == Hresult::VDS_E_PROVIDER_CACHE_CORRUPT {
                        corrupt = Some(e.clone());
                    }
                    report.failures.push((id, key, e));
                }
            }
        }
        if let Some(e) = corrupt {
            return Err(e.about(Subject::ProviderCache));
        }
        let mut cache = lock(&inner.cache);
        if cache.health == CacheHealth::Rebuilt && report.failures.is_empty() {
            cache.health = CacheHealth::Good;
            cache.reason = None;
        }
        Ok(report)
    }

    /// Refreshes one subsystem under its gate alone and returns the notifications it delivered.
    /// Errors are about the subsystem; a backend error leaves its picture as it was. A subsystem
    /// refresh never clears a `Rebuilt` cache (only a whole `refresh()` does), but it runs on one.
    pub async fn refresh_subsystem(
        &self,
        subsystem: &SubSystem,
    ) -> Result<Vec<Notification>, Error> {
        let inner = &self.inner;
        inner.check_initialized()?;
        {
            let cache = lock(&inner.cache);
            if cache.health == CacheHealth::Corrupt {
                return Err(inner.corrupt_error(&cache));
            }
        }
        let (_, batch) = inner.refresh_one(subsystem.id(), &|_: &str| Ok(())).await?;
        Ok(batch)
    }

    /// Flags the cache corrupt (for example when its persistent copy failed a check), saying why.
    pub fn mark_cache_corrupt(&self, reason: impl Into<String>) {
        let mut cache = lock(&self.inner.cache);
        cache.health = CacheHealth::Corrupt;
        cache.reason = Some(reason.into());
    }

    /// The cache's health.
    pub fn cache_health(&self) -> CacheHealth {
        lock(&self.inner.cache).health
    }

    /// Why the cache is not `Good`, when it is not.
    pub fn cache_reason(&self) -> Option<String> {
        lock(&self.inner.cache).reason.clone()
    }

    /// Every subsystem's snapshot, in enumeration order: what a persistent cache saves. Answers even
    /// when the cache is flagged corrupt (so it can be kept aside for inspection).
    pub fn export(&self) -> Vec<SubSystemSnapshot> {
        self.inner.state.load().export()
    }

    /// [`export`](Self::export) one snapshot at a time, in enumeration order: `f` sees each, and
    /// no more than one is held at once (a picture of thousands of subsystems, written out as
    /// snapshots all together, is several times its size in the model).
    pub fn export_each(&self, mut f: impl FnMut(SubSystemSnapshot)) {
        let state = self.inner.state.load_full();
        for sub in state.order.iter().filter_map(|id| state.subsystems.get(id)) {
            f(sub.snapshot());
        }
    }

    /// What a report says of each subsystem, in enumeration order, read from the picture
    /// without writing out a snapshot (which copies every target and group).
    pub fn summarize_each(&self, mut f: impl FnMut(SubSystemSummary<'_>)) {
        let state = self.inner.state.load_full();
        for sub in state.order.iter().filter_map(|id| state.subsystems.get(id)) {
            let (portals, targets) = sub.counts();
            f(SubSystemSummary {
                key: sub.key(),
                status: sub.prop().status,
                portals,
                targets,
                detail: sub.detail().map(String::as_str),
            });
        }
    }

    /// One subsystem's snapshot by id (even when the cache is flagged corrupt), if cached.
    pub fn export_subsystem(&self, id: ObjectId) -> Option<SubSystemSnapshot> {
        self.inner
            .state
            .load()
            .subsystems
            .get(&id)
            .map(|s| s.snapshot())
    }

    /// `IVdsService::Advise`: registers a sink; returns its cookie.
    pub fn advise(&self, sink: impl Fn(&[Notification]) + Send + Sync + 'static) -> u32 {
        let cookie = self.inner.next_cookie.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.sinks).push((cookie, Arc::new(sink)));
        cookie
    }

    /// `IVdsService::Unadvise`: `VDS_E_BAD_COOKIE` for a cookie that is not registered.
    pub fn unadvise(&self, cookie: u32) -> Result<(), Error> {
        let mut sinks = lock(&self.inner.sinks);
        let before = sinks.len();
        sinks.retain(|(c, _)| *c != cookie);
        if sinks.len() == before {
            Err(Error::new(Hresult::VDS_E_BAD_COOKIE).because(format!("cookie {cookie}")))
        } else {
            Ok(())
        }
    }
}
