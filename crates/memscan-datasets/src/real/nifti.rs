//! NIfTI-1 volumes (`.nii`, `.nii.gz`) through the `nifti` crate, e.g. the Colin27 T1 head
//! template `ch2.nii.gz` (181 × 217 × 181, `uint8`) from Debian `mricron-data`.
//!
//! The first three dimensions are read as `(x, y, z)` (NIfTI's Fortran order) and returned
//! as a [`Volume`] in C order `(z, y, x)`; a 4-D file contributes its first volume.
//! `scl_slope` / `scl_inter` are not applied (intensities are windowed per volume anyway).

use super::Volume;
use crate::error::Error;
use ::nifti::{NiftiObject, NiftiType, NiftiVolume, ReaderOptions};
use std::path::Path;

/// Reads the NIfTI file at `path`.
pub fn read(path: &Path) -> Result<Volume, Error> {
    let obj = ReaderOptions::new()
        .read_file(path)
        .map_err(|source| Error::Nifti {
            path: path.to_path_buf(),
            source,
        })?;
    let vol = obj.into_volume();
    let dim: Vec<usize> = vol.dim().iter().map(|&d| usize::from(d)).collect();
    if dim.len() < 3 || dim.iter().take(3).any(|&d| d == 0) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            what: format!("NIfTI dimensions {dim:?} are not a 3-D volume"),
        });
    }
    let (nx, ny, nz) = (dim[0], dim[1], dim[2]);
    let err = |source| Error::Nifti {
        path: path.to_path_buf(),
        source,
    };
    fn conv<T: Copy + Into<f64>>(v: Vec<T>) -> Vec<f32> {
        v.into_iter().map(|x| x.into() as f32).collect()
    }
    let all: Vec<f32> = match vol.data_type() {
        NiftiType::Uint8 => conv(vol.into_nifti_typed_data::<u8>().map_err(err)?),
        NiftiType::Int8 => conv(vol.into_nifti_typed_data::<i8>().map_err(err)?),
        NiftiType::Int16 => conv(vol.into_nifti_typed_data::<i16>().map_err(err)?),
        NiftiType::Uint16 => conv(vol.into_nifti_typed_data::<u16>().map_err(err)?),
        NiftiType::Int32 => conv(vol.into_nifti_typed_data::<i32>().map_err(err)?),
        NiftiType::Uint32 => conv(vol.into_nifti_typed_data::<u32>().map_err(err)?),
        NiftiType::Float32 => vol.into_nifti_typed_data::<f32>().map_err(err)?,
        NiftiType::Float64 => conv(vol.into_nifti_typed_data::<f64>().map_err(err)?),
        other => {
            return Err(Error::Format {
                path: path.to_path_buf(),
                what: format!("unsupported NIfTI datatype {other:?}"),
            })
        }
    };
    // Fortran order (x fastest) is already C order (z, y, x) for the first volume.
    let n = nx * ny * nz;
    if all.len() < n {
        return Err(Error::Format {
            path: path.to_path_buf(),
            what: format!("NIfTI data holds {} voxels, {n} needed", all.len()),
        });
    }
    Ok(Volume {
        shape: [nz, ny, nx],
        data: all[..n].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::nifti::writer::WriterOptions;
    use ndarray::Array3;

    #[test]
    fn reads_a_tiny_volume_in_c_order() {
        let dir = tempfile::tempdir().unwrap();
        // (x, y, z) = (4, 3, 2); value = 100 z + 10 y + x.
        let a = Array3::from_shape_fn((4, 3, 2), |(x, y, z)| (100 * z + 10 * y + x) as u8);
        let p = dir.path().join("tiny.nii.gz");
        WriterOptions::new(&p).write_nifti(&a).unwrap();
        let v = read(&p).unwrap();
        assert_eq!(v.shape, [2, 3, 4]);
        // C order (z, y, x): index z·12 + y·4 + x.
        assert_eq!(v.data[12 + 2 * 4 + 3], 123.0);
        let missing = dir.path().join("missing.nii");
        let err = read(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.nii"), "{err}");
    }
}
