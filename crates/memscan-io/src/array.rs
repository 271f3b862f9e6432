//! NumPy batches: `.npy` arrays and `.npz` archives of arrays, one image per index of axis 0.
//!
//! The header (dtype, shape, order) is read with `ndarray-npy`'s [`Header`] before any data,
//! so the dtype picks the element type, object arrays and wrong ranks are rejected without
//! reading further, and a header that declares more data than the file holds is rejected
//! before allocating. Accepted shapes:
//!
//! | shape | meaning |
//! |---|---|
//! | `(N, H, W)` | gray |
//! | `(N, C, H, W)` with `C ∈ {1, 3}` and `W ∉ {1, 3, 4}` | channels first (PyTorch) |
//! | `(N, H, W, C)` with `C ∈ {1, 3, 4}` | channels last (NumPy/PIL; 4 = RGBA) |
//!
//! so an ambiguous `(N, 3, H, 3)` is read as channels last. An image of more than
//! [`MAX_PIXELS`](crate::MAX_PIXELS) pixels (`H · W`) is [`ErrorKind::TooManyPixels`], from the
//! header (an `.npz` member's data is compressed, so the file's length does not bound it). dtypes: `uint8` (`v / 255`),
//! `uint16` (per-image min–max), `float32`/`float64` (the float rule over the whole array),
//! either byte order, C or Fortran order. In an `.npz` every array, sorted by name, is such a
//! batch (`arr_0` is guided-diffusion's convention), except class labels: a 1-D array of an
//! integer dtype whose length is the `N` of one of the archive's image batches (the
//! class-conditional ADM convention, `arr_1` of shape `(N,)`) is recognized as labels and
//! ignored; any other array that is not a batch of images is an error. Images are
//! `file#index` in an `.npy` and `file#name/index` in an `.npz`. Images of one array are normalized in parallel.

use crate::error::{Error, ErrorKind};
use crate::load::{Outcome, Rejected};
use crate::normalize::{check_pixels, make_image, planes, slice_hash, Intensity, Sample};
use crate::IoConfig;
use ndarray::{ArrayD, ArrayView3, Axis, Ix3, IxDyn, ShapeBuilder};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadDataError, ReadNpyError, ReadableElement};
use py_literal::Value as PyValue;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Where a batch comes from, for ids and errors.
struct Source<'a> {
    path: &'a Path,
    /// The file's id.
    id: &'a str,
    /// The array's name inside an `.npz`.
    name: Option<&'a str>,
}

impl Source<'_> {
    /// The location of image `index` inside the file (`"3"` or `"arr_0/3"`).
    fn item(&self, index: usize) -> String {
        match self.name {
            Some(name) => format!("{name}/{index}"),
            None => index.to_string(),
        }
    }

    /// A rejection of the whole array (`index == None`) or of one image.
    fn reject(&self, kind: ErrorKind, index: Option<usize>) -> Rejected {
        let item = match index {
            Some(i) => Some(self.item(i)),
            None => self.name.map(str::to_owned),
        };
        let mut error = Error::new(self.path, kind);
        let mut id = self.id.to_owned();
        if let Some(item) = item {
            id = format!("{id}#{item}");
            error = error.with_item(item);
        }
        Rejected { id, error }
    }
}

/// Decodes every image of the `.npy` file at `path` (whose id is `id`).
pub(crate) fn decode_npy(path: &Path, id: &str, cfg: &IoConfig) -> Vec<Outcome> {
    let source = Source {
        path,
        id,
        name: None,
    };
    let batch = File::open(path)
        .and_then(|f| Ok((f.metadata()?.len(), f)))
        .map_err(ErrorKind::Io);
    match batch.and_then(|(len, f)| Batch::read(BufReader::new(f), len)) {
        Ok(batch) => batch.decode(&source, cfg),
        Err(kind) => vec![Err(source.reject(kind, None))],
    }
}

