//! Refresh and reenumerate: the operations that talk to arrays, run on the live providers, persist
//! what they commit, and report what they did and what they could not do.
//!
//! - A refresh runs each subsystem under its own gate and its own cross-process lock, concurrently;
//!   each subsystem is saved as soon as it is committed (in batches: a subsystem that finishes while
//!   a batch is being written waits for the next one), so a slow array delays nothing else, in
//!   memory or on disk. A subsystem that is busy, or that its provider fails to refresh, is reported
//!   and the others go on.
//! - A reenumerate holds its provider (exclusively), replaces its set of subsystems and saves it
//!   with [`vds_store::Store::save_enumeration`]. On a damaged cache file it first has the store
//!   keep the file aside and start an empty one (every provider then answers
//!   `VDS_E_PROVIDER_CACHE_CORRUPT` until it reenumerates and refreshes: the documented recovery).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use vds_api::{ErrorBody, NotificationDoc, OperationReport, SubsystemFailure};
use vds_model::{
    CacheHealth, Error, Fresh, HwProvider, Notification, ObjectId, ProviderBackend,
    SubSystemSnapshot, Subject,
};
use vds_store::{Renewal, Selection, StoreError, StoreLock};

use crate::renewing::Renewals;
use crate::view::{Row, refreshed, refreshed_of, rows_of, worst};
use crate::{Inner, Service, SubsystemSel};

/// What a refresh covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every subsystem of every provider.
    All,
    /// Every subsystem of one provider.
    Provider(String),
    /// One subsystem.
    Subsystem(SubsystemSel),
}

/// How many committed subsystems one save writes at most.
const SAVE_BATCH: usize = 256;

/// How long a persister waits for more committed subsystems to save with the first of a batch.
const SAVE_GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// How many subsystems a page of a paged refresh holds (see `refresh_provider_paged`).
const PAGE: usize = 16;

/// How many pages a paged refresh works on at once: enough subsystems in flight to keep a
/// provider's connections busy (`PAGE * PAGES_AT_ONCE` is above the 64 a SendTargets provider
/// opens at once by default), few enough that memory stays small.
const PAGES_AT_ONCE: usize = 8;

/// A running [`Inner::persister`].
struct Persister {
    tx: Feed,
    task: tokio::task::JoinHandle<Vec<(String, Error)>>,
}

