//! A fixture small enough to compute every metric by hand.
//!
//! Every image is a constant 4×4 gray image, so the pixel distance between two images is the
//! absolute difference of their values (`‖x−y‖/sqrt(16)`). Values are dyadic, so f32 holds
//! them exactly and the distances below are exact.
//!
//! train T = [0, 0.125, 0.5, 0.875]; synthetic S = [0.5, 0.53125, 0.3125, 1.0];
//! holdout H = [0.25, 0.6875, 0.0625, 1.0].
//!
//! - S → T: d1 = [0, 0.03125, 0.1875, 0.125] (NN T2, T2, T1 (tie with T2: lower index), T3);
//!   d2 = [0.375, 0.34375, 0.1875, 0.5]; ratio = [0, 1/11, 1, 0.25] ⇒ ratio_rate = 3/4.
//! - H → T: d1 = [0.125, 0.1875, 0.0625, 0.125]; sorted [0.0625, 0.125, 0.125, 0.1875].
//!   α = 0.25: rank ⌊0.25·4⌋+1 = 2 ⇒ t = 0.125; copy ⇔ d1 < 0.125 ⇒ S flags [T, T, F, F]
//!   (S3 at exactly 0.125 is not below): count 2, rate 0.5. Both copies have NN T2 ⇒
//!   train_copied_fraction = 1/4, T2 copied twice.
//! - MIA `distance`: score = −d1(x, S). Members T: d = [0.3125, 0.1875, 0, 0.125];
//!   non-members H: d = [0.0625, 0.15625, 0.25, 0]. P(member > non-member) + ½ ties over the
//!   16 pairs = (0 + 1 + 3.5 + 2)/16 = 0.40625. The first ROC step (score ≥ 0) already has
//!   FPR 0.25 ⇒ TPR@FPR≤1 % = TPR@FPR≤0.1 % = 0. Balanced accuracy: max (tpr+1−fpr)/2 = 0.5.

use crate::util::{close, constant_npy, csv_rows, stderr, summary};

#[test]
fn every_metric_matches_the_hand_computed_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = constant_npy(&d.join("train.npy"), &[0.0, 0.125, 0.5, 0.875], 4);
    let syn = constant_npy(&d.join("syn.npy"), &[0.5, 0.53125, 0.3125, 1.0], 4);
    let hold = constant_npy(&d.join("hold.npy"), &[0.25, 0.6875, 0.0625, 1.0], 4);
    // An explicit reference set keeps the whole holdout as non-members.
    let reference = constant_npy(&d.join("ref.npy"), &[0.375, 0.8125, 0.9375], 4);
    let out = d.join("out");
    let r = reference.display().to_string();
    let extra = ["--reference", &r, "--size", "4", "--fpr", "0.25"];
    let o = crate::util::scan(&train, &syn, Some(&hold), &out, &extra, None);
    assert!(o.status.success(), "{}", stderr(&o));

    let rows = csv_rows(&out.join("synthetic.csv"));
    let want_d1 = [0.0, 0.03125, 0.1875, 0.125];
    let want_d2 = [0.375, 0.34375, 0.1875, 0.5];
    let want_nn = ["#2", "#2", "#1", "#3"];
    let want_copy = ["true", "true", "false", "false"];
    for (i, r) in rows.iter().enumerate() {
        assert!(r["synthetic"].ends_with(&format!("#{i}")), "{r:?}");
        assert!(r["train"].ends_with(want_nn[i]), "row {i}: {r:?}");
        assert!(
            close(r["distance"].parse().unwrap(), want_d1[i]),
            "row {i}: {r:?}"
        );
        assert!(
            close(r["distance2"].parse().unwrap(), want_d2[i]),
            "row {i}: {r:?}"
        );
        assert_eq!(r["copy"], want_copy[i], "row {i}");
    }
    assert!(close(rows[1]["ratio"].parse().unwrap(), 1.0 / 11.0));

    let s = summary(&out);
    let m = &s["metrics"];
    assert!(close(m["ratio_rate"].as_f64().unwrap(), 0.75));
    let primary = m["copy_rate"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fpr"].as_f64() == Some(0.25))
        .expect("the --fpr rate is reported");
    assert!(close(primary["threshold"].as_f64().unwrap(), 0.125));
    assert_eq!(primary["count"].as_u64(), Some(2));
    assert!(close(primary["rate"].as_f64().unwrap(), 0.5));
    assert!(close(m["train_copied_fraction"].as_f64().unwrap(), 0.25));
    assert_eq!(m["train_copied"]["top"][0]["copies"].as_u64(), Some(2));
    assert!(m["train_copied"]["top"][0]["train"]
        .as_str()
        .unwrap()
        .ends_with("#2"));

    let mia = &m["mia"]["distance"];
    assert!(close(mia["auc"].as_f64().unwrap(), 0.40625), "{mia}");
    assert!(close(mia["tpr_at_fpr_0_01"].as_f64().unwrap(), 0.0));
    assert!(close(mia["tpr_at_fpr_0_001"].as_f64().unwrap(), 0.0));
    assert!(close(mia["balanced_accuracy"].as_f64().unwrap(), 0.5));
    assert_eq!(mia["n_members"].as_u64(), Some(4));

    let train_rows = csv_rows(&out.join("train.csv"));
    let copies: Vec<&str> = train_rows.iter().map(|r| r["copies"].as_str()).collect();
    assert_eq!(copies, ["0", "0", "2", "0"]);
}