/// Decodes every image of every array (sorted by name) of the `.npz` file at `path`.
pub(crate) fn decode_npz(path: &Path, id: &str, cfg: &IoConfig) -> Vec<Outcome> {
    let file_error = |kind| {
        vec![Err(Source {
            path,
            id,
            name: None,
        }
        .reject(kind, None))]
    };
    let mut archive = match File::open(path) {
        Ok(f) => match zip::ZipArchive::new(BufReader::new(f)) {
            Ok(archive) => archive,
            Err(e) => return file_error(ErrorKind::Npz(e)),
        },
        Err(e) => return file_error(ErrorKind::Io(e)),
    };
    let mut entries: Vec<String> = archive
        .file_names()
        .filter(|n| !n.ends_with('/'))
        .map(str::to_owned)
        .collect();
    entries.sort();
    let labels = label_members(&mut archive, &entries);
    let mut outcomes = Vec::new();
    for entry in entries.iter().filter(|e| !labels.contains(e)) {
        // NumPy's convention: the array `arr_0` is stored as `arr_0.npy`.
        let name = entry.strip_suffix(".npy").unwrap_or(entry);
        let source = Source {
            path,
            id,
            name: Some(name),
        };
        let batch = archive
            .by_name(entry)
            .map_err(ErrorKind::Npz)
            .and_then(|file| {
                // Cap the declared size by deflate's maximum ratio, so a lying archive can't
                // make us allocate more than its data could expand to.
                let limit = file.size().min(
                    file.compressed_size()
                        .saturating_mul(1032)
                        .saturating_add(1024),
                );
                Batch::read(file, limit)
            });
        match batch {
            Ok(batch) => outcomes.extend(batch.decode(&source, cfg)),
            Err(kind) => outcomes.push(Err(source.reject(kind, None))),
        }
    }
    outcomes
}

/// The members of an `.npz` that are class labels of a batch, not images: 1-D arrays of an
/// integer dtype whose length is the `N` of a member that is a batch of images (the
/// class-conditional ADM/guided-diffusion convention: `arr_0` images `(N, H, W, C)`, `arr_1`
/// labels `(N,)`). Only the headers are read here; a member whose header cannot be read is
/// neither (its error comes when it is decoded).
fn label_members<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    entries: &[String],
) -> Vec<String> {
    let headers: Vec<(&String, Header)> = entries
        .iter()
        .filter_map(|entry| {
            let mut file = archive.by_name(entry).ok()?;
            Some((entry, Header::from_reader(&mut file).ok()?))
        })
        .collect();
    let batch_sizes: Vec<usize> = headers
        .iter()
        .filter(|(_, h)| Dtype::of(&h.type_descriptor).is_ok() && Layout::of(&h.shape).is_ok())
        .map(|(_, h)| h.shape[0])
        .collect();
    headers
        .into_iter()
        .filter(|(_, h)| {
            matches!(h.shape[..], [n] if batch_sizes.contains(&n)) && is_integer(&h.type_descriptor)
        })
        .map(|(entry, _)| entry.clone())
        .collect()
}

/// Whether a NumPy type descriptor is a signed or unsigned integer (`<i8`, `|u1`, `>u4`…).
fn is_integer(descr: &PyValue) -> bool {
    let PyValue::String(s) = descr else {
        return false;
    };
    matches!(
        s.trim_start_matches(['|', '<', '>', '=']),
        "i1" | "i2" | "i4" | "i8" | "u1" | "u2" | "u4" | "u8"
    )
}

/// A whole array, typed by its dtype.
enum Batch {
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

impl Batch {
    /// Reads one `.npy` stream of `len` bytes (header included).
    fn read(reader: impl Read, len: u64) -> Result<Batch, ErrorKind> {
        let mut reader = CountingReader {
            inner: reader,
            count: 0,
        };
        let header = Header::from_reader(&mut reader).map_err(|e| ErrorKind::Npy(e.into()))?;
        let dtype = Dtype::of(&header.type_descriptor)?;
        Layout::of(&header.shape)?;
        let available = len.saturating_sub(reader.count);
        let n = header
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        let expected = n
            .and_then(|n| n.checked_mul(dtype.size()))
            .map_or(u64::MAX, |b| b as u64);
        if expected > available {
            return Err(ErrorKind::TruncatedArray {
                expected,
                available,
            });
        }
        let n = n.unwrap_or_default(); // checked above: it fits
        let (desc, h) = (&header.type_descriptor, &header);
        Ok(match dtype {
            Dtype::U8 => Batch::U8(build(h, u8::read_to_end_exact_vec(reader, desc, n))?),
            Dtype::U16 => Batch::U16(build(h, u16::read_to_end_exact_vec(reader, desc, n))?),
            Dtype::F32 => Batch::F32(build(h, f32::read_to_end_exact_vec(reader, desc, n))?),
            Dtype::F64 => Batch::F64(build(h, f64::read_to_end_exact_vec(reader, desc, n))?),
        })
    }

