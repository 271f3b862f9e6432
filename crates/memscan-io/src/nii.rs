//! NIfTI-1 volumes (`.nii`, `.nii.gz`): one image per slice along [`IoConfig::axis`].
//!
//! The 348-byte header is checked before any voxel is read: `sizeof_hdr` must be 348 (in
//! either byte order; NIfTI-2's 540 is named as unsupported), the magic `n+1` (a single-file
//! NIfTI; `.hdr`/`.img` pairs are not read), `dim[0]` in 2..=7 with every used `dim[i] ≥ 1`
//! (a negative dimension is an error, not a huge volume), dimensions 5 and up equal to 1,
//! `bitpix` consistent with the datatype (integer or float types only; complex and RGB are
//! [`ErrorKind::UnsupportedNiftiDatatype`]), `vox_offset ≥ 352`. The header is parsed by the
//! `nifti` crate; the voxels are converted here (byte order, datatype), and a file holding
//! fewer voxel bytes than the header declares is [`ErrorKind::TruncatedVolume`]. A slice of
//! more than [`MAX_PIXELS`](crate::MAX_PIXELS) pixels along the chosen axis, or a volume of more
//! than [`MAX_VOLUME_VOXELS`](crate::MAX_VOLUME_VOXELS) voxels, is rejected from the header
//! ([`ErrorKind::TooManyPixels`], [`ErrorKind::TooManyVoxels`]). Gzip is
//! recognized by its magic bytes, whatever the name.
//!
//! Values: `scl_slope · v + scl_inter`, except that a slope of 0 (or NaN/±∞) means no scaling,
//! as the NIfTI-1 standard says (a non-finite intercept counts as 0). A 4-D file (fMRI, DWI,
//! multi-echo) contributes its **first volume only**: the others show the same anatomy again
//! and would flood the set with near-duplicates (the rest of the file is still checked for
//! truncation). A 2-D file (or a volume one voxel thick in `z`) is one axial image whatever
//! the axis.
//!
//! Slices: along [`Axis`]: axial = one image per `z` (rows along `y`, columns along `x`),
//! coronal = per `y` (rows `z`, columns `x`), sagittal = per `x` (rows `z`, columns `y`). The
//! row axis runs from its last index to its first, so a volume stored in RAS+ voxel order shows
//! anterior (axial) or superior (coronal, sagittal) at the top; the affine (qform/sform) is not
//! applied. Ids are `file#k`, `k` the slice index along the axis. [`IoConfig::slices`] keeps a
//! range of indices and/or drops pure-background slices (maximum equal to the volume minimum).
//!
//! Intensity: [`IoConfig::window`] if set, else **per-volume** percentile scaling: the 0.5th
//! and 99.5th percentiles of the whole (first) volume map to 0 and 1, so all slices of a volume
//! share one scale and a dark slice stays dark. A constant volume is
//! [`ErrorKind::ConstantImage`] (unless every slice was dropped as background). NaN or ±∞ in
//! a slice is [`ErrorKind::NonFinite`] for that slice. Each slice is hashed like a `float32`
//! array slice of its scaled values, shaped `(rows, columns)` as shown.

use crate::error::ErrorKind;
use crate::load::{Decoded, Outcome, Rejected};
use crate::normalize::{
    check_pixels, make_image, percentile_window, planes, slice_hash, window_bounds, Intensity,
};
use crate::{Axis, IoConfig, SourceMeta};
use flate2::read::MultiGzDecoder;
use ndarray::{s, ArrayView2, ArrayView3, Axis as ArrayAxis};
use nifti::{Endianness, NiftiError, NiftiHeader, NiftiType};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Size of a NIfTI-1 header.
const HEADER_LEN: usize = 348;

