//! Seeded random streams.
//!
//! Every random choice in this crate comes from a [`ChaCha8Rng`] derived from an explicit
//! `(seed, stage, index)` triple, never from thread identity or the clock, so that results
//! are the same for any rayon thread count.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stage tags: one per kind of random decision, so that streams never overlap.
pub(crate) mod stage {
    pub const PATIENT: u64 = 0x5041_5449_454e_5401; // patient anatomy seeds
    pub const SLICE: u64 = 0x534c_4943_4502; // slice positions
    pub const NOISE: u64 = 0x4e4f_4953_4503; // acquisition noise seeds
    pub const SELECT: u64 = 0x0053_454c_4543_5404; // choosing copied training images
    pub const SHUFFLE: u64 = 0x5348_5546_464c_4505; // synthetic order
    pub const PERTURB: u64 = 0x5045_5254_5552_4206; // copy transforms
    pub const KDE: u64 = 0x4b44_4507; // KDE samples
    pub const DENOISER: u64 = 0x4445_4e4f_4953_4508; // denoiser initial noise
    pub const SPLIT: u64 = 0x5350_4c49_5409; // train/holdout/novel splits of real data
    pub const MOONS: u64 = 0x4d4f_4f4e_530a; // two-moons toy data
}

/// SplitMix64 finalizer: a bijective mix of 64 bits.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 64-bit seed derived from `(seed, stage, index)`.
pub(crate) fn derive(seed: u64, stage: u64, index: u64) -> u64 {
    mix(mix(mix(seed) ^ stage) ^ index)
}

/// The random stream of item `index` in `stage` under `seed`.
pub(crate) fn stream(seed: u64, stage: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(seed) ^ stage));
    rng.set_stream(index);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_stage_and_index() {
        let a: u64 = stream(1, stage::NOISE, 0).random();
        let b: u64 = stream(1, stage::NOISE, 1).random();
        let c: u64 = stream(1, stage::SLICE, 0).random();
        let d: u64 = stream(1, stage::NOISE, 0).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, d);
        assert_ne!(derive(1, 2, 3), derive(1, 2, 4));
    }
}
