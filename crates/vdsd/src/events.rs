//! The notifications the service raises, kept in a bounded ring and pushed to every client of
//! `GET /v1/events` as server-sent events.
//!
//! Each notification gets an id one greater than the last; the first id of a daemon's life is the
//! time it started in microseconds since the Unix epoch, so ids keep increasing across restarts and
//! an id from an earlier life is recognised (it is older than anything kept). A client that names
//! the last id it saw (`Last-Event-ID`) gets every later one still in the ring; if some were dropped
//! it gets one `notifications-lost` event first (VDS's `S_FALSE`: re-query what you watch). Memory
//! is bounded by the ring whatever the clients do: a client that does not read is never buffered
//! for, it just finds its place gone when it reads again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use vds_api::{EventDoc, LostDoc, NotificationDoc};
use vds_model::Notification;

/// One kept notification, serialized once.
#[derive(Debug)]
pub struct Stored {
    /// Its id.
    pub id: u64,
    /// The document.
    pub doc: EventDoc,
    /// `doc` as JSON.
    pub json: String,
}

/// Which notifications a client wants (empty lists: all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Provider names.
    pub providers: Vec<String>,
    /// Subsystem ids.
    pub subsystems: Vec<String>,
    /// `VDS_NTT_*` values.
    pub object_types: Vec<i32>,
}

impl Filter {
    /// True when `doc` passes.
    pub fn admits(&self, doc: &NotificationDoc) -> bool {
        (self.providers.is_empty() || self.providers.contains(&doc.provider))
            && (self.subsystems.is_empty() || self.subsystems.contains(&doc.subsystem))
            && (self.object_types.is_empty() || self.object_types.contains(&doc.object_type))
    }
}

struct Ring {
    /// The id the next notification gets.
    next: u64,
    /// The first id of this daemon's life.
    first: u64,
    kept: VecDeque<Arc<Stored>>,
}

/// The event bus: the ring and a signal of its last id.
pub struct EventBus {
    ring: Mutex<Ring>,
    capacity: usize,
    last: watch::Sender<u64>,
}

/// What a client reads from where it was.
#[derive(Debug, Default)]
pub struct Batch {
    /// The lost-notifications event to send first, when some were dropped.
    pub lost: Option<LostDoc>,
    /// The events after the client's place, in order.
    pub events: Vec<Arc<Stored>>,
    /// The client's new place.
    pub last: u64,
}

