//! The on-disk cache: embeddings of the real sets and the training set's HNSW graph, keyed by
//! content hashes, so that auditing several synthetic sets against one training set embeds and
//! indexes the training set once.
//!
//! # Layout (under [`CacheConfig::dir`])
//!
//! - `embeddings/KEY/{emb.npy, emb.ids.txt, manifest.json}`: one set's embeddings in the
//!   `--features` format. `KEY` = SHA-256 of the format version, the set's content hash
//!   ([`memscan_io::ImageSet::hash`]), the embedder's description (name, dimension,
//!   parameters) and the decoding configuration (size, channels, window, axis, slices).
//! - `hnsw/KEY/`: an [`HnswIndex`] saved by [`HnswIndex::save`] (graph dump + manifest with
//!   sizes and SHA-256 of every file and of the base vectors). `KEY` = SHA-256 of the format
//!   version, the training set's content hash, the embedding space (embedder + decoding
//!   configuration, or `features` + normalization) and the graph parameters (`m`,
//!   `ef_construction`, build mode). `ef_search` is not part of the key: a graph loaded for
//!   another `ef_search` recomputes its side list.
//!
//! # Integrity
//!
//! Every entry is written into a temporary directory (`.NAME.tmp-*`) beside its final place,
//! each file synced, and the directory renamed into place as a whole; a crash mid-write leaves
//! only a temporary directory, which is never read. Reading checks the manifest against the
//! content (embeddings: the SHA-256 over ids and rows, and that the ids are the set's; graphs:
//! sizes and checksums of every file and of the base vectors). An entry that fails a check is
//! reported as [`Lookup::Corrupt`] with the reason; the caller warns, recomputes and replaces
//! it — a cache entry is never read back wrong.

use crate::error::Error;
use crate::features::{self, NpyRowWriter};
use memscan_index::{HnswConfig, HnswIndex};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Where the cache lives (`--cache-dir`; the binary's default is `$XDG_CACHE_HOME/memscan`,
/// else `~/.cache/memscan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheConfig {
    pub dir: PathBuf,
}

/// Bumped whenever an entry's format or key changes.
const VERSION: u32 = 1;
const EMB_FORMAT: &str = "memscan-embeddings";

/// The result of a cache lookup.
#[derive(Debug)]
pub enum Lookup<T> {
    /// A verified entry.
    Hit(T),
    /// No entry under this key.
    Miss,
    /// An entry exists but failed a check (the reason); it must be rebuilt.
    Corrupt(String),
}

/// One cache event, as `runtime.cache[]` of `summary.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// `embeddings train`, `hnsw train`, ….
    pub entry: String,
    /// `hit`, `miss` (computed and stored), `rebuilt` (a corrupt entry was replaced),
    /// `store_failed` (computed, but the entry could not be written: see `warnings`).
    pub outcome: &'static str,
    /// The entry's directory.
    pub path: String,
}

/// SHA-256 hex of the parts, each length-prefixed (so `["ab", "c"]` ≠ `["a", "bc"]`).
pub fn key(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    let version = VERSION.to_string();
    for p in [kind, version.as_str()].iter().chain(parts) {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Serialize, Deserialize)]
struct EmbManifest {
    format: String,
    version: u32,
    n: usize,
    dim: usize,
    /// [`features::hash`] of the stored ids and rows.
    content_hash: String,
}

impl CacheConfig {
    /// The directory of the embeddings entry `key`.
    pub fn embeddings_dir(&self, key: &str) -> PathBuf {
        self.dir.join("embeddings").join(key)
    }

    /// The directory of the HNSW entry `key`.
    pub fn hnsw_dir(&self, key: &str) -> PathBuf {
        self.dir.join("hnsw").join(key)
    }

