//! The VDS service (`IVdsService` of this project): the one way a front end reaches the object model
//! and the store.
//!
//! It opens a [store](vds_store), builds provider instances from the configuration through the
//! registry of provider kinds ([`vds_providers::kinds`]) — so a new kind plugs in without any change
//! here —, loads each provider's cached picture into a model [`HwProvider`],
//! runs every operation (queries, refresh, reenumerate, every mutation, the registration of
//! providers and subsystems), persists what each operation committed, holds the cross-process
//! locks, and fans notifications out to the sinks registered with [`Service::advise`]. With
//! [`Service::watch`] it also runs the providers' watchers (an iSNS server's state change
//! notifications) and a periodic refresh, turning what they report into targeted refreshes and
//! reenumerates whose notifications reach the same sinks.
//!
//! ```text
//!   vdsadm, vdsd  ──►  Service  ──►  HwProvider (vds-model)  ──►  backend (vds-providers)  ──►  array
//!                         │
//!                         └──►  Store (vds-store): configuration, secrets, cache, locks, state
//! ```
//!
//! Queries are synchronous and answer from the cache; they never wait on the network and never
//! write (a query of one subsystem reads only that subsystem's rows). Operations are `async` and
//! run on the caller's tokio runtime. Every answer is a document of `vds-api`, so the CLI's `--json`
//! and the daemon's API are the same documents; every failure is a [`vds_model::Error`].
//!
//! # Gates
//!
//! VDS's rule — a conflicting call fails at once with `VDS_E_ANOTHER_CALL_IN_PROGRESS`, nothing
//! waits — holds within a process (the model's gates) and between processes (the store's `flock`s):
//! a refresh or a mutation of one subsystem holds that subsystem alone, so an array that does not
//! answer holds up nothing else; a reenumerate holds its provider.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
mod locate;
mod mutate;
mod operations;
mod providers;
mod renewing;
mod view;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use vds_model::{Error, Hresult, HwProvider, Notification, Subject};
use vds_store::Store;

pub use admin::{NewSubsystem, NewSubsystemCredential, SubsystemChange, discover};
pub use locate::{Located, portal_address};
pub use mutate::Change;
pub use operations::Scope;
pub use vds_providers::ProgressFn;
pub use view::Depth;
pub use watch::{
    BUSY_RETRY_FOR, EVENT_QUEUE, STOP_DEADLINE, Watch, WatchAction, WatchEvent, WatchOptions,
};

/// Names a subsystem: by name, with its provider when two providers have a subsystem of that name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsystemSel {
    /// The provider, when given.
    pub provider: Option<String>,
    /// The subsystem's name (its key).
    pub name: String,
}

impl SubsystemSel {
    /// A subsystem by name alone.
    pub fn named(name: impl Into<String>) -> SubsystemSel {
        SubsystemSel {
            provider: None,
            name: name.into(),
        }
    }
}

/// A sink of notifications: the provider that raised them and the batch (`IVdsAdviseSink::OnNotify`).
pub type Sink = dyn Fn(&str, &[Notification]) + Send + Sync;

/// How to open the service.
#[derive(Clone)]
pub struct ServiceOptions {
    /// The store's directory.
    pub root: PathBuf,
    /// Create the store when it does not exist (commands that change it); queries never create one.
    pub create: bool,
    /// Called as subsystems finish during a long operation.
    pub progress: Option<Arc<ProgressFn>>,
    /// Hold no provider's whole picture: a refresh of a provider then loads, refreshes, saves and
    /// drops its subsystems a page at a time, so its memory does not grow with the fleet. For a
    /// front end that runs one operation and exits (vdsadm); a daemon, which answers queries from
    /// the pictures it holds, leaves it off.
    pub paged: bool,
}

