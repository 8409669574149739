//! Open-addressing indexes from 64-bit keys: the word caches' and the model's n-gram rows'.
//! Unlike a `HashMap`, a lookup to come can ask for its cache line ahead.

use super::packed::{advise_huge_pages, prefetch_span};

/// probing over (key, value) pairs in one array, at most two thirds full. A lookup mostly reads one
/// cache line, and a lookup to come can ask for its line ahead ([`KeyIndex::prefetch`]),
/// which a `HashMap` does not offer. It indexes the word caches ([`super::features::WordCache`]).
#[derive(Debug, Clone)]
pub(super) struct KeyIndex {
    /// (key, value + 1); 0 marks an empty slot.
    pub(super) slots: Vec<(u64, u32)>,
    /// 64 minus the bits of a slot number: the top bits of a key's mix pick its first slot.
    shift: u32,
    /// Keys held.
    len: usize,
}

impl KeyIndex {
    /// An empty index with room for `n` keys before it grows.
    pub(super) fn with_capacity(n: usize) -> KeyIndex {
        let (cap, shift) = slots_for(n);
        let mut slots = vec![(0u64, 0u32); cap];
        advise_huge_pages(&mut slots);
        KeyIndex {
            slots,
            shift,
            len: 0,
        }
    }

    /// The value of `key`, if it has one.
    #[inline]
    pub(super) fn get(&self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        loop {
            let (k, v) = self.slots[s];
            if v == 0 {
                return None;
            }
            if k == key {
                return Some(v - 1);
            }
            s = (s + 1) & mask;
        }
    }

    /// Gives `key` the value `value` (below `u32::MAX`) unless it has one already.
    pub(super) fn insert(&mut self, key: u64, value: u32) {
        if (self.len + 1) * 3 > self.slots.len() * 2 {
            let mut bigger = KeyIndex::with_capacity(self.slots.len());
            for &(k, v) in self.slots.iter().filter(|s| s.1 != 0) {
                bigger.insert(k, v - 1);
            }
            *self = bigger;
        }
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        loop {
            let slot = &mut self.slots[s];
            if slot.1 == 0 {
                *slot = (key, value + 1);
                self.len += 1;
                return;
            }
            if slot.0 == key {
                return;
            }
            s = (s + 1) & mask;
        }
    }

    /// Forgets every key (keeping the room).
    pub(super) fn clear(&mut self) {
        self.slots.fill((0, 0));
        self.len = 0;
    }

    /// Asks the CPU to start loading the first slot of `key`, looked up soon.
    #[inline(always)]
    pub(super) fn prefetch(&self, key: u64) {
        prefetch_span(&self.slots, first_slot(key, self.shift), 1);
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// The first slot to look in for `key` in a table of `2^(64 - shift)` slots (Fibonacci
/// hashing: keys are hashes already, but their low bits come out of a multiplication and mix
/// poorly).
#[inline(always)]
pub(super) fn first_slot(key: u64, shift: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// Slots for `n` keys at most two thirds full (a power of two, at least 16), and the shift
/// of [`first_slot`] for them.
fn slots_for(n: usize) -> (usize, u32) {
    let cap = (n + n / 2 + 1).next_power_of_two().max(16);
    (cap, 64 - cap.trailing_zeros())
}

/// The model's n-gram keys, and the row of each: open addressing with linear probing, at
/// most two thirds full, over slots of 8 bytes (the key's low 32 bits, and its index + 1; 0
/// marks an empty slot), confirmed against the whole key in `keys` when the 32 bits match. A
/// lookup of an n-gram the model lacks (most lookups in prediction) mostly reads one cache
/// line and ends at the first empty slot, and a lookup to come can ask for its line ahead
/// ([`NgramIndex::prefetch`]), which a `HashMap` does not offer.
#[derive(Debug, Clone)]
pub(super) struct NgramIndex {
    /// The keys; key `keys[i]` has index `i`.
    pub(super) keys: Vec<u64>,
    pub(super) slots: Vec<(u32, u32)>,
    shift: u32,
    /// Distinct keys (a repeated key keeps its first index).
    pub(super) distinct: usize,
}

impl NgramIndex {
    pub(super) fn new(keys: Vec<u64>) -> NgramIndex {
        let (cap, shift) = slots_for(keys.len());
        let mut slots = vec![(0u32, 0u32); cap];
        advise_huge_pages(&mut slots);
        let mask = cap - 1;
        let mut distinct = 0;
        for (i, &key) in keys.iter().enumerate() {
            let mut s = first_slot(key, shift);
            loop {
                let (low, v) = slots[s];
                if v == 0 {
                    slots[s] = (key as u32, i as u32 + 1);
                    distinct += 1;
                    break;
                }
                if low == key as u32 && keys[v as usize - 1] == key {
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        NgramIndex {
            keys,
            slots,
            shift,
            distinct,
        }
    }

    /// The index of `key`, if the model has it.
    #[inline]
    pub(super) fn get(&self, key: u64) -> Option<u32> {
        self.candidates(key).find(|&i| self.keys[i as usize] == key)
    }

    /// The indexes of the keys on `key`'s probe sequence whose low 32 bits are `key`'s, in
    /// probe order (almost always none or one, `key` itself).
    #[inline(always)]
    fn candidates(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        std::iter::from_fn(move || loop {
            let (low, v) = self.slots[s];
            if v == 0 {
                return None;
            }
            s = (s + 1) & mask;
            if low == key as u32 {
                return Some(v - 1);
            }
        })
    }

    /// Asks the CPU to start loading the first slot of `key`, looked up soon.
    #[inline(always)]
    pub(super) fn prefetch(&self, key: u64) {
        prefetch_span(&self.slots, first_slot(key, self.shift), 1);
    }

    /// Asks the CPU to start loading the key that `key`'s slot points to (the second read of
    /// [`NgramIndex::get`]), once its slot has been asked for ([`NgramIndex::prefetch`]).
    #[inline(always)]
    pub(super) fn prefetch_key(&self, key: u64) {
        if let Some(i) = self.candidates(key).next() {
            prefetch_span(&self.keys, i as usize, 1);
        }
    }

    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }
}
