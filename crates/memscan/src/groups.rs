//! `--groups FILE.csv`: which patient (study, volume…) each image belongs to.
//!
//! The file has a header and two columns, `path,group`. A row's `path` is resolved relative to
//! the CSV's own folder (absolute paths are used as they are) and matched against each image's
//! location: the set's folder joined with the image id (`…/p0007_s02.png`, or
//! `…/batch.npy#3` for array images). Group names are arbitrary strings.
//!
//! Without a file, groups can come from the images' own metadata ([`Groups::from_meta`],
//! `--group-by`): DICOM PatientID, StudyInstanceUID or SeriesInstanceUID, or the source file
//! of NIfTI slices and multi-frame DICOM frames (`volume`). Identifiers from DICOM are patient
//! data: such groups are named by pseudonyms (`patient 1`, `patient 2`… in sorted order of the
//! identifier), so no output shows the identifier.

use crate::error::Error;
use memscan_io::{ImageSet, SourceMeta};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Which metadata attribute groups images (`--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// DICOM PatientID.
    Patient,
    /// DICOM StudyInstanceUID.
    Study,
    /// DICOM SeriesInstanceUID.
    Series,
    /// The source file of a NIfTI volume or multi-frame DICOM (single-frame DICOM files
    /// are then ungrouped).
    Volume,
    /// No grouping.
    None,
}

impl GroupBy {
    /// The name used in `metrics.groups.source` and in pseudonyms.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Patient => "patient",
            GroupBy::Study => "study",
            GroupBy::Series => "series",
            GroupBy::Volume => "volume",
            GroupBy::None => "none",
        }
    }

    /// The grouping key of one image of a set loaded from `root`.
    fn key(self, root: &Path, m: &SourceMeta) -> Option<String> {
        match self {
            GroupBy::Patient => m.group_patient.clone(),
            GroupBy::Study => m.group_study.clone(),
            GroupBy::Series => m.group_series.clone(),
            // Ids are relative to the set root: the same id in two sets is two files.
            GroupBy::Volume => m
                .group_volume
                .as_ref()
                .map(|v| absolute(root).join(v).display().to_string()),
            GroupBy::None => None,
        }
    }
}

/// How images are matched to groups.
#[derive(Clone)]
enum Source {
    /// `--groups FILE.csv`: normalized absolute image path → group.
    File(HashMap<PathBuf, u32>),
    /// `--group-by`: metadata key → group.
    Meta(GroupBy, HashMap<String, u32>),
}

/// Group names and, per role, the group index of every image (`None` = not in the file).
#[derive(Clone)]
pub struct Groups {
    /// Group names; an image's group is an index into this list.
    pub names: Vec<String>,
    source: Source,
}

impl fmt::Debug for Groups {
    /// Shows the names (pseudonyms for metadata groups), never the metadata keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Groups")
            .field("source", &self.source_name())
            .field("names", &self.names)
            .finish()
    }
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
            source: Source::File(by_path),
        })
    }

    /// Groups from the metadata of `sets` (train and holdout) by `by`; `None` when no image
    /// has the attribute (or `by` is [`GroupBy::None`]). Groups are indexed in sorted order
    /// of their keys; DICOM identifiers are named `"{by} {k}"` (k = 1-based index), volumes
    /// by their file path.
    pub fn from_meta(by: GroupBy, sets: &[&ImageSet]) -> Option<Groups> {
        let keys: BTreeSet<String> = sets
            .iter()
            .flat_map(|s| s.meta.iter().flatten().map(|m| (s.root.as_path(), m)))
            .filter_map(|(root, m)| by.key(root, m))
            .collect();
        if keys.is_empty() {
            return None;
        }
        let names = keys
            .iter()
            .enumerate()
            .map(|(i, k)| match by {
                GroupBy::Volume => k.clone(),
                _ => format!("{} {}", by.name(), i + 1),
            })
            .collect();
        let index = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i as u32))
            .collect();
        Some(Groups {
            names,
            source: Source::Meta(by, index),
        })
    }

    /// `file` for a groups CSV, else the metadata attribute (`patient`, …).
    pub fn source_name(&self) -> &'static str {
        match &self.source {
            Source::File(_) => "file",
            Source::Meta(by, _) => by.name(),
        }
    }

    /// The group of each image of `set`.
    pub fn assign_set(&self, set: &ImageSet) -> Vec<Option<u32>> {
        match &self.source {
            Source::File(_) => {
                let ids: Vec<String> = set.images.iter().map(|i| i.id.clone()).collect();
                self.assign(&set.root, &ids)
            }
            Source::Meta(by, index) => set
                .meta
                .iter()
                .map(|m| {
                    m.as_ref()
                        .and_then(|m| by.key(&set.root, m))
                        .and_then(|k| index.get(&k).copied())
                })
                .collect(),
        }
    }

    /// The group of each image of a set loaded from `root` (groups CSV; metadata groups
    /// need [`Groups::assign_set`] and give `None` here).
    pub fn assign(&self, root: &Path, ids: &[String]) -> Vec<Option<u32>> {
        let Source::File(by_path) = &self.source else {
            return vec![None; ids.len()];
        };
        let root = absolute(root);
        // A single array/image file: ids are relative to its folder.
        let dir = if root.is_file() {
            root.parent().map(Path::to_path_buf).unwrap_or(root)
        } else {
            root
        };
        ids.iter()
            .map(|id| by_path.get(&normalize(&dir.join(id))).copied())
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

    fn set(root: &str, metas: Vec<Option<SourceMeta>>) -> ImageSet {
        ImageSet {
            root: root.into(),
            images: (0..metas.len())
                .map(|i| memscan_io::Image {
                    id: format!("v.nii#{i}"),
                    hash: String::new(),
                    channels: 1,
                    height: 1,
                    width: 1,
                    pixels: vec![0.0],
                })
                .collect(),
            meta: metas,
            skipped: Vec::new(),
            hash: String::new(),
        }
    }

    fn meta(patient: Option<&str>, volume: Option<&str>) -> Option<SourceMeta> {
        Some(SourceMeta {
            group_patient: patient.map(String::from),
            group_volume: volume.map(String::from),
            ..SourceMeta::default()
        })
    }

    #[test]
    fn groups_from_metadata_are_sorted_and_pseudonymous() {
        let train = set(
            "/d/train",
            vec![meta(Some("Z9"), None), meta(Some("A1"), None), None],
        );
        let hold = set("/d/hold", vec![meta(Some("Z9"), None)]);
        let g = Groups::from_meta(GroupBy::Patient, &[&train, &hold]).unwrap();
        assert_eq!(g.names, ["patient 1", "patient 2"]);
        assert_eq!(g.source_name(), "patient");
        assert_eq!(g.assign_set(&train), [Some(1), Some(0), None]);
        assert_eq!(g.assign_set(&hold), [Some(1)]);
        assert!(!format!("{g:?}").contains("Z9"));
        assert!(Groups::from_meta(GroupBy::Study, &[&train]).is_none());
        assert!(Groups::from_meta(GroupBy::None, &[&train]).is_none());
    }

    #[test]
    fn volumes_of_two_sets_are_distinct_groups() {
        let a = set("/d/a", vec![meta(None, Some("v.nii")); 2]);
        let b = set("/d/b", vec![meta(None, Some("v.nii"))]);
        let g = Groups::from_meta(GroupBy::Volume, &[&a, &b]).unwrap();
        assert_eq!(g.names.len(), 2);
        assert_eq!(g.assign_set(&a), [Some(0), Some(0)]);
        assert_eq!(g.assign_set(&b), [Some(1)]);
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
