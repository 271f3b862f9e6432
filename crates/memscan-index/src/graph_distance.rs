//! [`SqL2`]: the distance the HNSW graph is built and searched with.
//!
//! hnsw_rs's own `DistL2` sums the squared differences in one sequential chain (the compiler
//! may not reorder floating-point additions, so it neither vectorizes nor overlaps them) and
//! takes a square root per call. [`SqL2`] returns the **squared** Euclidean distance — a
//! monotone function of the distance, so every comparison the graph makes (candidate order,
//! the neighbour-selection heuristic, "is this the point itself": `0`) is unchanged — summed in
//! 16 independent lanes that the compiler maps onto SIMD registers, with an AVX2 build of the
//! same code chosen at run time. Both builds perform the same `f32` operations in the same
//! order per lane (no fused multiply-add), so the graph is bit-for-bit the same on any x86-64
//! CPU. The values never reach a report: every candidate is re-ranked exactly in `f64`.

use hnsw_rs::prelude::Distance;

/// Lanes of the partial sums.
const LANES: usize = 16;

/// Squared Euclidean distance for the HNSW graph (see the [module docs](self)).
#[derive(Debug, Default, Clone, Copy)]
pub struct SqL2;

#[inline(always)]
fn kernel(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        let d = x - y;
        acc[i] += d * d;
    }
    // Fixed pairwise reduction order.
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn kernel_avx2(a: &[f32], b: &[f32]) -> f32 {
    kernel(a, b)
}

/// The squared Euclidean distance of two vectors (over their common length).
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { kernel_avx2(a, b) };
        }
    }
    kernel(a, b)
}

impl Distance<f32> for SqL2 {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        squared_l2(va, vb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_and_both_builds_agree() {
        for n in [0usize, 1, 7, 16, 17, 33, 128, 300] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 * 0.1 - 0.4).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13) % 7) as f32 * 0.2 - 0.5).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .sum();
            let got = SqL2.eval(&a, &b);
            assert!(
                (f64::from(got) - exact).abs() <= 1e-5 * exact.max(1.0),
                "{n}"
            );
            assert_eq!(got.to_bits(), kernel(&a, &b).to_bits(), "{n}: same bits");
            assert_eq!(SqL2.eval(&a, &a), 0.0);
        }
    }
}
