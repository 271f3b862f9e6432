//! `--groups FILE.csv`: which patient (study, volume…) each image belongs to.
//!
//! The file has a header and two columns, `path,group`. A row's `path` is resolved relative to
//! the CSV's own folder (absolute paths are used as they are) and matched against each image's
//! location: the set's folder joined with the image id (`…/p0007_s02.png`, or
//! `…/batch.npy#3` for array images). Group names are arbitrary strings.

use crate::error::Error;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

/// Group names and, per role, the group index of every image (`None` = not in the file).
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Group names; an image's group is an index into this list.
    pub names: Vec<String>,
    by_path: HashMap<PathBuf, u32>,
}

/// Lexically normalizes a path (`a/./b/../c` → `a/c`) without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    normalize(&p)
}

impl Groups {
    /// Reads a groups CSV.
    pub fn read(path: &Path) -> Result<Groups, Error> {
        let bad = |why: String| Error::Groups {
            path: path.to_path_buf(),
            reason: why,
        };
        let mut r = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
        let headers = r.headers().map_err(|e| bad(e.to_string()))?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| {
                    bad(format!(
                        "no `{name}` column (expected a `path,group` header)"
                    ))
                })
        };
        let (pc, gc) = (col("path")?, col("group")?);
        let base = absolute(path.parent().unwrap_or(Path::new(".")));
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| bad(e.to_string()))?;
            let (p, g) = match (rec.get(pc), rec.get(gc)) {
                (Some(p), Some(g)) if !p.trim().is_empty() && !g.trim().is_empty() => {
                    (p.trim().to_string(), g.trim().to_string())
                }
                _ => return Err(bad(format!("row {} has an empty path or group", i + 2))),
            };
            let next = names.len() as u32;
            names.entry(g.clone()).or_insert(next);
            rows.push((normalize(&base.join(p)), g));
        }
        // Index groups in sorted-name order so indices don't depend on row order.
        let sorted: Vec<String> = names.keys().cloned().collect();
        let index: HashMap<&str, u32> = sorted
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let mut by_path = HashMap::new();
        for (p, g) in rows {
            if let Some(prev) = by_path.insert(p.clone(), index[g.as_str()]) {
                if prev != index[g.as_str()] {
                    return Err(bad(format!("{} is listed in two groups", p.display())));
                }
            }
        }
        Ok(Groups {
            names: sorted,
            by_path,
        })
    }

    /// The group of each image of a set loaded from `root`.
    pub fn assign(&self, root: &Path, ids: &[String]) -> Vec<Option<u32>> {
        let root = absolute(root);
        // A single array/image file: ids are relative to its folder.
        let dir = if root.is_file() {
            root.parent().map(Path::to_path_buf).unwrap_or(root)
        } else {
            root
        };
        ids.iter()
            .map(|id| self.by_path.get(&normalize(&dir.join(id))).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_relative_to_the_csv() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("train")).unwrap();
        std::fs::write(
            d.join("groups.csv"),
            "path,group\ntrain/a.png,p2\ntrain/b.png,p1\n./train/c.npy#3,p2\n",
        )
        .unwrap();
        let g = Groups::read(&d.join("groups.csv")).unwrap();
        assert_eq!(g.names, ["p1", "p2"]);
        let ids = [
            "a.png".to_string(),
            "b.png".into(),
            "c.npy#3".into(),
            "zzz.png".into(),
        ];
        assert_eq!(
            g.assign(&d.join("train"), &ids),
            [Some(1), Some(0), Some(1), None]
        );
    }

    #[test]
    fn rejects_a_file_without_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.csv");
        std::fs::write(&f, "file,patient\na,b\n").unwrap();
        let err = Groups::read(&f).unwrap_err().to_string();
        assert!(err.contains("g.csv") && err.contains("`path`"), "{err}");
    }
}
