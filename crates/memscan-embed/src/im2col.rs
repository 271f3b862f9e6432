//! Custom candle ops for the small convolutional network of [`crate::cnn`] on the CPU:
//!
//! * [`im2col3`] / [`col2im3`]: im2col and its adjoint for 3×3, stride-1, zero-padded
//!   ("same") convolutions on NHWC tensors, so that a convolution is `im2col3(x) · W`
//!   (candle's `conv2d` has a slow CPU backward, DESIGN.md "Stack notes"; nine `narrow`s and
//!   a `cat` would allocate a zero-padded tensor of the input's size per `narrow` backward);
//! * [`conv3x3`]: the whole convolution `im2col3(relu(x)) · W + b` as one op, and
//!   [`linear`]: `x · W + b` as one op. Their forward passes are bit-identical to the
//!   composed candle ops; their backward passes hand autograd only the gradients of the
//!   arguments. Composed, candle's autograd keeps the column matrix alive, allocates, zeroes
//!   and accumulates a gradient of its size, and sums bias gradients column by column
//!   (measured step times: reports/reference/embedders-cnn.md, "Training speed").
//!
//! Layout: `x` is `B × H × W × C` (contiguous, f32); `im2col3(x)` is `(B·H·W) × 9C` with
//! rows in `(b, y, x)` order and columns in `(ky, kx, c)` order, i.e. row `(b, y, x)` holds
//! `x[b, y + ky − 1, x + kx − 1, c]` (zero outside the image). The gradient of `im2col3` is
//! `col2im3`, which sums every column entry back onto the pixel it was copied from.
//!
//! Both directions are computed in gather form (each output element is written by exactly
//! one task, summing in a fixed order), in parallel over rows with rayon, and the matrix
//! products are candle's: the result does not depend on the thread count beyond what
//! candle's `matmul` does.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// The `f32` elements of a contiguous CPU storage, or an error naming `op`.
pub(crate) fn f32_slice<'a>(
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
    x.contiguous()?.apply_op1(Im2col3 {
        b,
        h,
        w,
        c,
        relu: false,
    })
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

/// The column matrix of `x` (`B × H × W × C`, contiguous): `(B·H·W) × 9C`, of `relu(x)`
/// when `relu` is set. One task per output image row `(b, y)`: W rows of the matrix.
fn unfold(x: &[f32], b: usize, h: usize, w: usize, c: usize, relu: bool) -> Vec<f32> {
    let k = 9 * c;
    let mut out = vec![0f32; b * h * w * k];
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
                        let src = &src_row[sx as usize * c..(sx as usize + 1) * c];
                        if relu {
                            for (d, &v) in dst[o..o + c].iter_mut().zip(src) {
                                *d = v.max(0.0);
                            }
                        } else {
                            dst[o..o + c].copy_from_slice(src);
                        }
                    }
                }
            }
        });
    out
}

