//! A small least-recently-used map by digest, for the build cache and the prebuilt packages.
//! Written here rather than taken from a crate: a few dozen entries of `Arc`s keyed by a
//! SHA-256, where a linear recency list is as fast as a linked map.

use std::collections::{HashMap, VecDeque};

/// A digest key (SHA-256).
pub(crate) type Key = [u8; 32];

/// At most `capacity` values; reading one makes it the most recent, and the least recent goes
/// first past the capacity.
#[derive(Debug)]
pub(crate) struct Lru<V> {
    capacity: usize,
    entries: HashMap<Key, V>,
    order: VecDeque<Key>,
}

impl<V: Clone> Lru<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&mut self, key: &Key) -> Option<V> {
        let value = self.entries.get(key).cloned()?;
        self.order.retain(|k| k != key);
        self.order.push_back(*key);
        Some(value)
    }

    pub(crate) fn put(&mut self, key: Key, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_read_goes_first() {
        let mut lru = Lru::new(2);
        lru.put([1; 32], 'a');
        lru.put([2; 32], 'b');
        assert_eq!(lru.get(&[1; 32]), Some('a'));
        lru.put([3; 32], 'c');
        assert_eq!(lru.get(&[2; 32]), None, "b was the least recently read");
        assert_eq!(
            (lru.get(&[1; 32]), lru.get(&[3; 32])),
            (Some('a'), Some('c'))
        );
        let mut none = Lru::new(0);
        none.put([1; 32], 'a');
        assert_eq!(none.get(&[1; 32]), None);
    }
}