impl ServiceOptions {
    /// Options for the store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> ServiceOptions {
        ServiceOptions {
            root: root.into(),
            create: false,
            progress: None,
            paged: false,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) providers: Mutex<HashMap<String, Arc<providers::Entry>>>,
    /// The configured providers' names, as last read, for [`Inner::resolve_held`]; dropped with
    /// every change of the configuration the service makes (each forgets a provider) and by
    /// [`Service::reload`].
    pub(crate) configured: Mutex<Option<Arc<[String]>>>,
    sinks: Mutex<Vec<(u32, Arc<Sink>)>>,
    next_cookie: AtomicU32,
    pub(crate) progress: Option<Arc<ProgressFn>>,
    /// See [`ServiceOptions::paged`].
    pub(crate) paged: bool,
    /// Set by [`Service::hold_pictures`]: the picture a query loads is the live one.
    pub(crate) holds: std::sync::atomic::AtomicBool,
    /// Held while a provider's picture is loaded, so that callers asking at once (a daemon's
    /// refresher, its event feed and its first clients) wait for one load instead of each making
    /// their own.
    pub(crate) loading: Mutex<()>,
    /// Notifications being collected for the subsystem a mutation runs on (by subsystem id).
    captures: Mutex<HashMap<vds_model::ObjectId, Vec<Notification>>>,
    /// Notifications the models raised about subsystems not saved yet, with their provider, in
    /// the order raised: the service's sinks get them once the cache holds what they describe.
    pending: Mutex<Vec<(String, Notification)>>,
    /// The temporary store of [`Service::simulator`], removed with the service.
    _scratch: Option<tempfile::TempDir>,
}

/// The service. Cheap to clone: clones share one service.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("root", &self.inner.store.root())
            .finish_non_exhaustive()
    }
}

/// The name of the provider [`Service::simulator`] holds (the simulator's own name, so ids are
/// those of the model's simulator).
pub const SIMULATOR_PROVIDER: &str = vds_model::sim::SIM_PROVIDER_NAME;

impl Service {
    /// Opens the service over the store at `options.root`. Reads nothing yet: each call loads what it
    /// needs. Without `create`, a missing store is an error naming the path (`there is no store`).
    pub fn open(options: ServiceOptions) -> Result<Service, Error> {
        let store = if options.create {
            Store::open(&options.root)?
        } else {
            Store::open_existing(&options.root)?
        };
        Ok(Service::over(store, options.progress, options.paged, None))
    }

    fn over(
        store: Store,
        progress: Option<Arc<ProgressFn>>,
        paged: bool,
        scratch: Option<tempfile::TempDir>,
    ) -> Service {
        Service {
            inner: Arc::new(Inner {
                store,
                providers: Mutex::new(HashMap::new()),
                configured: Mutex::new(None),
                sinks: Mutex::new(Vec::new()),
                next_cookie: AtomicU32::new(1),
                progress,
                paged,
                holds: std::sync::atomic::AtomicBool::new(false),
                loading: Mutex::new(()),
                captures: Mutex::new(HashMap::new()),
                pending: Mutex::new(Vec::new()),
                _scratch: scratch,
            }),
        }
    }

