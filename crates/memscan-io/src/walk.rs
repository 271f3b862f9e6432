//! Listing a set's input files in a deterministic order and classifying them by extension.
//!
//! A folder is walked recursively (following symbolic links), each directory's entries sorted
//! by file name, which orders paths component by component (`a/x.png` before `a.png`).
//! Hidden files and folders (name starting with `.`) are ignored, and so are sidecar files
//! ([`IGNORED_EXTENSIONS`]: captions, labels, metadata). Every other file is an input: one of
//! [`SUPPORTED_EXTENSIONS`] (matched case-insensitively; `.nii.gz` by the end of the name), a
//! DICOM file recognized by its content, or an [`ErrorKind::UnsupportedFormat`] entry that the
//! bad-input policy decides about.
//!
//! DICOM files often have no extension (`IM0001`) or a UID for a name
//! (`1.2.840.113619.2.55.3.604688119.969.1268071029.320`, whose "extension" is `320`). So a file
//! whose extension is not a supported one is read as DICOM when its bytes 128..132 are the
//! Part 10 magic `DICM` (after the 128-byte preamble); only those 132 bytes are read to decide.
//! A `.dcm`/`.dicom` file is always read as DICOM, with or without the preamble.
//! A path naming a single file is that file alone, whatever its name.
//!
//! Ids are the relative path's names joined by `/`, each as UTF-8 text in which a backslash is
//! written `\\` and a byte that is not valid UTF-8 `\xHH` ([`id_text`]), so two files never
//! share an id (a lossy conversion gave `a\xFF.png` and `a\xFE.png` the same one).

use crate::error::{Error, ErrorKind};
use image::ImageFormat;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// File extensions [`load`](crate::load) decodes (lower case; matched case-insensitively).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "tif", "tiff", "bmp", "dcm", "dicom", "nii", "nii.gz", "npy", "npz",
];

/// Sidecar extensions skipped silently when walking a folder.
pub(crate) const IGNORED_EXTENSIONS: &[&str] = &["csv", "txt", "json", "md", "toml"];

/// How a file is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A single picture, decoded by the `image` crate.
    Raster(ImageFormat),
    /// A NumPy array: a batch of images.
    Npy,
    /// A NumPy archive: every array inside is a batch of images.
    Npz,
    /// A DICOM file: one image per frame.
    Dicom,
    /// A NIfTI-1 volume (`.nii`, `.nii.gz`): one image per slice.
    Nifti,
}

/// One input file.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The file's path (the root joined with the relative path).
    pub path: PathBuf,
    /// Provenance: the path relative to the root, `/`-separated (the file name for a root
    /// that is a file), each name escaped by [`id_text`].
    pub id: String,
    /// How to decode it, or why it can't be.
    pub format: Result<Format, ErrorKind>,
}

/// Lists the inputs under `root` (a folder or a single file), in deterministic order.
///
/// Errors only when `root` itself cannot be read; problems with individual entries (an
/// unreadable subfolder, an unsupported extension) are returned as entries whose `format`
/// is an error, so the caller applies the bad-input policy in order.
pub(crate) fn list(root: &Path) -> Result<Vec<Entry>, Error> {
    let meta = std::fs::metadata(root).map_err(|e| Error::new(root, ErrorKind::Io(e)))?;
    if !meta.is_dir() {
        let id = root.file_name().map_or_else(|| display_path(root), id_text);
        return Ok(vec![Entry {
            path: root.to_path_buf(),
            id,
            format: classify(root),
        }]);
    }
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()));
    let mut entries = Vec::new();
    for item in walker {
        match item {
            Ok(e) if e.file_type().is_file() => {
                let ext = extension(e.path());
                if IGNORED_EXTENSIONS.contains(&ext.as_str()) {
                    continue;
                }
                entries.push(Entry {
                    id: relative_id(root, e.path()),
                    format: classify(e.path()),
                    path: e.into_path(),
                });
            }
            Ok(_) => {} // directories (and sockets, fifos…)
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                entries.push(Entry {
                    id: relative_id(root, &path),
                    format: Err(ErrorKind::Io(err.into())),
                    path,
                });
            }
        }
    }
    Ok(entries)
}

