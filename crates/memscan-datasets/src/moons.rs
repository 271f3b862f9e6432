//! Two interleaving half circles, as scikit-learn's `make_moons` — the toy data of Meehan,
//! Chaudhuri & Dasgupta (2020), whose C_T curve `memscan reproduce meehan-moons` checks.
//!
//! Like `sklearn.datasets.make_moons(n, shuffle=True, noise)`: `n_out = n / 2` points at
//! evenly spaced angles `t = linspace(0, π, n_out)` on the outer moon `(cos t, sin t)` (label
//! 0) and `n_in = n − n_out` on the inner moon `(1 − cos t, ½ − sin t)` (label 1), each plus
//! `N(0, noise²)` in both coordinates, then shuffled. All randomness comes from one ChaCha8
//! stream of `seed` (Box–Muller draws not bit-identical to NumPy's; only the distribution
//! matches).

use crate::rng::{stage, stream};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::StandardNormal;

/// `n` two-moons points (`[x, y]`) with their labels (0 outer, 1 inner), seeded.
pub fn moons(n: usize, noise: f64, seed: u64) -> (Vec<[f64; 2]>, Vec<u8>) {
    let n_out = n / 2;
    let n_in = n - n_out;
    let angle = |i: usize, m: usize| {
        if m <= 1 {
            0.0
        } else {
            std::f64::consts::PI * i as f64 / (m - 1) as f64
        }
    };
    let mut rng = stream(seed, stage::MOONS, 0);
    let mut rows: Vec<([f64; 2], u8)> = (0..n_out)
        .map(|i| {
            let t = angle(i, n_out);
            ([t.cos(), t.sin()], 0)
        })
        .chain((0..n_in).map(|i| {
            let t = angle(i, n_in);
            ([1.0 - t.cos(), 0.5 - t.sin()], 1)
        }))
        .collect();
    rows.shuffle(&mut rng);
    for (p, _) in &mut rows {
        for v in p.iter_mut() {
            let z: f64 = rng.sample(StandardNormal);
            *v += noise * z;
        }
    }
    rows.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_labels_and_determinism() {
        let (x, y) = moons(101, 0.0, 3);
        assert_eq!((x.len(), y.len()), (101, 101));
        assert_eq!(y.iter().filter(|&&l| l == 0).count(), 50);
        // Noise-free points lie on the two unit half circles.
        for (p, &l) in x.iter().zip(&y) {
            let c = if l == 0 { [0.0, 0.0] } else { [1.0, 0.5] };
            let r = ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt();
            assert!((r - 1.0).abs() < 1e-12);
        }
        assert_eq!(moons(50, 0.2, 7), moons(50, 0.2, 7));
        assert_ne!(moons(50, 0.2, 7).0, moons(50, 0.2, 8).0);
        // Noise has the requested spread around the noise-free points.
        let (a, _) = moons(4000, 0.2, 1);
        let mean_x = a.iter().map(|p| p[0]).sum::<f64>() / 4000.0;
        assert!((mean_x - 0.5).abs() < 0.03, "{mean_x}");
    }
}