    fn decode(&self, source: &Source<'_>, cfg: &IoConfig) -> Vec<Outcome> {
        match self {
            Batch::U8(a) => decode_batch(a, Ok(Intensity::FullScale), source, cfg),
            Batch::U16(a) => decode_batch(a, Ok(Intensity::MinMax), source, cfg),
            Batch::F32(a) => decode_batch(a, Intensity::for_floats(a.iter().copied()), source, cfg),
            Batch::F64(a) => decode_batch(a, Intensity::for_floats(a.iter().copied()), source, cfg),
        }
    }
}

/// The array described by `header` holding `data` (the samples in file order).
fn build<T>(header: &Header, data: Result<Vec<T>, ReadDataError>) -> Result<ArrayD<T>, ErrorKind> {
    let data = data.map_err(|e| ErrorKind::Npy(ReadNpyError::from(e)))?;
    let shape = IxDyn(&header.shape).set_f(header.layout.is_fortran());
    ArrayD::from_shape_vec(shape, data).map_err(|_| ErrorKind::BadShape {
        shape: header.shape.clone(),
    })
}

/// Normalizes every image of `array` (in parallel, collected in index order).
fn decode_batch<T: Sample>(
    array: &ArrayD<T>,
    intensity: Result<Intensity, ErrorKind>,
    source: &Source<'_>,
    cfg: &IoConfig,
) -> Vec<Outcome> {
    let prepared = intensity.and_then(|intensity| Ok((intensity, Layout::of(array.shape())?)));
    let (intensity, layout) = match prepared {
        Ok(prepared) => prepared,
        Err(kind) => return vec![Err(source.reject(kind, None))],
    };
    (0..array.len_of(Axis(0)))
        .into_par_iter()
        .map(|i| {
            let slice = array.index_axis(Axis(0), i);
            let hash = slice_hash(slice.shape(), slice.iter());
            let hwc = match layout {
                Layout::Gray => slice.insert_axis(Axis(2)).into_dimensionality::<Ix3>(),
                Layout::ChannelsLast => slice.into_dimensionality::<Ix3>(),
                Layout::ChannelsFirst => slice
                    .into_dimensionality::<Ix3>()
                    .map(|v| v.permuted_axes([1, 2, 0])),
            };
            let hwc: ArrayView3<'_, T> = hwc.map_err(|_| {
                source.reject(
                    ErrorKind::BadShape {
                        shape: array.shape().to_vec(),
                    },
                    None,
                )
            })?;
            let planes =
                planes(hwc, intensity, Some(i)).map_err(|kind| source.reject(kind, Some(i)))?;
            let id = format!("{}#{}", source.id, source.item(i));
            Ok(make_image(id, hash, planes, cfg).into())
        })
        .collect()
}

/// The dtypes memscan reads.
#[derive(Debug, Clone, Copy)]
enum Dtype {
    U8,
    U16,
    F32,
    F64,
}