/// The format implied by `path`'s extension, or for an unknown extension by the DICOM magic.
pub(crate) fn classify(path: &Path) -> Result<Format, ErrorKind> {
    let ext = extension(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".nii.gz") {
        return Ok(Format::Nifti);
    }
    Ok(match ext.as_str() {
        "png" => Format::Raster(ImageFormat::Png),
        "jpg" | "jpeg" => Format::Raster(ImageFormat::Jpeg),
        "tif" | "tiff" => Format::Raster(ImageFormat::Tiff),
        "bmp" => Format::Raster(ImageFormat::Bmp),
        "npy" => Format::Npy,
        "npz" => Format::Npz,
        "dcm" | "dicom" => Format::Dicom,
        "nii" => Format::Nifti,
        _ if has_dicom_magic(path).map_err(ErrorKind::Io)? => Format::Dicom,
        _ => return Err(ErrorKind::UnsupportedFormat { extension: ext }),
    })
}

/// Whether the file's bytes 128..132 are `DICM` (a DICOM Part 10 file with its preamble).
fn has_dicom_magic(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(132);
    std::fs::File::open(path)?
        .take(132)
        .read_to_end(&mut head)?;
    Ok(head.get(128..132) == Some(b"DICM"))
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn relative_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = rel.components().map(|c| id_text(c.as_os_str())).collect();
    parts.join("/")
}

/// A file or folder name as id text: its UTF-8 text, with a backslash written `\\` and each
/// byte that is not valid UTF-8, and each byte of a control character (newline, tab…),
/// written `\xHH` (upper-case hex), so different names always
/// give different ids (`a\xFF.png` and `a\xFE.png` are no longer both `a�.png`, and a name
/// holding the text `\xFF` is `\\xFF`). Names that are valid UTF-8 without a backslash are
/// unchanged. (Outside Unix, where names are not bytes, a name that is not valid Unicode is
/// converted lossily.)
pub(crate) fn id_text(name: &OsStr) -> String {
    escape(name, true)
}

/// A path for messages: its UTF-8 text, each byte that is not valid UTF-8 or of a control
/// character written `\xHH`.
pub(crate) fn display_path(path: &Path) -> String {
    escape(path.as_os_str(), false)
}

