//! A seeded set of procedural phantom images for benchmarks, examples and tests: image `i` is
//! the mid slice (z = 0.5) of patient `i` of kind `PhantomKind::ALL[i % 3]`, rendered at
//! `size × size` with noise seed `i`, id `"i"`. The same `(n, size)` always gives the same
//! pixels, so speed and training measurements are comparable between runs.

use memscan_datasets::{render, PatientParams, PhantomKind};
use memscan_io::Image;

/// `n` one-channel `size × size` phantom images (see the module docs).
pub fn phantom_images(n: usize, size: usize) -> Vec<Image> {
    (0..n)
        .map(|i| {
            let p = PatientParams::sample(PhantomKind::ALL[i % PhantomKind::ALL.len()], i as u64);
            Image {
                id: i.to_string(),
                hash: String::new(),
                channels: 1,
                height: size,
                width: size,
                pixels: render(&p, 0.5, size as u32, i as u64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_distinct_and_in_range() {
        let a = phantom_images(4, 16);
        let b = phantom_images(4, 16);
        assert_eq!(a.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.pixels, y.pixels);
            assert_eq!((x.channels, x.height, x.width), (1, 16, 16));
            assert_eq!(x.pixels.len(), 256);
            assert!(x.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        assert_eq!(a[2].id, "2");
        assert_ne!(a[0].pixels, a[1].pixels);
        assert_ne!(a[0].pixels, a[3].pixels, "same kind, different patient");
    }
}
