//! DICOM inputs end to end: groups from PatientID, the metadata leakage check, the
//! train/holdout patient-overlap warning and the medical flags' validation.

use crate::util::{stderr, summary};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::{Path, PathBuf};

const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Identifying values of the training patient the synthetic file leaks; none may appear in
/// any output.
const SECRET_ID: &str = "ZXQ-TRAIN-4711";
const SECRET_NAME: &str = "Leaky^Patient";
const SECRET_STUDY: &str = "1.2.826.0.1.3680043.99.4711";

/// A distinct 8×8 test pattern per `seed`.
fn pattern(seed: u32) -> Vec<u16> {
    (0..64u32)
        .map(|i| {
            let x = i
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503));
            ((x >> 7) % 4000) as u16
        })
        .collect()
}

struct Dcm<'a> {
    patient_id: &'a str,
    patient_name: &'a str,
    study: &'a str,
    sop: String,
    pixels: Vec<u16>,
}

fn write_dcm(path: &Path, d: &Dcm<'_>) {
    let mut obj = InMemDicomObject::new_empty();
    let mut text = |tag, vr, v: &str| obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    text(tags::SOP_CLASS_UID, VR::UI, MR_IMAGE_STORAGE);
    text(tags::SOP_INSTANCE_UID, VR::UI, &d.sop);
    text(tags::PATIENT_NAME, VR::PN, d.patient_name);
    text(tags::PATIENT_ID, VR::LO, d.patient_id);
    text(tags::STUDY_INSTANCE_UID, VR::UI, d.study);
    text(tags::SERIES_INSTANCE_UID, VR::UI, &format!("{}.1", d.study));
    text(tags::MODALITY, VR::CS, "MR");
    text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    for (tag, v) in [
        (tags::ROWS, 8u16),
        (tags::COLUMNS, 8),
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 16),
        (tags::HIGH_BIT, 15),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(d.pixels.clone().into()),
    ));
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(EXPLICIT_VR_LE)
            .media_storage_sop_class_uid(MR_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(&d.sop),
    )
    .unwrap()
    .write_to_file(path)
    .unwrap();
}

/// Writes `n` images of one patient into `dir` as `{prefix}_{k}.dcm`, pixel seeds from `seed`.
fn patient(dir: &Path, prefix: &str, id: &str, name: &str, study: &str, seed: u32, n: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        write_dcm(
            &dir.join(format!("{prefix}_{k}.dcm")),
            &Dcm {
                patient_id: id,
                patient_name: name,
                study,
                sop: format!("{study}.1.{k}"),
                pixels: pattern(seed + k),
            },
        );
    }
}

/// train: two patients (one is SECRET_ID); holdout: two others (or, with `overlap`, one of
/// them is SECRET_ID); synthetic: an exact copy of SECRET_ID's first image carrying its
/// metadata, plus three clean images with generator metadata.
fn fixture(d: &Path, overlap: bool) -> (PathBuf, PathBuf, PathBuf) {
    let (t, h, s) = (d.join("train"), d.join("holdout"), d.join("synthetic"));
    patient(&t, "a", SECRET_ID, SECRET_NAME, SECRET_STUDY, 0, 4);
    patient(&t, "b", "TRAIN-B", "Other^B", "1.2.3.20", 100, 4);
    let (hid, hname, hstudy) = if overlap {
        (SECRET_ID, SECRET_NAME, "1.2.3.31")
    } else {
        ("HOLD-C", "Other^C", "1.2.3.30")
    };
    patient(&h, "c", hid, hname, hstudy, 200, 4);
    patient(&h, "d", "HOLD-D", "Other^D", "1.2.3.40", 300, 4);
    std::fs::create_dir_all(&s).unwrap();
    write_dcm(
        &s.join("gen_000.dcm"),
        &Dcm {
            patient_id: SECRET_ID,
            patient_name: SECRET_NAME,
            study: SECRET_STUDY,
            sop: "1.2.3.99.0".into(),
            pixels: pattern(0),
        },
    );
    patient(&s, "gen", "GENERATED", "Anon", "1.2.3.90", 900, 3);
    (t, h, s)
}

