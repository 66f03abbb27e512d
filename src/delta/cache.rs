//! A small bounded map with first-in-first-out eviction, bounded by entry count and by total
//! weight (e.g. the number of files in cached file lists).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Bounded cache; evicts the oldest inserted entries when over either bound.
#[derive(Debug)]
pub(crate) struct BoundedCache<K, V> {
    capacity: usize,
    max_weight: usize,
    weight: usize,
    map: HashMap<K, (V, usize)>,
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    /// At most `capacity` entries, no weight bound.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_max_weight(capacity, usize::MAX)
    }

    /// At most `capacity` entries whose weights add up to at most `max_weight` (the newest
    /// entry is always kept, even when it alone is heavier).
    pub(crate) fn with_max_weight(capacity: usize, max_weight: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_weight,
            weight: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).map(|(v, _)| v.clone())
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.insert_weighted(key, value, 1);
    }

    pub(crate) fn insert_weighted(&mut self, key: K, value: V, weight: usize) {
        match self.map.insert(key.clone(), (value, weight)) {
            Some((_, old)) => self.weight = self.weight - old + weight,
            None => {
                self.order.push_back(key.clone());
                self.weight += weight;
            }
        }
        while self.order.len() > self.capacity
            || (self.weight > self.max_weight && self.order.len() > 1)
        {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if old == key {
                self.order.push_back(old);
                if self.order.len() == 1 {
                    break;
                }
                continue;
            }
            if let Some((_, w)) = self.map.remove(&old) {
                self.weight -= w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest() {
        let mut c = BoundedCache::new(2);
        c.insert(1, "a");
        c.insert(2, "b");
        c.insert(1, "a2");
        c.insert(3, "c");
        assert_eq!(c.get(&1), None);
        assert_eq!(c.get(&2), Some("b"));
        assert_eq!(c.get(&3), Some("c"));
    }

    #[test]
    fn evicts_by_weight_but_keeps_the_newest() {
        let mut c = BoundedCache::with_max_weight(10, 100);
        c.insert_weighted(1, "a", 60);
        c.insert_weighted(2, "b", 30);
        assert_eq!(c.get(&1), Some("a"));
        c.insert_weighted(3, "c", 20);
        assert_eq!(c.get(&1), None, "over the weight bound the oldest goes");
        assert_eq!(c.get(&2), Some("b"));
        c.insert_weighted(4, "huge", 500);
        assert_eq!(c.get(&4), Some("huge"));
        assert_eq!(c.get(&2), None);
        assert_eq!(c.get(&3), None);
    }
}