/// Decodes the slices of the NIfTI file at `path` (whose id is `id`).
pub(crate) fn decode(path: &Path, id: &str, cfg: &IoConfig) -> Vec<Outcome> {
    let reject = |kind, slice: Option<usize>| Rejected::new(path, id, kind, slice);
    let volume = match Volume::read(path, cfg.axis) {
        Ok(volume) => volume,
        Err(kind) => return vec![Err(reject(kind, None))],
    };
    let voxels = volume.view();
    let axis = if volume.flat { Axis::Axial } else { cfg.axis };
    let (array_axis, n_slices) = match axis {
        Axis::Axial => (ArrayAxis(0), volume.nz),
        Axis::Coronal => (ArrayAxis(1), volume.ny),
        Axis::Sagittal => (ArrayAxis(2), volume.nx),
    };
    // The slice as shown: the row axis flipped (see the module docs).
    let slice = |k: usize| -> ArrayView2<'_, f32> {
        voxels.index_axis(array_axis, k).slice_move(s![..;-1, ..])
    };

    let select = cfg.slices.clone().unwrap_or_default();
    let range = select.range.unwrap_or(0..n_slices);
    let mut kept: Vec<usize> = (range.start..range.end.min(n_slices)).collect();
    if select.skip_empty {
        let min = finite_min(volume.data.iter().copied());
        kept.retain(|&k| finite_max(slice(k).iter().copied()) != min);
    }
    if kept.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = match cfg.window {
        Some(window) => window_bounds(window),
        None => match percentile_window(volume.data.iter().copied()) {
            Some(window) => window,
            None => return vec![Err(reject(ErrorKind::ConstantImage { index: None }, None))],
        },
    };
    let meta = SourceMeta {
        group_volume: Some(id.to_owned()),
        ..SourceMeta::default()
    };
    kept.into_par_iter()
        .map(|k| {
            let view = slice(k);
            let hash = slice_hash(view.shape(), view.iter());
            let hwc = view.insert_axis(ArrayAxis(2));
            let intensity = Intensity::Window {
                lo,
                hi,
                invert: false,
            };
            let planes = planes(hwc, intensity, Some(k)).map_err(|kind| reject(kind, Some(k)))?;
            Ok(Decoded {
                image: make_image(format!("{id}#{k}"), hash, planes, cfg),
                meta: Some(meta.clone()),
            })
        })
        .collect()
}

fn finite_min(values: impl Iterator<Item = f32>) -> f32 {
    values
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min)
}

fn finite_max(values: impl Iterator<Item = f32>) -> f32 {
    values
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The first 3-D volume of a NIfTI file, scaled, in file order (`x` fastest).
#[derive(Debug)]
struct Volume {
    nx: usize,
    ny: usize,
    nz: usize,
    /// A 2-D image (`dim[0] = 2`, or `nz = 1`): always one axial slice.
    flat: bool,
    data: Vec<f32>,
}

impl Volume {
    /// The voxels as a `(z, y, x)` array.
    fn view(&self) -> ArrayView3<'_, f32> {
        ArrayView3::from_shape((self.nz, self.ny, self.nx), &self.data)
            .expect("the data holds nx * ny * nz voxels")
    }

    /// Reads the first volume of the file at `path`, to be cut along `axis`.
    fn read(path: &Path, axis: Axis) -> Result<Self, ErrorKind> {
        let file = File::open(path).map_err(ErrorKind::Io)?;
        let file_len = file.metadata().map_err(ErrorKind::Io)?.len();
        let mut file = BufReader::new(file);
        let gz = file
            .fill_buf()
            .map_err(ErrorKind::Io)?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn Read> = if gz {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut head = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut head)
            .map_err(|e| ErrorKind::Nifti(NiftiError::Io(e)))?;
        let header = parse_header(&head)?;
        let shape = Shape::of(&header)?;
        shape.check_size(axis)?;

        // Skip to the voxels, then read the first volume.
        let skip = header.vox_offset as u64 - HEADER_LEN as u64;
        let skipped = std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())
            .map_err(ErrorKind::Io)?;
        let volume_bytes = shape.voxels_per_volume * shape.datatype.size_of();
        let total_bytes = (shape.voxels_per_volume as u64)
            .saturating_mul(shape.volumes)
            .saturating_mul(shape.datatype.size_of() as u64);
        let truncated = |available: u64| ErrorKind::TruncatedVolume {
            expected: total_bytes,
            available,
        };
        if skipped < skip {
            return Err(truncated(0));
        }
        let mut raw = Vec::new();
        (&mut reader)
            .take(volume_bytes as u64)
            .read_to_end(&mut raw)
            .map_err(ErrorKind::Io)?;
        if raw.len() < volume_bytes {
            return Err(truncated(raw.len() as u64));
        }
        // The other volumes are not decoded, but they must be there.
        let available = if gz {
            let rest = total_bytes - volume_bytes as u64;
            volume_bytes as u64
                + std::io::copy(&mut (&mut reader).take(rest), &mut std::io::sink())
                    .map_err(ErrorKind::Io)?
        } else {
            file_len.saturating_sub(header.vox_offset as u64)
        };
        if available < total_bytes {
            return Err(truncated(available));
        }

        let big_endian = header.endianness == Endianness::Big;
        let mut data = to_f32(&raw, shape.datatype, big_endian);
        drop(raw);
        let (slope, inter) = (header.scl_slope, header.scl_inter);
        if slope != 0.0 && slope.is_finite() {
            let inter = if inter.is_finite() {
                f64::from(inter)
            } else {
                0.0
            };
            let slope = f64::from(slope);
            data.iter_mut()
                .for_each(|v| *v = (f64::from(*v) * slope + inter) as f32);
        }
        Ok(Volume {
            nx: shape.nx,
            ny: shape.ny,
            nz: shape.nz,
            flat: shape.nz == 1,
            data,
        })
    }
}

