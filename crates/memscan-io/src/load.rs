//! [`load`]: list a path's inputs, decode them in parallel, apply the bad-input policy in
//! order, and hash the result.
//!
//! Files are decoded with rayon over the sorted file list (and the images of one array in
//! parallel too) and collected in order, so the [`ImageSet`] — images, skipped entries,
//! hashes — is the same whatever the thread count. With [`BadInputPolicy::Fail`] the error
//! returned is the first in that order; files after a known failure are not decoded.

use crate::array::{decode_npy, decode_npz};
use crate::error::{chain, Error, ErrorKind};
use crate::walk::{list, Entry, Format};
use crate::{
    dicom, nii, raster, BadInputPolicy, Image, ImageSet, IoConfig, Reporter, Skipped, SourceMeta,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A decoded image, or a rejected input.
pub(crate) type Outcome = Result<Decoded, Rejected>;

/// A decoded image and where it comes from (`meta` is `None` for pictures and arrays).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub image: Image,
    pub meta: Option<SourceMeta>,
}

impl From<Image> for Decoded {
    fn from(image: Image) -> Self {
        Decoded { image, meta: None }
    }
}

/// An input rejected by the decoder: its id (`file`, `file#name` or `file#index`) and why.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub id: String,
    pub error: Error,
}

impl Rejected {
    /// The file `path` (id `id`) rejected with `kind`; with `item = Some(k)` only its `k`-th
    /// frame, page or slice (id `id#k`).
    pub(crate) fn new(path: &Path, id: &str, kind: ErrorKind, item: Option<usize>) -> Rejected {
        let error = Error::new(path, kind);
        match item {
            Some(k) => Rejected {
                id: format!("{id}#{k}"),
                error: error.with_item(k.to_string()),
            },
            None => Rejected {
                id: id.to_owned(),
                error,
            },
        }
    }
}

/// Loads every image under `path` (a folder, walked recursively, or a single file).
///
/// Each image is normalized to `cfg.channels × cfg.size × cfg.size` `f32` values in `[0, 1]`
/// (CHW) following the conventions in the crate docs. Progress goes to `reporter`:
/// `start("decode <path>", number of files)`, `advance(1)` per file, `finish()`, and
/// `warn(reason)` for every input skipped under [`BadInputPolicy::Skip`].
///
/// # Errors
///
/// - [`ErrorKind::BadChannels`] / [`ErrorKind::BadSize`] / [`ErrorKind::BadWindow`] /
///   [`ErrorKind::BadSliceRange`] for an invalid `cfg`;
/// - [`ErrorKind::Io`] if `path` cannot be read (e.g. does not exist);
/// - with [`BadInputPolicy::Fail`], the first bad input in order (corrupt file, unsupported
///   extension, bad shape or dtype, NaN, constant 16-bit image, DICOM without pixel data or in
///   an unsupported transfer syntax, bad NIfTI header…);
/// - [`ErrorKind::EmptySet`] if no image is left (including when all were skipped).
pub fn load(path: &Path, cfg: &IoConfig, reporter: &dyn Reporter) -> Result<ImageSet, Error> {
    check_config(path, cfg)?;
    let entries = list(path)?;

    reporter.start(&format!("decode {}", path.display()), entries.len() as u64);
    let first_failure = AtomicUsize::new(usize::MAX);
    let decoded: Vec<Vec<Outcome>> = entries
        .into_par_iter()
        .enumerate()
        .map(|(i, entry)| {
            let outcomes = if cfg.on_bad_input == BadInputPolicy::Fail
                && i > first_failure.load(Ordering::Relaxed)
            {
                // An earlier file already failed: this result would be thrown away.
                Vec::new()
            } else {
                decode(entry, cfg)
            };
            if outcomes.iter().any(Result::is_err) {
                first_failure.fetch_min(i, Ordering::Relaxed);
            }
            reporter.advance(1);
            outcomes
        })
        .collect();
    reporter.finish();

    let mut images = Vec::new();
    let mut meta = Vec::new();
    let mut skipped = Vec::new();
    for outcome in decoded.into_iter().flatten() {
        match outcome {
            Ok(decoded) => {
                images.push(decoded.image);
                meta.push(decoded.meta);
            }
            Err(rejected) => match cfg.on_bad_input {
                BadInputPolicy::Fail => return Err(rejected.error),
                BadInputPolicy::Skip => {
                    let reason = chain(&rejected.error);
                    reporter.warn(&reason);
                    skipped.push(Skipped {
                        path: rejected.id,
                        reason,
                    });
                }
            },
        }
    }
    if images.is_empty() {
        return Err(Error::new(path, ErrorKind::EmptySet));
    }
    let hash = set_hash(&images);
    Ok(ImageSet {
        root: path.to_path_buf(),
        images,
        meta,
        skipped,
        hash,
    })
}

