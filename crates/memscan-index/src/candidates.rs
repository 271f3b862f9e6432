//! Per-query bounded candidate lists for the blocked search.
//!
//! The blocked product yields *approximate* squared distances (`f32`, with a rounding error of
//! at most `δ` per pair, see [`crate::exact`]). A [`Candidates`] list keeps every base point that
//! may still be among the exact top-k of its query, so that an exact `f64` re-rank of the list
//! at the end gives the exact answer.
//!
//! Invariants (`key` = approximate squared distance, or an exact one rounded up after a
//! compaction; `band` = `2δ`):
//! - entries are sorted by non-decreasing key; base points arrive in increasing index order, so a
//!   new entry goes after all entries with an equal key;
//! - every entry's key is within `δ` of its true squared distance;
//! - an entry is dropped only if its key exceeds the k-th smallest key plus `band`. Then its
//!   true squared distance exceeds `k`th key `+ δ`, which bounds the true squared distances of the
//!   `k` first entries: `k` other points are strictly closer, so it cannot be in the top-k;
//! - the list keeps at least `k + margin` entries (the margin is belt and braces on top of the
//!   band);
//! - if more than `cap` entries fall within the band (many near-ties, e.g. a block of duplicated
//!   images), the list is *compacted*: the exact squared distances of all entries are computed,
//!   the exact top-k by `(distance, index)` is kept and their keys become those exact values
//!   (rounded up to `f32`). This keeps memory bounded without giving up exactness.

