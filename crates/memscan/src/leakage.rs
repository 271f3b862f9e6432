//! The metadata leakage check: which synthetic DICOM images carry patient-identifying
//! attributes, and whether each value also occurs in the training set's metadata.
//!
//! Only attribute names and match flags leave this module — never a value.

use memscan_io::SourceMeta;
use memscan_report::{AttributeCount, Defined, LeakedAttribute, LeakingImage, MetadataLeakage};
use std::collections::{BTreeMap, HashMap, HashSet};

const DEF_LEAKAGE: &str = "Identifying DICOM attributes (PatientName, PatientID, dates, \
    institution, accession number, Study/Series/SOP Instance UIDs…) present with a non-empty \
    value in synthetic DICOM files; an attribute matches the training set when its value equals \
    the value of the same attribute in some training image. Values are never reported. A \
    generator should write none of them; a matching PatientID or UID ties the file to a \
    training patient.";

/// Attributes whose match identifies a training patient (not merely a common date).
const SERIOUS: &[&str] = &[
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "PatientAddress",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
];

/// The check's result, or why it is absent, plus warnings.
pub(crate) struct Leakage {
    pub metric: Option<Defined<MetadataLeakage>>,
    pub absent: Option<String>,
    pub warnings: Vec<String>,
}

/// Compares the identifying attributes of every synthetic image with the training set's.
pub(crate) fn check(
    train_meta: &[Option<SourceMeta>],
    syn_ids: &[String],
    syn_meta: &[Option<SourceMeta>],
) -> Leakage {
    let n_dicom = syn_meta
        .iter()
        .flatten()
        .filter(|m| !m.dicom_identifying.is_empty() || m.modality.is_some())
        .count();
    if n_dicom == 0 {
        return Leakage {
            metric: None,
            absent: Some("no synthetic image has DICOM metadata".into()),
            warnings: Vec::new(),
        };
    }
    let mut train_values: HashMap<&str, HashSet<&str>> = HashMap::new();
    for m in train_meta.iter().flatten() {
        for (k, v) in &m.dicom_identifying {
            train_values.entry(k).or_default().insert(v);
        }
    }
    let mut attributes: BTreeMap<String, AttributeCount> = BTreeMap::new();
    let mut images = Vec::new();
    let mut n_matching = 0;
    let mut serious: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, m) in syn_ids.iter().zip(syn_meta) {
        let Some(m) = m else { continue };
        if m.dicom_identifying.is_empty() {
            continue;
        }
        let mut any = false;
        let attrs: Vec<LeakedAttribute> = m
            .dicom_identifying
            .iter()
            .map(|(k, v)| {
                let hit = train_values
                    .get(k.as_str())
                    .is_some_and(|s| s.contains(v.as_str()));
                let c = attributes.entry(k.clone()).or_default();
                c.present += 1;
                if hit {
                    c.matches_training += 1;
                    any = true;
                    if let Some(s) = SERIOUS.iter().find(|s| **s == k) {
                        *serious.entry(s).or_default() += 1;
                    }
                }
                LeakedAttribute {
                    name: k.clone(),
                    matches_training: hit,
                }
            })
            .collect();
        n_matching += usize::from(any);
        images.push(LeakingImage {
            synthetic: id.clone(),
            attributes: attrs,
        });
    }
    let mut warnings = Vec::new();
    if !images.is_empty() {
        warnings.push(format!(
            "{} synthetic image(s) carry identifying DICOM attributes ({}); see \
             metrics.metadata_leakage",
            images.len(),
            attributes.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !serious.is_empty() {
        warnings.push(format!(
            "synthetic DICOM metadata matches a training patient: {} — the generated files \
             identify real patients",
            serious
                .iter()
                .map(|(k, n)| format!("{k} in {n} image(s)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else if n_matching > 0 {
        warnings.push(format!(
            "{n_matching} synthetic image(s) carry DICOM attribute values (dates, institution) \
             that occur in the training set"
        ));
    }
    Leakage {
        metric: Some(Defined::new(
            MetadataLeakage {
                n_synthetic_dicom: n_dicom,
                n_with_identifying: images.len(),
                n_matching_training: n_matching,
                attributes,
                images,
            },
            DEF_LEAKAGE,
        )),
        absent: None,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(attrs: &[(&str, &str)]) -> Option<SourceMeta> {
        Some(SourceMeta {
            modality: Some("CT".into()),
            dicom_identifying: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..SourceMeta::default()
        })
    }

    #[test]
    fn matches_by_attribute_never_values() {
        let train = [meta(&[("PatientID", "P1"), ("StudyDate", "20200101")])];
        let syn = [
            meta(&[("PatientID", "P1"), ("StudyDate", "20210101")]),
            meta(&[]),
            None,
            meta(&[("PatientName", "P1")]),
        ];
        let ids: Vec<String> = (0..4).map(|i| format!("s{i}.dcm")).collect();
        let l = check(&train, &ids, &syn);
        let m = l.metric.unwrap().value;
        assert_eq!((m.n_synthetic_dicom, m.n_with_identifying), (3, 2));
        assert_eq!(m.n_matching_training, 1);
        assert!(m.images[0].attributes[0].matches_training);
        assert!(!m.images[0].attributes[1].matches_training);
        // Same value, other attribute: not a match.
        assert!(!m.images[1].attributes[0].matches_training);
        assert_eq!(m.attributes["PatientID"].matches_training, 1);
        assert!(l
            .warnings
            .iter()
            .any(|w| w.contains("matches a training patient")));
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("P1") && !json.contains("2021"), "{json}");
    }

    #[test]
    fn absent_without_dicom() {
        let l = check(&[], &["a.png".into()], &[None]);
        assert!(l.metric.is_none() && l.absent.is_some() && l.warnings.is_empty());
    }
}
