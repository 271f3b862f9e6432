"""PyTorch (CPU) throughput of memscan's candle embedders, for comparison with the criterion benches.

Run (no arguments needed; ``--help`` lists the knobs):

    /work/torch-venv/bin/python benches/pytorch/throughput.py

It rebuilds, with random weights (throughput does not depend on their values), the same networks
as crates/memscan-embed/src:

* ``cnn`` (cnn.rs, ``Config::small(1, size)``): windowed moment canonicalization of every input
  (canon.rs; done per image on the CPU in candle, batched with ``grid_sample`` here; in
  training after augmentation), smoothing of the input (``smooth_passes(size)``
  passes of [1 2 1]/4 along H then W, edges replicated), ``x − 0.5``, a 4×4 stride-4 patchify
  stem (2×2 below 48 px; zero padding at the bottom/right when the side is not a multiple),
  stages of widths 16/32/64 (2×2 stride-2 patchify downsampling before stages 1 and 2), one
  pre-activation residual block ``x + conv2(relu(conv1(relu(x))))`` of biased 3×3 convolutions
  per stage, ReLU, GeM pooling (p = 3, clamp 1e-6), a linear head to 128, and for training only
  the projection head 128 → 128 → 128 (ReLU between). Embedding L2-normalizes the descriptor.
* cnn training (train.rs): two views per image (rows i and i + B are positives), forward,
  projection, row L2 normalization (+1e-12 under the square root), NT-Xent at τ = 0.1 (diagonal
  masked by −1e9, cross-entropy, mean), backward, AdamW (lr 2e-3 with the per-step learning-rate
  update, β = (0.9, 0.999), ε = 1e-8, weight decay 1e-4 on every variable).
* ``efficientnet-lite0`` (efficientnet.rs): input bilinear resize to 224 (half-pixel centres)
  and scaling ``(255·x − 127)/128``, stem 3×3/2 conv to 32, the 16 MBConv blocks of
  ``Config::lite0()`` (no squeeze-and-excitation, ReLU6, expansion 1×1 → depthwise k×k →
  projection 1×1, identity residual when stride 1 and in = out), head 1×1 to 1280 + ReLU6,
  global average pool, L2 normalization. TensorFlow "SAME" padding (asymmetric for stride 2)
  as ``same_padding`` computes it. Candle folds batch norm (eps 1e-3) into the convolutions at
  load time, so the timed network is the folded one (biased convolutions, no BN layers); the
  unfolded module (Conv + BatchNorm2d, lukemelas names, ``_fc`` classifier kept) is built only
  to check the parameter count against the weights file.

Measured with ``torch.set_num_threads(2)`` under ``torch.inference_mode()`` for inference:

* ``embed/cnn/{56,64}``: one ``embed_batch`` of 64 one-channel images (images/s);
* ``train_cnn/{56,64}``: one training step on 64 images = 128 views, counted as 64 images as the
  candle bench does. The candle bench (benches/benches/embed.rs, group ``train_cnn``) times a
  whole ``train()`` call with epochs 1 and batch 64 on 64 images, i.e. model creation and
  seeded initialization, AdamW creation, the augmentation of the 128 views (rayon), one step,
  and writing the model directory. Three PyTorch variants are reported:
  ``step`` (forward + loss + backward + AdamW on pre-made views, no augmentation),
  ``step+aug`` (plus a batched PyTorch re-implementation of ``train::augment``: the same chain,
  probabilities and severity ranges — crop-resize, rotation, shift, elastic, flip,
  gamma/contrast/brightness, blur, noise, JPEG — see ``augment_views`` for the one
  approximation, JPEG) and ``bench_scope`` (everything the candle iteration does: new model
  with the same He-uniform init, new AdamW, augmentation, step, saving weights + config.json +
  train_state.json into a temporary directory);
* ``embed/efficientnet-lite0``: one batch of 64 random 224×224 RGB images.

Each case is warmed up, then timed ``--reps`` times; the median is reported. The output is a JSON
object followed by a Markdown table. Parameter counts of every PyTorch network are printed next to
the candle count (transcribed from the Rust constructors, and read from the safetensors headers
of the EfficientNet-Lite0 weights file and of an optional saved cnn model directory, with the
standard library only: no weights are loaded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import struct
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
BATCH = 64
LITE0_WEIGHTS = REPO / "datasets/cache/weights/efficientnet-lite0.safetensors"


# --------------------------------------------------------------------------------------------
# cnn (crates/memscan-embed/src/cnn.rs)
# --------------------------------------------------------------------------------------------


def smooth_passes(size: int) -> int:
    """``cnn::smooth_passes``: 4 passes at 32 px, σ² ∝ passes scaled with the image, 1..=16."""
    r = size / 32.0
    # Rust's f64::round rounds half away from zero (Python's round is banker's rounding).
    return min(max(int(math.floor(4.0 * r * r + 0.5)), 1), 16)


def cnn_config(in_channels: int, size: int) -> dict:
    """``cnn::Config::small``."""
    return {
        "in_channels": in_channels,
        "size": size,
        "widths": [16, 32, 64],
        "blocks": 1,
        "dim": 128,
        "conv": "im2col",
        "stem": 4 if size >= 48 else 2,
        "pool": "gem",
        "proj": 128,
        "smooth": smooth_passes(size),
        "canon": "windowed",
    }


CANON_FLOOR, CANON_RADIUS, CANON_MAX_ZOOM, CANON_WINDOW, CANON_ITERS = 0.1, 0.25, 4.0, 1.0, 3


def canonicalize(x: torch.Tensor) -> torch.Tensor:
    """``canon::canonicalize_with(Canon::Windowed, ..)`` for a batch (NCHW, pixels in [0, 1]).

    Weights max(channel mean − 0.1, 0); centroid and radius of gyration, re-estimated 3 times
    under a Gaussian window of σ = r; output pixel (i, j) samples the input bilinearly (0
    outside) at the centroid + (offset from the centre) · r / (0.25 · n), zoom clamped to 4×.
    (candle does this per image on the CPU before building the input tensor.)
    """
    n, _, h, w = x.shape
    wt = (x.mean(1) - CANON_FLOOR).clamp_min(0.0).double()
    ys = torch.arange(h, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float64).view(1, 1, w)

    def moments(weights):
        s = weights.sum((1, 2)).clamp_min(1e-12)
        cx = (weights * xs).sum((1, 2)) / s
        cy = (weights * ys).sum((1, 2)) / s
        r2 = (weights * (xs * xs + ys * ys)).sum((1, 2)) / s - cx * cx - cy * cy
        return cx, cy, r2.clamp_min(0.0).sqrt()

    cx, cy, r = moments(wt)
    for _ in range(CANON_ITERS):
        sigma = (CANON_WINDOW * r).clamp_min(0.5).view(n, 1, 1)
        d2 = (xs - cx.view(n, 1, 1)) ** 2 + (ys - cy.view(n, 1, 1)) ** 2
        cx, cy, r = moments(wt * torch.exp(-0.5 * d2 / sigma**2))
    k = (r / (CANON_RADIUS * min(h, w))).clamp(1.0 / CANON_MAX_ZOOM, CANON_MAX_ZOOM)
    mx, my = (w - 1) / 2.0, (h - 1) / 2.0
    sx = cx.view(n, 1, 1) + (xs - mx) * k.view(n, 1, 1)
    sy = cy.view(n, 1, 1) + (ys - my) * k.view(n, 1, 1)
    gx = (2.0 * sx / (w - 1) - 1.0).expand(n, h, w)
    gy = (2.0 * sy / (h - 1) - 1.0).expand(n, h, w)
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
    )


GEM_P = 3.0


def smooth(x: torch.Tensor, passes: int) -> torch.Tensor:
    """``cnn::smooth``: passes of [1 2 1]/4 along H, then W, edges replicated (NCHW here)."""
    for _ in range(passes):
        p = F.pad(x, (0, 0, 1, 1), mode="replicate")
        x = (p[:, :, :-2] + p[:, :, 2:] + p[:, :, 1:-1] * 2.0) * 0.25
        p = F.pad(x, (1, 1, 0, 0), mode="replicate")
        x = (p[..., :-2] + p[..., 2:] + p[..., 1:-1] * 2.0) * 0.25
    return x


class Patchify(nn.Module):
    """k×k stride-k convolution (candle: space-to-depth + matmul), zero-padding bottom/right."""

    def __init__(self, k: int, cin: int, cout: int):
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(cin, cout, k, stride=k, bias=True)

    def forward(self, x):
        k = self.k
        h, w = x.shape[-2:]
        ph, pw = (k - h % k) % k, (k - w % k) % k
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return self.conv(x)


class Block(nn.Module):
    """Pre-activation residual block ``x + conv2(relu(conv1(relu(x))))``, 3×3 "same" convs."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=True)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Cnn(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        widths = cfg["widths"]
        self.stem = Patchify(cfg["stem"], cfg["in_channels"], widths[0])
        self.stages = nn.ModuleList()
        for i, w in enumerate(widths):
            stage = nn.Module()
            stage.down = Patchify(2, widths[i - 1], w) if i > 0 else None
            stage.blocks = nn.ModuleList(Block(w) for _ in range(cfg["blocks"]))
            self.stages.append(stage)
        head_in = widths[-1]
        if cfg["pool"] == "flatten":
            side = -(-cfg["size"] // cfg["stem"])
            for _ in widths[1:]:
                side = -(-side // 2)
            head_in *= side * side
        self.head = nn.Linear(head_in, cfg["dim"])
        self.proj = (
            nn.ModuleList([nn.Linear(cfg["dim"], cfg["proj"]), nn.Linear(cfg["proj"], cfg["proj"])])
            if cfg["proj"] > 0
            else None
        )
        self.init_like_candle()

    @torch.no_grad()
    def init_like_candle(self, seed: int = 0):
        """``cnn::init_varmap``: weights U(±sqrt(6/fan_in)), conv2 ×0.25, head ×1/√2; bias 0."""
        g = torch.Generator().manual_seed(seed)
        for name, p in sorted(self.named_parameters()):
            if name.endswith(".weight"):
                fan_in = p[0].numel()  # (out, in, k, k) or (out, in): fan_in = in·k·k
                bound = math.sqrt(6.0 / fan_in)
                if "conv2" in name:
                    bound *= 0.25
                elif name.startswith("head"):
                    bound *= 1.0 / math.sqrt(2.0)
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            else:
                p.zero_()

    def forward(self, x):
        """``Cnn::forward``: pixels in [0, 1] (NCHW) → unnormalized descriptors."""
        x = self.stem(smooth(x, self.cfg["smooth"]) - 0.5)
        for s in self.stages:
            if s.down is not None:
                x = s.down(x)
            for b in s.blocks:
                x = b(x)
        x = F.relu(x)
        if self.cfg["pool"] == "gem":
            pooled = x.clamp_min(1e-6).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)
        elif self.cfg["pool"] == "mean":
            pooled = x.mean(dim=(2, 3))
        else:  # flatten: candle flattens NHWC
            pooled = x.permute(0, 2, 3, 1).flatten(1)
        return self.head(pooled)

    def project(self, d):
        if self.proj is None:
            return d
        return self.proj[1](F.relu(self.proj[0](d)))


def candle_cnn_params(cfg: dict) -> dict:
    """Parameter count of candle's ``Cnn::new`` (every ``Dense::new(in, out)`` = in·out + out)."""
    dense = lambda i, o: i * o + o  # noqa: E731
    w, k = cfg["widths"], cfg["stem"]
    n = dense(k * k * cfg["in_channels"], w[0])
    for i, c in enumerate(w):
        if i > 0:
            n += dense(4 * w[i - 1], c)
        n += cfg["blocks"] * 2 * dense(9 * c, c)
    head_in = w[-1]
    if cfg["pool"] == "flatten":  # the last map, ceil(size / (stem · 2^(len − 1))) wide
        side = -(-cfg["size"] // (k * 2 ** (len(w) - 1)))
        head_in *= side * side
    encoder = n + dense(head_in, cfg["dim"])
    proj = dense(cfg["dim"], cfg["proj"]) + dense(cfg["proj"], cfg["proj"]) if cfg["proj"] else 0
    return {"encoder": encoder, "proj": proj, "total": encoder + proj}


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """``train::nt_xent``: rows i and i + B positive, diagonal masked by −1e9, mean CE."""
    n2 = z.shape[0]
    b = n2 // 2
    sim = (z @ z.t()) / temperature
    sim = sim - torch.eye(n2, dtype=z.dtype) * 1e9
    targets = (torch.arange(n2) + b) % n2
    return F.cross_entropy(sim, targets)


def normalize_rows(z: torch.Tensor) -> torch.Tensor:
    """``train::normalize_rows``: z / sqrt(Σz² + 1e-12)."""
    return z / (z.square().sum(dim=-1, keepdim=True) + 1e-12).sqrt()


def cosine_lr(lr: float, t: int, total: int) -> float:
    """``train::cosine_lr``."""
    total = max(total, 1)
    warm = max(0.05 * total, 1.0)
    if t < warm:
        return lr * (t + 1.0) / warm
    p = min((t - warm) / max(total - warm, 1.0), 1.0)
    return lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * p)))


