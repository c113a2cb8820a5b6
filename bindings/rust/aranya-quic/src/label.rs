//! Received labels: [`Label`], a shared string, and the per-endpoint cache
//! that makes receiving a known label allocation-free.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// The label of a received message ([`QuicChannel::label`]): an immutable
/// string, cheap to clone (a reference count; the empty label holds
/// nothing).
///
/// It dereferences to `str` and compares, hashes and prints like one, so
/// `channel.label == "chat"`, `&channel.label` where a `&str` is expected
/// and `channel.label.as_str()` work as they did on a `String`. An endpoint
/// hands out the same allocation for every message on a label it has seen
/// recently, which is why receiving does not allocate per message.
///
/// [`QuicChannel::label`]: crate::QuicChannel::label
#[derive(Clone, Default)]
pub struct Label(Option<Arc<str>>);

impl Label {
    /// The empty label (sync messages, and channels that have none).
    pub const fn empty() -> Self {
        Label(None)
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Some(s) => s,
            None => "",
        }
    }

    /// A label of `bytes` made without a cache: replaced characters where
    /// they are not UTF-8 (the library never reports such a label).
    pub(crate) fn from_bytes_lossy(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return Label(None);
        }
        Label(Some(Arc::from(String::from_utf8_lossy(bytes).as_ref())))
    }
}

impl Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Label {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

// Hash, Eq and Ord all go through the text, as Borrow requires: a label
// finds its entry in a set or map keyed by `str`, and vice versa.
impl Borrow<str> for Label {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Label {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Label) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Label {}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Label) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Label) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// `Label == T` and `T == Label` for the string types a label is compared
/// with.
macro_rules! label_eq {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Label {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Label> for $t {
            fn eq(&self, other: &Label) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
label_eq!(str, &str, String, std::borrow::Cow<'_, str>);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        if s.is_empty() {
            Label(None)
        } else {
            Label(Some(Arc::from(s)))
        }
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        if s.is_empty() {
            Label(None)
        } else {
            Label(Some(Arc::from(s)))
        }
    }
}

impl From<Arc<str>> for Label {
    fn from(s: Arc<str>) -> Self {
        if s.is_empty() {
            Label(None)
        } else {
            Label(Some(s))
        }
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.as_str().to_owned()
    }
}

impl From<Label> for Arc<str> {
    fn from(l: Label) -> Arc<str> {
        l.0.unwrap_or_else(|| Arc::from(""))
    }
}

/// Labels one endpoint received recently. A peer picks the labels, so the
/// set is bounded: when it is full it is emptied and refilled by what
/// arrives next. With [`LABEL_CACHE_ENTRIES`] labels of at most
/// `LABEL_MAX` bytes, it never holds more than about 80 KiB, whatever
/// peers send.
#[derive(Default)]
pub(crate) struct LabelCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    set: HashSet<Label>,
    /// The label handed out last: messages tend to come in runs on one
    /// label, and comparing a few bytes is cheaper than hashing them.
    last: Label,
}

/// Distinct labels a [`LabelCache`] keeps. Well above what an application
/// uses, so that emptying happens only under a flood of labels.
pub(crate) const LABEL_CACHE_ENTRIES: usize = 256;

impl LabelCache {
    /// The label of `bytes`: a clone of the cached one if there is one (no
    /// allocation), else a new one, remembered for next time.
    pub(crate) fn get(&self, bytes: &[u8]) -> Label {
        if bytes.is_empty() {
            return Label(None);
        }
        // Not UTF-8 would be a library bug; such a label is still delivered
        // but not cached, since its text is not its bytes.
        let Ok(s) = std::str::from_utf8(bytes) else {
            return Label::from_bytes_lossy(bytes);
        };
        // No user code runs under the lock, so a poisoned set is still
        // consistent.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.last.as_str() == s {
            return inner.last.clone();
        }
        let l = match inner.set.get(s) {
            Some(l) => l.clone(),
            None => {
                let l = Label::from(s);
                if inner.set.len() >= LABEL_CACHE_ENTRIES {
                    inner.set.clear();
                }
                inner.set.insert(l.clone());
                l
            }
        };
        inner.last = l.clone();
        l
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().set.len()
    }
}

impl fmt::Debug for LabelCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.lock().map(|i| i.set.len()).unwrap_or(0);
        f.debug_struct("LabelCache").field("labels", &n).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn label_behaves_like_a_string() {
        let l = Label::from("chat");
        assert_eq!(l, "chat");
        assert_eq!("chat", l);
        assert_eq!(l, String::from("chat"));
        assert!(*"chat" == l);
        assert_eq!(l.as_str(), "chat");
        assert_eq!(l.len(), 4); // through Deref
        assert_eq!(format!("{l} {l:?}"), "chat \"chat\"");
        let mut m = HashMap::new();
        m.insert(l.clone(), 1);
        assert_eq!(m.get("chat"), Some(&1), "looked up by &str");
        assert_eq!(String::from(l.clone()), "chat");
        let (a, b) = (Label::from("a"), Label::from("b"));
        assert!(a < b && a.cmp(&a) == Ordering::Equal);
        assert_eq!(Label::default(), "");
        assert_eq!(Label::from(""), Label::empty());
        assert_eq!(Label::from(String::new()), Label::empty());
        assert_eq!(Arc::<str>::from(Label::empty()).as_ref(), "");
    }

    #[test]
    fn cache_hands_out_one_allocation_per_label() {
        let c = LabelCache::default();
        let a = c.get(b"chat");
        let b = c.get(b"chat");
        assert_eq!(a, "chat");
        let (Some(pa), Some(pb)) = (&a.0, &b.0) else { panic!("non-empty labels hold a string") };
        assert!(Arc::ptr_eq(pa, pb), "a hit shares the cached string");
        assert!(c.get(b"").0.is_none(), "the empty label is not cached");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn cache_is_bounded() {
        let c = LabelCache::default();
        for i in 0..LABEL_CACHE_ENTRIES * 3 + 7 {
            let s = format!("label-{i}");
            assert_eq!(c.get(s.as_bytes()), s.as_str());
            assert!(c.len() <= LABEL_CACHE_ENTRIES);
        }
        // After a flood, a label is cached again at its next arrival.
        let a = c.get(b"chat");
        let b = c.get(b"chat");
        assert!(Arc::ptr_eq(a.0.as_ref().unwrap(), b.0.as_ref().unwrap()));
    }

    #[test]
    fn cache_passes_non_utf8_through_lossily() {
        let c = LabelCache::default();
        assert_eq!(c.get(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(c.len(), 0);
        assert_eq!(c.get(b"a\0b"), "a\0b", "NUL bytes are text");
    }
}
