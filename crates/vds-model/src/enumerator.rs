//! `IEnumVdsObject`: the snapshot enumerator every `Query*` method returns.
//!
//! The enumerator owns a frozen list of object handles taken when the query ran; objects that arrive,
//! change or depart later do not change it (a handle to a departed object then answers
//! `VDS_E_OBJECT_DELETED`). It is cheap to clone: the list is shared and only the cursor is copied.

use std::sync::Arc;

use crate::{Hresult, ObjectId};

/// An `IEnumVdsObject` over objects of type `T`.
///
/// | Method | Result |
/// |---|---|
/// | [`next(celt)`](Self::next) | the next `min(celt, remaining)` objects; `S_OK` when exactly `celt` came back, `S_FALSE` when fewer (including none at the end). `next(0)` returns nothing and `S_OK`, and does not move. |
/// | [`skip(celt)`](Self::skip) | `S_OK` when `celt` objects were skipped; `S_FALSE` when fewer remained, leaving the cursor at the end |
/// | [`reset()`](Self::reset) | back to the start; `S_OK` |
/// | [`clone()`](Clone::clone) | a new enumerator at the same position that then moves independently |
///
/// `&mut EnumVdsObject` implements [`Iterator`] and `EnumVdsObject` implements [`IntoIterator`],
/// yielding the remaining objects one by one.
///
/// ```
/// use vds_model::{EnumVdsObject, Hresult};
/// let mut e = EnumVdsObject::new(vec!["a", "b", "c"]);
/// assert_eq!(e.next(2), (vec!["a", "b"], Hresult::S_OK));
/// let mut c = e.clone();
/// assert_eq!(e.next(2), (vec!["c"], Hresult::S_FALSE));
/// assert_eq!(e.next(1), (vec![], Hresult::S_FALSE));
/// assert_eq!(c.into_iter().collect::<Vec<_>>(), vec!["c"]);
/// ```
pub struct EnumVdsObject<T> {
    source: Source<T>,
    position: usize,
}

/// Where the objects come from: a list of them, or a frozen list of ids and a function that makes
/// the handle of an id when it is fetched (so a query costs O(1) and an enumeration allocates only
/// what the caller asks for).
enum Source<T> {
    Items(Arc<[T]>),
    Lazy(Arc<LazyItems<T>>),
}

/// Makes the handle of the id at a position of the list.
type MakeItem<T> = dyn Fn(usize, ObjectId) -> T + Send + Sync;

struct LazyItems<T> {
    ids: Arc<[ObjectId]>,
    make: Box<MakeItem<T>>,
}

impl<T> Clone for Source<T> {
    fn clone(&self) -> Source<T> {
        match self {
            Source::Items(items) => Source::Items(items.clone()),
            Source::Lazy(lazy) => Source::Lazy(lazy.clone()),
        }
    }
}

/// Copies the cursor; the snapshot itself is shared, not copied.
impl<T> Clone for EnumVdsObject<T> {
    fn clone(&self) -> EnumVdsObject<T> {
        EnumVdsObject {
            source: self.source.clone(),
            position: self.position,
        }
    }
}

impl<T> std::fmt::Debug for EnumVdsObject<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnumVdsObject")
            .field("len", &self.source_len())
            .field("position", &self.position)
            .finish()
    }
}

impl<T> EnumVdsObject<T> {
    fn source_len(&self) -> usize {
        match &self.source {
            Source::Items(items) => items.len(),
            Source::Lazy(lazy) => lazy.ids.len(),
        }
    }

    /// An enumerator over frozen `ids`, making each object with `make` (given its position and
    /// id) when it is fetched.
    pub(crate) fn lazy(
        ids: Arc<[ObjectId]>,
        make: impl Fn(usize, ObjectId) -> T + Send + Sync + 'static,
    ) -> EnumVdsObject<T> {
        EnumVdsObject {
            source: Source::Lazy(Arc::new(LazyItems {
                ids,
                make: Box::new(make),
            })),
            position: 0,
        }
    }
}

impl<T: Clone> EnumVdsObject<T> {
    /// An enumerator over `items`, positioned at the start.
    pub fn new(items: Vec<T>) -> EnumVdsObject<T> {
        EnumVdsObject {
            source: Source::Items(items.into()),
            position: 0,
        }
    }

