//! Bring-your-own features: `(N, D)` `.npy` matrices (one row per image) with optional id
//! sidecars, read and written in the format `memscan embed` produces.
//!
//! # Format
//!
//! - `NAME.npy`: a 2-D NumPy array, `float32` (or `float64`, converted to `float32`), either
//!   byte order, C or Fortran order. Row `i` is the feature vector of image `i`.
//! - `NAME.ids.txt` (optional, beside the `.npy`): one id per line, as many lines as rows
//!   (a final newline is optional; ids must be non-empty and unique). Without it the ids are
//!   `row-000000`, `row-000001`, ….
//!
//! Every row must be finite: a NaN or ±∞ is an error naming the file, the row and the column.
//! [`FeatureSet::hash`] is the SHA-256 of the ids and of the `float32` matrix as read (before
//! any normalization), so two runs on the same files share cache entries.
//!
//! [`NpyRowWriter`] writes such a matrix row block by row block (memory bounded by the
//! block), with a fixed-size header that is rewritten with the final shape at the end, into a
//! temporary file renamed into place once complete.

use crate::audit::{reference_needs_holdout, Ingested, RoleInput, Timer};
use crate::config::AuditConfig;
use crate::error::Error;
use memscan_report::InputSet;
use ndarray::{Array2, ArrayView2};
use ndarray_npy::npy::header::Header;
use ndarray_npy::ReadNpyExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A feature matrix with its ids, as read from `NAME.npy` (+ `NAME.ids.txt`).
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// The `.npy` file.
    pub path: PathBuf,
    /// The ids file, if one was found beside the matrix.
    pub ids_file: Option<PathBuf>,
    /// One id per row.
    pub ids: Vec<String>,
    /// `N × D`, `float32`, C order.
    pub rows: Array2<f32>,
    /// The dtype stored in the file (`float32` or `float64`).
    pub dtype: &'static str,
    /// SHA-256 (hex) of the ids and the `float32` rows as read.
    pub hash: String,
}

/// `NAME.ids.txt` for `NAME.npy` (any other extension is replaced the same way).
pub fn ids_path(npy: &Path) -> PathBuf {
    let stem = npy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    npy.with_file_name(format!("{stem}.ids.txt"))
}

/// The default id of row `i`: `row-000123`.
pub fn row_id(i: usize) -> String {
    format!("row-{i:06}")
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::Features {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::FeaturesIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a feature matrix and its ids (see the [module docs](self)).
///
/// # Errors
///
/// [`Error::FeaturesIo`] if a file cannot be read; [`Error::FeaturesNpy`] if the `.npy` cannot
/// be parsed; [`Error::Features`] for a matrix that is not 2-D, has no rows or columns, has a
/// dtype other than float32/float64 or a non-finite value (naming row and column), or an ids
/// file whose line count differs from the row count, or with an empty or repeated id.
pub fn read(path: &Path) -> Result<FeatureSet, Error> {
    let file = File::open(path).map_err(io_err(path))?;
    let header = Header::from_reader(&mut BufReader::new(&file)).map_err(|e| {
        bad(
            path,
            format!("not a NumPy .npy file (cannot parse the header: {e})"),
        )
    })?;
    if header.shape.len() != 2 {
        return Err(bad(
            path,
            format!(
                "expected a 2-D (N, D) matrix of features, got shape {:?}",
                header.shape
            ),
        ));
    }
    let descr = header.type_descriptor.to_string();
    let kind = descr.trim_matches('\'');
    let (n, d) = (header.shape[0], header.shape[1]);
    if n == 0 || d == 0 {
        return Err(bad(
            path,
            format!(
                "the matrix is empty (shape ({n}, {d})); it needs at least one row and one column"
            ),
        ));
    }
    let reader = || -> Result<BufReader<File>, Error> {
        let mut f = File::open(path).map_err(io_err(path))?;
        f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        Ok(BufReader::with_capacity(1 << 20, f))
    };
    let npy_err = |source| Error::FeaturesNpy {
        path: path.to_path_buf(),
        source,
    };
    let (rows, dtype) = match kind {
        "<f4" | ">f4" | "=f4" | "|f4" => (
            Array2::<f32>::read_npy(reader()?).map_err(npy_err)?,
            "float32",
        ),
        "<f8" | ">f8" | "=f8" | "|f8" => {
            let x = Array2::<f64>::read_npy(reader()?).map_err(npy_err)?;
            // Row by row so that a value beyond the f32 range is reported, not turned into ∞.
            let mut out = Array2::<f32>::zeros((n, d));
            for (i, (src, mut dst)) in x.rows().into_iter().zip(out.rows_mut()).enumerate() {
                for (j, (&v, o)) in src.iter().zip(dst.iter_mut()).enumerate() {
                    if v.is_finite() && v.abs() > f64::from(f32::MAX) {
                        return Err(bad(
                            path,
                            format!("row {i}, column {j}: {v} does not fit in float32"),
                        ));
                    }
                    *o = v as f32;
                }
            }
            (out, "float64")
        }
        other => {
            return Err(bad(
                path,
                format!("dtype {other} is not supported; features must be float32 or float64"),
            ))
        }
    };
    let rows = if rows.is_standard_layout() {
        rows
    } else {
        rows.as_standard_layout().into_owned()
    };
    check_finite(path, rows.view())?;
    let ids_file = ids_path(path);
    let (ids, ids_file) = if ids_file.is_file() {
        (read_ids(&ids_file, n)?, Some(ids_file))
    } else {
        ((0..n).map(row_id).collect(), None)
    };
    let hash = hash(&ids, rows.view());
    Ok(FeatureSet {
        path: path.to_path_buf(),
        ids_file,
        ids,
        rows,
        dtype,
        hash,
    })
}

/// Errors on the first NaN or ±∞, naming its row and column.
fn check_finite(path: &Path, rows: ArrayView2<'_, f32>) -> Result<(), Error> {
    for (i, row) in rows.rows().into_iter().enumerate() {
        if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(
                path,
                format!("row {i} (0-based), column {j}: non-finite value {v}"),
            ));
        }
    }
    Ok(())
}

