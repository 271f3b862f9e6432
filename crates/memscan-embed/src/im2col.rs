//! im2col / col2im for 3×3, stride-1, zero-padded ("same") convolutions on NHWC tensors,
//! as custom candle ops, so that a convolution is `im2col3(x) · W` and candle's autograd
//! sees one copy and one matmul instead of `conv2d` (whose CPU backward is slow, DESIGN.md
//! "Stack notes") or nine `narrow`s and a `cat` (each `narrow`'s backward allocates a
//! zero-padded tensor of the input's size).
//!
//! Layout: `x` is `B × H × W × C` (contiguous, f32); `im2col3(x)` is `(B·H·W) × 9C` with
//! rows in `(b, y, x)` order and columns in `(ky, kx, c)` order, i.e. row `(b, y, x)` holds
//! `x[b, y + ky − 1, x + kx − 1, c]` (zero outside the image). The gradient of `im2col3` is
//! `col2im3`, which sums every column entry back onto the pixel it was copied from.
//!
//! Both directions are computed in gather form (each output element is written by exactly
//! one task, summing in a fixed order), in parallel over rows with rayon: the result does
//! not depend on the thread count.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{op}: only f32 tensors are supported"),
    };
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: the input must be contiguous"),
    }
}

/// Unfolds 3×3 neighbourhoods: `B × H × W × C` → `(B·H·W) × 9C` (see the module docs).
/// Differentiable (its gradient is col2im).
pub fn im2col3(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    x.contiguous()?.apply_op1(Im2col3 { b, h, w, c })
}

/// Folds columns back: `(B·H·W) × 9C` → `B × H × W × C`, summing overlaps; the adjoint of
/// [`im2col3`]. Not differentiable itself (training needs only first derivatives).
pub fn col2im3(
    cols: &Tensor,
    b: usize,
    h: usize,
    w: usize,
    c: usize,
) -> candle_core::Result<Tensor> {
    let (rows, k) = cols.dims2()?;
    if rows != b * h * w || k != 9 * c {
        candle_core::bail!(
            "col2im3: columns are {rows}×{k}, expected {}×{}",
            b * h * w,
            9 * c
        );
    }
    cols.contiguous()?.apply_op1_no_bwd(&Col2im3 { b, h, w, c })
}

#[derive(Debug, Clone, Copy)]
struct Im2col3 {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
}