fn now_ms_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl EventBus {
    /// A bus keeping the last `capacity` notifications (at least 1).
    pub fn new(capacity: usize) -> EventBus {
        let first = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let (last, _) = watch::channel(first - 1);
        EventBus {
            ring: Mutex::new(Ring {
                next: first,
                first,
                kept: VecDeque::with_capacity(capacity.clamp(1, 65_536)),
            }),
            capacity: capacity.max(1),
            last,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a batch the service raised (called from the service's sink: quick, never blocks on a
    /// client) and wakes the clients. Returns the documents kept.
    pub fn publish(&self, provider: &str, batch: &[Notification]) -> Vec<Arc<Stored>> {
        let time = now_ms_rfc3339();
        let mut out = Vec::with_capacity(batch.len());
        let last = {
            let mut ring = self.ring();
            for n in batch {
                let id = ring.next;
                ring.next += 1;
                let doc = EventDoc {
                    sequence: id,
                    time: time.clone(),
                    notification: NotificationDoc::new(provider, n),
                };
                let json = serde_json::to_string(&doc).unwrap_or_default();
                let stored = Arc::new(Stored { id, doc, json });
                if ring.kept.len() == self.capacity {
                    ring.kept.pop_front();
                }
                ring.kept.push_back(stored.clone());
                out.push(stored);
            }
            ring.next - 1
        };
        self.last.send_replace(last);
        out
    }

    /// The last id so far (the one before the first when there is none).
    pub fn last_id(&self) -> u64 {
        *self.last.borrow()
    }

    /// A receiver that changes when notifications arrive.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }

    /// Where a new client starts: after `last_event_id` when it gave one, else after the last
    /// notification so far (a new client gets only what comes next).
    pub fn start(&self, last_event_id: Option<u64>) -> (u64, Option<LostDoc>) {
        let ring = self.ring();
        let newest = ring.next - 1;
        let Some(given) = last_event_id else {
            return (newest, None);
        };
        let oldest_kept = ring.kept.front().map_or(ring.next, |s| s.id);
        if given > newest {
            // An id this daemon never gave: nothing can be replayed for it.
            return (
                newest,
                Some(lost(
                    Some(given),
                    ring.next,
                    "the id is newer than any event",
                )),
            );
        }
        if given + 1 < oldest_kept {
            let why = if given + 1 < ring.first {
                "the id is from before the daemon started"
            } else {
                "the client fell further behind than the daemon keeps"
            };
            return (oldest_kept - 1, Some(lost(Some(given), oldest_kept, why)));
        }
        (given, None)
    }

    /// The events after `last` that pass `filter`, at most `max` of them; a lost event when the
    /// ring moved past `last` meanwhile.
    pub fn read(&self, last: u64, filter: &Filter, max: usize) -> Batch {
        let ring = self.ring();
        let oldest_kept = ring.kept.front().map_or(ring.next, |s| s.id);
        let mut batch = Batch {
            last,
            ..Batch::default()
        };
        if last + 1 < oldest_kept {
            batch.lost = Some(lost(
                Some(last),
                oldest_kept,
                "the client fell further behind than the daemon keeps",
            ));
            batch.last = oldest_kept - 1;
        }
        let skip = (batch.last + 1).saturating_sub(oldest_kept) as usize;
        for s in ring.kept.iter().skip(skip) {
            if batch.events.len() >= max {
                break;
            }
            batch.last = s.id;
            if filter.admits(&s.doc.notification) {
                batch.events.push(s.clone());
            }
        }
        batch
    }
}

fn lost(last: Option<u64>, resumes_at: u64, why: &str) -> LostDoc {
    LostDoc {
        hresult: "0x00000001".into(),
        name: "S_FALSE".into(),
        message: format!("notifications were lost ({why}); query again what you watch"),
        last_event_id: last,
        resumes_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_model::{NotificationEvent, NotificationTargetType, ObjectId};

    fn n(event: u32) -> Notification {
        Notification {
            object_type: NotificationTargetType::PORTAL,
            event: NotificationEvent(event),
            id: ObjectId::NIL,
            subsystem: ObjectId::NIL,
        }
    }

    #[test]
    fn ids_increase_replay_is_bounded_and_loss_is_said() {
        let bus = EventBus::new(4);
        let (start, lost) = bus.start(None);
        assert!(lost.is_none());
        let kept = bus.publish("p", &[n(123), n(124), n(125)]);
        assert!(kept.windows(2).all(|w| w[1].id == w[0].id + 1));
        let b = bus.read(start, &Filter::default(), 100);
        assert_eq!(b.events.len(), 3);
        assert!(b.lost.is_none());
        // Replay from the middle.
        let (from, lost) = bus.start(Some(kept[0].id));
        assert!(lost.is_none());
        let b = bus.read(from, &Filter::default(), 100);
        assert_eq!(
            b.events.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![kept[1].id, kept[2].id]
        );
        // Six more: the ring keeps four; the first client lost some.
        bus.publish("p", &[n(123), n(124), n(125), n(126), n(127), n(128)]);
        let b = bus.read(kept[2].id, &Filter::default(), 100);
        let lost = b.lost.expect("lost");
        assert_eq!(lost.name, "S_FALSE");
        assert_eq!(b.events.len(), 4);
        assert_eq!(lost.resumes_at, b.events[0].id);
        // An id from before the daemon started.
        let (_, lost) = bus.start(Some(1));
        assert!(lost.unwrap().message.contains("before the daemon started"));
        // A filter.
        let only = Filter {
            object_types: vec![37],
            ..Filter::default()
        };
        assert_eq!(bus.read(start, &only, 100).events.len(), 0);
    }
}