impl Persister {
    /// Waits for everything sent to be saved; the keys whose save failed, with why.
    async fn finish(self) -> Vec<(String, Error)> {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

/// How many committed pictures a persister holds, sent and not yet saved.
#[derive(Default)]
struct Backlog {
    count: std::sync::atomic::AtomicUsize,
    saved: tokio::sync::Notify,
}

/// What a persister is handed: a committed picture, or the id of a subsystem of the model it
/// saves from (whose picture it writes out when it saves: a refresh of thousands of subsystems
/// then queues ids, not pictures, while the cache is written).
enum Committed {
    Picture(SubSystemSnapshot),
    Of(ObjectId),
    /// A subsystem whose picture is the one cached: only its time moves.
    Renewed(Renewal),
}

/// The sending side of a persister.
#[derive(Clone)]
struct Feed {
    tx: tokio::sync::mpsc::UnboundedSender<Committed>,
    backlog: Arc<Backlog>,
    /// The persister saves from a model that outlives it: send ids.
    by_id: bool,
}

impl Feed {
    /// Hands over subsystem `id`, committed; `picture` writes its picture out, when the persister
    /// is sent pictures.
    fn send(&self, id: ObjectId, picture: impl FnOnce() -> SubSystemSnapshot) {
        let item = if self.by_id {
            Committed::Of(id)
        } else {
            Committed::Picture(picture())
        };
        self.queue(item);
    }

    /// Hands over a subsystem whose picture is the one cached ([`vds_store::Stamp::renew`]).
    fn renew(&self, renewal: Renewal) {
        self.queue(Committed::Renewed(renewal));
    }

    fn queue(&self, item: Committed) {
        use std::sync::atomic::Ordering;
        self.backlog.count.fetch_add(1, Ordering::AcqRel);
        // The receiver lives until the persister ends, after the refresh.
        if self.tx.send(item).is_err() {
            self.backlog.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Waits until fewer than `limit` pictures wait to be saved: what keeps a paged refresh from
    /// discovering faster than the cache is written, piling pictures up in memory.
    async fn room(&self, limit: usize) {
        use std::sync::atomic::Ordering;
        loop {
            let saved = self.backlog.saved.notified();
            tokio::pin!(saved);
            saved.as_mut().enable();
            if self.backlog.count.load(Ordering::Acquire) < limit {
                return;
            }
            saved.await;
        }
    }
}

/// The backend of the model of one page of a paged refresh: the provider's backend (shared by
/// every page), with the answers it already gave for the page's subsystems
/// ([`ProviderBackend::refresh_without_previous`]), each handed to the model once, so no array is
/// asked twice.
struct PageBackend {
    backend: Arc<dyn ProviderBackend>,
    answers: Mutex<HashMap<String, Result<Fresh, Error>>>,
}

#[async_trait::async_trait]
impl ProviderBackend for PageBackend {
    fn info(&self) -> vds_model::ProviderInfo {
        self.backend.info()
    }

    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        self.backend.reenumerate(previous).await
    }

    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        self.backend.refresh(previous).await
    }

    async fn refresh_without_previous(&self, key: &str) -> Option<Result<Fresh, Error>> {
        let given = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        match given {
            Some(answer) => Some(answer),
            None => self.backend.refresh_without_previous(key).await,
        }
    }

    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &vds_model::Mutation,
    ) -> Result<vds_model::Applied, Error> {
        self.backend.apply(subsystem, mutation).await
    }
}

fn failure(provider: &str, subsystem: &str, e: &Error) -> SubsystemFailure {
    SubsystemFailure {
        provider: provider.to_string(),
        subsystem: subsystem.to_string(),
        error: ErrorBody {
            hresult: e.code_hex(),
            name: e.code_name(),
            message: e.message(),
            subject: None,
        },
    }
}

/// What asking a subsystem of a page for its picture without the previous one gave.
enum Asked {
    /// The picture saved last: nothing to read, diff or notify; its report row, and what saving
    /// it records.
    Unchanged(Row, Renewal),
    /// The model must refresh it: its cross-process lock (or why it could not be taken), and the
    /// backend's answer when it gave one.
    Model(Result<StoreLock, Error>, Option<Result<Fresh, Error>>),
}

/// What one provider's part of an operation produced.
#[derive(Default)]
struct Part {
    health: Option<CacheHealth>,
    notifications: Vec<NotificationDoc>,
    subsystems: Vec<vds_api::RefreshedSubsystem>,
    /// A paged refresh's rows, kept small until the report is made: the provider they belong to,
    /// and each row (after `subsystems`).
    rows: Option<(String, Vec<Row>)>,
    failures: Vec<SubsystemFailure>,
    kept: Option<String>,
}

fn report(operation: &str, parts: Vec<Part>) -> OperationReport {
    let mut r = OperationReport {
        operation: operation.to_string(),
        cache_health: CacheHealth::Good.label().to_string(),
        notifications: 0,
        corrupt_cache_kept_at: None,
        subsystems: Vec::new(),
        events: Vec::new(),
        failures: Vec::new(),
    };
    let mut health = CacheHealth::Good;
    for p in parts {
        if let Some(h) = p.health {
            health = worst(health, h);
        }
        r.events.extend(p.notifications);
        r.subsystems.extend(p.subsystems);
        if let Some((provider, rows)) = p.rows {
            r.subsystems
                .extend(rows.iter().map(|row| row.refreshed(&provider)));
        }
        r.failures.extend(p.failures);
        if p.kept.is_some() {
            r.corrupt_cache_kept_at = p.kept;
        }
    }
    r.notifications = r.events.len();
    r.cache_health = health.label().to_string();
    r
}

/// What a subsystem whose provider is not defined answers.
pub(crate) fn orphan_error(subsystem: &str, provider: &str) -> Error {
    Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
        .about(Subject::Provider(provider.to_string()))
        .because(format!(
            "subsystem {subsystem:?} is registered with it, but vds.toml does not define it \
             (add it with `vdsadm provider add`, or remove the subsystem)"
        ))
}

fn docs(provider: &str, batch: &[Notification]) -> Vec<NotificationDoc> {
    batch
        .iter()
        .map(|n| NotificationDoc::new(provider, n))
        .collect()
}

impl Inner {
    /// The registrations of `provider` its kind cannot use (a secret that cannot be read, a portal
    /// that does not parse, …): their subsystems are recorded `FAILED` by the provider, and the
    /// operation reports each as not done, so that the exit status says so.
    fn unusable_registrations(&self, provider: &str) -> Vec<SubsystemFailure> {
        self.unusable(provider)
            .iter()
            .map(|(name, e)| failure(provider, name, e))
            .collect()
    }