/// Rejects an invalid [`IoConfig`] before any file is read.
fn check_config(path: &Path, cfg: &IoConfig) -> Result<(), Error> {
    if !matches!(cfg.channels, 1 | 3) {
        return Err(Error::new(
            path,
            ErrorKind::BadChannels {
                channels: cfg.channels,
            },
        ));
    }
    if cfg.size == 0 {
        return Err(Error::new(path, ErrorKind::BadSize { size: cfg.size }));
    }
    if let Some((center, width)) = cfg.window {
        if !(center.is_finite() && width.is_finite() && width > 0.0) {
            return Err(Error::new(path, ErrorKind::BadWindow { center, width }));
        }
    }
    if let Some(range) = cfg.slices.as_ref().and_then(|s| s.range.as_ref()) {
        if range.is_empty() {
            return Err(Error::new(
                path,
                ErrorKind::BadSliceRange {
                    start: range.start,
                    end: range.end,
                },
            ));
        }
    }
    Ok(())
}

/// One chunk of an [`ImageStream`]: the images decoded from a run of consecutive files, in
/// order, and the inputs skipped among them under [`BadInputPolicy::Skip`].
#[derive(Debug)]
pub struct Chunk {
    /// The images, in the order [`load`] would return them.
    pub images: Vec<Image>,
    /// Parallel to `images` (see [`ImageSet::meta`]).
    pub meta: Vec<Option<SourceMeta>>,
    /// Inputs skipped in this chunk.
    pub skipped: Vec<Skipped>,
}

/// [`load`] in chunks: lists the inputs once, then decodes a bounded number of files at a time
/// (in parallel within the chunk), so that memory is bounded by the chunk, not the set.
///
/// The images, skipped inputs and the set hash ([`ImageStream::finish`]) are exactly those
/// [`load`] gives for the same path and configuration, whatever the chunk size. A single
/// array file (`.npy`/`.npz`, a NIfTI volume, a multi-frame DICOM, a multi-page TIFF) is
/// decoded as a whole.
#[derive(Debug)]
pub struct ImageStream {
    root: std::path::PathBuf,
    cfg: IoConfig,
    entries: std::vec::IntoIter<Entry>,
    files: usize,
    hasher: Sha256,
    images: usize,
}

impl ImageStream {
    /// Lists the inputs under `path` (a folder or a single file).
    ///
    /// # Errors
    ///
    /// As [`load`] for an invalid `cfg` or an unreadable `path`.
    pub fn open(path: &Path, cfg: &IoConfig) -> Result<Self, Error> {
        check_config(path, cfg)?;
        let entries = list(path)?;
        Ok(ImageStream {
            root: path.to_path_buf(),
            cfg: cfg.clone(),
            files: entries.len(),
            entries: entries.into_iter(),
            hasher: Sha256::new(),
            images: 0,
        })
    }

    /// Number of input files listed.
    pub fn files(&self) -> usize {
        self.files
    }

    /// Decodes the next `max_files` files (at least one); `None` when every file was read.
    /// Progress: `advance(1)` on `reporter` per file; `warn` per skipped input.
    ///
    /// # Errors
    ///
    /// With [`BadInputPolicy::Fail`], the first bad input in order.
    pub fn next_chunk(
        &mut self,
        max_files: usize,
        reporter: &dyn Reporter,
    ) -> Option<Result<Chunk, Error>> {
        let batch: Vec<Entry> = self.entries.by_ref().take(max_files.max(1)).collect();
        if batch.is_empty() {
            return None;
        }
        let cfg = &self.cfg;
        let decoded: Vec<Vec<Outcome>> = batch
            .into_par_iter()
            .map(|entry| {
                let out = decode(entry, cfg);
                reporter.advance(1);
                out
            })
            .collect();
        let mut chunk = Chunk {
            images: Vec::new(),
            meta: Vec::new(),
            skipped: Vec::new(),
        };
        for outcome in decoded.into_iter().flatten() {
            match outcome {
                Ok(d) => {
                    self.hasher
                        .update(format!("{}\t{}\n", d.image.id, d.image.hash));
                    chunk.images.push(d.image);
                    chunk.meta.push(d.meta);
                }
                Err(rejected) => match cfg.on_bad_input {
                    BadInputPolicy::Fail => {
                        // Nothing after a failure is read.
                        self.entries = Vec::new().into_iter();
                        return Some(Err(rejected.error));
                    }
                    BadInputPolicy::Skip => {
                        let reason = chain(&rejected.error);
                        reporter.warn(&reason);
                        chunk.skipped.push(Skipped {
                            path: rejected.id,
                            reason,
                        });
                    }
                },
            }
        }
        self.images += chunk.images.len();
        Some(Ok(chunk))
    }

