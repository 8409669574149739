//! Learning the WordPiece vocabulary from the training texts.

use super::normalize::{for_each_word, normalize_into};
use super::tokenizer::{TokenizerOptions, CONTINUATION, UNK};

/// Counts the words of `texts` (normalized, pre-tokenized), in parallel.
fn count_words<S: AsRef<str> + Sync>(texts: &[S]) -> ahash::AHashMap<String, u64> {
    use rayon::prelude::*;
    texts
        .par_iter()
        .fold(
            || (ahash::AHashMap::<String, u64>::new(), String::new()),
            |(mut counts, mut norm), text| {
                normalize_into(text.as_ref(), &mut norm);
                for_each_word(&norm, |w| match counts.get_mut(w) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(w.to_string(), 1);
                    }
                });
                (counts, norm)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(ahash::AHashMap::new, |mut a, b| {
            let (mut big, small) = if a.len() >= b.len() {
                (a, b)
            } else {
                (b, std::mem::take(&mut a))
            };
            for (w, n) in small {
                *big.entry(w).or_insert(0) += n;
            }
            big
        })
}

/// Learns a WordPiece vocabulary (piece -> id) by BPE merges. Deterministic: pieces get ids in
/// a fixed order ([UNK], then the alphabet sorted, then merges in order) and ties between
/// equally frequent pairs go to the pair whose pieces sort first.
pub(super) fn learn_vocab<S: AsRef<str> + Sync>(
    texts: &[S],
    options: &TokenizerOptions,
) -> Vec<(String, u32)> {
    // Hash maps iterate in a random order: every result taken from one is sorted first, so the
    // vocabulary does not depend on it.
    use ahash::{AHashMap, AHashSet};
    use std::collections::BinaryHeap;

    let mut counted: Vec<(String, u64)> = count_words(texts).into_iter().collect();
    counted.sort_unstable();

    // Symbols: the first character of a word as itself, later ones with the "##" prefix.
    let mut symbols: Vec<String> = vec![UNK.to_string()];
    let mut alphabet: Vec<String> = counted
        .iter()
        .flat_map(|(w, _)| {
            w.chars().enumerate().map(|(i, c)| {
                if i == 0 {
                    c.to_string()
                } else {
                    format!("{CONTINUATION}{c}")
                }
            })
        })
        .collect::<AHashSet<_>>()
        .into_iter()
        .collect();
    alphabet.sort_unstable();
    symbols.extend(alphabet);
    let mut ids: AHashMap<String, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect();

    let mut words: Vec<Vec<u32>> = counted
        .iter()
        .map(|(w, _)| {
            w.chars()
                .enumerate()
                .map(|(i, c)| {
                    let s = if i == 0 {
                        c.to_string()
                    } else {
                        format!("{CONTINUATION}{c}")
                    };
                    ids[&s]
                })
                .collect()
        })
        .collect();
    let counts: Vec<u64> = counted.iter().map(|(_, n)| *n).collect();
    drop(counted);

    // Pair statistics: weighted count, and the words the pair occurs in (a list that may hold
    // a word twice, or a word that no longer has the pair: merging checks).
    let mut pair_count: AHashMap<(u32, u32), i64> = AHashMap::new();
    let mut pair_words: AHashMap<(u32, u32), Vec<u32>> = AHashMap::new();
    for (wi, w) in words.iter().enumerate() {
        for p in w.windows(2) {
            let pair = (p[0], p[1]);
            *pair_count.entry(pair).or_insert(0) += counts[wi] as i64;
            let list = pair_words.entry(pair).or_default();
            if list.last() != Some(&(wi as u32)) {
                list.push(wi as u32);
            }
        }
    }
    // Max-heap on (count, then the smaller pair of ids: ids are given in a fixed order).
    use std::cmp::Reverse;
    let mut heap: BinaryHeap<(i64, Reverse<(u32, u32)>)> = pair_count
        .iter()
        .map(|(&pair, &count)| (count, Reverse(pair)))
        .collect();

    let min_frequency = options.min_frequency.max(1) as i64;
    while symbols.len() < options.vocab_size {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        let current = pair_count.get(&pair).copied().unwrap_or(0);
        if current != count {
            if current > 0 {
                heap.push((current, Reverse(pair)));
            }
            continue;
        }
        if current < min_frequency {
            break;
        }
        let (left, right) = (&symbols[pair.0 as usize], &symbols[pair.1 as usize]);
        let merged = format!(
            "{left}{}",
            right.strip_prefix(CONTINUATION).unwrap_or(right)
        );
        let new_id = match ids.get(&merged) {
            Some(&id) => id,
            None => {
                let id = symbols.len() as u32;
                ids.insert(merged.clone(), id);
                symbols.push(merged);
                id
            }
        };
        let (a, b) = pair;
        let mut touched: Vec<u32> = pair_words.remove(&pair).unwrap_or_default();
        touched.sort_unstable();
        touched.dedup();
        pair_count.remove(&pair);
        let mut changed: AHashSet<(u32, u32)> = AHashSet::new();
        for wi in touched {
            let wi = wi as usize;
            let w = &mut words[wi];
            if !w.windows(2).any(|p| p[0] == a && p[1] == b) {
                continue;
            }
            let c = counts[wi] as i64;
            let mut i = 0;
            let mut merged_word = Vec::with_capacity(w.len());
            while i < w.len() {
                if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
                    merged_word.push(new_id);
                    i += 2;
                } else {
                    merged_word.push(w[i]);
                    i += 1;
                }
            }
            // Remove the old pairs of this word, add the new ones.
            for p in w.windows(2) {
                let old = (p[0], p[1]);
                if old == pair {
                    continue;
                }
                if let Some(n) = pair_count.get_mut(&old) {
                    *n -= c;
                }
                changed.insert(old);
            }
            for p in merged_word.windows(2) {
                let new = (p[0], p[1]);
                *pair_count.entry(new).or_insert(0) += c;
                let list = pair_words.entry(new).or_default();
                if list.last() != Some(&(wi as u32)) {
                    list.push(wi as u32);
                }
                changed.insert(new);
            }
            *w = merged_word;
        }
        // Only pairs with the new piece can have gained: the others only lost, and their
        // older, larger heap entries are corrected when they come up (lazy deletion picks
        // the same pairs either way).
        let mut changed: Vec<(u32, u32)> = changed.into_iter().collect();
        changed.sort_unstable();
        for p in changed {
            match pair_count.get(&p).copied() {
                Some(n) if n > 0 => {
                    if p.0 == new_id || p.1 == new_id {
                        heap.push((n, Reverse(p)));
                    }
                }
                _ => {
                    pair_count.remove(&p);
                    pair_words.remove(&p);
                }
            }
        }
    }
    symbols
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i as u32))
        .collect()
}
