//! InVesalius 3 projects (`.inv3`), e.g. `Cranium.inv3` from Debian `invesalius-examples`.
//!
//! An `.inv3` file is a gzip-compressed tar archive holding (in one folder) `main.plist`, an
//! Apple XML property list describing the project, and the volume it names under `matrix`:
//! `filename` (`matrix.dat`), `dtype` (`int16`) and `shape` (`[nz, ny, nx]`), stored as raw
//! little-endian samples in C order. CT values are Hounsfield units. The plist's
//! `window_level` / `window_width` (the display window saved with the project) and `modality`
//! are returned too. Masks and surfaces in the archive are ignored.

use super::Volume;
use crate::error::Error;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// A decoded `.inv3` project.
#[derive(Debug, Clone, PartialEq)]
pub struct Inv3 {
    pub volume: Volume,
    /// `(window_level, window_width)` saved in the project, if any.
    pub window: Option<(f64, f64)>,
    /// `modality` (e.g. `CT`), if any.
    pub modality: Option<String>,
}

/// The text of the element that follows `<key>{key}</key>` in `xml` (searching from the start),
/// without its tags, e.g. `int16` for `<string>int16</string>`; for `<array>` or `<dict>`, the
/// inner XML.
fn value_after_key<'a>(xml: &'a str, key: &str) -> Option<&'a str> {
    let tag = format!("<key>{key}</key>");
    let rest = xml[xml.find(&tag)? + tag.len()..].trim_start();
    let open_end = rest.find('>')?;
    let name = rest[1..open_end].trim_end_matches('/');
    if rest[..=open_end].ends_with("/>") {
        return Some("");
    }
    let close = format!("</{name}>");
    let body = &rest[open_end + 1..];
    Some(&body[..body.find(&close)?])
}

fn integers(array: &str) -> Vec<i64> {
    array
        .split("<integer>")
        .skip(1)
        .filter_map(|s| s.split("</integer>").next()?.trim().parse().ok())
        .collect()
}

/// Reads the `.inv3` project at `path`.
pub fn read(path: &Path) -> Result<Inv3, Error> {
    let bad = |what: String| Error::Format {
        path: path.to_path_buf(),
        what,
    };
    let io_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut archive = tar::Archive::new(MultiGzDecoder::new(std::io::BufReader::new(file)));
    let (mut plist, mut dats): (Option<String>, Vec<(String, Vec<u8>)>) = (None, Vec::new());
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let name = entry
            .path()
            .map_err(io_err)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "main.plist" {
            let mut s = String::new();
            entry.read_to_string(&mut s).map_err(io_err)?;
            plist = Some(s);
        } else if name.starts_with("matrix") && name.ends_with(".dat") {
            let mut v = Vec::new();
            entry.read_to_end(&mut v).map_err(io_err)?;
            dats.push((name, v));
        }
    }
    let plist = plist.ok_or_else(|| bad("no main.plist in the archive".into()))?;
    let matrix = value_after_key(&plist, "matrix")
        .ok_or_else(|| bad("main.plist has no matrix entry".into()))?;
    let dtype = value_after_key(matrix, "dtype").unwrap_or("");
    let filename = value_after_key(matrix, "filename").unwrap_or("matrix.dat");
    let shape = integers(value_after_key(matrix, "shape").unwrap_or(""));
    let shape: [usize; 3] = match shape.as_slice() {
        &[z, y, x] if z > 0 && y > 0 && x > 0 => [z as usize, y as usize, x as usize],
        other => {
            return Err(bad(format!(
                "matrix shape {other:?} is not 3 positive sizes"
            )))
        }
    };
    let (_, raw) = dats
        .into_iter()
        .find(|(n, _)| n == filename)
        .ok_or_else(|| bad(format!("the archive has no {filename}")))?;
    let n = shape.iter().product::<usize>();
    let data: Vec<f32> = match dtype {
        "int16" if raw.len() == 2 * n => raw
            .chunks_exact(2)
            .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        "uint8" if raw.len() == n => raw.iter().map(|&v| f32::from(v)).collect(),
        "float32" if raw.len() == 4 * n => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "int16" | "uint8" | "float32" => {
            return Err(bad(format!(
                "{filename} holds {} bytes, shape {shape:?} of {dtype} needs more or fewer",
                raw.len()
            )))
        }
        other => return Err(bad(format!("unsupported matrix dtype {other:?}"))),
    };
    let real = |k: &str| -> Option<f64> { value_after_key(&plist, k)?.trim().parse().ok() };
    let window = match (real("window_level"), real("window_width")) {
        (Some(l), Some(w)) if w > 0.0 => Some((l, w)),
        _ => None,
    };
    Ok(Inv3 {
        volume: Volume { shape, data },
        window,
        modality: value_after_key(&plist, "modality").map(str::to_owned),
    })
}

/// Builds a minimal `.inv3` archive (for fixtures and tests): `main.plist` + `matrix.dat`
/// holding `data` (int16, C order `shape`).
pub fn encode(shape: [usize; 3], data: &[i16], window: (f64, f64)) -> Vec<u8> {
    let plist = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\
         \t<key>matrix</key>\n\t<dict>\n\t\t<key>dtype</key>\n\t\t<string>int16</string>\n\
         \t\t<key>filename</key>\n\t\t<string>matrix.dat</string>\n\t\t<key>shape</key>\n\
         \t\t<array>\n\t\t\t<integer>{}</integer>\n\t\t\t<integer>{}</integer>\n\
         \t\t\t<integer>{}</integer>\n\t\t</array>\n\t</dict>\n\t<key>modality</key>\n\
         \t<string>CT</string>\n\t<key>window_level</key>\n\t<real>{}</real>\n\
         \t<key>window_width</key>\n\t<real>{}</real>\n</dict>\n</plist>\n",
        shape[0], shape[1], shape[2], window.0, window.1
    );
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, bytes) in [
        ("proj/main.plist", plist.as_bytes()),
        ("proj/matrix.dat", &raw[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes).expect("in-memory tar");
    }
    b.into_inner()
        .expect("in-memory tar")
        .finish()
        .expect("in-memory gzip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_hand_built_project() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<i16> = (0..2 * 3 * 4).map(|i| i as i16 * 100 - 1024).collect();
        let p = dir.path().join("tiny.inv3");
        std::fs::write(&p, encode([2, 3, 4], &data, (-18.0, 406.0))).unwrap();
        let inv = read(&p).unwrap();
        assert_eq!(inv.volume.shape, [2, 3, 4]);
        assert_eq!(inv.volume.data[5], 500.0 - 1024.0);
        assert_eq!(inv.window, Some((-18.0, 406.0)));
        assert_eq!(inv.modality.as_deref(), Some("CT"));
        assert!(value_after_key("<key>a</key><string/>", "a") == Some(""));
    }

    #[test]
    fn rejects_broken_projects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.inv3");
        // Shape does not match the data.
        std::fs::write(&p, encode([2, 3, 5], &[0; 24], (0.0, 1.0))).unwrap();
        let err = read(&p).unwrap_err();
        assert!(err.to_string().contains("bad.inv3"), "{err}");
        std::fs::write(&p, b"not a tar.gz").unwrap();
        assert!(read(&p).is_err());
    }
}