    /// `IEnumVdsObject::Next`: up to `celt` objects, with `S_OK` if exactly `celt` were returned and
    /// `S_FALSE` otherwise. The length of the vector is `*pcFetched`.
    pub fn next(&mut self, celt: u32) -> (Vec<T>, Hresult) {
        let wanted = usize::try_from(celt).unwrap_or(usize::MAX);
        let end = self.position.saturating_add(wanted).min(self.source_len());
        let fetched: Vec<T> = (self.position..end).filter_map(|i| self.get(i)).collect();
        self.position = end;
        let hr = if fetched.len() == wanted {
            Hresult::S_OK
        } else {
            Hresult::S_FALSE
        };
        (fetched, hr)
    }

    /// `IEnumVdsObject::Skip`: `S_OK` if `celt` objects were skipped, `S_FALSE` if fewer remained (the
    /// cursor is then at the end).
    pub fn skip(&mut self, celt: u32) -> Hresult {
        let wanted = usize::try_from(celt).unwrap_or(usize::MAX);
        let remaining = self.source_len() - self.position;
        if wanted <= remaining {
            self.position += wanted;
            Hresult::S_OK
        } else {
            self.position = self.source_len();
            Hresult::S_FALSE
        }
    }

    /// `IEnumVdsObject::Reset`: back to the first object. Always `S_OK`.
    pub fn reset(&mut self) -> Hresult {
        self.position = 0;
        Hresult::S_OK
    }

    /// The number of objects in the snapshot.
    pub fn len(&self) -> usize {
        self.source_len()
    }

    /// True when the snapshot holds no objects.
    pub fn is_empty(&self) -> bool {
        self.source_len() == 0
    }

    /// The cursor: how many objects have been fetched or skipped since the start.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The object at `index` of the snapshot, whatever the cursor; `None` past the end.
    pub fn get(&self, index: usize) -> Option<T> {
        match &self.source {
            Source::Items(items) => items.get(index).cloned(),
            Source::Lazy(lazy) => lazy.ids.get(index).map(|id| (lazy.make)(index, *id)),
        }
    }
}

/// `for item in &mut e` and the iterator adaptors on `&mut e` walk the remaining objects and move the
/// cursor, so [`next`](EnumVdsObject::next) and [`skip`](EnumVdsObject::skip) keep their VDS meaning
/// on the enumerator itself.
impl<T: Clone> Iterator for &mut EnumVdsObject<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.get(self.position)?;
        self.position += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.source_len() - self.position;
        (n, Some(n))
    }
}

impl<T: Clone> ExactSizeIterator for &mut EnumVdsObject<T> {}

/// The remaining objects of an enumerator, by value (`for item in e`).
#[derive(Clone, Debug)]
pub struct IntoIter<T>(EnumVdsObject<T>);

impl<T: Clone> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        Iterator::next(&mut &mut self.0)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.source_len() - self.0.position;
        (n, Some(n))
    }
}

impl<T: Clone> ExactSizeIterator for IntoIter<T> {}

impl<T: Clone> IntoIterator for EnumVdsObject<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_enumerator_next_is_s_false_with_nothing() {
        let mut e: EnumVdsObject<u8> = EnumVdsObject::new(vec![]);
        assert_eq!(e.next(1), (vec![], Hresult::S_FALSE));
        assert_eq!(e.skip(1), Hresult::S_FALSE);
        assert_eq!(e.next(0), (vec![], Hresult::S_OK));
    }

    #[test]
    fn next_zero_returns_nothing_and_s_ok_without_moving() {
        let mut e = EnumVdsObject::new(vec![1, 2]);
        assert_eq!(e.next(0), (vec![], Hresult::S_OK));
        assert_eq!(e.position(), 0);
        e.skip(2);
        assert_eq!(e.next(0), (vec![], Hresult::S_OK));
    }

    #[test]
    fn skip_past_end_leaves_cursor_at_end() {
        let mut e = EnumVdsObject::new(vec![1, 2, 3]);
        assert_eq!(e.skip(2), Hresult::S_OK);
        assert_eq!(e.skip(5), Hresult::S_FALSE);
        assert_eq!(e.position(), 3);
        assert_eq!(e.next(1), (vec![], Hresult::S_FALSE));
        assert_eq!(e.reset(), Hresult::S_OK);
        assert_eq!(e.next(3), (vec![1, 2, 3], Hresult::S_OK));
    }

    #[test]
    fn huge_celt_does_not_overflow() {
        let mut e = EnumVdsObject::new(vec![1, 2, 3]);
        e.skip(1);
        assert_eq!(e.next(u32::MAX), (vec![2, 3], Hresult::S_FALSE));
        e.reset();
        assert_eq!(e.skip(u32::MAX), Hresult::S_FALSE);
    }
}