TRAIN = {"lr": 2e-3, "weight_decay": 1e-4, "temperature": 0.1}  # TrainConfig::new defaults


def make_adamw(model: nn.Module) -> torch.optim.Optimizer:
    # candle's AdamW: decoupled weight decay on every variable, β (0.9, 0.999), ε 1e-8.
    return torch.optim.AdamW(
        model.parameters(),
        lr=TRAIN["lr"],
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=TRAIN["weight_decay"],
    )


def train_step(model: Cnn, opt: torch.optim.Optimizer, views: torch.Tensor, step=0, total=1):
    z = normalize_rows(model.project(model(views)))
    loss = nt_xent(z, TRAIN["temperature"])
    for g in opt.param_groups:
        g["lr"] = cosine_lr(TRAIN["lr"], step, total)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


# --------------------------------------------------------------------------------------------
# train::augment (crates/memscan-embed/src/train.rs + memscan-datasets/src/transform.rs)
# --------------------------------------------------------------------------------------------

# (transform, probability, max severity), in train::augment_scaled's order.
AUG_PLAN = [
    ("crop_resize", 0.6, 1.0),
    ("rotate", 0.6, 1.0),
    ("shift", 0.6, 1.0),
    ("elastic", 0.15, 0.5),
    ("flip", 0.5, 1.0),
    ("gamma", 0.6, 1.0),
    ("blur", 0.3, 0.6),
    ("noise", 0.5, 0.8),
    ("jpeg", 0.15, 0.8),
]