/// [`unfold`] as an op: the column matrix of `x`, or of `relu(x)` when `relu` is set. Its
/// gradient is [`fold`] (with the ReLU mask of `x` when `relu` is set).
#[derive(Debug, Clone, Copy)]
struct Im2col3 {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    relu: bool,
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
        let Im2col3 { b, h, w, c, relu } = *self;
        let x = f32_slice(storage, layout, "im2col3")?;
        let out = unfold(x, b, h, w, c, relu);
        Ok((CpuStorage::F32(out), Shape::from((b * h * w, 9 * c))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let Im2col3 { b, h, w, c, relu } = *self;
        Ok(Some(unfold_grad(
            grad_res,
            &arg.detach(),
            b,
            h,
            w,
            c,
            relu,
        )?))
    }
}

/// The gradient with respect to `x` of the column matrix of `x` (of `relu(x)` when `relu` is
/// set), given the columns' gradient `g`: [`col2im3`], or [`fold`] with the ReLU mask of `x`.
fn unfold_grad(
    g: &Tensor,
    x: &Tensor,
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    relu: bool,
) -> candle_core::Result<Tensor> {
    if relu {
        g.contiguous()?
            .apply_op2_no_bwd(&x.contiguous()?, &Col2im3Relu { b, h, w, c })
    } else {
        col2im3(g, b, h, w, c)
    }
}

/// `x · w + b` for `x` (`rows × k`, given as a vector), `w` (`k × out`) and `b` (`out`) read
/// from op storages: candle's `matmul` then `broadcast_add`, so bit-identical to them.
fn affine(
    x: &Tensor,
    sw: &CpuStorage,
    lw: &Layout,
    sb: &CpuStorage,
    lb: &Layout,
    out: usize,
) -> candle_core::Result<Vec<f32>> {
    let dev = Device::Cpu;
    let k = x.dim(1)?;
    let w = Tensor::from_slice(f32_slice(sw, lw, "affine")?, (k, out), &dev)?;
    let b = Tensor::from_slice(f32_slice(sb, lb, "affine")?, out, &dev)?;
    x.matmul(&w)?
        .broadcast_add(&b)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// Gradients of `x · w + b` given the upstream gradient `g` (`rows × out`): `(g · wᵀ, xᵀ · g,
/// 1ᵀ · g)`. The bias gradient is a matrix product too: candle's sum over the rows of a
/// `rows × out` tensor walks it column by column, several times slower.
fn affine_grads(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let rows = g.dim(0)?;
    let gx = g.matmul(&w.detach().t()?)?;
    let gw = x.t()?.matmul(g)?;
    let ones = Tensor::ones((1, rows), DType::F32, g.device())?;
    let gb = ones.matmul(g)?.squeeze(0)?;
    Ok((gx, gw, gb))
}

/// A dense layer `x · w + b` (`x`: `rows × k`, `w`: `k × out`, `b`: `out`) as one op,
/// differentiable in all three: the same forward as `matmul` + `broadcast_add`, with the
/// bias gradient as a matrix product ([`affine_grads`]).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (rows, k) = x.dims2()?;
    let (k2, out) = w.dims2()?;
    if k != k2 || b.dims1()? != out {
        candle_core::bail!(
            "linear: input {rows}×{k}, weights {k2}×{out} and bias {:?} do not fit",
            b.dims()
        );
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, Linear { rows, k, out })
}

#[derive(Debug, Clone, Copy)]
struct Linear {
    rows: usize,
    k: usize,
    out: usize,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Linear { rows, k, out } = *self;
        let x = Tensor::from_slice(f32_slice(s1, l1, "linear")?, (rows, k), &Device::Cpu)?;
        let y = affine(&x, s2, l2, s3, l3, out)?;
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, gb) = affine_grads(&x.detach(), w, &grad_res.detach())?;
        Ok((Some(gx), Some(gw), Some(gb)))
    }
}

/// A fused 3×3 stride-1 "same" convolution of `x` (`B × H × W × C`) — of `relu(x)` when
/// `relu` is set — with weights `w` (`9C × C_out`, rows in `(ky, kx, c)` order) and bias `b`
/// (`C_out`): `im2col3(relu(x)) · w + b`, as `B × H × W × C_out`. Differentiable in all
/// three.
///
/// The forward result is bit-identical to the unfused composition (the same copy and the
/// same matmul). The difference is the backward pass: candle's autograd would keep the
/// `(B·H·W) × 9C` column matrix alive, and then allocate, zero and accumulate a gradient of
/// that size for it (and for the ReLU and the bias broadcast). Here the backward recomputes
/// the columns from `x` and hands autograd only the gradients of `x`, `w` and `b`.
pub fn conv3x3(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
    let (n, h, wd, c) = x.dims4()?;
    let (k, cout) = w.dims2()?;
    if k != 9 * c || b.dims1()? != cout {
        candle_core::bail!(
            "conv3x3: weights {k}×{cout} and bias {:?} do not fit {c} input channels",
            b.dims()
        );
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        Conv3x3 {
            b: n,
            h,
            w: wd,
            c,
            cout,
            relu,
            cols: Mutex::new(None),
        },
    )
}

#[derive(Debug)]
struct Conv3x3 {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    cout: usize,
    relu: bool,
    /// The column matrix of the forward pass, kept for the backward pass (which takes it)
    /// when autograd records the op; otherwise dropped with the op right after the forward.
    cols: Mutex<Option<Tensor>>,
}

