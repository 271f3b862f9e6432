//! IDX files, the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte[.gz]`, …).
//!
//! Layout (big-endian): two zero bytes, a type code (`0x08` = unsigned byte), the number of
//! dimensions `r`, then `r` 32-bit sizes, then the data in C order. A file whose first two
//! bytes are gzip's magic (`1f 8b`) is decompressed first. Only `u8` data is read here:
//! rank 3 `(n, rows, cols)` images and rank 1 labels.

use crate::error::Error;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// A batch of 8-bit images from an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    /// `n · rows · cols` bytes, C order.
    pub data: Vec<u8>,
}

impl IdxImages {
    /// Image `i` as `[0, 1]` floats (`v / 255`).
    pub fn image(&self, i: usize) -> Vec<f32> {
        let len = self.rows * self.cols;
        self.data[i * len..(i + 1) * len]
            .iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect()
    }
}

fn read_all(path: &Path) -> Result<Vec<u8>, Error> {
    let raw = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the header; returns the dimensions and the data offset.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize), Error> {
    let bad = |what: String| Error::Format {
        path: path.to_path_buf(),
        what,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX type code {:#04x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let rank = usize::from(bytes[3]);
    let head = 4 + 4 * rank;
    if bytes.len() < head {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|k| {
            u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match want {
        Some(w) if bytes.len() - head == w => Ok((dims, head)),
        _ => Err(bad(format!(
            "IDX header declares {dims:?} but the file holds {} data bytes",
            bytes.len() - head
        ))),
    }
}

/// Reads a rank-3 `u8` IDX image file.
pub fn read_images(path: &Path) -> Result<IdxImages, Error> {
    let bytes = read_all(path)?;
    let (dims, off) = parse(path, &bytes)?;
    if dims.len() != 3 {
        return Err(Error::Format {
            path: path.to_path_buf(),
            what: format!("expected rank-3 IDX images, found rank {}", dims.len()),
        });
    }
    Ok(IdxImages {
        n: dims[0],
        rows: dims[1],
        cols: dims[2],
        data: bytes[off..].to_vec(),
    })
}

/// Reads a rank-1 `u8` IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = read_all(path)?;
    let (dims, off) = parse(path, &bytes)?;
    if dims.len() != 1 {
        return Err(Error::Format {
            path: path.to_path_buf(),
            what: format!("expected rank-1 IDX labels, found rank {}", dims.len()),
        });
    }
    Ok(bytes[off..].to_vec())
}

/// Encodes `u8` data with `dims` as an IDX file (for fixtures and tests).
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn reads_raw_and_gzip_files() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * 3 * 2).map(|i| i as u8 * 20).collect();
        let raw = encode(&[2, 3, 2], &data);
        let p = dir.path().join("imgs-idx3-ubyte");
        std::fs::write(&p, &raw).unwrap();
        let a = read_images(&p).unwrap();
        assert_eq!((a.n, a.rows, a.cols), (2, 3, 2));
        assert_eq!(a.image(1)[0], 120.0 / 255.0);
        let gz = dir.path().join("imgs-idx3-ubyte.gz");
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&raw).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        assert_eq!(read_images(&gz).unwrap(), a);
        let l = dir.path().join("labels");
        std::fs::write(&l, encode(&[3], &[7, 1, 9])).unwrap();
        assert_eq!(read_labels(&l).unwrap(), vec![7, 1, 9]);
    }

    #[test]
    fn rejects_bad_files_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("short.idx");
        let mut raw = encode(&[2, 3, 2], &[0; 12]);
        raw.pop();
        std::fs::write(&p, &raw).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(err.to_string().contains("short.idx"), "{err}");
        std::fs::write(&p, encode(&[3], &[0; 3])).unwrap();
        assert!(read_images(&p).is_err());
        std::fs::write(&p, [0u8, 0, 0x0d, 1, 0, 0, 0, 0]).unwrap();
        assert!(read_images(&p).is_err());
        assert!(matches!(
            read_images(&dir.path().join("missing")),
            Err(Error::Read { .. })
        ));
    }
}