    /// The subsystems of `provider` whose registration its kind cannot use, with why.
    fn unusable(&self, provider: &str) -> Vec<(String, Error)> {
        let Ok(config) = self.provider_config(provider) else {
            return Vec::new();
        };
        let Some(kind) = vds_providers::kind(&config.kind) else {
            return Vec::new();
        };
        if !kind.info().takes_registrations {
            return Vec::new();
        }
        let Ok(registrations) = self.registrations(provider, None) else {
            return Vec::new();
        };
        registrations
            .filter_map(|r| {
                let e = kind.check_registration(&r).err()?;
                let e = e
                    .about_if_unset(Subject::Subsystem(r.name.clone()))
                    .because("its registration cannot be used; it is recorded FAILED");
                Some((r.name.clone(), e))
            })
            .collect()
    }

    /// The registered subsystems whose provider is not defined (a hand edit of `vds.toml`).
    pub(crate) fn orphans(&self) -> Result<Vec<SubsystemFailure>, Error> {
        let config = self.store.config()?;
        Ok(config
            .orphans()
            .map(|s| {
                let e = orphan_error(&s.name, &s.provider);
                failure(&s.provider, &s.name, &e)
            })
            .collect())
    }

    /// Saves `subsystems` of `model` (provider `provider`) with the provider's health, off the
    /// runtime's threads; then delivers the notifications about them (even when the save failed:
    /// the model changed, and the failure is reported by the caller).
    pub(crate) async fn save(
        self: &Arc<Inner>,
        model: &HwProvider,
        provider: &str,
        subsystems: Vec<SubSystemSnapshot>,
        health: CacheHealth,
    ) -> Result<(), Error> {
        self.save_as(model.id(), provider, subsystems, Vec::new(), health)
            .await
    }

    /// [`save`](Self::save) for the provider whose model id is `provider_id`, with `renewals`
    /// (subsystems whose picture is the one cached) in the same transaction.
    async fn save_as(
        self: &Arc<Inner>,
        provider_id: ObjectId,
        provider: &str,
        subsystems: Vec<SubSystemSnapshot>,
        renewals: Vec<Renewal>,
        health: CacheHealth,
    ) -> Result<(), Error> {
        let ids: Vec<ObjectId> = subsystems
            .iter()
            .map(|s| provider_id.child("subsystem", &s.key))
            .collect();
        let inner = self.clone();
        let name = provider.to_string();
        let saved = tokio::task::spawn_blocking(move || {
            inner
                .store
                .save_batch(&name, &subsystems, &renewals, health)
        })
        .await;
        self.deliver(provider, Some(&ids));
        saved
            .map_err(|e| {
                Error::new(vds_model::Hresult::E_UNEXPECTED)
                    .because(format!("the save task failed: {e}"))
            })?
            .map_err(Error::from)
    }

