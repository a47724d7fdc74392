//! VDS hardware providers: implementations of the [`vds_model::ProviderBackend`] seam, one module
//! per provider *kind*, and the registry ([`kinds`]) through which the service builds provider
//! instances from the configuration without knowing any kind.
//!
//! - [`sendtargets`]: arrays described by their discovery portals; portals, targets and portal
//!   groups come from iSCSI SendTargets discovery, portal status from discovery logins.
//!   Discovery-only: it changes nothing on the array.
//! - [`isns`]: every array of an iSCSI fabric from its iSNS server (RFC 4171): one subsystem per
//!   network entity with a target, portal groups by their tags, portal status from probes, and a
//!   watcher that turns state change notifications into refreshes. Discovery-only.
//! - [`sim`]: the model's simulator as a provider kind, its array kept in the store between
//!   processes, so every command runs against it exactly as against a real array.
//! - [`tgt`]: one tgtd managed through its management socket (portals, targets, CHAP): the first
//!   kind that changes a real target.
//!
//! A kind turns a provider's settings (its `[[provider]]` table) and, for kinds whose subsystems the
//! administrator registers, the registrations into a backend. Backends own their network I/O but no
//! runtime: they run on the service's. The model (`vds-model`) owns the cache, the ids, the gates
//! and the notifications, and never sees a socket.
//!
//! # Example
//!
//! ```no_run
//! use vds_model::HwProvider;
//! use vds_providers::sendtargets::{SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = SendTargetsBackend::new(
//!     "vds-sendtargets",
//!     vec![SendTargetsSubsystem {
//!         name: "lab".into(),
//!         portals: vec!["127.0.0.1:3260".parse()?],
//!         initiator_name: None,
//!         chap: None,
//!         mutual: None,
//!     }],
//!     SendTargetsOptions::default(),
//! )?;
//! let provider = HwProvider::new(backend);
//! provider.initialize()?;
//! provider.reenumerate().await?;
//! let lab = provider.sub_system_by_key("lab")?;
//! println!("{:?}", lab.get_properties()?.status);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod isns;
pub mod sendtargets;
pub mod sim;
pub mod tgt;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use vds_model::{Error, Hresult, ProviderBackend, SubSystemSnapshot};
use vds_secret::Secret;

/// A CHAP credential of a registration: the user, and the secret as the service could read it (a
/// secret that cannot be read makes that one subsystem fail, not the provider).
#[derive(Clone, Debug)]
pub struct Credential {
    /// The CHAP user name.
    pub user: String,
    /// The secret, or why it could not be read.
    pub secret: Result<Secret, Error>,
}

/// A subsystem the administrator registered with a provider (for kinds that take registrations).
#[derive(Clone, Debug, Default)]
pub struct Registration {
    /// The subsystem's name: its key.
    pub name: String,
    /// Where to reach it, as the administrator typed it (`HOST[:PORT]`).
    pub portals: Vec<String>,
    /// The initiator name to present, when not the default.
    pub initiator_name: Option<String>,
    /// One-way CHAP.
    pub chap: Option<Credential>,
    /// Mutual CHAP.
    pub mutual: Option<Credential>,
}

/// Progress of a long operation: `done` of `total` subsystems finished.
pub type ProgressFn = dyn Fn(usize, usize) + Send + Sync;

/// What a provider kind keeps between processes (the simulator's array): bytes the kind alone
/// interprets, stored by the service.
pub trait KindState: Send + Sync {
    /// The bytes, or `None` when nothing was written yet.
    fn read(&self) -> Result<Option<Vec<u8>>, Error>;
    /// Replaces the bytes.
    fn write(&self, bytes: &[u8]) -> Result<(), Error>;
    /// Holds the state for a read-modify-write until the guard drops (across processes); waits a
    /// short, bounded time.
    fn lock(&self) -> Result<Box<dyn Send>, Error>;
}

/// The registrations a backend is built for ([`BuildContext::registrations`]).
pub type Registrations<'a> = Box<dyn Iterator<Item = Registration> + 'a>;

/// Everything a kind may use to build a backend.
pub struct BuildContext<'a> {
    /// The provider's name (its id and every object id under it derive from it).
    pub name: &'a str,
    /// The kind's settings: every key of the provider's `[[provider]]` table but `name` and `kind`.
    pub settings: &'a toml::Table,
    /// The registered subsystems, in order (none for kinds that enumerate their own), made one at
    /// a time as the kind takes them: a fleet's thousands are never all held at once.
    pub registrations: Registrations<'a>,
    /// The kind's state between processes.
    pub state: Arc<dyn KindState>,
    /// Called as subsystems finish during a reenumerate, for a progress bar.
    pub progress: Option<Arc<ProgressFn>>,
}

