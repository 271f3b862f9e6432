//! `--fail-if` budgets: `METRIC OP VALUE`, e.g. `copy_rate@fpr=0.001>0.01`.
//!
//! `METRIC` is either `copy_rate@fpr=X` (the calibrated copy rate at FPR `X`, computed even
//! if `X` was not otherwise requested) or a dotted path to a number under `metrics` in
//! `summary.json` (`ratio_rate`, `train_copied_fraction`, `mia.distance.auc`, …). `OP` is one
//! of `>`, `>=`, `<`, `<=`. A budget is *exceeded* when the comparison holds; the run then
//! exits with status 1.

use crate::error::Error;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Gt => value > limit,
            Comparison::Ge => value >= limit,
            Comparison::Lt => value < limit,
            Comparison::Le => value <= limit,
        }
    }
}

/// What a budget measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMetric {
    /// Calibrated copy rate at this FPR.
    CopyRate { fpr: f64 },
    /// A dotted path under `metrics`.
    Path(String),
}

/// One parsed `--fail-if` expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub expression: String,
    pub metric: BudgetMetric,
    pub op: Comparison,
    pub limit: f64,
}

impl FromStr for Budget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let expr: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let bad = |why: &str| {
            Error::Config(format!(
                "invalid --fail-if `{s}`: {why} (expected METRIC OP VALUE, e.g. \
                 `copy_rate@fpr=0.001>0.01`, with OP one of > >= < <=)"
            ))
        };
        // Find the operator: the first '<' or '>' (the metric itself may contain '=').
        let pos = expr
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison operator"))?;
        let (lhs, rest) = expr.split_at(pos);
        let (op, rhs) = if let Some(r) = rest.strip_prefix(">=") {
            (Comparison::Ge, r)
        } else if let Some(r) = rest.strip_prefix("<=") {
            (Comparison::Le, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Comparison::Gt, r)
        } else {
            (Comparison::Lt, &rest[1..])
        };
        let limit: f64 = rhs.parse().map_err(|_| bad("the limit is not a number"))?;
        if !limit.is_finite() {
            return Err(bad("the limit is not finite"));
        }
        let metric = if let Some(f) = lhs.strip_prefix("copy_rate@fpr=") {
            let fpr: f64 = f.parse().map_err(|_| bad("the FPR is not a number"))?;
            if !(fpr > 0.0 && fpr < 1.0) {
                return Err(bad("the FPR must lie in (0, 1)"));
            }
            BudgetMetric::CopyRate { fpr }
        } else if lhs.is_empty()
            || !lhs
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(bad("unknown metric name"));
        } else {
            BudgetMetric::Path(lhs.to_string())
        };
        Ok(Budget {
            expression: expr,
            metric,
            op,
            limit,
        })
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl Budget {
    /// The FPR this budget needs calibrated, if any.
    pub fn fpr(&self) -> Option<f64> {
        match self.metric {
            BudgetMetric::CopyRate { fpr } => Some(fpr),
            BudgetMetric::Path(_) => None,
        }
    }

    /// Looks the metric up in the serialized `metrics` object and compares it with the limit.
    /// Returns `(value, exceeded)`.
    pub fn check(&self, metrics: &serde_json::Value) -> Result<(f64, bool), Error> {
        let fail = |reason: String| Error::Budget {
            expression: self.expression.clone(),
            reason,
        };
        let value = match &self.metric {
            BudgetMetric::CopyRate { fpr } => {
                let rates = metrics["copy_rate"].as_array().ok_or_else(|| {
                    fail(absent_reason(metrics, "copy_rate").unwrap_or("not computed".into()))
                })?;
                rates
                    .iter()
                    .find(|r| r["fpr"].as_f64() == Some(*fpr))
                    .and_then(|r| r["rate"].as_f64())
                    .ok_or_else(|| fail(format!("no copy rate was calibrated at fpr={fpr}")))?
            }
            BudgetMetric::Path(path) => {
                let mut v = metrics;
                for part in path.split('.') {
                    if v.is_null() {
                        break;
                    }
                    v = v
                        .get(part)
                        .ok_or_else(|| fail(format!("no metric named `{path}`")))?;
                }
                match v {
                    serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    serde_json::Value::Null => {
                        let top = path.split('.').next().unwrap_or(path);
                        return Err(fail(
                            absent_reason(metrics, top).unwrap_or("the metric is absent".into()),
                        ));
                    }
                    _ => return Err(fail(format!("`{path}` is not a number"))),
                }
            }
        };
        Ok((value, self.op.holds(value, self.limit)))
    }
}

fn absent_reason(metrics: &serde_json::Value, key: &str) -> Option<String> {
    metrics["absent"][key]
        .as_str()
        .map(|s| format!("`{key}` is absent: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_copy_rate_budget() {
        let b: Budget = "copy_rate@fpr=0.001 > 0.01".parse().unwrap();
        assert_eq!(b.metric, BudgetMetric::CopyRate { fpr: 0.001 });
        assert_eq!(b.op, Comparison::Gt);
        assert_eq!(b.limit, 0.01);
        assert_eq!(b.to_string(), "copy_rate@fpr=0.001>0.01");
    }

    #[test]
    fn parses_paths_and_two_char_ops() {
        let b: Budget = "mia.distance.auc>=0.6".parse().unwrap();
        assert_eq!(b.metric, BudgetMetric::Path("mia.distance.auc".into()));
        assert_eq!(b.op, Comparison::Ge);
        let b: Budget = "ratio_rate<=0".parse().unwrap();
        assert_eq!(b.op, Comparison::Le);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "copy_rate",
            "ratio_rate>x",
            ">0.1",
            "copy_rate@fpr=2>0.1",
            "a..b>1",
            "x>inf",
        ] {
            assert!(s.parse::<Budget>().is_err(), "{s}");
        }
    }

    #[test]
    fn checks_against_metrics() {
        let m = json!({
            "copy_rate": [{"fpr": 0.01, "rate": 0.05}, {"fpr": 0.001, "rate": 0.02}],
            "ratio_rate": 0.0,
            "mia": null,
            "absent": {"mia": "requires --holdout"}
        });
        let b: Budget = "copy_rate@fpr=0.001>0.01".parse().unwrap();
        assert_eq!(b.check(&m).unwrap(), (0.02, true));
        let b: Budget = "ratio_rate>0".parse().unwrap();
        assert_eq!(b.check(&m).unwrap(), (0.0, false));
        let err = "mia.distance.auc>0.6"
            .parse::<Budget>()
            .unwrap()
            .check(&m)
            .unwrap_err();
        assert!(err.to_string().contains("requires --holdout"), "{err}");
        let err = "nope>1".parse::<Budget>().unwrap().check(&m).unwrap_err();
        assert!(err.to_string().contains("no metric named"), "{err}");
    }
}