    /// Reads the embeddings stored under `key`, checking them against their manifest and that
    /// their ids are `ids` (in order).
    pub fn load_embeddings(&self, key: &str, ids: &[String]) -> Lookup<Array2<f32>> {
        let dir = self.embeddings_dir(key);
        let manifest = dir.join("manifest.json");
        let text = match fs::read(&manifest) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                return Lookup::Miss
            }
            Err(e) => return Lookup::Corrupt(format!("cannot read manifest.json: {e}")),
        };
        let m: EmbManifest = match serde_json::from_slice(&text) {
            Ok(m) => m,
            Err(e) => return Lookup::Corrupt(format!("manifest.json does not parse: {e}")),
        };
        if m.format != EMB_FORMAT || m.version != VERSION {
            return Lookup::Corrupt(format!("unknown format {} version {}", m.format, m.version));
        }
        let f = match features::read(&dir.join("emb.npy")) {
            Ok(f) => f,
            Err(e) => return Lookup::Corrupt(crate::error::chain(&e)),
        };
        if f.rows.dim() != (m.n, m.dim) {
            return Lookup::Corrupt(format!(
                "shape ({}, {}) but the manifest says ({}, {})",
                f.rows.nrows(),
                f.rows.ncols(),
                m.n,
                m.dim
            ));
        }
        if f.hash != m.content_hash {
            return Lookup::Corrupt("checksum mismatch (ids or rows changed)".into());
        }
        if f.ids != ids {
            return Lookup::Corrupt("the stored ids are not the set's ids".into());
        }
        Lookup::Hit(f.rows)
    }

    /// Stores `rows` (with their `ids`) under `key`, atomically (see the module docs).
    pub fn store_embeddings(
        &self,
        key: &str,
        rows: ArrayView2<'_, f32>,
        ids: &[String],
    ) -> Result<(), Error> {
        let dir = self.embeddings_dir(key);
        atomic_dir(&dir, |tmp| {
            let mut w = NpyRowWriter::create(&tmp.join("emb.npy"), rows.ncols(), true)?;
            w.append(rows, ids)?;
            w.finish()?;
            let m = EmbManifest {
                format: EMB_FORMAT.into(),
                version: VERSION,
                n: rows.nrows(),
                dim: rows.ncols(),
                content_hash: features::hash(ids, rows),
            };
            let path = tmp.join("manifest.json");
            write_synced(&path, &serde_json::to_vec_pretty(&m).expect("manifest"))
        })
    }

    /// Loads the HNSW graph stored under `key` for `base` (the vectors it must have been built
    /// from), with `config`'s `ef_search` (the side list is recomputed if it differs).
    pub fn load_hnsw(
        &self,
        key: &str,
        base: ArrayView2<'_, f32>,
        config: &HnswConfig,
    ) -> Lookup<HnswIndex> {
        let dir = self.hnsw_dir(key);
        if !dir.exists() {
            return Lookup::Miss;
        }
        match HnswIndex::load(&dir, base) {
            Ok(mut index) => {
                if index.config().ef_search != config.ef_search {
                    if let Err(e) = index.set_ef_search(config.ef_search) {
                        return Lookup::Corrupt(e.to_string());
                    }
                }
                Lookup::Hit(index)
            }
            Err(e) => Lookup::Corrupt(crate::error::chain(&e)),
        }
    }

    /// Stores an HNSW graph under `key` (atomic: [`HnswIndex::save`]).
    pub fn store_hnsw(&self, key: &str, index: &HnswIndex) -> Result<(), Error> {
        let dir = self.hnsw_dir(key);
        index.save(&dir).map_err(|source| Error::Cache {
            path: dir.clone(),
            source: Box::new(source),
        })
    }
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::FeaturesIo {
        path: path.to_path_buf(),
        source,
    };
    fs::write(path, bytes).map_err(io)?;
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(io)
}

/// Creates `dir` as a whole: `fill` writes into a temporary sibling directory, which then
/// replaces `dir` by renames (an old `dir` is moved aside first and deleted after).
fn atomic_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), Error>) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::FeaturesIo { path, source }
    };
    let parent = dir.parent().expect("cache entries live in a folder");
    let name = dir
        .file_name()
        .expect("cache entries have a name")
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(parent)
        .map_err(io(parent))?;
    fill(tmp.path())?;
    let trash = if dir.exists() {
        let trash = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(parent)
            .map_err(io(parent))?;
        fs::rename(dir, trash.path().join(&name)).map_err(io(dir))?;
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
        return Err(io(dir)(e));
    }
    if let Ok(d) = fs::File::open(parent) {
        let _ = d.sync_all();
    }
    drop(trash);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("img{i}.png")).collect()
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key("emb", &["ab", "c"]), key("emb", &["a", "bc"]));
        assert_ne!(key("emb", &["a"]), key("hnsw", &["a"]));
        assert_eq!(key("emb", &["a"]), key("emb", &["a"]));
    }

    #[test]
    fn embeddings_round_trip_and_corruption_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheConfig {
            dir: tmp.path().join("c"),
        };
        let rows = array![[0.5f32, -1.0, 2.0], [3.0, 4.0, 5.0]];
        let k = key("emb", &["set", "pixel"]);
        assert!(matches!(cache.load_embeddings(&k, &ids(2)), Lookup::Miss));
        cache.store_embeddings(&k, rows.view(), &ids(2)).unwrap();
        match cache.load_embeddings(&k, &ids(2)) {
            Lookup::Hit(r) => assert_eq!(r, rows),
            other => panic!("{other:?}"),
        }
        // Other ids (same key by accident): never returned.
        let other: Vec<String> = vec!["x".into(), "y".into()];
        assert!(matches!(
            cache.load_embeddings(&k, &other),
            Lookup::Corrupt(_)
        ));
        // A flipped byte in the rows.
        let npy = cache.embeddings_dir(&k).join("emb.npy");
        let mut bytes = fs::read(&npy).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&npy, &bytes).unwrap();
        match cache.load_embeddings(&k, &ids(2)) {
            Lookup::Corrupt(why) => assert!(why.contains("checksum"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Truncated.
        fs::write(&npy, &bytes[..bytes.len() - 5]).unwrap();
        assert!(matches!(
            cache.load_embeddings(&k, &ids(2)),
            Lookup::Corrupt(_)
        ));
        // A missing manifest in an existing entry is corrupt, not a miss.
        fs::remove_file(cache.embeddings_dir(&k).join("manifest.json")).unwrap();
        assert!(matches!(
            cache.load_embeddings(&k, &ids(2)),
            Lookup::Corrupt(_)
        ));
        // Storing again replaces the entry as a whole.
        cache.store_embeddings(&k, rows.view(), &ids(2)).unwrap();
        assert!(matches!(cache.load_embeddings(&k, &ids(2)), Lookup::Hit(_)));
        // A temporary left by a crash mid-write is ignored, and not taken for the entry.
        let k2 = key("emb", &["other"]);
        let stale = cache
            .dir
            .join("embeddings")
            .join(format!(".{k2}.tmp-crash"));
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("emb.npy"), b"half").unwrap();
        assert!(matches!(cache.load_embeddings(&k2, &ids(2)), Lookup::Miss));
        cache.store_embeddings(&k2, rows.view(), &ids(2)).unwrap();
        assert!(matches!(
            cache.load_embeddings(&k2, &ids(2)),
            Lookup::Hit(_)
        ));
    }
}