impl CustomOp1 for Im2col3 {
    fn name(&self) -> &'static str {
        "im2col3"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Im2col3 { b, h, w, c } = *self;
        let x = f32_slice(storage, layout, "im2col3")?;
        let k = 9 * c;
        let mut out = vec![0f32; b * h * w * k];
        // One task per output image row (b, y): W rows of the column matrix.
        out.par_chunks_mut(w * k)
            .enumerate()
            .for_each(|(by, chunk)| {
                let (bi, y) = (by / h, by % h);
                let img = &x[bi * h * w * c..(bi + 1) * h * w * c];
                for ky in 0..3 {
                    let sy = y as isize + ky as isize - 1;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    let src_row = &img[sy as usize * w * c..(sy as usize + 1) * w * c];
                    for xx in 0..w {
                        let dst = &mut chunk[xx * k..(xx + 1) * k];
                        for kx in 0..3 {
                            let sx = xx as isize + kx as isize - 1;
                            if sx < 0 || sx >= w as isize {
                                continue;
                            }
                            let o = (ky * 3 + kx) * c;
                            dst[o..o + c]
                                .copy_from_slice(&src_row[sx as usize * c..(sx as usize + 1) * c]);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b * h * w, k))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let Im2col3 { b, h, w, c } = *self;
        Ok(Some(col2im3(grad_res, b, h, w, c)?))
    }
}

#[derive(Debug, Clone, Copy)]
struct Col2im3 {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
}

impl CustomOp1 for Col2im3 {
    fn name(&self) -> &'static str {
        "col2im3"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Col2im3 { b, h, w, c } = *self;
        let cols = f32_slice(storage, layout, "col2im3")?;
        let k = 9 * c;
        let mut out = vec![0f32; b * h * w * c];
        // Pixel (y, x) was copied into row (y − ky + 1, x − kx + 1) at column block (ky, kx).
        out.par_chunks_mut(w * c)
            .enumerate()
            .for_each(|(by, dst_row)| {
                let (bi, y) = (by / h, by % h);
                for ky in 0..3 {
                    let ry = y as isize - ky as isize + 1;
                    if ry < 0 || ry >= h as isize {
                        continue;
                    }
                    let row_base = (bi * h + ry as usize) * w;
                    for xx in 0..w {
                        let dst = &mut dst_row[xx * c..(xx + 1) * c];
                        for kx in 0..3 {
                            let rx = xx as isize - kx as isize + 1;
                            if rx < 0 || rx >= w as isize {
                                continue;
                            }
                            let o = (row_base + rx as usize) * k + (ky * 3 + kx) * c;
                            for (d, s) in dst.iter_mut().zip(&cols[o..o + c]) {
                                *d += s;
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff;
    use candle_core::{Device, Var};

    /// Weights `(9C, Cout)` in `(ky, kx, c)` row order → candle's `(Cout, C, 3, 3)`.
    fn to_oihw(wm: &Tensor, c: usize, cout: usize) -> Tensor {
        wm.reshape((3, 3, c, cout))
            .unwrap()
            .permute((3, 2, 0, 1))
            .unwrap()
            .contiguous()
            .unwrap()
    }

    #[test]
    fn conv_forward_and_gradients_match_candle_conv2d() {
        let dev = Device::Cpu;
        let (b, h, w, c, cout) = (2, 5, 4, 3, 4);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h, w, c), &dev).unwrap()).unwrap();
        let wm = Var::from_tensor(&Tensor::randn(0f32, 1.0, (9 * c, cout), &dev).unwrap()).unwrap();
        // Fixed upstream gradient through a weighted sum, so the check covers every element.
        let g = Tensor::randn(0f32, 1.0, (b, h, w, cout), &dev).unwrap();

        let ours = im2col3(x.as_tensor())
            .unwrap()
            .matmul(wm.as_tensor())
            .unwrap()
            .reshape((b, h, w, cout))
            .unwrap();
        let theirs = x
            .as_tensor()
            .permute((0, 3, 1, 2))
            .unwrap()
            .conv2d(&to_oihw(wm.as_tensor(), c, cout), 1, 1, 1, 1)
            .unwrap()
            .permute((0, 2, 3, 1))
            .unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-4);

        let ga = (&ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&theirs * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [x.as_tensor(), wm.as_tensor()] {
            let (da, db) = (ga.get(v).unwrap(), gb.get(v).unwrap());
            assert_eq!(da.dims(), v.dims());
            let d = max_abs_diff(da, db);
            assert!(d < 1e-3, "gradient differs by {d}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // d/dx of sum(g ⊙ im2col3(x)) = col2im3(g): check one entry numerically.
        let dev = Device::Cpu;
        let (b, h, w, c) = (1, 3, 3, 2);
        let x0: Vec<f32> = (0..b * h * w * c)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let g = Tensor::randn(0f32, 1.0, (b * h * w, 9 * c), &dev).unwrap();
        let f = |xs: &[f32]| -> f32 {
            let x = Tensor::from_slice(xs, (b, h, w, c), &dev).unwrap();
            (im2col3(&x).unwrap() * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let analytic = col2im3(&g, b, h, w, c)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for i in [0, 5, 8, 17] {
            let (mut p, mut m) = (x0.clone(), x0.clone());
            p[i] += 1e-2;
            m[i] -= 1e-2;
            let num = (f(&p) - f(&m)) / 2e-2;
            assert!(
                (num - analytic[i]).abs() < 1e-2,
                "entry {i}: {num} vs {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn border_columns_are_zero() {
        let x = Tensor::ones((1, 2, 2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let cols = im2col3(&x).unwrap().to_vec2::<f32>().unwrap();
        // Pixel (0, 0): only (ky, kx) ∈ {1, 2}² fall inside the 2×2 image.
        assert_eq!(cols[0], vec![0., 0., 0., 0., 1., 1., 0., 1., 1.]);
    }
}