/// What a provider's watcher asks of the service ([`ProviderKind::watch`]), or tells it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WatchMessage {
    /// Something in the subsystem with this key changed: refresh it. A key the provider does not
    /// know yet is a subsystem that arrived: reenumerate.
    Refresh(String),
    /// Subsystems arrived or departed, or the watcher cannot tell what changed: reenumerate.
    Reenumerate,
    /// A problem the watcher recovers from by itself (the server went away, say), for the log.
    Problem(Error),
}

/// A watcher: runs until it is told to stop, or fails.
pub type WatchFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// The provider's current picture, as the service holds it.
pub type PictureFn = dyn Fn() -> Vec<SubSystemSnapshot> + Send + Sync;

/// Everything a kind's watcher gets from the service that runs it.
pub struct WatchContext {
    /// The provider's name.
    pub name: String,
    /// The kind's settings (as for [`BuildContext::settings`]).
    pub settings: toml::Table,
    /// Where the watcher sends what it asks for (bounded: a watcher that outruns the service
    /// waits).
    pub messages: tokio::sync::mpsc::Sender<WatchMessage>,
    /// The provider's current picture, to tell which subsystem an event concerns.
    pub picture: Arc<PictureFn>,
    /// Becomes `true` (or is dropped) when the watcher must stop: it then says goodbye to
    /// whatever it registered with, within a short deadline, and returns `Ok`.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// What the service needs to know of a kind to present it and to check what is given to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// The kind's name in the configuration (`sendtargets`).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// True when the kind changes arrays (portal status, targets, portal groups).
    pub manages_arrays: bool,
    /// True when the administrator registers the subsystems (`subsystem add`); false when the
    /// kind enumerates its own.
    pub takes_registrations: bool,
}

/// A provider kind: turns configuration into a backend. See the crate documentation.
pub trait ProviderKind: Send + Sync + 'static {
    /// What the kind is.
    fn info(&self) -> KindInfo;

    /// Checks the kind's settings (when a provider is added, and before it is built); the error
    /// names the setting and what is wrong.
    fn check_settings(&self, settings: &toml::Table) -> Result<(), Error>;

    /// The settings a new provider is written with: `settings` (checked) with the defaults the
    /// kind resolves once, when the provider is added (the tgt kind's socket path), so that every
    /// later process uses the same values.
    fn complete_settings(&self, settings: &toml::Table) -> Result<toml::Table, Error> {
        self.check_settings(settings)?;
        Ok(settings.clone())
    }

    /// What a new provider of this kind starts with: its initial state (the simulator's
    /// demonstration array), when it has one.
    fn initial_state(&self, settings: &toml::Table) -> Result<Option<Vec<u8>>, Error> {
        let _ = settings;
        Ok(None)
    }

    /// Checks a registration before it is saved (portals parse, credentials are complete); the
    /// error names what is wrong. Kinds without registrations refuse every one.
    fn check_registration(&self, registration: &Registration) -> Result<(), Error> {
        let _ = registration;
        Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED).because(format!(
            "a {} provider enumerates its own subsystems; they are not registered",
            self.info().name
        )))
    }

    /// Builds the backend.
    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn ProviderBackend>, Error>;

    /// The kind's watcher, for a provider whose arrays can tell when they change (an iSNS server's
    /// state change notifications): a long-running task that sends [`WatchMessage`]s, which the
    /// service turns into targeted refreshes and reenumerates, whose notifications reach the
    /// advise sinks. `None` (the default) when there is nothing to watch.
    fn watch(&self, ctx: WatchContext) -> Result<Option<WatchFuture>, Error> {
        let _ = ctx;
        Ok(None)
    }

    /// What the kind undoes outside the store when a provider with `settings` is removed (an iSNS
    /// Control node's registration in its server), as a task of its own with its own deadline;
    /// `None` (the default) when there is nothing. A failure does not stop the removal: it is
    /// reported beside it.
    fn retire(&self, settings: &toml::Table) -> Option<WatchFuture> {
        let _ = settings;
        None
    }
}

/// Every provider kind this build knows, in the order they are listed to people.
pub fn kinds() -> &'static [&'static dyn ProviderKind] {
    static KINDS: [&dyn ProviderKind; 4] = [
        &sendtargets::SendTargetsKind,
        &sim::SimKind,
        &tgt::TgtKind,
        &isns::IsnsKind,
    ];
    &KINDS
}

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static dyn ProviderKind> {
    kinds().iter().copied().find(|k| k.info().name == name)
}

/// The unknown-setting error every kind gives: names the key and the settings the kind knows.
pub(crate) fn unknown_setting(kind: &str, key: &str, known: &[&str]) -> Error {
    let known = if known.is_empty() {
        "it has none".to_string()
    } else {
        format!("it knows {}", known.join(", "))
    };
    Error::new(Hresult::E_INVALIDARG).because(format!(
        "a {kind} provider has no setting {key:?} ({known})"
    ))
}
