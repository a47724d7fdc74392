//! The backend of a live provider ([`Renewing`]): the kind's backend, which also notes, for each
//! subsystem it refreshes, whether the fresh picture is the one the cache holds. The persister then
//! saves such a subsystem as a [`Renewal`] (its time moves, its rows stay) instead of writing out
//! the model's picture of it and comparing that with the rows: a daemon that refreshes a fleet
//! whose arrays did not change writes out nothing but times.
//!
//! The stamp is read from the store when the backend answers, which is under the subsystem's
//! gates (the model's and the cross-process lock), so it is the row as it is; the renewal is
//! taken when the model commits that answer ([`Renewals::take`]), and it only moves rows that
//! still hold that stamp when it is saved. No runtime thread waits for the store: when its
//! connection is busy (the persister saving a batch), the answer is not noted and the subsystem
//! is saved whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use vds_model::{Error, Fresh, ProviderBackend, SubSystemSnapshot};
use vds_store::Renewal;

use crate::Inner;

/// The renewals noted by a live provider's backend, by subsystem key: at most one per subsystem,
/// from the last answer the backend gave for it.
#[derive(Default)]
pub(crate) struct Renewals(Mutex<HashMap<String, Renewal>>);

impl Renewals {
    /// The renewal noted for `key` by the answer just committed, if its picture is the one cached.
    pub(crate) fn take(&self, key: &str) -> Option<Renewal> {
        self.map().remove(key)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Renewal>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What notes renewals: the service (weakly: it holds the backend), the provider, and where.
#[derive(Clone)]
struct Noter {
    service: Weak<Inner>,
    provider: String,
    renewals: Arc<Renewals>,
}

impl Noter {
    /// Notes whether `fresh` is the picture the cache holds. Whatever was noted for its key
    /// before is dropped either way: a renewal always belongs to the last answer.
    ///
    /// The stamp is read only when the store's connection is free at once ([`Store::stamp_now`]):
    /// this runs on the runtime's threads, which must not wait for the persister's save of a
    /// batch; the subsystem is then saved whole, as without a note. (Reading it on a blocking
    /// thread instead cost more CPU than the saves it spared: 68.7 against 62.3 ms per refresh of
    /// 500, docs/PERFORMANCE.md.)
    ///
    /// [`Store::stamp_now`]: vds_store::Store::stamp_now
    fn note(&self, fresh: &SubSystemSnapshot) {
        let renewal = self.service.upgrade().and_then(|inner| {
            let stamp = inner.store.stamp_now(&self.provider, &fresh.key)?.ok()??;
            stamp.renew(fresh)
        });
        let mut map = self.renewals.map();
        match renewal {
            Some(r) => {
                map.insert(fresh.key.clone(), r);
            }
            None => {
                map.remove(&fresh.key);
            }
        }
    }

    fn forget(&self, key: &str) {
        self.renewals.map().remove(key);
    }
}

/// A live provider's backend: the kind's, noting renewals (see the module documentation).
pub(crate) struct Renewing {
    backend: Box<dyn ProviderBackend>,
    noter: Noter,
}

impl Renewing {
    /// `backend`, noting the renewals of `provider`'s subsystems in `renewals`.
    pub(crate) fn new(
        backend: Box<dyn ProviderBackend>,
        service: &Arc<Inner>,
        provider: &str,
        renewals: Arc<Renewals>,
    ) -> Renewing {
        Renewing {
            backend,
            noter: Noter {
                service: Arc::downgrade(service),
                provider: provider.to_string(),
                renewals,
            },
        }
    }
}

#[async_trait::async_trait]
impl ProviderBackend for Renewing {
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
        self.noter.forget(&previous.key);
        let fresh = self.backend.refresh(previous).await?;
        self.noter.note(&fresh);
        Ok(fresh)
    }

    async fn refresh_without_previous(&self, key: &str) -> Option<Result<Fresh, Error>> {
        self.noter.forget(key);
        let answer = self.backend.refresh_without_previous(key).await?;
        Some(answer.map(|fresh| match fresh {
            Fresh::Picture(p) => {
                self.noter.note(&p);
                Fresh::Picture(p)
            }
            // The step runs under the subsystem's gates too, right after.
            Fresh::NeedsPrevious(make) => {
                let noter = self.noter.clone();
                Fresh::NeedsPrevious(Box::new(move |previous| {
                    let p = make(previous);
                    noter.note(&p);
                    p
                }))
            }
        }))
    }

    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &vds_model::Mutation,
    ) -> Result<vds_model::Applied, Error> {
        self.noter.forget(&subsystem.key);
        self.backend.apply(subsystem, mutation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SIMULATOR_PROVIDER, Service};
    use vds_model::CacheHealth;
    use vds_store::Selection;

    #[tokio::test]
    async fn an_answer_the_cache_holds_is_noted_and_any_other_answer_forgets_it() {
        let service = Service::simulator().await.expect("simulator");
        let inner = &service.inner;
        let p = SIMULATOR_PROVIDER;
        let config = inner.provider_config(p).expect("config");
        let (_, backend) = inner.build_backend(&config, None).expect("backend");
        let renewals = Arc::new(Renewals::default());
        let renewing = Renewing::new(backend, inner, p, renewals.clone());
        let cached = inner
            .store
            .load(p, Selection::All)
            .expect("load")
            .snapshots();
        let s = &cached[0];

        // The array answers what the cache holds: one renewal, taken once.
        let fresh = renewing.refresh(s).await.expect("refresh");
        assert_eq!(&fresh, s, "the simulator answers what was cached");
        let renewal = renewals.take(&s.key).expect("a renewal");
        assert_eq!(renewal.key(), s.key);
        assert_eq!(renewals.take(&s.key), None, "taken once");

        // The row changes under it (another process saved something else): the same answer is
        // no longer the picture cached, and what was noted before is forgotten.
        renewing.refresh(s).await.expect("refresh");
        let mut other = s.clone();
        other.friendly_name.push_str(" (renamed)");
        inner
            .store
            .save(p, std::slice::from_ref(&other), CacheHealth::Good)
            .expect("save");
        renewing.refresh(s).await.expect("refresh");
        assert_eq!(renewals.take(&s.key), None);

        // Through the path that answers without the previous picture, likewise.
        inner
            .store
            .save(p, std::slice::from_ref(s), CacheHealth::Good)
            .expect("save");
        match renewing.refresh_without_previous(&s.key).await {
            Some(Ok(fresh)) => {
                let picture = fresh.finish(|| s.clone());
                assert_eq!(&picture, s);
                assert!(renewals.take(&s.key).is_some(), "noted");
            }
            Some(Err(e)) => panic!("{e}"),
            // The simulator needs the previous picture: `refresh` covers it.
            None => {}
        }
    }
}