    /// The set hash ([`ImageSet::hash`]) over every image streamed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::EmptySet`] if no image was streamed.
    pub fn finish(self) -> Result<String, Error> {
        if self.images == 0 {
            return Err(Error::new(&self.root, ErrorKind::EmptySet));
        }
        Ok(hex::encode(self.hasher.finalize()))
    }
}

/// Decodes one listed file into its images (one for a picture, N for an array file, a
/// multi-frame DICOM file, a multi-page TIFF or a volume).
fn decode(entry: Entry, cfg: &IoConfig) -> Vec<Outcome> {
    let reject = |kind| {
        vec![Err(Rejected {
            id: entry.id.clone(),
            error: Error::new(&entry.path, kind),
        })]
    };
    match entry.format {
        Err(kind) => reject(kind),
        Ok(Format::Npy) => decode_npy(&entry.path, &entry.id, cfg),
        Ok(Format::Npz) => decode_npz(&entry.path, &entry.id, cfg),
        Ok(Format::Dicom) => dicom::decode(&entry.path, &entry.id, cfg),
        Ok(Format::Nifti) => nii::decode(&entry.path, &entry.id, cfg),
        Ok(Format::Raster(format)) => raster::decode(&entry.path, &entry.id, format, cfg),
    }
}

/// SHA-256 over `"{id}\t{hash}\n"` for every image, in order (lower-case hex).
fn set_hash(images: &[Image]) -> String {
    let mut hasher = Sha256::new();
    for image in images {
        hasher.update(format!("{}\t{}\n", image.id, image.hash));
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cfg, load_err, load_ok, skip};
    use crate::NoReporter;
    use image::{GrayImage, Luma};
    use ndarray::Array3;
    use ndarray_npy::{write_npy, NpzWriter};
    use std::fs;
    use std::sync::Mutex;

    /// Records every reporter call.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Reporter for Recorder {
        fn start(&self, stage: &str, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {stage} {total}"));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().push(format!("advance {n}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(format!("warn {message}"));
        }
    }

    fn png(path: &Path, value: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        GrayImage::from_pixel(6, 6, Luma([value]))
            .save(path)
            .unwrap();
    }

    /// A folder with pictures, arrays, sidecars and hidden files at several depths.
    fn mixed_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        png(&root.join("b.png"), 1);
        png(&root.join("a/2.png"), 2);
        png(&root.join("a/10.png"), 3);
        png(&root.join(".hidden/x.png"), 4);
        png(&root.join(".x.png"), 5);
        fs::write(root.join("captions.txt"), "a cat").unwrap();
        fs::write(root.join("a/labels.csv"), "path,label").unwrap();
        write_npy(
            root.join("a/batch.npy"),
            &Array3::from_shape_fn((3, 6, 6), |(n, y, x)| (n + y + x) as u8),
        )
        .unwrap();
        let mut npz = NpzWriter::new_compressed(fs::File::create(root.join("c.npz")).unwrap());
        npz.add_array(
            "arr_0",
            &Array3::from_shape_fn((40, 6, 6), |(n, y, x)| (n * y + x) as u8),
        )
        .unwrap();
        npz.finish().unwrap();
        dir
    }

    #[test]
    fn folder_order_is_sorted_recursive_and_deterministic() {
        let dir = mixed_folder();
        let set = load_ok(dir.path(), &cfg(4, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).take(6).collect();
        assert_eq!(
            ids,
            [
                "a/10.png",
                "a/2.png",
                "a/batch.npy#0",
                "a/batch.npy#1",
                "a/batch.npy#2",
                "b.png"
            ]
        );
        assert_eq!(set.images.len(), 6 + 40);
        assert_eq!(set.images.last().unwrap().id, "c.npz#arr_0/39");
        assert!(set.skipped.is_empty());
        assert_eq!(set.meta.len(), set.images.len());
        assert!(
            set.meta.iter().all(Option::is_none),
            "no DICOM or NIfTI here"
        );
        assert_eq!(set.root, dir.path());
        let again = load_ok(dir.path(), &cfg(4, 1));
        assert_eq!(set.images, again.images);
        assert_eq!(set.hash, again.hash);
    }

    #[test]
    fn set_hash_is_independent_of_thread_count() {
        let dir = mixed_folder();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| load_ok(dir.path(), &cfg(5, 3)))
        };
        let (one, four) = (run(1), run(4));
        assert_eq!(one.hash, four.hash);
        assert_eq!(one.images, four.images);
    }

    #[test]
    fn set_hash_follows_ids_and_content() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("a.png"), 10);
        let h1 = load_ok(dir.path(), &cfg(4, 1)).hash;
        assert_eq!(h1.len(), 64);
        assert!(h1.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        let image_hash = load_ok(dir.path(), &cfg(4, 1)).images.remove(0).hash;
        assert_eq!(
            h1,
            crate::normalize::sha256_hex(format!("a.png\t{image_hash}\n").as_bytes())
        );
        png(&dir.path().join("a.png"), 11);
        let h2 = load_ok(dir.path(), &cfg(4, 1)).hash;
        assert_ne!(h1, h2, "content changed");
        fs::rename(dir.path().join("a.png"), dir.path().join("b.png")).unwrap();
        assert_ne!(h2, load_ok(dir.path(), &cfg(4, 1)).hash, "id changed");
    }

    #[test]
    fn fail_returns_the_first_bad_input_in_order() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("a.png"), 1);
        fs::write(dir.path().join("b.png"), b"corrupt").unwrap();
        fs::write(dir.path().join("c.gif"), b"GIF89a").unwrap();
        fs::write(dir.path().join("d.npy"), b"nope").unwrap();
        for _ in 0..5 {
            let err = load_err(dir.path(), &cfg(4, 1), "b.png");
            assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");
        }
        fs::remove_file(dir.path().join("b.png")).unwrap();
        let err = load_err(dir.path(), &cfg(4, 1), "c.gif");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedFormat { extension } if extension == "gif")
        );
    }

    #[test]
    fn skip_collects_bad_inputs_warns_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("a.png"), 1);
        fs::write(dir.path().join("b.png"), b"corrupt").unwrap();
        fs::write(dir.path().join("c.gif"), b"GIF89a").unwrap();
        fs::write(dir.path().join("README"), b"hello").unwrap();
        png(&dir.path().join("d.png"), 2);
        let recorder = Recorder::default();
        let set = load(dir.path(), &skip(4, 1), &recorder).unwrap();
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a.png", "d.png"]);
        let skipped: Vec<_> = set.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(skipped, ["README", "b.png", "c.gif"]);
        assert!(
            set.skipped[1]
                .reason
                .contains("b.png: truncated or corrupt PNG: "),
            "{}",
            set.skipped[1].reason
        );
        assert!(
            set.skipped[0].reason.contains("no extension"),
            "{}",
            set.skipped[0].reason
        );

        let calls = recorder.0.into_inner().unwrap();
        assert_eq!(calls[0], format!("start decode {} 5", dir.path().display()));
        assert_eq!(calls.iter().filter(|c| *c == "advance 1").count(), 5);
        let finish = calls.iter().position(|c| c == "finish").unwrap();
        let warns: Vec<_> = calls[finish + 1..].iter().collect();
        assert_eq!(warns.len(), 3);
        assert!(
            warns.iter().all(|w| w.starts_with("warn cannot decode ")),
            "{warns:?}"
        );
    }

    #[test]
    fn stream_gives_what_load_gives_for_any_chunk_size() {
        let dir = mixed_folder();
        fs::write(dir.path().join("bad.png"), b"corrupt").unwrap();
        let want = load(dir.path(), &skip(6, 1), &NoReporter).unwrap();
        for chunk_files in [1, 2, 100] {
            let mut s = ImageStream::open(dir.path(), &skip(6, 1)).unwrap();
            assert_eq!(s.files(), 6);
            let (mut images, mut skipped) = (Vec::new(), Vec::new());
            while let Some(c) = s.next_chunk(chunk_files, &NoReporter) {
                let c = c.unwrap();
                assert_eq!(c.images.len(), c.meta.len());
                images.extend(c.images);
                skipped.extend(c.skipped);
            }
            assert_eq!(images, want.images, "chunks of {chunk_files}");
            assert_eq!(skipped, want.skipped);
            assert_eq!(s.finish().unwrap(), want.hash);
        }
        // Fail policy: the bad file ends the stream with its error, nothing after it is read.
        let mut s = ImageStream::open(dir.path(), &cfg(6, 1)).unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next_chunk(1, &NoReporter) {
            got.push(c.map(|c| c.images.len()).map_err(|e| e.to_string()));
        }
        let err = got.last().unwrap().as_ref().unwrap_err();
        assert!(err.contains("bad.png"), "{err}");
        assert!(got[..got.len() - 1].iter().all(Result::is_ok));
        // Nothing streamed: an empty-set error.
        let empty = tempfile::tempdir().unwrap();
        let mut s = ImageStream::open(empty.path(), &cfg(6, 1)).unwrap();
        assert!(s.next_chunk(4, &NoReporter).is_none());
        assert!(matches!(
            s.finish().unwrap_err().kind(),
            ErrorKind::EmptySet
        ));
    }

    #[test]
    fn empty_inputs_are_an_empty_set_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_err(dir.path(), &cfg(4, 1), &dir.path().display().to_string());
        assert!(matches!(err.kind(), ErrorKind::EmptySet));
        assert_eq!(
            err.to_string(),
            format!("cannot load {}: no images found", dir.path().display())
        );

        fs::write(dir.path().join("notes.md"), "# notes").unwrap();
        png(&dir.path().join(".trash/old.png"), 1);
        assert!(matches!(
            load(dir.path(), &cfg(4, 1), &NoReporter)
                .unwrap_err()
                .kind(),
            ErrorKind::EmptySet
        ));

        fs::write(dir.path().join("bad.png"), b"corrupt").unwrap();
        let err = load(dir.path(), &skip(4, 1), &NoReporter).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::EmptySet),
            "all skipped: {err}"
        );
    }

    #[test]
    fn missing_path_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("does-not-exist");
        for policy in [cfg(4, 1), skip(4, 1)] {
            let err = load_err(&missing, &policy, "does-not-exist");
            assert!(
                matches!(err.kind(), ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
            );
            assert!(err.to_string().starts_with("cannot read "), "{err}");
        }
    }

    #[test]
    fn single_sidecar_file_is_unsupported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.csv");
        fs::write(&p, "a,b").unwrap();
        let err = load_err(&p, &cfg(4, 1), "labels.csv");
        assert!(matches!(err.kind(), ErrorKind::UnsupportedFormat { .. }));
    }

    #[test]
    fn invalid_config_is_rejected() {
        let dir = mixed_folder();
        for window in [
            (40.0, 0.0),
            (40.0, -1.0),
            (f64::NAN, 400.0),
            (0.0, f64::INFINITY),
        ] {
            let bad = IoConfig {
                window: Some(window),
                ..cfg(4, 1)
            };
            let err = load_err(dir.path(), &bad, "");
            assert!(matches!(err.kind(), ErrorKind::BadWindow { .. }), "{err}");
            assert!(err.to_string().starts_with("cannot load "), "{err}");
        }
        let bad = IoConfig {
            slices: Some(crate::SliceSelect {
                range: Some(5..5),
                skip_empty: false,
            }),
            ..cfg(4, 1)
        };
        let err = load_err(dir.path(), &bad, "5..5");
        assert!(
            matches!(err.kind(), ErrorKind::BadSliceRange { start: 5, end: 5 }),
            "{err}"
        );
        let err = load_err(dir.path(), &cfg(4, 2), "");
        assert!(
            matches!(err.kind(), ErrorKind::BadChannels { channels: 2 }),
            "{err}"
        );
        let err = load_err(dir.path(), &cfg(0, 1), "");
        assert!(
            matches!(err.kind(), ErrorKind::BadSize { size: 0 }),
            "{err}"
        );
    }

    #[test]
    fn shape_and_range_of_every_image() {
        let dir = mixed_folder();
        for channels in [1u8, 3] {
            let set = load_ok(dir.path(), &cfg(7, channels));
            for img in &set.images {
                assert_eq!(
                    (img.channels, img.height, img.width),
                    (usize::from(channels), 7, 7)
                );
                assert_eq!(img.pixels.len(), usize::from(channels) * 49);
                assert!(
                    img.pixels.iter().all(|v| (0.0..=1.0).contains(v)),
                    "{}",
                    img.id
                );
            }
        }
    }
}