fn escape(name: &OsStr, escape_backslash: bool) -> String {
    #[cfg(unix)]
    {
        use std::fmt::Write as _;
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::with_capacity(name.len());
        for chunk in name.as_bytes().utf8_chunks() {
            push_text(&mut out, chunk.valid(), escape_backslash);
            for byte in chunk.invalid() {
                let _ = write!(out, "\\x{byte:02X}");
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        let mut out = String::new();
        push_text(&mut out, &name.to_string_lossy(), escape_backslash);
        out
    }
}

/// Appends `text` with control characters (a newline or tab in a file name would break a
/// line of a CSV or log) written as their UTF-8 bytes `\xHH`, and with `\\` for a backslash
/// when `escape_backslash`.
fn push_text(out: &mut String, text: &str, escape_backslash: bool) {
    use std::fmt::Write as _;
    for c in text.chars() {
        if c == '\\' && escape_backslash {
            out.push_str("\\\\");
        } else if c.is_control() {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn walk_is_sorted_recursive_and_skips_hidden_and_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        for rel in [
            "b.png",
            "a.png",
            "a/z.PNG",
            "a/sub/y.npy",
            "c.tif",
            ".hidden.png",
            ".cache/x.png",
            "labels.csv",
            "README.md",
            "notes.TXT",
            "meta.json",
            "cfg.toml",
            "weird.gif",
            "scan.DCM",
            "vol.nii.gz",
            "vol.NII",
            "archive.gz",
        ] {
            touch(dir.path(), rel);
        }
        let entries = list(dir.path()).unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "a/sub/y.npy",
                "a/z.PNG",
                "a.png",
                "archive.gz",
                "b.png",
                "c.tif",
                "scan.DCM",
                "vol.NII",
                "vol.nii.gz",
                "weird.gif"
            ]
        );
        assert_eq!(entries[0].format.as_ref().unwrap(), &Format::Npy);
        assert_eq!(
            entries[1].format.as_ref().unwrap(),
            &Format::Raster(ImageFormat::Png)
        );
        assert!(matches!(
            entries[9].format,
            Err(ErrorKind::UnsupportedFormat { ref extension }) if extension == "gif"
        ));
        assert!(matches!(
            entries[3].format,
            Err(ErrorKind::UnsupportedFormat { ref extension }) if extension == "gz"
        ));
        assert_eq!(entries[6].format.as_ref().unwrap(), &Format::Dicom);
        assert_eq!(entries[7].format.as_ref().unwrap(), &Format::Nifti);
        assert_eq!(entries[8].format.as_ref().unwrap(), &Format::Nifti);
    }

    #[test]
    fn dicom_magic_decides_for_unknown_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let mut dicm = vec![0u8; 128];
        dicm.extend_from_slice(b"DICM rest of the file");
        for name in ["IM0001", "1.2.840.113619.2.55.320", "scan.gif"] {
            fs::write(dir.path().join(name), &dicm).unwrap();
        }
        // Too short, magic at the wrong offset, or hidden: not DICOM.
        fs::write(dir.path().join("SHORT"), &dicm[..130]).unwrap();
        fs::write(dir.path().join("NOPREAMBLE"), b"DICM").unwrap();
        fs::write(dir.path().join(".IM0002"), &dicm).unwrap();
        let entries = list(dir.path()).unwrap();
        let formats: Vec<_> = entries
            .iter()
            .map(|e| (e.id.as_str(), e.format.as_ref().ok().copied()))
            .collect();
        assert_eq!(
            formats,
            [
                ("1.2.840.113619.2.55.320", Some(Format::Dicom)),
                ("IM0001", Some(Format::Dicom)),
                ("NOPREAMBLE", None),
                ("SHORT", None),
                ("scan.gif", Some(Format::Dicom)),
            ]
        );
    }

    #[test]
    fn single_file_root_is_listed_even_if_hidden() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), ".x.JPEG");
        let entries = list(&dir.path().join(".x.JPEG")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, ".x.JPEG");
        assert_eq!(
            entries[0].format.as_ref().unwrap(),
            &Format::Raster(ImageFormat::Jpeg)
        );
    }

    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_get_distinct_escaped_ids() {
        use crate::testutil::{cfg, load_err, load_ok, skip};
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let png = |name: &[u8], value: u8| {
            let p = dir.path().join(OsStr::from_bytes(name));
            image::GrayImage::from_pixel(2, 2, image::Luma([value]))
                .save_with_format(&p, ImageFormat::Png)
                .unwrap();
            p
        };
        png(b"a\xff.png", 1);
        png(b"a\xfe.png", 2);
        png(br"a\xFF.png", 3); // a valid UTF-8 name spelling the escape
        fs::create_dir(dir.path().join(OsStr::from_bytes(b"d\xe9j\xe0"))).unwrap();
        png(b"d\xe9j\xe0/caf\xc3\xa9.png", 4); // Latin-1 folder, UTF-8 file
        png(b"new\nline.png", 5); // a control character
        let set = load_ok(dir.path(), &cfg(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                r"a\\xFF.png",
                r"a\xFE.png",
                r"a\xFF.png",
                r"d\xE9j\xE0/café.png",
                r"new\x0Aline.png"
            ]
        );
        // A single file keeps the same id, and an error names the path with its bytes escaped.
        let single = dir.path().join(OsStr::from_bytes(b"a\xff.png"));
        assert_eq!(load_ok(&single, &cfg(2, 1)).images[0].id, r"a\xFF.png");
        fs::write(
            dir.path().join(OsStr::from_bytes(b"bad\xfd.png")),
            b"corrupt",
        )
        .unwrap();
        load_err(dir.path(), &cfg(2, 1), r"bad\xFD.png: ");
        let set = load_ok(dir.path(), &skip(2, 1));
        assert_eq!(set.skipped[0].path, r"bad\xFD.png");
    }

    #[test]
    fn missing_root_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = list(&missing).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Io(_)));
        assert_eq!(err.path(), missing);
        assert!(err.to_string().contains("nope"));
    }
}