/// Rounds a non-negative `f64` to the nearest `f32` that is `>=` it (finite inputs below
/// `f32::MAX`).
pub(crate) fn f32_round_up(x: f64) -> f32 {
    let f = x as f32;
    if (f as f64) < x {
        // Non-negative finite f32: the next representable value is the next bit pattern.
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// Sorts `(squared distance, index)` pairs ascending by distance, then index.
pub(crate) fn sort_exact(v: &mut [(f64, u32)]) {
    v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

/// A bounded list of candidate neighbours of one query (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    /// `(key, base index)`, keys non-decreasing.
    entries: Vec<(f32, u32)>,
    k: usize,
    /// `k + margin`: the list is never pruned below this length.
    keep: usize,
    /// Compaction trigger.
    cap: usize,
    /// `2δ`, in squared-distance units.
    band: f32,
    /// A point is accepted iff its key is `<=` this.
    threshold: f32,
}

impl Candidates {
    /// An empty list for the top-`k` (`k >= 1`) with the given margin, compaction trigger
    /// (raised to at least `2 (k + margin)`) and rounding band `2δ >= 0`.
    pub(crate) fn new(k: usize, margin: usize, cap: usize, band: f32) -> Self {
        debug_assert!(k >= 1);
        let keep = k + margin;
        let cap = cap.max(2 * keep);
        Self {
            entries: Vec::with_capacity(keep + 1),
            k,
            keep,
            cap,
            band,
            threshold: f32::INFINITY,
        }
    }

    /// A point with approximate squared distance `key` must be [`push`](Self::push)ed iff
    /// `key <= self.threshold()`.
    #[inline(always)]
    pub(crate) fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Inserts base point `idx` (larger than every index pushed before) with key `key`.
    /// `exact(idx)` must return the exact squared distance of base point `idx` to the query; it is
    /// only called when the list is compacted.
    #[inline]
    pub(crate) fn push(&mut self, key: f32, idx: u32, exact: impl Fn(u32) -> f64) {
        // Insertion from the back: equal keys stay in arrival (= index) order.
        let e = &mut self.entries;
        e.push((key, idx));
        let mut pos = e.len() - 1;
        while pos > 0 && e[pos - 1].0 > key {
            e[pos] = e[pos - 1];
            pos -= 1;
        }
        e[pos] = (key, idx);
        if e.len() > self.keep {
            let limit = e[self.k - 1].0 + self.band;
            while e.len() > self.keep && e[e.len() - 1].0 > limit {
                e.pop();
            }
            if e.len() > self.cap {
                self.compact(&exact);
            }
        }
        let e = &self.entries;
        self.threshold = if e.len() < self.keep {
            f32::INFINITY
        } else {
            e[e.len() - 1].0.max(e[self.k - 1].0 + self.band)
        };
    }

    /// Replaces the entries by their exact top-k, keyed by exact squared distance (rounded up).
    #[cold]
    fn compact(&mut self, exact: &impl Fn(u32) -> f64) {
        let mut ex: Vec<(f64, u32)> = self.entries.iter().map(|&(_, i)| (exact(i), i)).collect();
        sort_exact(&mut ex);
        ex.truncate(self.k);
        self.entries.clear();
        self.entries
            .extend(ex.into_iter().map(|(d2, i)| (f32_round_up(d2), i)));
    }

    /// Number of entries currently held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The exact top-k: `(exact squared distance, base index)` ascending by distance then index.
    /// Fewer than `k` if fewer points were pushed.
    ///
    /// Only entries within the band of the k-th key are re-ranked: the others cannot be in the
    /// top-k (module docs), so the margin costs no exact distance computations.
    pub(crate) fn finish(self, exact: impl Fn(u32) -> f64) -> Vec<(f64, u32)> {
        let live = match self.entries.get(self.k - 1) {
            Some(&(kth, _)) => {
                let limit = kth + self.band;
                self.entries.partition_point(|e| e.0 <= limit)
            }
            None => self.entries.len(),
        };
        let mut ex: Vec<(f64, u32)> = self.entries[..live]
            .iter()
            .map(|&(_, i)| (exact(i), i))
            .collect();
        sort_exact(&mut ex);
        ex.truncate(self.k);
        ex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        keys: &[f32],
        exact: &[f64],
        k: usize,
        margin: usize,
        cap: usize,
        band: f32,
    ) -> Vec<u32> {
        let mut c = Candidates::new(k, margin, cap, band);
        for (i, &key) in keys.iter().enumerate() {
            if key <= c.threshold() {
                c.push(key, i as u32, |j| exact[j as usize]);
            }
            assert!(c.len() <= (2 * (k + margin)).max(cap));
        }
        c.finish(|j| exact[j as usize])
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    #[test]
    fn round_up() {
        assert_eq!(f32_round_up(0.0), 0.0);
        assert_eq!(f32_round_up(1.0), 1.0);
        let x = 0.1f64;
        let r = f32_round_up(x);
        assert!(r as f64 >= x);
        assert!((r as f64 - x) < 1e-8);
        assert!(f32_round_up(1e-50) > 0.0);
    }

    #[test]
    fn keeps_exact_top_k_despite_key_noise() {
        // Keys are exact distances perturbed by up to +-0.01 (band 0.02 covers 2δ).
        let exact: Vec<f64> = (0..200).map(|i| ((i * 37) % 200) as f64 * 0.004).collect();
        let keys: Vec<f32> = exact
            .iter()
            .enumerate()
            .map(|(i, &e)| (e + if i % 2 == 0 { 0.01 } else { -0.01 }) as f32)
            .collect();
        let mut want: Vec<(f64, u32)> = exact
            .iter()
            .enumerate()
            .map(|(i, &e)| (e, i as u32))
            .collect();
        sort_exact(&mut want);
        for k in [1, 2, 5] {
            let got = run(&keys, &exact, k, 0, 4, 0.02);
            let w: Vec<u32> = want[..k].iter().map(|p| p.1).collect();
            assert_eq!(got, w, "k = {k}");
        }
    }

    #[test]
    fn compaction_keeps_lowest_indices_among_ties() {
        // 1000 exact ties whose keys are noisy: compaction must still return indices 0..k.
        let exact = vec![0.0f64; 1000];
        let keys: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 13) as f32 * 1e-4 - 6e-4)
            .collect();
        for k in [1, 2, 5] {
            let got = run(&keys, &exact, k, 8, 32, 2e-3);
            assert_eq!(got, (0..k as u32).collect::<Vec<_>>());
        }
    }
}