    /// Makes every picture the service loads from now on the live one (over the backend the
    /// provider's kind builds, as operations need), queries' included: what a daemon, which
    /// holds its pictures for its life and refreshes them, wants, so that a provider's picture is
    /// loaded once instead of once for queries and again for the first operation. A provider
    /// whose backend cannot be built (a secret that cannot be read, say) is still loaded for
    /// queries alone. A one-shot front end leaves it off: its queries then read no secret and
    /// build no backend.
    pub fn hold_pictures(&self) {
        self.inner
            .holds
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// A throwaway service: a store in a new temporary directory (removed when the last clone of the
    /// service drops) holding one simulator provider, [`SIMULATOR_PROVIDER`], reenumerated and
    /// refreshed, so that it answers at once. Nothing the caller does is kept.
    pub async fn simulator() -> Result<Service, Error> {
        let dir = tempfile::Builder::new()
            .prefix("vds-sim-")
            .tempdir()
            .map_err(|e| Error::from(e).about(Subject::Other("temporary store".into())))?;
        let store = Store::open(dir.path())?;
        let service = Service::over(store, None, false, Some(dir));
        service
            .add_provider(SIMULATOR_PROVIDER, "sim", toml::Table::new(), true)
            .await?;
        Ok(service)
    }

    /// Forgets every provider picture and backend held, so that the next call builds them again
    /// from the store: what a long-running front end does when told the configuration changed by
    /// hand (a daemon's SIGHUP). Nothing is lost: everything held was saved.
    pub fn reload(&self) {
        self.inner
            .providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self
            .inner
            .configured
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        self.inner.store.root()
    }

    /// `IVdsService::Advise`: `sink` receives every batch of notifications from now on, with the
    /// provider that raised it. Returns the cookie for [`unadvise`](Self::unadvise). A batch is
    /// delivered once the cache holds what it describes (after the subsystem's save, even a failed
    /// one), so a sink that queries on a notification reads the new state. Sinks run inside the
    /// operation that raised the batch (which still holds its gate): they must be quick, and an
    /// operation they start on the same subsystem is refused.
    pub fn advise(&self, sink: impl Fn(&str, &[Notification]) + Send + Sync + 'static) -> u32 {
        let cookie = self.inner.next_cookie.fetch_add(1, Ordering::Relaxed);
        self.inner.sinks().push((cookie, Arc::new(sink)));
        cookie
    }

    /// `IVdsService::Unadvise`: `VDS_E_BAD_COOKIE` (0x80042411) for a cookie that is not registered.
    pub fn unadvise(&self, cookie: u32) -> Result<(), Error> {
        let mut sinks = self.inner.sinks();
        let before = sinks.len();
        sinks.retain(|(c, _)| *c != cookie);
        if sinks.len() == before {
            Err(Error::new(Hresult::VDS_E_BAD_COOKIE)
                .because(format!("no sink has cookie {cookie}")))
        } else {
            Ok(())
        }
    }
}

impl Inner {
    fn sinks(&self) -> std::sync::MutexGuard<'_, Vec<(u32, Arc<Sink>)>> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn captures(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<vds_model::ObjectId, Vec<Notification>>> {
        self.captures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, Notification)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the one model sink of a provider: it hands each batch to the capture of a
    /// mutation running on the subsystem concerned at once, and keeps it for the service's sinks
    /// until the subsystem is saved ([`deliver`](Self::deliver)).
    pub(crate) fn forward_notifications(self: &Arc<Inner>, provider: &str, model: &HwProvider) {
        let provider = provider.to_string();
        // The model holds the sink and the service holds the model: a weak link back avoids a
        // cycle that would keep both alive.
        let weak = Arc::downgrade(self);
        model.advise(move |batch: &[Notification]| {
            let Some(inner) = weak.upgrade() else { return };
            {
                let mut captures = inner.captures();
                for n in batch {
                    if let Some(c) = captures.get_mut(&n.subsystem) {
                        c.push(*n);
                    }
                }
            }
            inner
                .pending()
                .extend(batch.iter().map(|n| (provider.clone(), *n)));
        });
    }

    /// Hands the service's sinks the pending notifications of `provider` about `subsystems` (all
    /// of the provider's when `None`), in the order raised, as one batch. Called once what they
    /// describe is saved, and at the end of every operation for whatever is left.
    pub(crate) fn deliver(&self, provider: &str, subsystems: Option<&[vds_model::ObjectId]>) {
        let mut batch = Vec::new();
        self.pending().retain(|(p, n)| {
            let take = p == provider && subsystems.is_none_or(|ids| ids.contains(&n.subsystem));
            if take {
                batch.push(*n);
            }
            !take
        });
        if batch.is_empty() {
            return;
        }
        let sinks: Vec<Arc<Sink>> = self.sinks().iter().map(|(_, s)| s.clone()).collect();
        for sink in sinks {
            sink(provider, &batch);
        }
    }
}