# JPEG Annex K luminance quantization table (quality 50).
_JPEG_LUMA = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float32,
)


def _dct8() -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.float()


_DCT8 = _dct8()


def _warp(x: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Output pixel (i, j) takes the input at pixel coordinates (sx, sy) (V, n, n), bilinear,
    edges replicated (transform.rs ``warp``/``bilinear``)."""
    n = x.shape[-1]
    grid = torch.stack([sx, sy], dim=-1) * (2.0 / (n - 1)) - 1.0
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _catmull_rom_matrix(n: int, g: int = 4) -> torch.Tensor:
    """(n, g) weights W with field(x) = W @ grid: transform.rs ``bicubic_grid`` along one axis
    (Catmull–Rom, grid indices clamped), at grid coordinate x·(g−1)/(n−1)."""
    scale = (g - 1) / max(n - 1.0, 1.0)
    w = torch.zeros(n, g)
    for x in range(n):
        t = x * scale
        f = math.floor(t)
        u = t - f
        basis = [
            0.5 * (-u + 2 * u * u - u * u * u),
            0.5 * (2 - 5 * u * u + 3 * u * u * u),
            0.5 * (u + 4 * u * u - 3 * u * u * u),
            0.5 * (-u * u + u * u * u),
        ]
        for d, c in zip((-1, 0, 1, 2), basis):
            w[x, min(max(f + d, 0), g - 1)] += c
    return w


def augment_views(images: torch.Tensor, gen: torch.Generator, cache: dict) -> torch.Tensor:
    """Two augmented views of each of the B one-channel images (B, 1, n, n) → (2B, 1, n, n),
    view v from image v mod B: a batched re-implementation of ``train::augment`` (same chain,
    order, probabilities, severity ranges and per-transform parameters as ``CopyTransform``).

    Random numbers come from torch, not ChaCha8, so the views are not bit-identical. JPEG is
    approximated by its lossy core (u8 rounding, level shift, 8×8 DCT, quantization with the
    libjpeg-scaled Annex K luminance table at quality round(95 − 65 s), inverse DCT, u8
    rounding); candle runs the `image` crate's real encoder and decoder, whose Huffman coding
    and chroma-free baseline bookkeeping are not reproduced.
    """
    b, _, n, _ = images.shape
    x = images.repeat(2, 1, 1, 1)
    v = x.shape[0]
    rand = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    ii = torch.arange(n, dtype=torch.float32)
    yy, xx = torch.meshgrid(ii, ii, indexing="ij")  # yy[j, i] = j, xx[j, i] = i
    for name, p, smax in AUG_PLAN:
        idx = torch.nonzero(rand(v) < p).flatten()
        m = idx.numel()
        if m == 0:
            continue
        s = (rand(m) * min(smax, 1.0)).view(m, 1, 1)
        sub = x[idx]
        if name == "crop_resize":
            c = 0.9 - 0.2 * s
            side = c * n
            ox, oy = rand(m).view(m, 1, 1) * (n - side), rand(m).view(m, 1, 1) * (n - side)
            sub = _warp(sub, ox + (xx + 0.5) * c - 0.5, oy + (yy + 0.5) * c - 0.5)
        elif name == "rotate":
            sign = torch.where(rand(m) < 0.5, 1.0, -1.0).view(m, 1, 1)
            a = torch.deg2rad(sign * 15.0 * s)
            ca, sa = a.cos(), a.sin()
            mid = (n - 1) / 2.0
            u, w = xx - mid, yy - mid
            sub = _warp(sub, ca * u + sa * w + mid, -sa * u + ca * w + mid)
        elif name == "shift":
            mag = 0.1 * s * n
            th = rand(m).view(m, 1, 1) * (2 * math.pi)
            sub = _warp(sub, xx - mag * th.cos(), yy - mag * th.sin())
        elif name == "elastic":
            amp = 4.0 * s
            field = rand(m, 2, 4, 4) * 2 - 1  # (m, [dx, dy], gy, gx)
            wm = cache.setdefault(("cr", n), _catmull_rom_matrix(n))
            disp = torch.einsum("jg,mdgh,ih->mdji", wm, field, wm)
            sub = _warp(sub, xx + amp * disp[:, 0], yy + amp * disp[:, 1])
        elif name == "flip":
            sub = sub.flip(-1)
        elif name == "gamma":
            sign = torch.where(rand(m) < 0.5, 1.0, -1.0).view(m, 1, 1, 1)
            s4 = s.view(m, 1, 1, 1)
            gamma = (sign * 0.6 * s4).exp()
            contrast = 1.0 + 0.15 * s4 * (2 * rand(m).view(m, 1, 1, 1) - 1)
            bright = 0.05 * s4 * (2 * rand(m).view(m, 1, 1, 1) - 1)
            sub = contrast * (sub.clamp_min(0.0).pow(gamma) - 0.5) + 0.5 + bright
        elif name == "blur":
            sigma = 3.0 * s.flatten()
            r = math.ceil(3.0 * 3.0 * smax)  # the largest radius ceil(3σ) in the plan
            d = torch.arange(-r, r + 1, dtype=torch.float32)
            radius = torch.ceil(3.0 * sigma)
            k = torch.exp(-(d[None] ** 2) / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
            k = torch.where(d[None].abs() <= radius[:, None], k, torch.zeros(()))
            k = k / k.sum(dim=1, keepdim=True)
            ident = (d == 0).float()[None].expand(m, -1)
            k = torch.where((sigma < 1e-3)[:, None], ident, k)  # σ < 1e-3: identity
            t = F.pad(sub.view(1, m, n, n), (r, r, 0, 0), mode="replicate")
            t = F.conv2d(t, k.view(m, 1, 1, -1), groups=m)
            t = F.pad(t, (0, 0, r, r), mode="replicate")
            sub = F.conv2d(t, k.view(m, 1, -1, 1), groups=m).view(m, 1, n, n)
        elif name == "noise":
            sigma = (0.01 + 0.09 * s).view(m, 1, 1, 1)
            sub = sub + sigma * torch.randn(sub.shape, generator=gen)
        elif name == "jpeg":
            q = torch.round(95.0 - 65.0 * s.flatten())
            scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
            qt = torch.floor((_JPEG_LUMA[None] * scale.view(m, 1, 1) + 50.0) / 100.0).clamp(1, 255)
            pad = (-n) % 8
            u8 = (sub * 255.0).round().clamp(0, 255)
            if pad:
                u8 = F.pad(u8, (0, pad, 0, pad), mode="replicate")
            nb = u8.shape[-1] // 8
            blk = (u8.view(m, nb, 8, nb, 8).permute(0, 1, 3, 2, 4) - 128.0)  # (m, by, bx, 8, 8)
            coef = _DCT8 @ blk @ _DCT8.t()
            qtv = qt.view(m, 1, 1, 8, 8)
            coef = torch.round(coef / qtv) * qtv
            rec = (_DCT8.t() @ coef @ _DCT8 + 128.0).round().clamp(0, 255)
            rec = rec.permute(0, 1, 3, 2, 4).reshape(m, 1, nb * 8, nb * 8)
            sub = rec[..., :n, :n] / 255.0
        x[idx] = torch.nan_to_num(sub, nan=0.0).clamp(0.0, 1.0)
    # As train.rs: every view is canonicalized after augmentation.
    return canonicalize(x)


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (crates/memscan-embed/src/efficientnet.rs)
# --------------------------------------------------------------------------------------------


def lite0_blocks():
    """``Config::lite0().blocks``: (kernel, stride, expand, input, output) per MBConv block."""
    stages = [
        (1, 3, 1, 1, 32, 16),
        (2, 3, 2, 6, 16, 24),
        (2, 5, 2, 6, 24, 40),
        (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112),
        (4, 5, 2, 6, 112, 192),
        (1, 3, 1, 6, 192, 320),
    ]
    out = []
    for repeats, k, s, e, i, o in stages:
        for r in range(repeats):
            out.append((k, s if r == 0 else 1, e, i if r == 0 else o, o))
    return out


LITE0 = {"image_size": 224, "stem": 32, "head": 1280, "classes": 1000, "bn_eps": 1e-3}


def same_padding(n: int, k: int, s: int):
    """``efficientnet::same_padding``: TensorFlow "SAME" (before, after, output length)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


class ConvSame(nn.Module):
    """Convolution with TF "SAME" padding; ``folded``: bias, no BN (candle folds BN at load);
    otherwise bias-free conv + BatchNorm2d(eps 1e-3), as in the weights file."""

    def __init__(self, cin, cout, k, s=1, groups=1, folded=True):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(cin, cout, k, stride=s, groups=groups, bias=folded)
        self.bn = nn.Identity() if folded else nn.BatchNorm2d(cout, eps=LITE0["bn_eps"])

    def forward(self, x):
        if self.k > 1:
            pt, pb, _ = same_padding(x.shape[-2], self.k, self.s)
            pl, pr, _ = same_padding(x.shape[-1], self.k, self.s)
            x = F.pad(x, (pl, pr, pt, pb))
        return self.bn(self.conv(x))


class MBConv(nn.Module):
    def __init__(self, k, s, e, cin, cout, folded=True):
        super().__init__()
        mid = cin * e
        self.expand = ConvSame(cin, mid, 1, folded=folded) if e != 1 else None
        self.depthwise = ConvSame(mid, mid, k, s, groups=mid, folded=folded)
        self.project = ConvSame(mid, cout, 1, folded=folded)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    def __init__(self, folded=True, with_fc=False):
        super().__init__()
        self.stem = ConvSame(3, LITE0["stem"], 3, 2, folded=folded)
        self.blocks = nn.Sequential(*(MBConv(*b, folded=folded) for b in lite0_blocks()))
        self.head = ConvSame(lite0_blocks()[-1][4], LITE0["head"], 1, folded=folded)
        self.fc = nn.Linear(LITE0["head"], LITE0["classes"]) if with_fc else None
        for m in self.modules():  # random weights at a sane scale (speed does not depend on it)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def features(self, x):
        """``EfficientNetLite0::features``: pooled 1280-d features of the scaled input."""
        x = F.relu6(self.stem(x))
        x = self.blocks(x)
        x = F.relu6(self.head(x))
        return x.mean(dim=(2, 3))

    def embed_batch(self, images):
        """``embed_batch``: bilinear resize (half-pixel centres) + (255x − 127)/128, features,
        L2 normalization."""
        s = LITE0["image_size"]
        x = F.interpolate(images, size=(s, s), mode="bilinear", align_corners=False)
        x = (x * 255.0 - 127.0) / 128.0
        return F.normalize(self.features(x), dim=1)


def candle_lite0_params() -> dict:
    """From ``EfficientNetLite0::new``: tensors read (conv weights, BN γ/β/mean/var, _fc) and
    the folded inference parameters (each conv gets a bias of its output width; no BN)."""
    conv = bn = folded_bias = 0
    c_stem, c_head = LITE0["stem"], LITE0["head"]
    convs = [(c_stem, 3 * 3 * 3)]  # (out, in/groups·k·k)
    for k, s, e, i, o in lite0_blocks():
        mid = i * e
        if e != 1:
            convs.append((mid, i))
        convs.append((mid, k * k))
        convs.append((o, mid))
    convs.append((c_head, lite0_blocks()[-1][4]))
    for out, fan in convs:
        conv += out * fan
        bn += 4 * out  # weight, bias, running_mean, running_var
        folded_bias += out
    fc = LITE0["classes"] * c_head + LITE0["classes"]
    return {
        "file_learnable": conv + bn // 2 + fc,  # conv + BN γ, β + fc
        "file_bn_running_stats": bn // 2,
        "file_tensors_float": len(convs) * 5 + 2,
        "folded_backbone": conv + folded_bias,  # what features() computes with
    }


def lukemelas_name(key: str) -> str:
    """This module's state_dict key → the weights file's (lukemelas) tensor name."""
    parts = key.split(".")
    top = {("stem", "conv"): "_conv_stem", ("stem", "bn"): "_bn0",
           ("head", "conv"): "_conv_head", ("head", "bn"): "_bn1"}
    inner = {("expand", "conv"): "_expand_conv", ("expand", "bn"): "_bn0",
             ("depthwise", "conv"): "_depthwise_conv", ("depthwise", "bn"): "_bn1",
             ("project", "conv"): "_project_conv", ("project", "bn"): "_bn2"}
    if parts[0] == "fc":
        return "_fc." + parts[1]
    if parts[0] == "blocks":
        return f"_blocks.{parts[1]}.{inner[(parts[2], parts[3])]}.{parts[4]}"
    return f"{top[(parts[0], parts[1])]}.{parts[2]}"


def safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file (standard library only; no data is read)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def header_counts(header: dict) -> dict:
    numel = lambda t: math.prod(t["shape"])  # noqa: E731
    out = {"tensors": len(header), "elements": sum(numel(t) for t in header.values())}
    stats = [k for k in header if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    out["elements_without_bn_stats"] = out["elements"] - sum(numel(header[k]) for k in stats)
    return out


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def bench(fn, warmup: int, reps: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "reps": reps,
        "images_per_s": BATCH / med,
    }


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions (median reported)")
    ap.add_argument("--effnet-reps", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[56, 64])
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-effnet", action="store_true")
    ap.add_argument(
        "--cnn-model-dir",
        type=Path,
        help="optional saved candle cnn model (config.json + model.safetensors) whose "
        "parameter count is compared with the PyTorch network built from its config",
    )
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    result = {
        "meta": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "batch": BATCH,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "warmup": args.warmup,
            "reps": args.reps,
            "statistic": "median",
        },
        "params": {},
        "results": {},
    }
    rows = []

    # ---- cnn: parameters, inference, training
    for size in args.sizes:
        cfg = cnn_config(1, size)
        model = Cnn(cfg)
        enc = count(model) - (count(model.proj) if model.proj is not None else 0)
        result["params"][f"cnn/{size}"] = {
            "config": cfg,
            "pytorch": {"encoder": enc, "total_with_proj": count(model)},
            "candle_from_code": candle_cnn_params(cfg),
        }
        images = torch.rand(BATCH, 1, size, size, generator=gen)

        model.eval()

        def embed():
            with torch.inference_mode():
                return F.normalize(model(canonicalize(images)), dim=1)

        r = bench(embed, args.warmup, args.reps)
        result["results"][f"embed/cnn/{size}"] = r
        rows.append((f"embed/cnn/{size}", "inference, batch 64", r))

        if args.skip_train:
            continue
        model.train()
        views = augment_views(images, gen, {})
        opt = make_adamw(model)
        r = bench(lambda: train_step(model, opt, views), args.warmup, args.reps)
        r["views_per_step"] = 2 * BATCH
        result["results"][f"train_cnn/{size}/step"] = r
        rows.append((f"train_cnn/{size} step", "fwd+NT-Xent+bwd+AdamW, 128 views", r))

        cache: dict = {}
        r = bench(lambda: augment_views(images, gen, cache), args.warmup, args.reps)
        result["results"][f"augment/{size}"] = r
        rows.append((f"augment/{size}", "128 views (PyTorch re-impl.)", r))

        r = bench(
            lambda: train_step(model, opt, augment_views(images, gen, cache)),
            args.warmup,
            args.reps,
        )
        r["views_per_step"] = 2 * BATCH
        result["results"][f"train_cnn/{size}/step+aug"] = r
        rows.append((f"train_cnn/{size} step+aug", "augmentation + step", r))

        def bench_scope():
            # What one candle `train()` call with epochs 1, batch 64 on 64 images does.
            with tempfile.TemporaryDirectory() as d:
                m = Cnn(cfg)
                o = make_adamw(m)
                t0 = time.perf_counter()
                loss = train_step(m, o, augment_views(images, gen, cache), 0, 1)
                secs = time.perf_counter() - t0
                torch.save(m.state_dict(), os.path.join(d, "model.pt"))
                with open(os.path.join(d, "config.json"), "w") as f:
                    json.dump(cfg, f, indent=2)
                state = {
                    "config": {"model": cfg, "epochs": 1, "batch": BATCH, **TRAIN},
                    "epochs_done": 1,
                    "history": [{"epoch": 1, "loss": float(loss), "images_per_sec": BATCH / secs}],
                }
                with open(os.path.join(d, "train_state.json"), "w") as f:
                    json.dump(state, f, indent=2)

        r = bench(bench_scope, args.warmup, args.reps)
        result["results"][f"train_cnn/{size}/bench_scope"] = r
        rows.append((f"train_cnn/{size} bench_scope", "as candle's train_cnn iteration", r))
        del opt

    if args.cnn_model_dir is not None:
        d = args.cnn_model_dir
        cfg = json.loads((d / "config.json").read_text())
        # serde defaults of cnn::Config for fields an older config.json lacks
        full = {"conv": "im2col", "stem": 2, "pool": "mean", "proj": 0, "smooth": 0, **cfg}
        m = Cnn(full)
        result["params"]["cnn/saved_model"] = {
            "dir": str(d),
            "config": cfg,
            "candle_safetensors_header": header_counts(safetensors_header(d / "model.safetensors")),
            "pytorch_total_with_proj": count(m),
        }

    # ---- EfficientNet-Lite0
    if not args.skip_effnet:
        file_model = EfficientNetLite0(folded=False, with_fc=True)
        net = EfficientNetLite0(folded=True, with_fc=False).eval()
        p = {
            "pytorch": {
                "unfolded_with_fc_learnable": count(file_model),
                "unfolded_with_fc_state_dict_tensors": len(file_model.state_dict()),
                "unfolded_with_fc_state_dict_elements": sum(
                    t.numel() for t in file_model.state_dict().values()
                ),
                "folded_backbone_timed": count(net),
            },
            "candle_from_code": candle_lite0_params(),
        }
        if LITE0_WEIGHTS.is_file():
            hdr = safetensors_header(LITE0_WEIGHTS)
            p["candle_weights_file_header"] = header_counts(hdr)
            sd = {lukemelas_name(k): t for k, t in file_model.state_dict().items()}
            mism = [
                k
                for k in sorted(set(hdr) | set(sd))
                if k not in hdr or k not in sd or list(sd[k].shape) != hdr[k]["shape"]
            ]
            p["names_and_shapes_match_file"] = not mism
            if mism:
                p["mismatched_tensors"] = mism[:20]
        result["params"]["efficientnet-lite0"] = p
        del file_model
        images = torch.rand(BATCH, 3, LITE0["image_size"], LITE0["image_size"], generator=gen)

        def embed_eff():
            with torch.inference_mode():
                return net.embed_batch(images)

        r = bench(embed_eff, args.warmup, args.effnet_reps)
        key = f"embed/efficientnet-lite0/batch={BATCH}/224x224/threads={torch.get_num_threads()}"
        result["results"][key] = r
        rows.append((key, "inference, BN folded", r))

    print(json.dumps(result, indent=2))
    print()
    print(f"PyTorch {torch.__version__}, CPU, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"median of {args.reps} (EfficientNet: {args.effnet_reps}) after {args.warmup} warm-up")
    print()
    print("| case | what | median ms / batch | images/s |")
    print("|---|---|---:|---:|")
    for name, what, r in rows:
        print(f"| `{name}` | {what} | {r['median_s'] * 1e3:.1f} | {r['images_per_s']:.1f} |")
    print()
    print("| network | PyTorch params | candle params |")
    print("|---|---:|---:|")
    for size in args.sizes:
        q = result["params"][f"cnn/{size}"]
        print(f"| cnn/{size} encoder (embedding) | {q['pytorch']['encoder']} | "
              f"{q['candle_from_code']['encoder']} |")
        print(f"| cnn/{size} + projection head (training) | {q['pytorch']['total_with_proj']} | "
              f"{q['candle_from_code']['total']} |")
    if "cnn/saved_model" in result["params"]:
        q = result["params"]["cnn/saved_model"]
        print(f"| cnn saved model {q['config'].get('size')} px (safetensors header) | "
              f"{q['pytorch_total_with_proj']} | {q['candle_safetensors_header']['elements']} |")
    if "efficientnet-lite0" in result["params"]:
        q = result["params"]["efficientnet-lite0"]
        c = q["candle_from_code"]
        print(f"| efficientnet-lite0 learnable, unfolded + _fc (as stored) | "
              f"{q['pytorch']['unfolded_with_fc_learnable']} | {c['file_learnable']} |")
        if "candle_weights_file_header" in q:
            h = q["candle_weights_file_header"]
            print(f"| efficientnet-lite0 weights file: tensors / elements | "
                  f"{q['pytorch']['unfolded_with_fc_state_dict_tensors']} / "
                  f"{q['pytorch']['unfolded_with_fc_state_dict_elements']} | "
                  f"{h['tensors']} / {h['elements']} |")
        if "names_and_shapes_match_file" in q:
            ok = "yes" if q["names_and_shapes_match_file"] else "NO (see JSON)"
            print(f"| efficientnet-lite0 tensor names and shapes equal to the file's | {ok} | |")
        print(f"| efficientnet-lite0 backbone, BN folded (timed) | "
              f"{q['pytorch']['folded_backbone_timed']} | {c['folded_backbone']} |")


if __name__ == "__main__":
    main()