/// Parses and checks the fields the nifti crate leaves unchecked.
fn parse_header(head: &[u8; HEADER_LEN]) -> Result<NiftiHeader, ErrorKind> {
    let sizeof_hdr = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let bad = |field, value: String, expected: &str| ErrorKind::BadNiftiHeader {
        field,
        value,
        expected: expected.to_owned(),
    };
    match (sizeof_hdr, sizeof_hdr.swap_bytes()) {
        (348, _) | (_, 348) => {}
        (540, _) | (_, 540) => {
            return Err(bad(
                "sizeof_hdr",
                "540".into(),
                "348 (NIfTI-2 files are not supported)",
            ))
        }
        (v, _) => return Err(bad("sizeof_hdr", v.to_string(), "348")),
    }
    let header = NiftiHeader::from_reader(&head[..]).map_err(ErrorKind::Nifti)?;
    if &header.magic == b"ni1\0" {
        return Err(bad(
            "magic",
            "\"ni1\"".into(),
            "\"n+1\" (a single .nii file; .hdr/.img pairs are not supported)",
        ));
    }
    Ok(header)
}

/// The checked geometry and datatype of a NIfTI header.
#[derive(Debug)]
struct Shape {
    nx: usize,
    ny: usize,
    nz: usize,
    /// Voxels of one 3-D volume.
    voxels_per_volume: usize,
    /// Number of 3-D volumes (the product of dimensions 4 and up).
    volumes: u64,
    datatype: NiftiType,
}

impl Shape {
    fn of(header: &NiftiHeader) -> Result<Self, ErrorKind> {
        const DIM: [&str; 8] = [
            "dim[0]", "dim[1]", "dim[2]", "dim[3]", "dim[4]", "dim[5]", "dim[6]", "dim[7]",
        ];
        let bad = |field, value: String, expected: String| ErrorKind::BadNiftiHeader {
            field,
            value,
            expected,
        };
        // The dims are signed 16-bit in the file (the nifti crate reads them unsigned).
        let dim = header.dim.map(|d| d as i16);
        let rank = dim[0];
        if !(2..=7).contains(&rank) {
            return Err(bad(
                DIM[0],
                rank.to_string(),
                "2 to 7 (a 2-D image or a volume)".into(),
            ));
        }
        let rank = rank as usize;
        for (i, &d) in dim.iter().enumerate().take(rank + 1).skip(1) {
            if d < 1 {
                return Err(bad(DIM[i], d.to_string(), "at least 1".into()));
            }
        }
        let used = |i: usize| if i <= rank { dim[i] as usize } else { 1 };
        for (i, field) in DIM.iter().enumerate().skip(5) {
            if used(i) != 1 {
                return Err(bad(
                    field,
                    used(i).to_string(),
                    "1 (5-D and higher data are not supported)".into(),
                ));
            }
        }
        let datatype = match header.data_type() {
            Ok(t) => t,
            Err(_) => {
                return Err(bad(
                    "datatype",
                    header.datatype.to_string(),
                    "a NIfTI-1 datatype code".into(),
                ))
            }
        };
        use NiftiType as T;
        if !matches!(
            datatype,
            T::Uint8
                | T::Int8
                | T::Uint16
                | T::Int16
                | T::Uint32
                | T::Int32
                | T::Uint64
                | T::Int64
                | T::Float32
                | T::Float64
        ) {
            return Err(ErrorKind::UnsupportedNiftiDatatype {
                datatype: format!("{datatype:?}"),
            });
        }
        let bits = datatype.size_of() * 8;
        if header.bitpix as i64 != bits as i64 {
            return Err(bad(
                "bitpix",
                header.bitpix.to_string(),
                format!("{bits} for datatype {datatype:?}"),
            ));
        }
        let offset = header.vox_offset;
        if !(offset.is_finite() && offset >= 352.0) {
            return Err(bad("vox_offset", offset.to_string(), "at least 352".into()));
        }
        let (nx, ny, nz) = (used(1), used(2), used(3));
        // At most 32767³ voxels: fits in usize on 64-bit targets.
        let voxels_per_volume = nx * ny * nz;
        Ok(Shape {
            nx,
            ny,
            nz,
            voxels_per_volume,
            volumes: used(4) as u64,
            datatype,
        })
    }
}

