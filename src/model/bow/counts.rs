//! Counting a text's rows (or words) in prediction, with no allocation once warm.

/// one read and one write where a hash table probes.
#[derive(Default)]
pub(super) struct RowCounts {
    pub(super) counts: Vec<u32>,
    /// Rows counted, in first-seen order.
    pub(super) used: Vec<u32>,
    /// Rows added, repeats included.
    pub(super) total: u64,
}

impl RowCounts {
    /// Makes room for a model of `rows` rows (the counts are all zero between texts). The
    /// array only grows: a smaller model uses its start, and texts that alternate between
    /// models do not make it anew each time.
    pub(super) fn ready(&mut self, rows: usize) {
        if self.counts.len() < rows {
            self.counts = vec![0; rows];
        }
    }

    #[inline]
    pub(super) fn add(&mut self, row: u32) {
        self.add_n(row, 1);
    }

    /// Counts `row` `n` times.
    #[inline]
    pub(super) fn add_n(&mut self, row: u32, n: u32) {
        let count = &mut self.counts[row as usize];
        if *count == 0 {
            self.used.push(row);
        }
        *count += n;
        self.total += n as u64;
    }
}

/// Counts repeated keys (a text's words in prediction, by where their cache entries start) in
/// an open-addressing table that is reused from one document to the next: no sorting, no
/// allocation once warm, and memory bounded by the number of distinct keys (not by the length
/// of the document).
#[derive(Default)]
pub(super) struct RowCounter {
    /// (row + 1, count); row 0 marks an empty slot.
    pub(super) slots: Vec<(u32, u32)>,
    /// Occupied slots in first-seen order.
    pub(super) used: Vec<u32>,
    /// Rows added, repeats included.
    pub(super) total: u64,
}

impl RowCounter {
    fn home(key: u32, mask: usize) -> usize {
        (key.wrapping_mul(0x9E37_79B1) as usize) & mask
    }

    /// Counts `row` `n` times.
    #[inline]
    pub(super) fn add_n(&mut self, row: u32, n: u32) {
        if (self.used.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.total += n as u64;
        let key = row + 1;
        let mask = self.slots.len() - 1;
        let mut i = Self::home(key, mask);
        loop {
            let slot = &mut self.slots[i];
            if slot.0 == key {
                slot.1 += n;
                return;
            }
            if slot.0 == 0 {
                *slot = (key, n);
                self.used.push(i as u32);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let old: Vec<(u32, u32)> = self.used.iter().map(|&i| self.slots[i as usize]).collect();
        self.slots = vec![(0, 0); cap];
        self.used.clear();
        let mask = cap - 1;
        for (key, n) in old {
            let mut i = Self::home(key, mask);
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (key, n);
            self.used.push(i as u32);
        }
    }
}