impl CustomOp3 for Conv3x3 {
    fn name(&self) -> &'static str {
        "conv3x3"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Conv3x3 {
            b,
            h,
            w,
            c,
            cout,
            relu,
            ..
        } = *self;
        let x = f32_slice(s1, l1, "conv3x3")?;
        let cols = Tensor::from_vec(
            unfold(x, b, h, w, c, relu),
            (b * h * w, 9 * c),
            &Device::Cpu,
        )?;
        let y = affine(&cols, s2, l2, s3, l3, cout)?;
        *self.cols.lock().expect("conv3x3 cache lock") = Some(cols);
        Ok((CpuStorage::F32(y), Shape::from((b, h, w, cout))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Conv3x3 {
            b,
            h,
            w: wd,
            c,
            cout,
            relu,
            ..
        } = *self;
        let x = x.detach();
        let cached = self.cols.lock().expect("conv3x3 cache lock").take();
        let cols = match cached {
            Some(cols) => cols,
            // A second backward through the same graph: recompute.
            None => x.apply_op1_no_bwd(&Im2col3 {
                b,
                h,
                w: wd,
                c,
                relu,
            })?,
        };
        let g = grad_res.detach().reshape((b * h * wd, cout))?;
        let (gcols, gw, gb) = affine_grads(&cols, w, &g)?;
        let gx = unfold_grad(&gcols, &x, b, h, wd, c, relu)?;
        Ok((Some(gx), Some(gw), Some(gb)))
    }
}

/// The adjoint of [`unfold`]: sums every column entry back onto the pixel it was copied
/// from, `(B·H·W) × 9C` → `B × H × W × C`. With `relu_of = Some(x)` (the unfold was of
/// `relu(x)`), pixels where `x < 0` get 0: the ReLU's gradient, 1 where `x ≥ 0` as candle's.
fn fold(cols: &[f32], b: usize, h: usize, w: usize, c: usize, relu_of: Option<&[f32]>) -> Vec<f32> {
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
            if let Some(x) = relu_of {
                let src = &x[by * w * c..(by + 1) * w * c];
                for (d, &v) in dst_row.iter_mut().zip(src) {
                    if v < 0.0 {
                        *d = 0.0;
                    }
                }
            }
        });
    out
}

/// [`fold`] with the ReLU mask of `x` (arguments: the column gradient and `x`).
#[derive(Debug, Clone, Copy)]
struct Col2im3Relu {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
}

impl candle_core::CustomOp2 for Col2im3Relu {
    fn name(&self) -> &'static str {
        "col2im3_relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Col2im3Relu { b, h, w, c } = *self;
        let cols = f32_slice(s1, l1, "col2im3_relu")?;
        let x = f32_slice(s2, l2, "col2im3_relu")?;
        let out = fold(cols, b, h, w, c, Some(x));
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
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
        let out = fold(cols, b, h, w, c, None);
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

    /// `f(vars)` and the gradients of its weighted sum with the fixed upstream gradient `g`
    /// (so that every element of the result counts), one per variable.
    fn value_and_grads<const N: usize>(
        f: impl Fn([&Tensor; N]) -> Tensor,
        vars: [&Var; N],
        g: &Tensor,
    ) -> (Tensor, Vec<Tensor>) {
        let y = f(vars.map(|v| v.as_tensor()));
        let grads = (&y * g).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = vars
            .iter()
            .map(|v| grads.get(v.as_tensor()).expect("a gradient").clone())
            .collect();
        (y, gs)
    }

    /// Asserts that two gradient lists agree within `tol`, shape for shape.
    fn assert_grads_close(ga: &[Tensor], gb: &[Tensor], tol: f32, what: &str) {
        for (i, (da, db)) in ga.iter().zip(gb).enumerate() {
            assert_eq!(da.dims(), db.dims());
            let d = max_abs_diff(da, db);
            assert!(d < tol, "{what}: gradient {i} differs by {d}");
        }
    }

