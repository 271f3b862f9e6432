//! The closed-form optimal denoiser of the training set, sampled with EDM's Heun sampler
//! (Gu et al. 2023, "On memorization in diffusion models"; Karras et al. 2022, "Elucidating the
//! design space of diffusion-based generative models").
//!
//! A diffusion model trained to optimality on a finite training set `{y_i}` learns the
//! empirical optimal denoiser
//!
//! ```text
//! D(x; σ) = Σ_i softmax_i(−‖x − y_i‖² / 2(σ² + h²)) · y_i
//! ```
//!
//! (here with a smoothing bandwidth `h` = [`DenoiserSpec::smoothing`]; `h = 0` is the exact
//! optimum, which provably reproduces training images). Sampling follows EDM's deterministic
//! Heun sampler (Algorithm 1 with `S_churn = 0`): noise levels
//! `t_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ` for `i < N`, `t_N = 0`,
//! start `x_0 ~ N(0, t_0² I)`, then an Euler step with a second-order (Heun) correction on
//! every step but the last. With the defaults (`N = 18`, `σ_max = 80`, `σ_min = 0.002`,
//! `ρ = 7`) that is 35 denoiser evaluations per sample.
//!
//! As in EDM, images live in `[−1, 1]` internally (`y = 2·pixel − 1`); outputs are mapped
//! back to `[0, 1]` and clamped. A larger `σ_min` stops the sampler early (outputs are noisy
//! blends), and `h > 0` blends neighbouring training images, so both make it generalize
//! (or at least stop copying). The softmax is computed with log-sum-exp in `f64`; one
//! evaluation costs `O(N·D)` time and `O(N + D)` memory per sample (no `N × N` matrix).
//! Samples run in parallel, each from its own seeded stream, so the output does not depend on
//! the thread count. Truth ([`GenTruth`]): the nearest and second-nearest training images of
//! each output, in `[0, 1]` pixel units.

use crate::error::Error;
use crate::generated::{check_train, truth_of, Generated};
use crate::rng::{stage, stream};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of [`denoiser()`](fn@denoiser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DenoiserSpec {
    /// Number of samples.
    pub n: usize,
    /// Smallest noise level of the schedule (EDM: 0.002), in `[−1, 1]` units.
    pub sigma_min: f64,
    /// Largest noise level (EDM: 80).
    pub sigma_max: f64,
    /// Number of noise levels `N` (EDM: 18); `2N − 1` denoiser evaluations.
    pub steps: usize,
    /// Schedule exponent `ρ` (EDM: 7).
    pub rho: f64,
    /// Smoothing bandwidth `h ≥ 0` added to the softmax's variance (`σ² + h²`), in `[−1, 1]`
    /// units; 0 is the exact optimal denoiser.
    pub smoothing: f64,
    /// Seed of the initial noise.
    pub seed: u64,
}

impl Default for DenoiserSpec {
    /// EDM's schedule, 100 samples, no smoothing, seed 0.
    fn default() -> Self {
        DenoiserSpec {
            n: 100,
            sigma_min: 0.002,
            sigma_max: 80.0,
            steps: 18,
            rho: 7.0,
            smoothing: 0.0,
            seed: 0,
        }
    }
}

impl DenoiserSpec {
    /// The noise levels `t_0 > … > t_{N−1}` followed by `t_N = 0`.
    pub fn schedule(&self) -> Vec<f64> {
        let n = self.steps;
        let (a, b) = (
            self.sigma_max.powf(1.0 / self.rho),
            self.sigma_min.powf(1.0 / self.rho),
        );
        let mut t: Vec<f64> = (0..n)
            .map(|i| {
                let f = if n > 1 {
                    i as f64 / (n - 1) as f64
                } else {
                    0.0
                };
                (a + f * (b - a)).powf(self.rho)
            })
            .collect();
        t.push(0.0);
        t
    }

    fn validate(&self) -> Result<(), Error> {
        let ok = self.sigma_min > 0.0
            && self.sigma_max >= self.sigma_min
            && self.sigma_max.is_finite()
            && self.steps >= 1
            && self.rho > 0.0
            && self.rho.is_finite()
            && self.smoothing >= 0.0
            && self.smoothing.is_finite();
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidSpec(format!(
                "denoiser needs 0 < sigma_min ≤ sigma_max < ∞, steps ≥ 1, rho > 0, smoothing ≥ 0; got {self:?}"
            )))
        }
    }
}

