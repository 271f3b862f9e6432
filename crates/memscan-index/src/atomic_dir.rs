//! [`replace_dir`]: create or replace a whole directory so that readers only ever see the old
//! complete directory or the new complete one, never a half-written one.
//!
//! Used for every on-disk artefact that is read back (saved HNSW graphs here, the embedding
//! cache of the `memscan` crate).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Fills a temporary sibling of `dir` (named `.{name}.tmp-*`) with `fill`, then swaps it in:
/// an existing `dir` is first renamed into a sibling `.{name}.old-*` folder (a rename cannot
/// replace a non-empty directory), the new one is renamed to `dir`, and the old one is deleted.
/// If `fill` or the final rename fails, the temporary folder is removed and an old `dir` is put
/// back, so `dir` is left as it was.
///
/// A crash can leave `.{name}.tmp-*` / `.{name}.old-*` siblings behind; they never carry the
/// name `dir`, so nothing reads them back.
///
/// `io_err` turns an I/O failure on a path into the caller's error type.
///
/// # Errors
///
/// Whatever `fill` returns, or `io_err(path, e)` when creating the parent, a temporary folder
/// or a rename fails.
pub fn replace_dir<E>(
    dir: &Path,
    io_err: impl Fn(&Path, io::Error) -> E,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let name = match dir.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => {
            return Err(io_err(
                dir,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the path has no final component to write into",
                ),
            ))
        }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    let sibling = |kind: &str| {
        tempfile::Builder::new()
            .prefix(&format!(".{name}.{kind}-"))
            .tempdir_in(&parent)
            .map_err(|e| io_err(&parent, e))
    };
    // Dropping `tmp` on an early return removes the half-written folder.
    let tmp = sibling("tmp")?;
    fill(tmp.path())?;
    let trash = if dir.exists() {
        let trash = sibling("old")?;
        fs::rename(dir, trash.path().join(&name)).map_err(|e| io_err(dir, e))?;
        Some(trash)
    } else {
        None
    };
    let tmp_path = tmp.keep();
    if let Err(e) = fs::rename(&tmp_path, dir) {
        let _ = fs::remove_dir_all(&tmp_path);
        if let Some(trash) = &trash {
            let _ = fs::rename(trash.path().join(&name), dir);
        }
        return Err(io_err(dir, e));
    }
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    // Deletes the old directory.
    drop(trash);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_err(p: &Path, e: io::Error) -> String {
        format!("{}: {e}", p.display())
    }

    fn siblings(parent: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_replaces_and_leaves_no_temporaries() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/entry");
        replace_dir(&dir, io_err, |t| {
            fs::write(t.join("x"), "1").map_err(|e| io_err(t, e))
        })
        .unwrap();
        assert_eq!(fs::read_to_string(dir.join("x")).unwrap(), "1");
        replace_dir(&dir, io_err, |t| {
            fs::write(t.join("y"), "2").map_err(|e| io_err(t, e))
        })
        .unwrap();
        assert!(
            !dir.join("x").exists(),
            "the old directory is replaced whole"
        );
        assert_eq!(fs::read_to_string(dir.join("y")).unwrap(), "2");
        assert_eq!(siblings(&root.path().join("a")), ["entry"]);
    }

    #[test]
    fn a_failing_fill_leaves_the_old_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("entry");
        replace_dir(&dir, io_err, |t| {
            fs::write(t.join("x"), "old").map_err(|e| io_err(t, e))
        })
        .unwrap();
        let err = replace_dir(&dir, io_err, |t| {
            fs::write(t.join("x"), "half").map_err(|e| io_err(t, e))?;
            Err("disk full".to_string())
        })
        .unwrap_err();
        assert_eq!(err, "disk full");
        assert_eq!(fs::read_to_string(dir.join("x")).unwrap(), "old");
        assert_eq!(siblings(root.path()), ["entry"]);
    }
}