/// Reads an ids sidecar: exactly `n` non-empty, distinct lines.
fn read_ids(path: &Path, n: usize) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let ids: Vec<String> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if ids.len() != n {
        return Err(bad(
            path,
            format!(
                "{} ids for {n} feature rows: the ids file needs exactly one id per row",
                ids.len()
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(bad(path, format!("line {} is empty", i + 1)));
        }
        if let Some(first) = seen.insert(id.as_str(), i) {
            return Err(bad(
                path,
                format!("id `{id}` appears on lines {} and {}", first + 1, i + 1),
            ));
        }
    }
    Ok(ids)
}

/// SHA-256 hex over the ids (one per line) and the shape and little-endian rows.
pub fn hash(ids: &[String], rows: ArrayView2<'_, f32>) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    h.update((rows.nrows() as u64).to_le_bytes());
    h.update((rows.ncols() as u64).to_le_bytes());
    let mut buf = Vec::with_capacity(rows.ncols() * 4);
    for row in rows.rows() {
        buf.clear();
        buf.extend(row.iter().flat_map(|x| x.to_le_bytes()));
        h.update(&buf);
    }
    hex::encode(h.finalize())
}

/// Total length of the `.npy` header [`NpyRowWriter`] writes (magic to newline): room for
/// any shape that fits in two `u64`s, a multiple of 64 as NumPy recommends.
const HEADER_LEN: usize = 128;

/// The fixed-size version-1.0 header of a C-order little-endian `float32` `(n, d)` array.
fn npy_header(n: usize, d: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(HEADER_LEN - 1, b' ');
    out.push(b'\n');
    debug_assert_eq!(out.len(), HEADER_LEN);
    out
}

/// Writes a `float32` `(N, D)` `.npy` (and optionally its `.ids.txt`) block by block.
///
/// Rows go to `.NAME.tmp-*` files in the target's folder; [`finish`](Self::finish) writes the
/// header with the final row count, syncs, and renames both files into place (ids first, then
/// the matrix), so a reader never sees a half-written matrix under the final name.
pub struct NpyRowWriter {
    path: PathBuf,
    dim: usize,
    rows: usize,
    npy: BufWriter<tempfile::NamedTempFile>,
    ids: Option<BufWriter<tempfile::NamedTempFile>>,
    buf: Vec<u8>,
}

impl NpyRowWriter {
    /// Starts `path` (with an ids sidecar if `with_ids`) for `dim`-dimensional rows.
    pub fn create(path: &Path, dim: usize, with_ids: bool) -> Result<Self, Error> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = |what: &str| {
            tempfile::Builder::new()
                .prefix(&format!(".{name}.{what}.tmp-"))
                .tempfile_in(&parent)
                .map_err(io_err(&parent))
        };
        let mut npy = BufWriter::with_capacity(1 << 20, temp("npy")?);
        npy.write_all(&npy_header(0, dim)).map_err(io_err(path))?;
        let ids = if with_ids {
            Some(BufWriter::new(temp("ids")?))
        } else {
            None
        };
        Ok(NpyRowWriter {
            path: path.to_path_buf(),
            dim,
            rows: 0,
            npy,
            ids,
            buf: Vec::new(),
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends a block of rows (`block.ncols()` must be the writer's dimension) and, if the
    /// writer has an ids sidecar, their ids (one per row, without newlines).
    pub fn append(&mut self, block: ArrayView2<'_, f32>, ids: &[String]) -> Result<(), Error> {
        if block.ncols() != self.dim {
            return Err(bad(
                &self.path,
                format!(
                    "a block of {}-dimensional rows for a {}-dimensional matrix",
                    block.ncols(),
                    self.dim
                ),
            ));
        }
        if let Some(w) = &mut self.ids {
            if ids.len() != block.nrows() {
                return Err(bad(
                    &self.path,
                    format!("{} ids for a block of {} rows", ids.len(), block.nrows()),
                ));
            }
            for id in ids {
                if id.is_empty() || id.contains(['\n', '\r']) {
                    return Err(bad(
                        &self.path,
                        format!("id {id:?} cannot be written as one line"),
                    ));
                }
                writeln!(w, "{id}").map_err(io_err(&self.path))?;
            }
        }
        self.buf.clear();
        for row in block.rows() {
            self.buf.extend(row.iter().flat_map(|x| x.to_le_bytes()));
        }
        self.npy.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.rows += block.nrows();
        Ok(())
    }

    /// Writes the final header, syncs and renames the files into place; returns the row count.
    pub fn finish(self) -> Result<usize, Error> {
        let path = self.path;
        let mut npy = self
            .npy
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        npy.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        npy.write_all(&npy_header(self.rows, self.dim))
            .map_err(io_err(&path))?;
        npy.as_file().sync_all().map_err(io_err(&path))?;
        if let Some(ids) = self.ids {
            let ids = ids
                .into_inner()
                .map_err(|e| io_err(&path)(e.into_error()))?;
            ids.as_file().sync_all().map_err(io_err(&path))?;
            let ids_target = ids_path(&path);
            ids.persist(&ids_target)
                .map_err(|e| io_err(&ids_target)(e.error))?;
        }
        npy.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(self.rows)
    }
}

/// Why the metadata leakage check is absent for feature inputs.
pub(crate) const NO_METADATA: &str =
    "features input (--features): no image files, so no DICOM metadata to check";
/// Why the report has no gallery for feature inputs.
pub(crate) const NO_PIXELS: &str =
    "features input (--features): no pixels, so no thumbnails or difference images";

/// The report's visuals without images (feature inputs): histograms only.
pub(crate) fn no_gallery(
    no_images: bool,
    holdout_distance: Option<Vec<f64>>,
    holdout_cosine: Option<Vec<f64>>,
) -> memscan_report::Visuals {
    memscan_report::Visuals {
        real_images: !no_images,
        thumbnail_max: crate::gallery::THUMBNAIL_MAX,
        diff_gain: crate::gallery::DIFF_GAIN,
        gallery: Vec::new(),
        copied: Vec::new(),
        holdout_distance,
        holdout_cosine,
    }
}

/// Reads one role's features (L2-normalizing rows if asked) into a [`RoleInput`]; also
/// returns the file's description for `summary.json`.
fn role_input(
    role: &'static str,
    path: &Path,
    normalize: bool,
    timer: &mut Timer,
    warn: &mut dyn FnMut(String),
) -> Result<(RoleInput, serde_json::Value), Error> {
    let f = timer
        .time(&format!("read {role} features"), || read(path))
        .map_err(|e| e.for_role(role))?;
    let FeatureSet {
        path,
        ids_file,
        ids,
        mut rows,
        dtype,
        hash,
    } = f;
    if normalize {
        let mut zero = 0usize;
        for row in rows.rows_mut() {
            if row.iter().all(|&v| v == 0.0) {
                zero += 1;
            }
            memscan_embed::l2_normalize(row);
        }
        if zero > 0 {
            warn(format!(
                "{zero} {role} feature row(s) in {} are zero vectors: they have no direction \
                 and stay zero after normalization",
                path.display()
            ));
        }
    }
    let input = InputSet {
        path: path.display().to_string(),
        count: rows.nrows(),
        skipped: 0,
        content_hash: hash,
    };
    let file = serde_json::json!({
        "path": path.display().to_string(),
        "ids": ids_file.as_ref().map(|p| p.display().to_string()),
        "dtype": dtype,
        "dim": rows.ncols(),
    });
    Ok((
        RoleInput {
            ids,
            e: rows,
            input,
            images: None,
        },
        file,
    ))
}

/// Reads every role's features for [`crate::Audit::run`] (the `--features` path).
pub(crate) fn ingest(
    cfg: &AuditConfig,
    timer: &mut Timer,
    warn: &mut dyn FnMut(String),
) -> Result<Ingested, Error> {
    let fc = cfg.features.as_ref().expect("called for --features");
    if cfg.groups.is_some() {
        return Err(Error::Config(
            "--groups is not supported with --features (the groups file maps image paths; \
             feature rows have ids only)"
                .into(),
        ));
    }
    if cfg.reference.is_some() && cfg.holdout.is_none() {
        return Err(reference_needs_holdout());
    }
    let mut files = serde_json::Map::new();
    let mut read_role = |role: &'static str, path: &Path, timer: &mut Timer| {
        let (r, file) = role_input(role, path, fc.normalize, timer, &mut *warn)?;
        files.insert(role.to_string(), file);
        Ok::<_, Error>(r)
    };
    let train = read_role("train", &cfg.train, timer)?;
    let synthetic = read_role("synthetic", &cfg.synthetic, timer)?;
    let holdout = match &cfg.holdout {
        Some(p) => Some(read_role("holdout", p, timer)?),
        None => None,
    };
    let reference = match &cfg.reference {
        Some(p) => Some(read_role("reference", p, timer)?),
        None => None,
    };
    let dim = train.e.ncols();
    let others = [
        ("synthetic", Some(&synthetic)),
        ("holdout", holdout.as_ref()),
        ("reference", reference.as_ref()),
    ];
    for (role, r) in others {
        let Some(r) = r else { continue };
        if r.e.ncols() != dim {
            return Err(Error::Inputs(format!(
                "the {role} features {} are {}-dimensional but the train features {} are \
                 {dim}-dimensional: every set must come from the same feature extractor",
                r.input.path,
                r.e.ncols(),
                train.input.path
            )));
        }
    }
    crate::audit::check_set_hashes(
        (&train.input.content_hash, &synthetic.input.content_hash),
        (
            holdout.as_ref().map(|h| h.input.content_hash.as_str()),
            reference.as_ref().map(|r| r.input.content_hash.as_str()),
        ),
        warn,
    )?;
    let embedder = serde_json::json!({
        "name": "features",
        "dim": dim,
        "normalized": fc.normalize,
        "distance": if fc.normalize {
            "Euclidean distance between the given feature vectors after L2 normalization \
             (cos = 1 − d²/2); a zero vector stays zero"
        } else {
            "Euclidean distance between the given feature vectors, as given (--no-normalize)"
        },
        "params": {"normalize": fc.normalize, "files": files},
    });
    let mut absent = BTreeMap::new();
    absent.insert("gallery".to_string(), NO_PIXELS.to_string());
    let space = format!("features\nnormalize={}\ndim={dim}", fc.normalize);
    Ok(Ingested {
        train,
        synthetic,
        holdout,
        reference,
        skipped: Vec::new(),
        embedder,
        absent,
        space,
        cache: Vec::new(),
        train_views: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};
    use ndarray_npy::write_npy;

    #[test]
    fn reads_f32_and_f64_with_and_without_ids() {
        let dir = tempfile::tempdir().unwrap();
        let a = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let p = dir.path().join("t.npy");
        write_npy(&p, &a).unwrap();
        let f = read(&p).unwrap();
        assert_eq!(f.rows, a);
        assert_eq!(f.ids, vec!["row-000000", "row-000001", "row-000002"]);
        assert_eq!(f.dtype, "float32");
        assert!(f.ids_file.is_none());

        let p64 = dir.path().join("s.npy");
        write_npy(&p64, &a.mapv(f64::from)).unwrap();
        std::fs::write(dir.path().join("s.ids.txt"), "a\nb\nc\n").unwrap();
        let g = read(&p64).unwrap();
        assert_eq!(g.rows, a);
        assert_eq!(g.dtype, "float64");
        assert_eq!(g.ids, vec!["a", "b", "c"]);
        assert_ne!(f.hash, g.hash, "ids are part of the hash");
        // Fortran order reads as the same matrix.
        let pf = dir.path().join("f.npy");
        write_npy(&pf, &a.t().as_standard_layout().t()).unwrap();
        assert_eq!(read(&pf).unwrap().rows, a);
    }

    #[test]
    fn bad_inputs_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let msg = |p: &Path| read(p).unwrap_err().to_string();
        let p3 = dir.path().join("cube.npy");
        write_npy(&p3, &Array3::<f32>::zeros((2, 2, 2))).unwrap();
        let m = msg(&p3);
        assert!(m.contains("cube.npy") && m.contains("2-D"), "{m}");

        let pn = dir.path().join("nan.npy");
        write_npy(&pn, &array![[0.0f32, 1.0], [2.0, f32::NAN]]).unwrap();
        let m = msg(&pn);
        assert!(
            m.contains("nan.npy") && m.contains("row 1") && m.contains("column 1"),
            "{m}"
        );
        let pi = dir.path().join("inf.npy");
        write_npy(&pi, &array![[f64::INFINITY, 1.0]]).unwrap();
        assert!(msg(&pi).contains("row 0"));
        let pbig = dir.path().join("big.npy");
        write_npy(&pbig, &array![[1e300f64, 1.0]]).unwrap();
        assert!(msg(&pbig).contains("does not fit in float32"));

        let pi8 = dir.path().join("int.npy");
        write_npy(&pi8, &array![[1u8, 2]]).unwrap();
        assert!(msg(&pi8).contains("float32 or float64"));

        let pid = dir.path().join("ids.npy");
        write_npy(&pid, &array![[0.0f32], [1.0], [2.0]]).unwrap();
        std::fs::write(dir.path().join("ids.ids.txt"), "a\nb\n").unwrap();
        let m = msg(&pid);
        assert!(
            m.contains("ids.ids.txt") && m.contains("2 ids for 3 feature rows"),
            "{m}"
        );
        std::fs::write(dir.path().join("ids.ids.txt"), "a\nb\na\n").unwrap();
        assert!(msg(&pid).contains("lines 1 and 3"));
        std::fs::write(dir.path().join("ids.ids.txt"), "a\n\nc\n").unwrap();
        assert!(msg(&pid).contains("line 2 is empty"));

        let pg = dir.path().join("garbage.npy");
        std::fs::write(&pg, b"not an array").unwrap();
        assert!(msg(&pg).contains("garbage.npy"));
        assert!(msg(&dir.path().join("missing.npy")).contains("missing.npy"));
    }

    #[test]
    fn streaming_writer_round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out").join("feats.npy");
        let mut w = NpyRowWriter::create(&p, 3, true).unwrap();
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        w.append(a.view(), &["x/1.png".into(), "x/2.png".into()])
            .unwrap();
        assert!(!p.exists(), "nothing under the final name before finish");
        let b = Array2::<f32>::from_shape_fn((1000, 3), |(i, j)| (i * 3 + j) as f32);
        let ids: Vec<String> = (0..1000).map(|i| format!("b{i}")).collect();
        w.append(b.view(), &ids).unwrap();
        assert!(w.append(array![[1.0f32]].view(), &["z".into()]).is_err());
        assert_eq!(w.finish().unwrap(), 1002);
        let f = read(&p).unwrap();
        assert_eq!(f.rows.dim(), (1002, 3));
        assert_eq!(f.rows.row(1).to_vec(), vec![4.0, 5.0, 6.0]);
        assert_eq!(f.rows.row(1001).to_vec(), vec![2997.0, 2998.0, 2999.0]);
        assert_eq!(f.ids[0], "x/1.png");
        assert_eq!(f.ids[1001], "b999");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // The header is the fixed-size one NumPy accepts: 128 bytes, then the data.
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 1002 * 3 * 4);
        assert_eq!(bytes[HEADER_LEN - 1], b'\n');
    }
}
