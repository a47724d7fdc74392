//! Answers kept as the bytes they were sent as, one per subsystem, under the stamp of the picture
//! they were read from.
//!
//! A query about a subsystem's objects reads one picture of that subsystem, and a picture never
//! changes once committed: a refresh or a mutation that changes the subsystem, a reenumerate, a
//! reload (SIGHUP) or a provider forgotten all put new pictures in place, each with a stamp no
//! picture had before ([`vds_model::PictureStamp`]). So an answer's JSON, kept under the stamp it
//! was read from, may be sent again for exactly as long as the service still answers that stamp.
//! This module only keeps bytes: it never decides what is current. Every request asks the
//! service for the current stamp first (which also answers every error the query would), and
//! the bytes kept are used only when the stamps are equal.
//!
//! Memory is bounded: one answer per subsystem (a new picture's answer replaces the old one's),
//! at most [`BUDGET`] bytes in all, the answers kept first dropped first; an answer over an
//! eighth of the budget is not kept (it is built for each request, as before).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Bytes;
use vds_model::{ObjectId, PictureStamp};

/// The most bytes of answers kept (about 4,000 answers of 16 portals).
pub const BUDGET: usize = 8 << 20;

/// The `GET …/portals` answers of the subsystems recently asked about.
pub struct KeptAnswers {
    budget: usize,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_subsystem: HashMap<ObjectId, (PictureStamp, Bytes)>,
    /// Every subsystem of `by_subsystem` once, in the order first kept.
    order: VecDeque<ObjectId>,
    bytes: usize,
}

impl Default for KeptAnswers {
    fn default() -> Self {
        KeptAnswers::with_budget(BUDGET)
    }
}

impl KeptAnswers {
    /// Answers kept within `budget` bytes.
    pub fn with_budget(budget: usize) -> KeptAnswers {
        KeptAnswers {
            budget,
            kept: Mutex::new(Kept::default()),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Plain data, always left whole: a panic elsewhere cannot leave it half-written.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer kept for the picture `stamp`, if any (none for another picture of the subsystem).
    pub fn get(&self, stamp: PictureStamp) -> Option<Bytes> {
        match self.kept().by_subsystem.get(&stamp.subsystem()) {
            Some((kept, bytes)) if *kept == stamp => Some(bytes.clone()),
            _ => None,
        }
    }

    /// Keeps `bytes` as the answer read from the picture `stamp`, in place of any answer of the
    /// subsystem's other pictures.
    pub fn keep(&self, stamp: PictureStamp, bytes: Bytes) {
        if bytes.len() > self.budget / 8 {
            return;
        }
        let mut kept = self.kept();
        let len = bytes.len();
        match kept.by_subsystem.insert(stamp.subsystem(), (stamp, bytes)) {
            Some((_, old)) => kept.bytes -= old.len(),
            None => kept.order.push_back(stamp.subsystem()),
        }
        kept.bytes += len;
        while kept.bytes > self.budget {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = kept.by_subsystem.remove(&oldest) {
                kept.bytes -= old.len();
            }
        }
    }

    /// How many answers and bytes are kept.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let kept = self.kept();
        (kept.by_subsystem.len(), kept.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_model::sim::SimBackend;
    use vds_model::{HwProvider, IscsiPortalStatus};

    /// An initialized provider over `backend`, reenumerated, and its subsystems.
    async fn provider(backend: SimBackend) -> (HwProvider, Vec<vds_model::SubSystem>) {
        let provider = HwProvider::new(backend);
        provider.initialize().expect("initialize");
        provider.reenumerate().await.expect("reenumerate");
        let subs = provider.query_sub_systems().expect("subsystems");
        (provider, subs.into_iter().collect())
    }

    #[tokio::test]
    async fn an_answer_is_served_for_its_picture_only() {
        let (_provider, subs) = provider(SimBackend::demo()).await;
        let sub = &subs[0];
        let before = sub.picture_stamp().expect("stamp");
        let answers = KeptAnswers::default();
        answers.keep(before, Bytes::from_static(b"[1]"));
        assert_eq!(answers.get(before).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(answers.get(subs[1].picture_stamp().expect("stamp")), None);

        // A change of the subsystem is a new picture: the answer kept is not served for it.
        let portal = sub.query_portals().expect("portals").into_iter().next();
        portal
            .expect("a portal")
            .set_status(IscsiPortalStatus::Offline)
            .await
            .expect("set status");
        let after = sub.picture_stamp().expect("stamp");
        assert_ne!(after, before);
        assert_eq!(answers.get(after), None);
        // Its answer replaces the old one's.
        answers.keep(after, Bytes::from_static(b"[2]"));
        assert_eq!(answers.get(before), None);
        assert_eq!(answers.get(after).as_deref(), Some(&b"[2]"[..]));
        assert_eq!(answers.size(), (1, 3));
    }

    #[tokio::test]
    async fn the_budget_drops_the_first_kept_and_refuses_the_too_large() {
        let (_provider, subs) = provider(SimBackend::scaled(12, 1)).await;
        let stamps: Vec<PictureStamp> = subs
            .iter()
            .map(|s| s.picture_stamp().expect("stamp"))
            .collect();
        let answers = KeptAnswers::with_budget(80);
        // Over an eighth of the budget: not kept.
        answers.keep(stamps[0], Bytes::from(vec![b'x'; 11]));
        assert_eq!(answers.size(), (0, 0));
        for s in &stamps[..8] {
            answers.keep(*s, Bytes::from(vec![b'x'; 10]));
        }
        assert_eq!(answers.size(), (8, 80));
        // One more: the first kept goes, and only it.
        answers.keep(stamps[8], Bytes::from(vec![b'x'; 10]));
        assert_eq!(answers.size(), (8, 80));
        assert_eq!(answers.get(stamps[0]), None);
        assert!(stamps[1..9].iter().all(|s| answers.get(*s).is_some()));
        // A replaced answer keeps its place and its size is counted once.
        answers.keep(stamps[1], Bytes::from(vec![b'x'; 4]));
        assert_eq!(answers.size(), (8, 74));
        answers.keep(stamps[9], Bytes::from(vec![b'x'; 10]));
        assert_eq!(answers.size(), (8, 80));
        assert_eq!(answers.get(stamps[1]), None);
        assert!(answers.get(stamps[2]).is_some());
    }
}