impl Dtype {
    /// The dtype for a NumPy type descriptor (the descriptors `ndarray-npy` reads).
    fn of(descr: &PyValue) -> Result<Self, ErrorKind> {
        let PyValue::String(s) = descr else {
            // A structured dtype (a list of fields).
            return Err(ErrorKind::UnsupportedDtype {
                dtype: descr.to_string(),
            });
        };
        Ok(match s.as_str() {
            "|u1" | "u1" | "B" => Dtype::U8,
            "<u2" | ">u2" => Dtype::U16,
            "<f4" | ">f4" => Dtype::F32,
            "<f8" | ">f8" => Dtype::F64,
            s if s.trim_start_matches(['|', '<', '>', '=']) == "O" => {
                return Err(ErrorKind::ObjectArray)
            }
            s => {
                return Err(ErrorKind::UnsupportedDtype {
                    dtype: s.to_owned(),
                })
            }
        })
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// How a batch's axes map to images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `(N, H, W)`.
    Gray,
    /// `(N, H, W, C)`, `C ∈ {1, 3, 4}`.
    ChannelsLast,
    /// `(N, C, H, W)`, `C ∈ {1, 3}` and `W ∉ {1, 3, 4}`.
    ChannelsFirst,
}

impl Layout {
    fn of(shape: &[usize]) -> Result<Self, ErrorKind> {
        let fits = |d: usize| d > 0 && u32::try_from(d).is_ok();
        let layout = match *shape {
            [_, h, w] if fits(h) && fits(w) => Layout::Gray,
            [_, c, h, w] if matches!(c, 1 | 3) && !matches!(w, 1 | 3 | 4) && fits(h) && fits(w) => {
                Layout::ChannelsFirst
            }
            [_, h, w, c] if matches!(c, 1 | 3 | 4) && fits(h) && fits(w) => Layout::ChannelsLast,
            _ => {
                return Err(ErrorKind::BadShape {
                    shape: shape.to_vec(),
                })
            }
        };
        let (h, w) = match layout {
            Layout::Gray | Layout::ChannelsLast => (shape[1], shape[2]),
            Layout::ChannelsFirst => (shape[2], shape[3]),
        };
        check_pixels(w as u64, h as u64)?;
        Ok(layout)
    }
}

/// Counts the bytes read through it (to know how much data follows the header).
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{assert_all_near, cfg, load_err, load_ok, skip};
    use crate::ErrorKind;
    use ndarray::{Array, Array3, Array4, ShapeBuilder};
    use ndarray_npy::{write_npy, NpzWriter};
    use std::fs::File;
    use std::path::{Path, PathBuf};