impl Shape {
    /// Rejects slices along `axis` of more than [`MAX_PIXELS`](crate::MAX_PIXELS) pixels and a
    /// volume of more than [`MAX_VOLUME_VOXELS`](crate::MAX_VOLUME_VOXELS) voxels, from the
    /// header: a `.nii.gz` of zeros a thousand times smaller than its voxels would otherwise be
    /// inflated in full.
    fn check_size(&self, axis: Axis) -> Result<(), ErrorKind> {
        let (nx, ny, nz) = (self.nx as u64, self.ny as u64, self.nz as u64);
        let (width, height) = match if nz == 1 { Axis::Axial } else { axis } {
            Axis::Axial => (nx, ny),
            Axis::Coronal => (nx, nz),
            Axis::Sagittal => (ny, nz),
        };
        check_pixels(width, height)?;
        if nx * ny * nz > crate::MAX_VOLUME_VOXELS {
            return Err(ErrorKind::TooManyVoxels { nx, ny, nz });
        }
        Ok(())
    }
}

/// Converts raw voxel bytes of `datatype` (one of the integer or float types) to `f32`.
fn to_f32(raw: &[u8], datatype: NiftiType, big_endian: bool) -> Vec<f32> {
    macro_rules! convert {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            raw.chunks_exact(N)
                .map(|c| {
                    let mut bytes = [0u8; N];
                    bytes.copy_from_slice(c);
                    let v = if big_endian {
                        <$t>::from_be_bytes(bytes)
                    } else {
                        <$t>::from_le_bytes(bytes)
                    };
                    v as f32
                })
                .collect()
        }};
    }
    match datatype {
        NiftiType::Uint8 => raw.iter().map(|&v| f32::from(v)).collect(),
        NiftiType::Int8 => convert!(i8),
        NiftiType::Uint16 => convert!(u16),
        NiftiType::Int16 => convert!(i16),
        NiftiType::Uint32 => convert!(u32),
        NiftiType::Int32 => convert!(i32),
        NiftiType::Uint64 => convert!(u64),
        NiftiType::Int64 => convert!(i64),
        NiftiType::Float32 => convert!(f32),
        NiftiType::Float64 => convert!(f64),
        // Rejected by `Shape::of`.
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{assert_all_near, cfg, load_err, load_ok, skip};
    use crate::{Axis, ErrorKind, IoConfig, SliceSelect};
    use flate2::write::GzEncoder;
    use ndarray::{Array3, Array4};
    use nifti::writer::WriterOptions;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    /// A hand-built little-endian NIfTI-1 header (`n+1`, vox_offset 352, no extensions).
    fn header(dim: &[i16], datatype: i16, bitpix: i16, slope: f32, inter: f32) -> Vec<u8> {
        header_with(dim, datatype, bitpix, (slope, inter), false)
    }

    /// A hand-built NIfTI-1 header in either byte order.
    fn header_with(
        dim: &[i16],
        datatype: i16,
        bitpix: i16,
        (slope, inter): (f32, f32),
        big_endian: bool,
    ) -> Vec<u8> {
        let mut h = vec![0u8; 348];
        let mut put = |at: usize, bytes: &[u8]| {
            let mut bytes = bytes.to_vec();
            if big_endian {
                bytes.reverse();
            }
            h[at..at + bytes.len()].copy_from_slice(&bytes);
        };
        put(0, &348i32.to_le_bytes());
        let mut dims = [1i16; 8];
        dims[0] = dim.len() as i16;
        dims[1..=dim.len()].copy_from_slice(dim);
        for (i, d) in dims.iter().enumerate() {
            put(40 + 2 * i, &d.to_le_bytes());
        }
        put(70, &datatype.to_le_bytes());
        put(72, &bitpix.to_le_bytes());
        for i in 0..8 {
            put(76 + 4 * i, &1f32.to_le_bytes()); // pixdim
        }
        put(108, &352f32.to_le_bytes()); // vox_offset
        put(112, &slope.to_le_bytes());
        put(116, &inter.to_le_bytes());
        h[344..348].copy_from_slice(b"n+1\0");
        h
    }

    /// Header + empty extender + `data`, gzipped when the name ends with `.gz`.
    fn write_nii(dir: &Path, name: &str, header: &[u8], data: &[u8]) -> PathBuf {
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(data);
        if name.ends_with(".gz") {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            bytes = gz.finish().unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A 4×3×2 uint8 volume where voxel (x, y, z) is 100 z + 10 y + x, stored with
    /// scl_slope 2 and scl_inter −1 (so its value is 2 (100 z + 10 y + x) − 1).
    fn xyz_volume(dir: &Path, name: &str) -> PathBuf {
        let mut data = Vec::new();
        for z in 0..2u8 {
            for y in 0..3u8 {
                for x in 0..4u8 {
                    data.push(100 * z + 10 * y + x);
                }
            }
        }
        write_nii(dir, name, &header(&[4, 3, 2], 2, 8, 2.0, -1.0), &data)
    }

    fn value(x: usize, y: usize, z: usize) -> f64 {
        2.0 * (100 * z + 10 * y + x) as f64 - 1.0
    }

    /// The image with an identity window over the stored range (−1 … 2·123 − 1).
    fn unscaled(cfg: IoConfig) -> IoConfig {
        IoConfig {
            window: Some((122.0, 246.0)),
            ..cfg
        }
    }

    /// Maps a window-scaled pixel back to the scaled voxel value.
    fn back(v: f32) -> f64 {
        f64::from(v) * 246.0 - 1.0
    }

    fn sized(axis: Axis, w: u32) -> IoConfig {
        IoConfig {
            axis,
            ..unscaled(cfg(w, 1))
        }
    }

    #[test]
    fn axial_slices_with_scl_slope_and_inter() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["v.nii", "v.nii.gz"] {
            let p = xyz_volume(dir.path(), name);
            // Axial images are 3 rows (y) × 4 columns (x), stretched to 4×4: the corners keep
            // their values exactly (the exact layout is checked on a cube below).
            let set = load_ok(&p, &sized(Axis::Axial, 4));
            let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
            assert_eq!(ids, [format!("{name}#0"), format!("{name}#1")]);
            assert!(set
                .meta
                .iter()
                .all(|m| m.as_ref().unwrap().group_volume.as_deref() == Some(name)));
            // Top-left pixel: y = 2 (rows flipped), x = 0; top-right: x = 3.
            for (z, img) in set.images.iter().enumerate() {
                assert!(
                    (back(img.pixels[0]) - value(0, 2, z)).abs() < 1e-3,
                    "{name}"
                );
                assert!(
                    (back(img.pixels[3]) - value(3, 2, z)).abs() < 1e-3,
                    "{name}"
                );
                let last = img.pixels[15];
                assert!((back(last) - value(3, 0, z)).abs() < 1e-3, "{name}");
            }
        }
    }

    #[test]
    fn nii_and_nii_gz_give_the_same_images_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_ok(&xyz_volume(dir.path(), "v.nii"), &cfg(4, 1));
        let b = load_ok(&xyz_volume(dir.path(), "w.nii.gz"), &cfg(4, 1));
        for (x, y) in a.images.iter().zip(&b.images) {
            assert_eq!((&x.hash, &x.pixels), (&y.hash, &y.pixels));
        }
        assert_ne!(a.images[0].hash, a.images[1].hash);
    }

    #[test]
    fn coronal_and_sagittal_slices() {
        let dir = tempfile::tempdir().unwrap();
        // A cube, so no resizing: 3×3×3 with voxel (x, y, z) = 9 z + 3 y + x.
        let data: Vec<u8> = (0..27).collect();
        let p = write_nii(
            dir.path(),
            "c.nii",
            &header(&[3, 3, 3], 2, 8, 0.0, 5.0),
            &data,
        );
        let at = |x: usize, y: usize, z: usize| (9 * z + 3 * y + x) as f32;
        let exact = |axis| IoConfig {
            axis,
            window: Some((13.0, 26.0)), // 0 → 0, 26 → 1: v / 26
            ..cfg(3, 1)
        };
        let check = |axis, pixel: &dyn Fn(usize, usize, usize) -> f32| {
            let set = load_ok(&p, &exact(axis));
            assert_eq!(set.images.len(), 3);
            for (k, img) in set.images.iter().enumerate() {
                assert_eq!(img.id, format!("c.nii#{k}"));
                for r in 0..3 {
                    for c in 0..3 {
                        let got = img.pixels[r * 3 + c] * 26.0;
                        let want = pixel(k, r, c);
                        assert!((got - want).abs() < 1e-4, "{axis:?} #{k} ({r}, {c})");
                    }
                }
            }
        };
        // Slope 0 means no scaling (the intercept 5 is ignored).
        check(Axis::Axial, &|z, r, c| at(c, 2 - r, z));
        check(Axis::Coronal, &|y, r, c| at(c, y, 2 - r));
        check(Axis::Sagittal, &|x, r, c| at(x, c, 2 - r));
    }

    #[test]
    fn reference_writer_volume_reads_back() {
        // The nifti crate's writer (x fastest on disk) and our reader agree on (x, y, z).
        let dir = tempfile::tempdir().unwrap();
        let vol = Array3::from_shape_fn((3, 3, 2), |(x, y, z)| (x + 10 * y + 100 * z) as f32);
        let p = dir.path().join("w.nii.gz");
        WriterOptions::new(&p).write_nifti(&vol).unwrap();
        let c = IoConfig {
            window: Some((106.0, 212.0)), // v / 212
            ..cfg(3, 1)
        };
        let set = load_ok(&p, &c);
        assert_eq!(set.images.len(), 2);
        let px = &set.images[1].pixels; // z = 1, top row is y = 2
        assert!((px[0] * 212.0 - 120.0).abs() < 1e-3, "{px:?}");
        assert!((px[2] * 212.0 - 122.0).abs() < 1e-3, "{px:?}");
        assert!((px[6] * 212.0 - 100.0).abs() < 1e-3, "{px:?}");
    }

    #[test]
    fn four_d_keeps_the_first_volume() {
        let dir = tempfile::tempdir().unwrap();
        let vol = Array4::from_shape_fn((2, 2, 3, 4), |(x, y, z, t)| {
            (x + 2 * y + 4 * z + 100 * t) as i16
        });
        let p = dir.path().join("bold.nii");
        WriterOptions::new(&p).write_nifti(&vol).unwrap();
        let c = IoConfig {
            window: Some((50.0, 100.0)),
            ..cfg(2, 1)
        };
        let set = load_ok(&p, &c);
        assert_eq!(set.images.len(), 3, "z slices of volume t = 0");
        // Slice z = 2 of t = 0 holds 8..11: far below t = 1's 100+.
        assert!(set.images[2].pixels.iter().all(|&v| v < 0.12));
    }

    #[test]
    fn per_volume_percentiles_share_one_scale() {
        let dir = tempfile::tempdir().unwrap();
        // 10×10×4 int16: slice z holds values 1000 z + (0..100).
        let mut data = Vec::new();
        for z in 0..4i16 {
            for i in 0..100i16 {
                data.extend_from_slice(&(1000 * z + i).to_le_bytes());
            }
        }
        let p = write_nii(
            dir.path(),
            "p.nii",
            &header(&[10, 10, 4], 4, 16, 1.0, 0.0),
            &data,
        );
        let set = load_ok(&p, &cfg(10, 1));
        let means: Vec<f32> = set
            .images
            .iter()
            .map(|i| i.pixels.iter().sum::<f32>() / 100.0)
            .collect();
        // One scale for the volume: slice means rise with z instead of all being 0.5.
        assert!(means.windows(2).all(|w| w[1] > w[0] + 0.2), "{means:?}");
        assert!(means[0] < 0.05 && means[3] > 0.95, "{means:?}");
    }

    #[test]
    fn slice_range_and_skip_empty() {
        let dir = tempfile::tempdir().unwrap();
        // 2×2×6 uint8: slices 0, 1 and 5 are background (0), the others hold 1..4.
        let mut data = vec![0u8; 24];
        for z in 2..5 {
            data[4 * z..4 * z + 4].copy_from_slice(&[1, 2, 3, 4]);
        }
        data[4 * 3] = 0; // slice 3 has some background but is not empty
        let p = write_nii(
            dir.path(),
            "s.nii",
            &header(&[2, 2, 6], 2, 8, 1.0, 0.0),
            &data,
        );
        let ids = |select: SliceSelect| -> Vec<String> {
            let c = IoConfig {
                slices: Some(select),
                ..cfg(2, 1)
            };
            load_ok(&p, &c).images.into_iter().map(|i| i.id).collect()
        };
        assert_eq!(
            ids(SliceSelect {
                range: Some(1..4),
                skip_empty: false
            }),
            ["s.nii#1", "s.nii#2", "s.nii#3"]
        );
        assert_eq!(
            ids(SliceSelect {
                range: None,
                skip_empty: true
            }),
            ["s.nii#2", "s.nii#3", "s.nii#4"]
        );
        assert_eq!(
            ids(SliceSelect {
                range: Some(3..100), // clamped to the 6 slices
                skip_empty: true
            }),
            ["s.nii#3", "s.nii#4"]
        );
        // Every slice dropped: the file contributes nothing.
        let c = IoConfig {
            slices: Some(SliceSelect {
                range: Some(0..2),
                skip_empty: true,
            }),
            ..cfg(2, 1)
        };
        let err = load_err(&p, &c, "");
        assert!(matches!(err.kind(), ErrorKind::EmptySet), "{err}");
    }

    #[test]
    fn constant_volume_and_non_finite_slices() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_nii(
            dir.path(),
            "flat.nii",
            &header(&[2, 2, 2], 2, 8, 1.0, 0.0),
            &[9; 8],
        );
        let err = load_err(&p, &cfg(2, 1), "flat.nii");
        assert!(
            matches!(err.kind(), ErrorKind::ConstantImage { index: None }),
            "{err}"
        );
        // A window makes a constant volume fine.
        let c = IoConfig {
            window: Some((9.0, 2.0)),
            ..cfg(2, 1)
        };
        assert_all_near(&load_ok(&p, &c).images[0].pixels, 0.5, 1e-6);

        let mut data = Vec::new();
        for v in [0.0f32, 1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0, 7.0] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let p = write_nii(
            dir.path(),
            "nan.nii",
            &header(&[2, 2, 2], 16, 32, 1.0, 0.0),
            &data,
        );
        let err = load_err(&p, &cfg(2, 1), "nan.nii#1");
        assert!(
            matches!(err.kind(), ErrorKind::NonFinite { index: Some(1) }),
            "{err}"
        );
        let set = load_ok(&p, &skip(2, 1));
        assert_eq!(set.images.len(), 1);
        assert_eq!(set.skipped[0].path, "nan.nii#1");
    }

    #[test]
    fn big_endian_and_wide_types() {
        let dir = tempfile::tempdir().unwrap();
        // Big-endian float64 2×2×1 (a flat volume: one axial slice whatever the axis).
        let h = header_with(&[2, 2, 1], 64, 64, (1.0, 0.0), true);
        let mut data = Vec::new();
        for v in [0.0f64, 1.0, 2.0, 4.0] {
            data.extend_from_slice(&v.to_be_bytes());
        }
        let p = write_nii(dir.path(), "be.nii", &h, &data);
        let c = IoConfig {
            axis: Axis::Sagittal,
            window: Some((2.0, 4.0)),
            ..cfg(2, 1)
        };
        let set = load_ok(&p, &c);
        assert_eq!(set.images.len(), 1);
        // Rows flipped: the top row is y = 1 (values 2, 4).
        assert_eq!(set.images[0].pixels, [0.5, 1.0, 0.0, 0.25]);
    }

    #[test]
    fn bad_headers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = header(&[2, 2, 2], 2, 8, 1.0, 0.0);
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "sizeof.nii",
                patch(&good, 0, &300i32.to_le_bytes()),
                "sizeof_hdr",
            ),
            (
                "nifti2.nii",
                patch(&good, 0, &540i32.to_le_bytes()),
                "sizeof_hdr",
            ),
            (
                "negdim.nii",
                patch(&good, 44, &(-2i16).to_le_bytes()),
                "dim[2]",
            ),
            (
                "zerodim.nii",
                patch(&good, 46, &0i16.to_le_bytes()),
                "dim[3]",
            ),
            ("rank1.nii", patch(&good, 40, &1i16.to_le_bytes()), "dim[0]"),
            (
                "bitpix.nii",
                patch(&good, 72, &16i16.to_le_bytes()),
                "bitpix",
            ),
            (
                "datatype.nii",
                patch(&good, 70, &3i16.to_le_bytes()),
                "datatype",
            ),
            (
                "offset.nii",
                patch(&good, 108, &0f32.to_le_bytes()),
                "vox_offset",
            ),
            ("pair.nii", patch(&good, 344, b"ni1\0"), "magic"),
        ];
        for (name, h, field) in cases {
            let p = write_nii(dir.path(), name, &h, &data);
            let err = load_err(&p, &cfg(2, 1), name);
            assert!(
                matches!(err.kind(), ErrorKind::BadNiftiHeader { field: f, .. } if *f == field),
                "{name}: {err}"
            );
        }
        let p = write_nii(
            dir.path(),
            "nifti2.nii",
            &patch(&good, 0, &540i32.to_le_bytes()),
            &data,
        );
        assert!(load_err(&p, &cfg(2, 1), "").to_string().contains("NIfTI-2"));
        // Complex datatype.
        let h = header(&[2, 2, 2], 32, 64, 1.0, 0.0);
        let p = write_nii(dir.path(), "complex.nii", &h, &[0; 64]);
        let err = load_err(&p, &cfg(2, 1), "complex.nii");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedNiftiDatatype { datatype } if datatype == "Complex64"),
            "{err}"
        );
        // Wrong magic: the nifti crate's own error.
        let p = write_nii(dir.path(), "magic.nii", &patch(&good, 344, b"abcd"), &data);
        let err = load_err(&p, &cfg(2, 1), "magic.nii");
        assert!(matches!(err.kind(), ErrorKind::Nifti(_)), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    fn patch(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out[at..at + with.len()].copy_from_slice(with);
        out
    }

    #[test]
    fn slices_and_volumes_of_too_many_pixels_are_rejected_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        // Slices of 16384 × 16385 pixels along the chosen axis only.
        let h = header(&[2, 16384, 16385], 2, 8, 1.0, 0.0);
        for name in ["big.nii", "big.nii.gz"] {
            let p = write_nii(dir.path(), name, &h, &[0; 64]);
            let err = load_err(&p, &sized(Axis::Sagittal, 4), name);
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::TooManyPixels {
                        width: 16384,
                        height: 16385
                    }
                ),
                "{name}: {err:?}"
            );
            let err = load_err(&p, &sized(Axis::Axial, 4), name);
            assert!(
                matches!(err.kind(), ErrorKind::TruncatedVolume { .. }),
                "{name}: {err:?}"
            );
        }
        // A volume of 2^31 voxels, whatever the axis.
        let h = header(&[2048, 2048, 512], 2, 8, 1.0, 0.0);
        let p = write_nii(dir.path(), "vol.nii.gz", &h, &[0; 64]);
        let err = load_err(&p, &cfg(4, 1), "vol.nii.gz");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TooManyVoxels {
                    nx: 2048,
                    ny: 2048,
                    nz: 512
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("declares 2048×2048×512 voxels"),
            "{err}"
        );
    }

    #[test]
    fn truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let h = header(&[4, 4, 4], 4, 16, 1.0, 0.0);
        for name in ["t.nii", "t.nii.gz"] {
            let p = write_nii(dir.path(), name, &h, &[7; 100]);
            let err = load_err(&p, &cfg(2, 1), name);
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::TruncatedVolume {
                        expected: 128,
                        available: 100
                    }
                ),
                "{name}: {err}"
            );
        }
        // A truncated later volume of a 4-D file is an error too.
        let h4 = header(&[2, 2, 1, 3], 2, 8, 1.0, 0.0);
        let p = write_nii(
            dir.path(),
            "t4.nii.gz",
            &h4,
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        );
        let err = load_err(&p, &cfg(2, 1), "t4.nii.gz");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TruncatedVolume {
                    expected: 12,
                    available: 10
                }
            ),
            "{err}"
        );
        // Header cut short, an empty file, and a gzip stream cut in the middle.
        let p = dir.path().join("short.nii");
        std::fs::write(&p, &h[..200]).unwrap();
        let err = load_err(&p, &cfg(2, 1), "short.nii");
        assert!(matches!(err.kind(), ErrorKind::Nifti(_)), "{err}");
        let p = dir.path().join("empty.nii.gz");
        std::fs::write(&p, b"").unwrap();
        load_err(&p, &cfg(2, 1), "empty.nii.gz");
        let p = write_nii(dir.path(), "cut.nii.gz", &h, &[7; 128]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        load_err(&p, &cfg(2, 1), "cut.nii.gz");
    }

    #[test]
    fn skip_policy_continues_past_bad_volumes() {
        let dir = tempfile::tempdir().unwrap();
        xyz_volume(dir.path(), "a.nii");
        let bad = header(&[2, -2, 2], 2, 8, 1.0, 0.0);
        write_nii(dir.path(), "b.nii.gz", &bad, &[0; 8]);
        std::fs::write(dir.path().join("c.nii"), b"short").unwrap();
        xyz_volume(dir.path(), "d.nii.gz");
        let set = load_ok(dir.path(), &skip(4, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a.nii#0", "a.nii#1", "d.nii.gz#0", "d.nii.gz#1"]);
        let skipped: Vec<_> = set.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(skipped, ["b.nii.gz", "c.nii"]);
        assert!(
            set.skipped[0].reason.contains("dim[2] is -2"),
            "{}",
            set.skipped[0].reason
        );
    }
}