/// `D(x; σ)` written into `out`; `logits` is scratch space of length `train.len()`.
fn denoise(x: &[f64], train: &[Vec<f32>], var: f64, logits: &mut [f64], out: &mut [f64]) {
    for (l, y) in logits.iter_mut().zip(train) {
        let d2: f64 = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| {
                let d = a - f64::from(b);
                d * d
            })
            .sum();
        *l = -d2 / (2.0 * var);
    }
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut z = 0.0;
    for l in logits.iter_mut() {
        *l = (*l - max).exp();
        z += *l;
    }
    out.fill(0.0);
    for (&w, y) in logits.iter().zip(train) {
        let w = w / z;
        // Weights below 1e-30 change no f64 pixel by more than 1e-30: skip them.
        if w < 1e-30 {
            continue;
        }
        for (o, &v) in out.iter_mut().zip(y) {
            *o += w * f64::from(v);
        }
    }
}

/// Samples [`DenoiserSpec::n`] images from the optimal denoiser of `train` (images of equal
/// length, values in `[0, 1]`), with ground truth. Errors ([`Error::InvalidSpec`]) on an empty
/// or ragged training set or an invalid schedule.
pub fn denoiser(train: &[Vec<f32>], spec: &DenoiserSpec) -> Result<Generated, Error> {
    let dim = check_train(train)?;
    spec.validate()?;
    let y: Vec<Vec<f32>> = train
        .iter()
        .map(|t| t.iter().map(|&v| 2.0 * v - 1.0).collect())
        .collect();
    let t = spec.schedule();
    let h2 = spec.smoothing * spec.smoothing;
    let images: Vec<Vec<f32>> = (0..spec.n)
        .into_par_iter()
        .map(|j| {
            let mut rng = stream(spec.seed, stage::DENOISER, j as u64);
            let mut x: Vec<f64> = (0..dim)
                .map(|_| t[0] * rng.sample::<f64, _>(StandardNormal))
                .collect();
            let mut logits = vec![0.0; y.len()];
            let mut den = vec![0.0; dim];
            let mut d = vec![0.0; dim];
            let mut x_next = vec![0.0; dim];
            for i in 0..t.len() - 1 {
                let (ti, tn) = (t[i], t[i + 1]);
                denoise(&x, &y, ti * ti + h2, &mut logits, &mut den);
                for k in 0..dim {
                    d[k] = (x[k] - den[k]) / ti;
                    x_next[k] = x[k] + (tn - ti) * d[k];
                }
                if tn > 0.0 {
                    denoise(&x_next, &y, tn * tn + h2, &mut logits, &mut den);
                    for k in 0..dim {
                        let d2 = (x_next[k] - den[k]) / tn;
                        x_next[k] = x[k] + (tn - ti) * 0.5 * (d[k] + d2);
                    }
                }
                std::mem::swap(&mut x, &mut x_next);
            }
            x.iter()
                .map(|&v| ((v + 1.0) / 2.0).clamp(0.0, 1.0) as f32)
                .collect()
        })
        .collect();
    let truth = truth_of(&images, train, None);
    Ok(Generated { images, truth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{render, PatientParams, PhantomKind};

    fn train(n: u64) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| render(&PatientParams::sample(PhantomKind::Mr, i), 0.4, 16, i))
            .collect()
    }

    #[test]
    fn edm_schedule() {
        let t = DenoiserSpec::default().schedule();
        assert_eq!(t.len(), 19);
        assert!((t[0] - 80.0).abs() < 1e-9 && (t[17] - 0.002).abs() < 1e-12 && t[18] == 0.0);
        assert!(t.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn small_sigma_min_reproduces_training_images() {
        let train = train(12);
        let g = denoiser(
            &train,
            &DenoiserSpec {
                n: 8,
                seed: 3,
                ..DenoiserSpec::default()
            },
        )
        .unwrap();
        for t in &g.truth {
            assert!(t.d1 < 1e-4, "{t:?}");
            assert!(t.is_copy() && t.source.is_none());
        }
        // Not all samples copy the same image.
        let mut nn: Vec<usize> = g.truth.iter().map(|t| t.nearest).collect();
        nn.dedup();
        assert!(nn.len() > 1);
    }

    #[test]
    fn smoothing_stops_copying_and_output_is_deterministic() {
        let train = train(12);
        let spec = DenoiserSpec {
            n: 6,
            smoothing: 2.0,
            seed: 5,
            ..DenoiserSpec::default()
        };
        let g = denoiser(&train, &spec).unwrap();
        assert!(g.truth.iter().all(|t| !t.is_copy()), "{:?}", g.truth);
        let run = |th: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(th)
                .build()
                .unwrap()
                .install(|| denoiser(&train, &spec).unwrap())
        };
        assert_eq!(run(1), run(2));
        assert!(denoiser(
            &train,
            &DenoiserSpec {
                sigma_min: 0.0,
                ..spec
            }
        )
        .is_err());
    }
}