    /// Writes a `.npy` by hand: `descr` and `shape` go into the header, `data` follows.
    fn write_raw_npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).unwrap();
    }

    fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    #[test]
    fn an_image_of_too_many_pixels_is_rejected_from_the_header() {
        let (dir, _) = tmp("x");
        for (shape, (w, h)) in [
            ("(1, 20000, 20000)", (20000, 20000)),
            ("(2, 3, 16385, 16384)", (16384, 16385)),
            ("(1, 40000, 40000, 3)", (40000, 40000)),
        ] {
            let p = dir.path().join("bomb.npy");
            write_raw_npy(&p, "|u1", shape, &[0; 16]);
            let err = load_err(&p, &cfg(4, 1), "bomb.npy");
            assert!(
                matches!(err.kind(), ErrorKind::TooManyPixels { width, height }
                    if (*width, *height) == (w, h)),
                "{shape}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{w}×{h}")), "{err}");
        }
        // 2^28 pixels exactly: the header is fine, the data is missing.
        let p = dir.path().join("edge.npy");
        write_raw_npy(&p, "|u1", "(1, 16384, 16384)", &[0; 16]);
        let err = load_err(&p, &cfg(4, 1), "edge.npy");
        assert!(
            matches!(err.kind(), ErrorKind::TruncatedArray { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn uint8_batch_nhw() {
        let (_dir, p) = tmp("f.npy");
        let a = Array3::from_shape_fn((3, 4, 4), |(n, _, _)| [0u8, 128, 255][n]);
        write_npy(&p, &a).unwrap();
        let set = load_ok(&p, &cfg(4, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["f.npy#0", "f.npy#1", "f.npy#2"]);
        for (img, v) in set.images.iter().zip([0.0, 128.0 / 255.0, 1.0]) {
            assert_all_near(&img.pixels, v, 1e-7);
        }
    }

    #[test]
    fn uint16_batch_is_min_max_per_image() {
        let (_dir, p) = tmp("u16.npy");
        let a = Array3::from_shape_vec((2, 1, 2), vec![10u16, 20, 0, 60000]).unwrap();
        write_npy(&p, &a).unwrap();
        let set = load_ok(&p, &cfg(2, 1));
        // 1×2 images stretched to 2×2: columns keep their values at the borders.
        assert_eq!(set.images[0].pixels, [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(set.images[1].pixels, [0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn constant_uint16_image_fails_or_is_skipped_alone() {
        let (_dir, p) = tmp("u16.npy");
        let a = Array3::from_shape_vec((3, 1, 2), vec![1u16, 2, 5, 5, 3, 4]).unwrap();
        write_npy(&p, &a).unwrap();
        let err = load_err(&p, &cfg(2, 1), "u16.npy#1");
        assert!(
            matches!(err.kind(), ErrorKind::ConstantImage { index: Some(1) }),
            "{err}"
        );
        assert_eq!(err.item(), Some("1"));
        let set = load_ok(&p, &skip(2, 1));
        assert_eq!(set.images.len(), 2);
        assert_eq!(set.skipped.len(), 1);
        assert_eq!(set.skipped[0].path, "u16.npy#1");
        assert!(
            set.skipped[0].reason.contains("constant"),
            "{}",
            set.skipped[0].reason
        );
    }

    #[test]
    fn float_batches_in_unit_and_symmetric_ranges() {
        let (dir, p) = tmp("unit.npy");
        write_npy(
            &p,
            &Array3::from_shape_vec((2, 1, 1), vec![0.0f32, 0.25]).unwrap(),
        )
        .unwrap();
        let px: Vec<f32> = load_ok(&p, &cfg(1, 1))
            .images
            .iter()
            .map(|i| i.pixels[0])
            .collect();
        assert_eq!(px, [0.0, 0.25]);

        let p = dir.path().join("sym.npy");
        write_npy(
            &p,
            &Array3::from_shape_vec((3, 1, 1), vec![-1.0f32, 0.0, 0.5]).unwrap(),
        )
        .unwrap();
        let px: Vec<f32> = load_ok(&p, &cfg(1, 1))
            .images
            .iter()
            .map(|i| i.pixels[0])
            .collect();
        assert_eq!(px, [0.0, 0.5, 0.75]);

        let p = dir.path().join("f64.npy");
        write_npy(
            &p,
            &Array3::from_shape_vec((2, 1, 1), vec![-0.5f64, 1.0]).unwrap(),
        )
        .unwrap();
        let px: Vec<f32> = load_ok(&p, &cfg(1, 1))
            .images
            .iter()
            .map(|i| i.pixels[0])
            .collect();
        assert_eq!(px, [0.25, 1.0]);
    }

    #[test]
    fn float_out_of_range_is_an_error_for_the_array() {
        let (_dir, p) = tmp("raw.npy");
        write_npy(
            &p,
            &Array3::from_shape_vec((2, 1, 1), vec![0.0f32, 255.0]).unwrap(),
        )
        .unwrap();
        let err = load_err(&p, &cfg(1, 1), "raw.npy");
        assert!(
            matches!(err.kind(), ErrorKind::OutOfRange { min, max } if *min == 0.0 && *max == 255.0)
        );
        assert!(err.to_string().contains("[0, 255]"), "{err}");
    }

    #[test]
    fn nan_names_the_image_index() {
        let (_dir, p) = tmp("nan.npy");
        let a = Array3::from_shape_vec(
            (4, 1, 2),
            vec![0.1f32, 0.2, 0.3, 0.4, 0.5, f32::NAN, 0.9, 1.0],
        )
        .unwrap();
        write_npy(&p, &a).unwrap();
        let err = load_err(&p, &cfg(2, 1), "nan.npy#2");
        assert!(
            matches!(err.kind(), ErrorKind::NonFinite { index: Some(2) }),
            "{err}"
        );
        let set = load_ok(&p, &skip(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["nan.npy#0", "nan.npy#1", "nan.npy#3"]);
        assert_eq!(set.skipped[0].path, "nan.npy#2");
    }

    #[test]
    fn channels_last_and_channels_first_give_the_same_pixels() {
        let (dir, last) = tmp("nhwc.npy");
        let nhwc = Array4::from_shape_fn((2, 6, 6, 3), |(n, y, x, c)| {
            (n * 50 + y * 7 + x * 3 + c * 60) as u8
        });
        write_npy(&last, &nhwc).unwrap();
        let first = dir.path().join("nchw.npy");
        write_npy(
            &first,
            &nhwc.view().permuted_axes([0, 3, 1, 2]).as_standard_layout(),
        )
        .unwrap();
        let (a, b) = (load_ok(&last, &cfg(4, 3)), load_ok(&first, &cfg(4, 3)));
        for (x, y) in a.images.iter().zip(&b.images) {
            assert_eq!(x.pixels, y.pixels);
            assert_ne!(x.hash, y.hash, "the slice shape is part of the hash");
        }
        // Unresized, plane c at (y, x) of image 1 is (50 + 7 y + 3 x + 60 c) / 255.
        let img = load_ok(&first, &cfg(6, 3)).images.remove(1);
        let at = |c: usize, y: usize, x: usize| img.pixels[c * 36 + y * 6 + x];
        assert_eq!(at(0, 0, 0), 50.0 / 255.0);
        assert_eq!(at(2, 1, 2), (50.0 + 7.0 + 6.0 + 120.0) / 255.0);
    }

    #[test]
    fn rgba_channels_last_composites_alpha() {
        let (_dir, p) = tmp("rgba.npy");
        let a = Array4::from_shape_fn((1, 2, 2, 4), |(_, _, _, c)| [255u8, 255, 255, 51][c]);
        write_npy(&p, &a).unwrap();
        assert_all_near(&load_ok(&p, &cfg(2, 1)).images[0].pixels, 0.2, 1e-6);
    }

    #[test]
    fn fortran_order_reads_like_c_order() {
        let (dir, c) = tmp("c.npy");
        let a = Array::from_shape_vec((2, 3, 4), (0..24).map(|v| v * 1000).collect()).unwrap();
        write_npy(&c, &a).unwrap();
        let f = dir.path().join("f.npy");
        let mut af = Array::<u16, _>::zeros((2, 3, 4).f());
        af.assign(&a);
        write_npy(&f, &af).unwrap();
        let header = std::fs::read(&f).unwrap();
        assert!(String::from_utf8_lossy(&header[..128]).contains("'fortran_order': True"));
        let (sc, sf) = (load_ok(&c, &cfg(4, 1)), load_ok(&f, &cfg(4, 1)));
        for (x, y) in sc.images.iter().zip(&sf.images) {
            assert_eq!((&x.hash, &x.pixels), (&y.hash, &y.pixels));
        }
    }

    #[test]
    fn npz_arrays_sorted_by_name_with_ids() {
        let (dir, p) = tmp("f.npz");
        let a0 = Array3::from_shape_fn((4, 3, 3), |(n, _, _)| (n * 10) as u8);
        let a1 = Array4::from_shape_fn((2, 3, 3, 1), |(n, _, _, _)| 200 + n as u8);
        let mut npz = NpzWriter::new_compressed(File::create(&p).unwrap());
        npz.add_array("zz", &a1).unwrap();
        npz.add_array("arr_0", &a0).unwrap();
        npz.finish().unwrap();
        let set = load_ok(&p, &cfg(3, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "f.npz#arr_0/0",
                "f.npz#arr_0/1",
                "f.npz#arr_0/2",
                "f.npz#arr_0/3",
                "f.npz#zz/0",
                "f.npz#zz/1"
            ]
        );
        assert_all_near(&set.images[3].pixels, 30.0 / 255.0, 1e-7);
        assert_all_near(&set.images[5].pixels, 201.0 / 255.0, 1e-7);

        // The slice hash doesn't depend on the container.
        let npy = dir.path().join("same.npy");
        write_npy(&npy, &a0).unwrap();
        let from_npy = load_ok(&npy, &cfg(3, 1));
        assert_eq!(from_npy.images[3].hash, set.images[3].hash);
        assert_ne!(set.images[2].hash, set.images[3].hash);
    }

    #[test]
    fn class_labels_of_an_adm_npz_are_ignored() {
        let (dir, p) = tmp("adm.npz");
        // guided-diffusion's class-conditional sample file: np.savez(path, images, labels).
        let images = Array4::from_shape_fn((4, 6, 6, 3), |(n, _, _, _)| 60 * n as u8);
        let mut npz = NpzWriter::new_compressed(File::create(&p).unwrap());
        npz.add_array("arr_0", &images).unwrap();
        npz.add_array("arr_1", &ndarray::arr1(&[3i64, 1, 4, 1]))
            .unwrap();
        npz.finish().unwrap();
        let set = load_ok(&p, &cfg(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "adm.npz#arr_0/0",
                "adm.npz#arr_0/1",
                "adm.npz#arr_0/2",
                "adm.npz#arr_0/3"
            ]
        );
        assert!(set.skipped.is_empty());
        // Labels named before the images, any integer dtype.
        let p = dir.path().join("named.npz");
        let mut npz = NpzWriter::new(File::create(&p).unwrap());
        npz.add_array("labels", &ndarray::arr1(&[0u8, 9, 2, 7]))
            .unwrap();
        npz.add_array("samples", &images).unwrap();
        npz.finish().unwrap();
        assert_eq!(load_ok(&p, &cfg(2, 1)).images.len(), 4);
        // Anything else that is not images is still an error.
        let check = |name: &str, add: &dyn Fn(&mut NpzWriter<File>), message: &str| {
            let p = dir.path().join(name);
            let mut npz = NpzWriter::new(File::create(&p).unwrap());
            npz.add_array("arr_0", &images).unwrap();
            add(&mut npz);
            npz.finish().unwrap();
            let err = load_err(&p, &cfg(2, 1), &format!("{name}#arr_1"));
            assert!(err.to_string().contains(message), "{name}: {err}");
        };
        check(
            "wrong_length.npz",
            &|w| w.add_array("arr_1", &ndarray::arr1(&[1i64, 2, 3])).unwrap(),
            "unsupported array dtype `<i8`",
        );
        check(
            "float_labels.npz",
            &|w| w.add_array("arr_1", &ndarray::arr1(&[1.0f64; 4])).unwrap(),
            "array of shape (4,) is not a batch of images",
        );
        check(
            "two_d.npz",
            &|w| {
                w.add_array("arr_1", &Array::<i64, _>::zeros((4, 2)))
                    .unwrap()
            },
            "unsupported array dtype `<i8`",
        );
    }

    #[test]
    fn npz_bad_array_is_skipped_alone() {
        let (_dir, p) = tmp("mixed.npz");
        let mut npz = NpzWriter::new(File::create(&p).unwrap());
        npz.add_array("arr_0", &Array3::<u8>::zeros((2, 2, 2)))
            .unwrap();
        npz.add_array("arr_1", &Array3::<i64>::zeros((2, 2, 2)))
            .unwrap();
        npz.finish().unwrap();
        let err = load_err(&p, &cfg(2, 1), "mixed.npz#arr_1");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedDtype { dtype } if dtype == "<i8"),
            "{err}"
        );
        let set = load_ok(&p, &skip(2, 1));
        assert_eq!(set.images.len(), 2);
        assert_eq!(set.skipped[0].path, "mixed.npz#arr_1");
    }

    #[test]
    fn object_dtype_is_its_own_error() {
        let (_dir, p) = tmp("list.npy");
        // What np.save does with a list of differently-sized images: a pickled object array.
        write_raw_npy(
            &p,
            "|O",
            "(2,)",
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n",
        );
        let err = load_err(&p, &cfg(8, 1), "list.npy");
        assert!(matches!(err.kind(), ErrorKind::ObjectArray), "{err}");
        assert!(err.to_string().contains("differently-sized"), "{err}");
    }

    #[test]
    fn unsupported_dtypes() {
        let (dir, _) = tmp("x");
        for (descr, size) in [("<i8", 8), ("|b1", 1), ("<c8", 8), ("<f2", 2), ("<U3", 12)] {
            let p = dir.path().join(format!("d{size}.npy"));
            write_raw_npy(&p, descr, "(1, 1, 1)", &vec![0; size]);
            let err = load_err(&p, &cfg(1, 1), &format!("d{size}.npy"));
            assert!(
                matches!(err.kind(), ErrorKind::UnsupportedDtype { dtype } if dtype == descr),
                "{err}"
            );
        }
    }

    #[test]
    fn wrong_shapes() {
        let (dir, _) = tmp("x");
        for (name, shape) in [
            ("rank1.npy", "(4,)"),
            ("rank2.npy", "(2, 2)"),
            ("rank5.npy", "(1, 1, 1, 1, 1)"),
            ("two_channels.npy", "(1, 2, 2, 2)"),
            ("zero_height.npy", "(1, 0, 4)"),
        ] {
            let p = dir.path().join(name);
            // The shape is checked before the data is read.
            write_raw_npy(&p, "|u1", shape, &[]);
            let err = load_err(&p, &cfg(2, 1), name);
            assert!(
                matches!(err.kind(), ErrorKind::BadShape { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn truncated_and_lying_headers_fail_before_allocating() {
        let (dir, p) = tmp("short.npy");
        write_raw_npy(&p, "<u2", "(2, 4, 4)", &[0; 63]);
        let err = load_err(&p, &cfg(4, 1), "short.npy");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TruncatedArray {
                    expected: 64,
                    available: 63
                }
            ),
            "{err}"
        );
        let p = dir.path().join("huge.npy");
        write_raw_npy(&p, "<f8", "(1000000, 10000, 10000)", &[0; 16]);
        let err = load_err(&p, &cfg(4, 1), "huge.npy");
        assert!(
            matches!(err.kind(), ErrorKind::TruncatedArray { .. }),
            "{err}"
        );
        let p = dir.path().join("overflow.npy");
        write_raw_npy(&p, "<f8", "(18446744073709551615, 2, 2)", &[0; 16]);
        let err = load_err(&p, &cfg(4, 1), "overflow.npy");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TruncatedArray {
                    expected: u64::MAX,
                    ..
                }
            ),
            "{err}"
        );
        let p = dir.path().join("extra.npy");
        write_raw_npy(&p, "|u1", "(1, 2, 2)", &[0; 5]);
        let err = load_err(&p, &cfg(4, 1), "extra.npy");
        assert!(matches!(err.kind(), ErrorKind::Npy(_)), "{err}");
    }

    #[test]
    fn garbage_npy_and_npz_are_errors() {
        let (dir, _) = tmp("x");
        for (name, data) in [
            ("g.npy", &b"not numpy"[..]),
            ("e.npy", b""),
            ("g.npz", b"PK\x03\x04junk"),
            ("e.npz", b""),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            let err = load_err(&p, &cfg(2, 1), name);
            let ok = if name.ends_with(".npy") {
                matches!(err.kind(), ErrorKind::Npy(_))
            } else {
                matches!(err.kind(), ErrorKind::Npz(_))
            };
            assert!(ok, "{name}: {err:?}");
            assert!(std::error::Error::source(&err).is_some());
        }
        // A truncated npz.
        let p = dir.path().join("t.npz");
        let mut npz = NpzWriter::new_compressed(File::create(&p).unwrap());
        npz.add_array("arr_0", &Array3::<u8>::zeros((8, 16, 16)))
            .unwrap();
        npz.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 30]).unwrap();
        load_err(&p, &cfg(2, 1), "t.npz");
    }

    #[test]
    fn empty_batch_contributes_nothing() {
        let (dir, p) = tmp("none.npy");
        write_npy(&p, &Array3::<u8>::zeros((0, 4, 4))).unwrap();
        let err = load_err(&p, &cfg(4, 1), "none.npy");
        assert!(matches!(err.kind(), ErrorKind::EmptySet));
        write_npy(dir.path().join("one.npy"), &Array3::<u8>::zeros((1, 4, 4))).unwrap();
        assert_eq!(load_ok(dir.path(), &cfg(4, 1)).images.len(), 1);
    }
}