fn scan(t: &Path, h: &Path, s: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--size", "8", "--bootstrap", "20"];
    args.extend_from_slice(extra);
    crate::util::scan(t, s, Some(h), out, &args, Some(1))
}

#[test]
fn dicom_groups_by_patient_and_reports_metadata_leakage_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let (t, h, s) = fixture(dir.path(), false);
    let out = dir.path().join("out");
    let o = scan(&t, &h, &s, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = summary(&out);
    let m = &j["metrics"];

    // Default grouping: by PatientID, pseudonymized.
    let g = &m["groups"];
    assert_eq!(g["source"], "patient", "{g}");
    assert_eq!(g["n_train_groups"], 2);
    assert_eq!(g["n_holdout_groups"], 2);
    assert_eq!(g["overlap_train_holdout"], 0);
    assert!(g["copied"]["count"].as_u64().unwrap() >= 1, "{g}");
    let rows = g["copied_groups"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows[0]["group"].as_str().unwrap().starts_with("patient "));
    assert_eq!(rows[0]["n_train"], 4);

    // Leakage: gen_000.dcm carries the training patient's PatientID.
    let l = &m["metadata_leakage"];
    assert_eq!(l["n_synthetic_dicom"], 4, "{l}");
    assert_eq!(l["n_matching_training"], 1, "{l}");
    let img = l["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["synthetic"] == "gen_000.dcm")
        .expect("gen_000.dcm is listed");
    let attr = |name: &str| {
        img["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {img}"))["matches_training"]
            .as_bool()
            .unwrap()
    };
    assert!(attr("PatientID"));
    assert!(attr("PatientName"));
    assert!(attr("StudyInstanceUID"));
    assert!(!attr("SOPInstanceUID"));
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains("matches a training patient"),
        "{warnings}"
    );

    // No identifying value anywhere in the outputs.
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        for secret in [
            SECRET_ID,
            SECRET_NAME,
            "Leaky",
            SECRET_STUDY,
            "TRAIN-B",
            "HOLD-C",
        ] {
            assert!(!text.contains(secret), "{} contains {secret}", p.display());
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"leakage\">"));
    assert!(html.contains("<section id=\"patients\">"));
    assert!(html.contains("✔"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("patients (patient)"), "{md}");

    // --group-by none: no groups; --group-by study: one group per study.
    let out2 = dir.path().join("out2");
    let o = scan(&t, &h, &s, &out2, &["--group-by", "none"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(summary(&out2)["metrics"]["groups"].is_null());
    let o = scan(&t, &h, &s, &out2, &["--group-by", "study"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(summary(&out2)["metrics"]["groups"]["source"], "study");
}

#[test]
fn a_patient_in_train_and_holdout_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (t, h, s) = fixture(dir.path(), true);
    let out = dir.path().join("out");
    let o = scan(&t, &h, &s, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = summary(&out);
    assert_eq!(j["metrics"]["groups"]["overlap_train_holdout"], 1);
    assert!(
        j["warnings"]
            .to_string()
            .contains("have images in both train and holdout"),
        "{}",
        j["warnings"]
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("not independent of the training set"));
}

#[test]
fn non_dicom_inputs_have_no_leakage_metric() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = crate::util::constant_npy(&d.join("t.npy"), &[0.0, 0.5, 1.0], 8);
    let s = crate::util::constant_npy(&d.join("s.npy"), &[0.25, 0.75], 8);
    let h = crate::util::constant_npy(&d.join("h.npy"), &[0.1, 0.6, 0.9], 8);
    let out = d.join("out");
    let o = scan(&t, &h, &s, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = &summary(&out)["metrics"];
    assert!(m["metadata_leakage"].is_null());
    assert!(m["absent"]["metadata_leakage"].is_string());
    assert!(m["groups"].is_null());
}

#[test]
fn bad_medical_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (t, h, s) = fixture(dir.path(), false);
    let out = dir.path().join("out");
    for (flags, needle) in [
        (&["--window", "40"][..], "CENTER,WIDTH"),
        (&["--window", "40,0"], "width must be positive"),
        (&["--window", "40,abc"], "not a finite number"),
        (&["--window=-1000,-5"], "width must be positive"),
        (&["--slices", "5..2"], "is empty"),
        (&["--slices", "x..3"], "not a slice index"),
        (&["--slices", "7"], "A..B"),
        (&["--axis", "oblique"], "axial"),
        (&["--group-by", "hospital"], "patient"),
    ] {
        let o = scan(&t, &h, &s, &out, flags);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{flags:?}: {}", stderr(&o));
    }
    // Valid values pass.
    let o = scan(
        &t,
        &h,
        &s,
        &out,
        &[
            "--window",
            "-500,3000",
            "--axis",
            "coronal",
            "--slices",
            "0..4",
            "--skip-empty-slices",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cfg = &summary(&out)["config"]["io"];
    assert_eq!(cfg["window"], serde_json::json!([-500.0, 3000.0]));
    assert_eq!(cfg["axis"], "coronal");
    assert_eq!(cfg["slices"]["skip_empty"], true);
}

/// Writes a minimal NIfTI-1 float32 volume `nx × ny × nz` with distinct slices.
fn write_nii(path: &Path, n: [i16; 3], seed: u32) {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let dims = [3i16, n[0], n[1], n[2], 1, 1, 1, 1];
    for (i, d) in dims.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&16i16.to_le_bytes()); // float32
    h[72..74].copy_from_slice(&32i16.to_le_bytes());
    for i in 0..8 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    let len = n.iter().map(|&x| x as usize).product::<usize>();
    let p = pattern(seed);
    for i in 0..len {
        h.extend_from_slice(&f32::from(p[i % 64] + (i / 64) as u16 * 7).to_le_bytes());
    }
    std::fs::write(path, h).unwrap();
}

#[test]
fn nifti_volumes_group_by_volume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["train", "holdout", "synthetic"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    write_nii(&d.join("train/a.nii"), [8, 8, 4], 1);
    write_nii(&d.join("train/b.nii"), [8, 8, 4], 50);
    write_nii(&d.join("holdout/a.nii"), [8, 8, 6], 100);
    write_nii(&d.join("synthetic/s.nii"), [8, 8, 4], 1);
    let (t, h, s) = (d.join("train"), d.join("holdout"), d.join("synthetic"));
    let out = d.join("out");
    // Default: no PatientIDs, so no groups; NIfTI is not DICOM, so no leakage metric.
    let o = scan(&t, &h, &s, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = summary(&out);
    assert!(j["metrics"]["groups"].is_null());
    assert!(j["metrics"]["metadata_leakage"].is_null());
    let o = scan(
        &t,
        &h,
        &s,
        &out,
        &["--group-by", "volume", "--slices", "1..3"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = summary(&out);
    let g = &j["metrics"]["groups"];
    assert_eq!(g["source"], "volume", "{g}");
    assert_eq!(g["n_train_groups"], 2);
    assert_eq!(g["n_holdout_groups"], 1);
    // The same file name in train and holdout is two volumes, not an overlap.
    assert_eq!(g["overlap_train_holdout"], 0);
    assert_eq!(j["inputs"]["train"]["count"], 4);
    // --group-by patient without PatientIDs: a warning, no groups.
    let o = scan(&t, &h, &s, &out, &["--group-by", "patient"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = summary(&out);
    assert!(j["metrics"]["groups"].is_null());
    assert!(j["warnings"].to_string().contains("--group-by patient"));
}