    #[test]
    fn conv_forward_and_gradients_match_candle_conv2d() {
        let dev = Device::Cpu;
        let (b, h, w, c, cout) = (2, 5, 4, 3, 4);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h, w, c), &dev).unwrap()).unwrap();
        let wm = Var::from_tensor(&Tensor::randn(0f32, 1.0, (9 * c, cout), &dev).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (b, h, w, cout), &dev).unwrap();
        let (ours, ga) = value_and_grads(
            |[x, wm]| {
                let cols = im2col3(x).unwrap();
                cols.matmul(wm).unwrap().reshape((b, h, w, cout)).unwrap()
            },
            [&x, &wm],
            &g,
        );
        let (theirs, gb) = value_and_grads(
            |[x, wm]| {
                let nchw = x.permute((0, 3, 1, 2)).unwrap();
                let y = nchw.conv2d(&to_oihw(wm, c, cout), 1, 1, 1, 1).unwrap();
                y.permute((0, 2, 3, 1)).unwrap()
            },
            [&x, &wm],
            &g,
        );
        assert!(max_abs_diff(&ours, &theirs) < 1e-4);
        assert_grads_close(&ga, &gb, 1e-3, "im2col vs conv2d");
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
    fn fused_conv_matches_relu_im2col_matmul_bias_bit_for_bit_forward_and_in_gradients() {
        let dev = Device::Cpu;
        for (b, h, w, c, cout) in [(2, 5, 4, 3, 4), (3, 7, 7, 2, 5), (1, 1, 1, 1, 2)] {
            // Rounded, so that many entries are exactly 0, where the ReLU's gradient is a
            // convention (candle's: 1).
            let x0 = Tensor::randn(0f32, 1.0, (b, h, w, c), &dev)
                .unwrap()
                .round()
                .unwrap();
            let x = Var::from_tensor(&x0).unwrap();
            let wm =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (9 * c, cout), &dev).unwrap()).unwrap();
            let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, cout, &dev).unwrap()).unwrap();
            let g = Tensor::randn(0f32, 1.0, (b, h, w, cout), &dev).unwrap();
            for relu in [false, true] {
                let (ours, ga) = value_and_grads(
                    |[x, w, b]| conv3x3(x, w, b, relu).unwrap(),
                    [&x, &wm, &bias],
                    &g,
                );
                let (theirs, gb) = value_and_grads(
                    |[xt, wt, bt]| {
                        let xt = if relu { xt.relu().unwrap() } else { xt.clone() };
                        im2col3(&xt)
                            .unwrap()
                            .matmul(wt)
                            .unwrap()
                            .broadcast_add(bt)
                            .unwrap()
                            .reshape((b, h, w, cout))
                            .unwrap()
                    },
                    [&x, &wm, &bias],
                    &g,
                );
                assert_eq!(
                    max_abs_diff(&ours, &theirs),
                    0.0,
                    "{b}x{h}x{w}x{c} relu {relu}"
                );
                assert_grads_close(&ga, &gb, 1e-4, &format!("conv3x3, relu {relu}"));
            }
        }
    }

    #[test]
    fn relu_unfold_matches_unfold_of_relu_forward_and_in_gradient() {
        let dev = Device::Cpu;
        let (b, h, w, c) = (2, 4, 3, 2);
        // Rounded: exact zeros, where candle's ReLU gradient is 1, as the op's mask.
        let x0 = Tensor::randn(0f32, 1.0, (b, h, w, c), &dev)
            .unwrap()
            .round()
            .unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let g = Tensor::randn(0f32, 1.0, (b * h * w, 9 * c), &dev).unwrap();
        let op = Im2col3 {
            b,
            h,
            w,
            c,
            relu: true,
        };
        let (ours, ga) = value_and_grads(|[x]| x.apply_op1(op).unwrap(), [&x], &g);
        let (theirs, gb) = value_and_grads(|[x]| im2col3(&x.relu().unwrap()).unwrap(), [&x], &g);
        assert_eq!(max_abs_diff(&ours, &theirs), 0.0);
        assert_grads_close(&ga, &gb, 1e-5, "relu unfold");
    }

    #[test]
    fn linear_matches_matmul_plus_bias_bit_for_bit_forward_and_in_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (37, 6), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6, 5), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 5, &dev).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (37, 5), &dev).unwrap();
        let (ours, ga) = value_and_grads(|[x, w, b]| linear(x, w, b).unwrap(), [&x, &w, &b], &g);
        let (theirs, gb) = value_and_grads(
            |[x, w, b]| x.matmul(w).unwrap().broadcast_add(b).unwrap(),
            [&x, &w, &b],
            &g,
        );
        assert_eq!(max_abs_diff(&ours, &theirs), 0.0);
        assert_grads_close(&ga, &gb, 1e-4, "linear");
        // Shapes that do not fit are an error, not a panic.
        assert!(linear(x.as_tensor(), &w.t().unwrap(), b.as_tensor()).is_err());
        let x4 = Tensor::zeros((1, 2, 2, 3), DType::F32, &dev).unwrap();
        assert!(conv3x3(&x4, w.as_tensor(), b.as_tensor(), true).is_err());
    }

    #[test]
    fn border_columns_are_zero() {
        let x = Tensor::ones((1, 2, 2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let cols = im2col3(&x).unwrap().to_vec2::<f32>().unwrap();
        // Pixel (0, 0): only (ky, kx) ∈ {1, 2}² fall inside the 2×2 image.
        assert_eq!(cols[0], vec![0., 0., 0., 0., 1., 1., 0., 1., 1.]);
    }
}