    /// A task that saves what a refresh of `provider` commits, in batches of at most
    /// [`SAVE_BATCH`] subsystems, while the refresh goes on; each batch is recorded with the health
    /// `health` answers at that moment. It ends when every sender is dropped and returns the keys
    /// whose save failed, with why.
    ///
    /// With `model`, the persister is sent ids and writes out each subsystem's picture from it
    /// when it saves; without, it is sent the pictures.
    fn persister(
        self: &Arc<Inner>,
        provider: &str,
        provider_id: ObjectId,
        model: Option<HwProvider>,
        health: impl Fn() -> CacheHealth + Send + 'static,
    ) -> Persister {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Committed>();
        let backlog = Arc::new(Backlog::default());
        let inner = self.clone();
        let provider = provider.to_string();
        let feed = Feed {
            tx,
            backlog: backlog.clone(),
            by_id: model.is_some(),
        };
        let task = tokio::spawn(async move {
            let mut errors = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut items = vec![first];
                // What arrives within SAVE_GATHER joins the batch: a refresh commits its
                // subsystems one at a time, and a transaction (and its fsync) per handful of them
                // held the store's connection most of the time. The refresh's end (every sender
                // dropped) ends the wait at once.
                let until = tokio::time::Instant::now() + SAVE_GATHER;
                while items.len() < SAVE_BATCH {
                    match rx.try_recv() {
                        Ok(s) => items.push(s),
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                            match tokio::time::timeout_at(until, rx.recv()).await {
                                Ok(Some(s)) => items.push(s),
                                Ok(None) | Err(_) => break,
                            }
                        }
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
                    }
                }
                let sent = items.len();
                let mut batch: Vec<SubSystemSnapshot> = Vec::with_capacity(sent);
                let mut renewals: Vec<Renewal> = Vec::new();
                for item in items {
                    match item {
                        Committed::Picture(s) => batch.push(s),
                        Committed::Of(id) => {
                            batch.extend(model.as_ref().and_then(|m| m.export_subsystem(id)))
                        }
                        Committed::Renewed(r) => renewals.push(r),
                    }
                }
                let keys: Vec<String> = batch
                    .iter()
                    .map(|s| s.key.clone())
                    .chain(renewals.iter().map(|r| r.key().to_owned()))
                    .collect();
                let saved = inner
                    .save_as(provider_id, &provider, batch, renewals, health())
                    .await;
                backlog
                    .count
                    .fetch_sub(sent, std::sync::atomic::Ordering::AcqRel);
                backlog.saved.notify_waiters();
                if let Err(e) = saved {
                    errors.extend(keys.into_iter().map(|k| (k, e.clone())));
                }
            }
            errors
        });
        Persister { tx: feed, task }
    }

    /// Refreshes the subsystems of `model` (provider `provider`), handing each committed picture to
    /// `persister` and collecting the notifications raised.
    /// `gate` gives the cross-process lock of each subsystem (by key).
    async fn refresh_model<G>(
        &self,
        provider: &str,
        model: &HwProvider,
        persister: &Feed,
        renewals: Option<&Renewals>,
        gate: impl Fn(&str) -> Result<G, Error> + Send + Sync,
    ) -> (
        Result<vds_model::RefreshReport, Error>,
        Vec<NotificationDoc>,
    ) {
        let events = Mutex::new(Vec::new());
        let result = model
            .refresh_with(gate, |done| {
                if let Ok(committed) = done.result {
                    match renewals.and_then(|r| r.take(done.key)) {
                        Some(renewal) => persister.renew(renewal),
                        None => persister.send(done.id, || committed.snapshot()),
                    }
                }
                events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(docs(provider, done.notifications));
            })
            .await;
        (
            result,
            events.into_inner().unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Refreshes every subsystem of `provider`: over the live picture when the service holds (or
    /// keeps) pictures, a page at a time otherwise.
    async fn refresh_provider(self: &Arc<Inner>, provider: &str) -> Part {
        if self.paged && !self.holds_live(provider) {
            if let Some(part) = self.refresh_provider_paged(provider).await {
                return part;
            }
        }
        let mut part = Part::default();
        let entry = match self.live_entry(provider) {
            Ok(e) => e,
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        };
        let model = &entry.model;
        let persister = {
            let m = model.clone();
            self.persister(provider, model.id(), Some(model.clone()), move || {
                m.cache_health()
            })
        };
        let store = &self.store;
        let (result, events) = self
            .refresh_model(
                provider,
                model,
                &persister.tx,
                entry.renewals.as_deref(),
                |key: &str| store.lock_subsystem(provider, key).map_err(Error::from),
            )
            .await;
        let save_errors = persister.finish().await;
        self.deliver(provider, None);
        let health = model.cache_health();
        match result {
            Ok(r) => {
                for (_, key, e) in &r.failures {
                    part.failures.push(failure(provider, key, e));
                }
                // A refresh that completed the recovery records it.
                if let Err(e) = self.store.set_health(provider, health) {
                    part.failures.push(failure(provider, "", &e.into()));
                }
            }
            Err(e) => part.failures.push(failure(provider, "", &e)),
        }
        for (key, e) in save_errors {
            part.failures.push(failure(provider, &key, &e));
        }
        part.failures.extend(self.unusable_registrations(provider));
        part.health = Some(health);
        part.notifications = events;
        part.subsystems = refreshed_of(provider, model);
        part
    }

    /// The refresh of a service that holds no pictures (a one-shot front end such as vdsadm): the
    /// provider's subsystems go [`PAGE`] at a time, [`PAGES_AT_ONCE`] pages concurrently, each
    /// page refreshed ([`refresh_page`](Self::refresh_page)), saved and dropped, so that the
    /// memory it takes does not grow with the number of subsystems. `None` when the cache cannot
    /// be paged through (damaged, recorded corrupt): the caller refreshes over the whole picture,
    /// which answers as VDS prescribes for such a cache.
    async fn refresh_provider_paged(self: &Arc<Inner>, provider: &str) -> Option<Part> {
        let mut part = Part::default();
        let config = match self.provider_config(provider) {
            Ok(c) => c,
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return Some(part);
            }
        };
        let (start, keys) = match self.store.subsystem_keys(provider) {
            Ok((health, keys)) if health != CacheHealth::Corrupt => (health, keys),
            _ => return None,
        };
        // A row per subsystem: its room taken once, not grown (and copied) page after page.
        let mut rows = Vec::with_capacity(keys.len());
        let backend: Arc<dyn ProviderBackend> = match self.build_backend(&config, None) {
            Ok((_, b)) => Arc::from(b),
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return Some(part);
            }
        };
        // What the configuration says is taken before the pages: the registrations (in the
        // backend) and those the kind cannot use. A one-shot front end then drops the parsed
        // configuration, megabytes for a fleet, rather than hold it through every page.
        let unusable = self.unusable_registrations(provider);
        self.store.forget_config();
        let provider_id = ObjectId::provider(&backend.info().name);
        let persister = self.persister(provider, provider_id, None, move || start);
        type PageRun<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = (Part, Vec<Row>, bool)> + Send + 'a>,
        >;
        let pages: Vec<PageRun<'_>> = keys
            .chunks(PAGE)
            .map(|page| {
                let backend = backend.clone();
                let tx = persister.tx.clone();
                Box::pin(async move {
                    tx.room(SAVE_BATCH).await;
                    self.refresh_page(provider, page, backend, start, &tx).await
                }) as PageRun<'_>
            })
            .collect();
        let mut pages = futures_util::stream::iter(pages).buffered(PAGES_AT_ONCE);
        let mut complete = true;
        while let Some((p, page_rows, ok)) = pages.next().await {
            complete &= ok;
            part.failures.extend(p.failures);
            part.notifications.extend(p.notifications);
            rows.extend(page_rows);
        }
        drop(pages);
        part.rows = Some((provider.to_string(), rows));
        let save_errors = persister.finish().await;
        self.deliver(provider, None);
        // As over the whole picture: a refresh of every subsystem completes a recovery.
        let health = if start == CacheHealth::Rebuilt && complete {
            CacheHealth::Good
        } else {
            start
        };
        if let Err(e) = self.store.set_health(provider, health) {
            part.failures.push(failure(provider, "", &e.into()));
        }
        for (key, e) in save_errors {
            part.failures.push(failure(provider, &key, &e));
        }
        part.failures.extend(unusable);
        part.health = Some(health);
        // Any picture held for queries is older than what was just saved.
        self.forget(provider);
        Some(part)
    }

    /// One page of a paged refresh: the subsystems `page` of `provider` (cache health `start`),
    /// refreshed over `backend` and handed to `persister`. What it reports (the subsystems' rows in
    /// page order, their failures, the notifications) and saves is what a refresh of the page
    /// through the model answers; whether every subsystem was refreshed comes with it.
    ///
    /// Each subsystem is first asked for its picture without the previous one
    /// ([`ProviderBackend::refresh_without_previous`]), under its cross-process lock, taken before
    /// the page's stamps are read. A picture its [`Stamp`](vds_store::Stamp) holds is the one
    /// saved: the model would find nothing to notify and the save records the time alone, so
    /// neither reads the saved picture; the page keeps its report row and its [`Renewal`] (the new
    /// time and checksum, taken in the same pass as the check), and drops the picture at once.
    /// Every other subsystem (a changed picture, an answer that needs the previous one, a backend
    /// that cannot answer without it, a busy subsystem) is loaded from the cache and refreshed
    /// through the model, which is handed the answer and the lock already taken.
    ///
    /// The pictures of unchanged subsystems are not read, so damaged rows of theirs are not
    /// found here: they stay as they are (the save moves the time and records the checksum of the
    /// picture the array gave, which the damaged rows do not hold either), and the next read of
    /// that subsystem answers `VDS_E_PROVIDER_CACHE_CORRUPT` as before. See DESIGN.md.
    async fn refresh_page(
        self: &Arc<Inner>,
        provider: &str,
        page: &[String],
        backend: Arc<dyn ProviderBackend>,
        start: CacheHealth,
        tx: &Feed,
    ) -> (Part, Vec<Row>, bool) {
        let mut out = Part::default();
        // The stamps are read under the subsystems' locks, so each is the row as it is until the
        // answer is checked against it.
        let locks: Vec<Result<StoreLock, StoreError>> = page
            .iter()
            .map(|key| self.store.lock_subsystem(provider, key))
            .collect();
        let stamps = match self.store.stamps(provider, page) {
            Ok(s) => s,
            Err(e) => {
                out.failures.push(failure(provider, "", &e.into()));
                return (out, Vec::new(), false);
            }
        };
        let asked = page.iter().zip(locks).map(|(key, lock)| {
            let (backend, stamps) = (&backend, &stamps);
            async move {
                let lock = match lock {
                    Ok(lock) => lock,
                    Err(e) => return Asked::Model(Err(e.into()), None),
                };
                match backend.refresh_without_previous(key).await {
                    Some(Ok(Fresh::Picture(p))) => {
                        match stamps.get(key).and_then(|stamp| stamp.renew(&p)) {
                            Some(renewal) => {
                                drop(lock);
                                Asked::Unchanged(Row::of_snapshot(&p), renewal)
                            }
                            None => Asked::Model(Ok(lock), Some(Ok(Fresh::Picture(p)))),
                        }
                    }
                    answer => Asked::Model(Ok(lock), answer),
                }
            }
        });
        let asked = futures_util::future::join_all(asked).await;

        let mut rows: Vec<Option<Row>> = page.iter().map(|_| None).collect();
        let mut locks = HashMap::new();
        let mut answers = HashMap::new();
        let mut load = Vec::new();
        for ((key, asked), row) in page.iter().zip(asked).zip(&mut rows) {
            match asked {
                Asked::Unchanged(kept, renewal) => {
                    *row = Some(kept);
                    tx.renew(renewal);
                }
                Asked::Model(lock, answer) => {
                    locks.insert(key.as_str(), lock);
                    if let Some(answer) = answer {
                        answers.insert(key.clone(), answer);
                    }
                    load.push(key.clone());
                }
            }
        }
        let mut complete = true;
        if !load.is_empty() {
            let snapshots = match self.store.load(provider, Selection::Keys(&load)) {
                Ok(c) => c.subsystems.into_iter().map(|(s, _)| s),
                Err(e) => {
                    out.failures.push(failure(provider, "", &e.into()));
                    return (out, rows.into_iter().flatten().collect(), false);
                }
            };
            let page_backend = PageBackend {
                backend,
                answers: Mutex::new(answers),
            };
            let (model, _) = HwProvider::from_cache_boxed(Box::new(page_backend), snapshots, start);
            self.forward_notifications(provider, &model);
            let locks = Mutex::new(locks);
            let store = &self.store;
            let (result, events) = self
                .refresh_model(provider, &model, tx, None, |key: &str| {
                    let held = locks.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
                    match held {
                        Some(lock) => lock,
                        None => store.lock_subsystem(provider, key).map_err(Error::from),
                    }
                })
                .await;
            match result {
                Ok(r) => {
                    for (_, key, e) in &r.failures {
                        out.failures.push(failure(provider, key, e));
                    }
                    complete = r.failures.is_empty();
                }
                Err(e) => {
                    out.failures.push(failure(provider, "", &e));
                    complete = false;
                }
            }
            out.notifications = events;
            for row in rows_of(&model) {
                if let Some(i) = page.iter().position(|k| **k == *row.name) {
                    rows[i] = Some(row);
                }
            }
        }
        (out, rows.into_iter().flatten().collect(), complete)
    }

    /// Reenumerates `provider`, on a cache file known to be readable.
    async fn reenumerate_provider(self: &Arc<Inner>, provider: &str) -> Part {
        let mut part = Part::default();
        let _lock = match self.store.lock_provider(provider) {
            Ok(l) => l,
            Err(e) => {
                part.failures.push(failure(provider, "", &e.into()));
                return part;
            }
        };
        let entry = match self.live_entry(provider) {
            Ok(e) => e,
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        };
        let model = &entry.model;
        match model.reenumerate().await {
            Ok(batch) => part.notifications = docs(provider, &batch),
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        }
        let inner = self.clone();
        let (name, snaps, health) = (provider.to_string(), model.export(), model.cache_health());
        let saved = tokio::task::spawn_blocking(move || {
            inner.store.save_enumeration(&name, &snaps, health)
        })
        .await;
        self.deliver(provider, None);
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => part.failures.push(failure(provider, "", &e.into())),
            Err(e) => part.failures.push(failure(
                provider,
                "",
                &Error::new(vds_model::Hresult::E_UNEXPECTED)
                    .because(format!("the save task failed: {e}")),
            )),
        }
        part.failures.extend(self.unusable_registrations(provider));
        part.health = Some(model.cache_health());
        part.subsystems = refreshed_of(provider, model);
        part
    }

    /// Keeps a damaged cache file aside and starts an empty one, when the file is damaged. Returns
    /// where it went.
    fn rebuild_if_damaged(self: &Arc<Inner>) -> Result<Option<String>, Error> {
        match self.store.load_everything() {
            Ok(_) => Ok(None),
            Err(StoreError::CacheCorrupt { path, reason }) => {
                tracing::warn!(cache = %path.display(), %reason, "the cache is corrupt: rebuilding it");
                // Every picture held came from the damaged file.
                self.providers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                let kept = self.store.rebuild_cache()?;
                Ok(kept.map(|p| p.display().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Service {
    /// The providers an operation on `provider` (all when `None`) covers, in configuration order;
    /// `VDS_E_OBJECT_NOT_FOUND` for a provider that is not configured.
    fn providers_for(&self, provider: Option<&str>) -> Result<Vec<String>, Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = provider {
            if config.provider(p).is_none() {
                return Err(Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
                    .about(Subject::Provider(p.to_string())));
            }
        }
        Ok(config
            .providers
            .iter()
            .filter(|p| provider.is_none_or(|only| only == p.name))
            .map(|p| p.name.clone())
            .collect())
    }

    /// `IVdsHwProvider::Refresh` of every provider, of one, or of one subsystem
    /// (`refresh --subsystem`). Finds no new subsystems. What could not be refreshed (a busy
    /// subsystem, a provider that cannot be built, a save that failed) is in the report's
    /// `failures`; the call itself fails only for a single subsystem (its error) or a provider that
    /// does not exist.
    pub async fn refresh(&self, scope: Scope) -> Result<OperationReport, Error> {
        match scope {
            Scope::Subsystem(sel) => self.refresh_subsystem(&sel).await,
            Scope::All | Scope::Provider(_) => {
                let only = match &scope {
                    Scope::Provider(p) => Some(p.as_str()),
                    _ => None,
                };
                let providers = self.providers_for(only)?;
                // Read from the configuration before the providers' refreshes (which may drop
                // it once their backends are built).
                let orphans = match only {
                    None => Some(self.inner.orphans()?),
                    Some(_) => None,
                };
                let runs = providers.iter().map(|p| self.inner.refresh_provider(p));
                let mut parts = futures_util::future::join_all(runs).await;
                if let Some(failures) = orphans {
                    parts.push(Part {
                        failures,
                        ..Part::default()
                    });
                }
                Ok(report("refresh", parts))
            }
        }
    }

    async fn refresh_subsystem(&self, sel: &SubsystemSel) -> Result<OperationReport, Error> {
        let provider = self.resolve(sel)?;
        let _lock = self.inner.store.lock_subsystem(&provider, &sel.name)?;
        let entry = self.inner.live_entry(&provider)?;
        let model = &entry.model;
        let sub = model.sub_system_by_key(&sel.name)?;
        let batch = model.refresh_subsystem(&sub).await?;
        let snapshot = model
            .export_subsystem(sub.id())
            .into_iter()
            .collect::<Vec<_>>();
        self.inner
            .save(model, &provider, snapshot.clone(), model.cache_health())
            .await?;
        if let Some((_, e)) = self
            .inner
            .unusable(&provider)
            .into_iter()
            .find(|(n, _)| *n == sel.name)
        {
            return Err(e);
        }
        Ok(report(
            "refresh",
            vec![Part {
                health: Some(model.cache_health()),
                notifications: docs(&provider, &batch),
                subsystems: refreshed(&provider, &snapshot),
                ..Part::default()
            }],
        ))
    }

    /// `IVdsHwProvider::Reenumerate` of every provider (or of one): finds the subsystems that
    /// arrived and departed, and rebuilds a damaged cache (see the module documentation). What could
    /// not be done (a busy provider, one that cannot be built) is in the report's `failures`.
    pub async fn reenumerate(&self, provider: Option<&str>) -> Result<OperationReport, Error> {
        let providers = self.providers_for(provider)?;
        let kept = self.inner.rebuild_if_damaged()?;
        let runs = providers.iter().map(|p| self.inner.reenumerate_provider(p));
        let mut parts = futures_util::future::join_all(runs).await;
        if let Some(p) = parts.first_mut() {
            p.kept = kept;
        }
        if provider.is_none() {
            parts.push(Part {
                failures: self.inner.orphans()?,
                ..Part::default()
            });
        }
        Ok(report("reenumerate", parts))
    }
}
