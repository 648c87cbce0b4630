//! Strings that many cached objects repeat (condition types, statuses, reasons and most
//! messages), held once: each watched object's conditions point at the same text instead of
//! owning a copy. With 10,000 customers and their decisions, the conditions' strings were the
//! largest part of the caches.
//!
//! The pool is bounded: text that no object holds any more is swept out of it whenever it has
//! doubled since the last sweep, and once it is full of text still held, new text is kept
//! unshared. Whatever the API server sends, the pool never holds more than [`CAPACITY`] strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// How many distinct strings the pool holds at most.
pub const CAPACITY: usize = 8192;
/// Longer text is never pooled: it is seldom repeated.
const LONGEST: usize = 512;

/// The pooled strings. It is swept (text only the pool holds is dropped) when it has doubled
/// since the last sweep, and, once full of text in use, after every [`CAPACITY`] strings it
/// could not take: each string made pays for a constant share of the sweeps.
struct Pool {
    set: HashSet<SharedStr>,
    next_sweep: usize,
    refused: usize,
}

static POOL: std::sync::LazyLock<Mutex<Pool>> = std::sync::LazyLock::new(|| {
    Mutex::new(Pool {
        set: HashSet::new(),
        next_sweep: 256,
        refused: 0,
    })
});

/// An immutable string shared between the objects that hold the same text. Reads as a `&str`;
/// serializes and deserializes as a JSON string.
///
/// One pointer wide: the text sits behind the shared allocation (`Arc<Box<str>>`), so a
/// condition's four strings take 32 bytes of it, not 64.
#[derive(Clone)]
pub struct SharedStr(Arc<Box<str>>);

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl SharedStr {
    /// The pooled copy of `text`, added to the pool if there is room.
    pub fn new(text: &str) -> Self {
        if text.len() > LONGEST {
            return SharedStr(Arc::new(text.into()));
        }
        // A poisoned pool is still a valid set of strings.
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = pool.set.get(text) {
            return found.clone();
        }
        let full = pool.set.len() >= CAPACITY;
        if (!full && pool.set.len() >= pool.next_sweep) || (full && pool.refused >= CAPACITY) {
            // Drop what only the pool still holds.
            pool.set.retain(|s| Arc::strong_count(&s.0) > 1);
            pool.refused = 0;
            pool.next_sweep = (pool.set.len() * 2).clamp(256, CAPACITY);
        }
        let text = SharedStr(Arc::new(text.into()));
        if pool.set.len() < CAPACITY {
            pool.set.insert(text.clone());
        } else {
            // Full of text in use: this one stays unshared.
            pool.refused += 1;
        }
        text
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The number of strings the pool holds now.
#[cfg(test)]
fn pooled() -> usize {
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).set.len()
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::new("")
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        SharedStr::new(text)
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        SharedStr::new(&text)
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> Self {
        SharedStr::new(text)
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_string()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl std::fmt::Display for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SharedStr;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            // Borrowed or not, the text is looked up in the pool before anything is allocated.
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SharedStr, E> {
                Ok(SharedStr::new(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for SharedStr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_is_held_once() {
        let a = SharedStr::new("PurchaseRestricted-shared-test");
        let b: SharedStr = serde_json::from_str("\"PurchaseRestricted-shared-test\"").expect("a string");
        assert!(Arc::ptr_eq(&a.0, &b.0), "the deserialized text is the pooled one");
        assert_eq!(a, "PurchaseRestricted-shared-test");
        assert_eq!(
            serde_json::to_string(&b).expect("json"),
            "\"PurchaseRestricted-shared-test\""
        );
        // Escapes are decoded before the lookup.
        let c: SharedStr = serde_json::from_str("\"line\\u0020two\"").expect("a string");
        assert_eq!(c, "line two");
        assert!(
            serde_json::from_str::<SharedStr>("7").is_err(),
            "numbers are not strings"
        );
    }

    #[test]
    fn the_pool_stays_bounded_and_forgets_text_nobody_holds() {
        // Many distinct strings, each held only while it is made: the pool sweeps them.
        for i in 0..3 * CAPACITY {
            let s = SharedStr::new(&format!("transient-{i}"));
            assert_eq!(s.as_str(), format!("transient-{i}"));
        }
        assert!(pooled() <= CAPACITY, "{} strings pooled", pooled());
        // Strings held past the capacity are still correct, only unshared.
        let held: Vec<SharedStr> = (0..CAPACITY + 10)
            .map(|i| SharedStr::new(&format!("held-{i}")))
            .collect();
        assert!(pooled() <= CAPACITY, "{} strings pooled", pooled());
        assert!(held.iter().enumerate().all(|(i, s)| *s == format!("held-{i}")));
        drop(held);
        // Once they are dropped, the pool takes new text again.
        for i in 0..2 * CAPACITY {
            drop(SharedStr::new(&format!("after-{i}")));
        }
        let kept = SharedStr::new("kept-after-the-sweep");
        let again = SharedStr::new("kept-after-the-sweep");
        assert!(Arc::ptr_eq(&kept.0, &again.0), "pooled again once there is room");
        let long = "x".repeat(LONGEST + 1);
        assert_eq!(SharedStr::new(&long), long.as_str());
    }
}
