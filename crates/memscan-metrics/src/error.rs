//! The crate's one error type.
//!
//! Every public function that can be handed invalid input returns [`Result`]; none of them
//! panics. Invalid input means: an empty input where a rate or a quantile needs at least one
//! value, slices that should be parallel but differ in length, a distance that is NaN, infinite
//! or negative, a score that is not finite, an index past the end of the set it points into, or
//! a parameter (false-positive rate, confidence, probability, threshold) outside its domain;
//! for the metrics that take embeddings, also a width mismatch, a non-finite coordinate, too
//! few points, a data-copying cell without training or test points, and data too degenerate
//! to estimate (identical points under a KDE).
//! The messages name the argument (`d1`, `null_d1`, `is_member`, ...) and, for per-element
//! problems, the offending index, so that the caller can add the role with its own context.

/// What went wrong, with the argument that was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input that needs at least one element was empty.
    #[error("{what} is empty")]
    Empty {
        /// Name of the argument.
        what: &'static str,
    },

    /// Two parallel slices have different lengths.
    #[error("{left} has {left_len} entries but {right} has {right_len}")]
    LengthMismatch {
        /// Name of the first argument.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Name of the second argument.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },

    /// A distance was NaN, infinite or negative.
    #[error("{what}[{index}] = {value} is not a distance (must be finite and >= 0)")]
    InvalidDistance {
        /// Name of the argument.
        what: &'static str,
        /// Position of the bad value.
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// A membership score was NaN or infinite.
    #[error("{what}[{index}] = {value} is not a finite score")]
    InvalidScore {
        /// Name of the argument.
        what: &'static str,
        /// Position of the bad value.
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// `d1[i] > d2[i]`: the 1st and 2nd nearest-neighbour distances are swapped or unrelated.
    #[error("d1[{index}] = {d1} exceeds d2[{index}] = {d2}; d1 must be the nearest and d2 the second-nearest distance")]
    Unordered {
        /// Position of the bad pair.
        index: usize,
        /// The first-neighbour distance.
        d1: f64,
        /// The second-neighbour distance.
        d2: f64,
    },

    /// A target false-positive rate outside the open interval (0, 1).
    #[error("false-positive rate {fpr} is outside (0, 1)")]
    InvalidFpr {
        /// The rejected rate.
        fpr: f64,
    },

    /// Any other numeric parameter outside its domain.
    #[error("{name} = {value} is invalid: expected {expected}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The domain, in words (for example "a value in (0, 1)").
        expected: &'static str,
    },

    /// An index that points past the end of the set it refers to.
    #[error("{what}[{index}] = {value} is out of range (must be < {bound})")]
    IndexOutOfRange {
        /// Name of the argument.
        what: &'static str,
        /// Position of the bad value.
        index: usize,
        /// The bad index.
        value: usize,
        /// The exclusive upper bound.
        bound: usize,
    },

    /// A count of successes larger than the number of trials.
    #[error("{k} successes out of {n} trials: k must not exceed n")]
    CountExceedsTotal {
        /// Successes.
        k: u64,
        /// Trials.
        n: u64,
    },

    /// Membership labels without any member or without any non-member.
    #[error("is_member has no {class}; a ROC needs both members and non-members")]
    MissingClass {
        /// `"members"` or `"non-members"`.
        class: &'static str,
    },

    /// A matrix of embeddings whose width differs from the set it is compared with.
    #[error("{what} has {got} columns but {reference} has {expected}")]
    DimensionMismatch {
        /// Name of the argument.
        what: &'static str,
        /// Its number of columns.
        got: usize,
        /// Name of the argument it must match.
        reference: &'static str,
        /// The number of columns of `reference`.
        expected: usize,
    },

    /// An embedding coordinate that is NaN or infinite.
    #[error("{what}[{row}, {col}] = {value} is not finite")]
    NonFinite {
        /// Name of the argument.
        what: &'static str,
        /// Row (image) of the bad value.
        row: usize,
        /// Column (coordinate) of the bad value.
        col: usize,
        /// The bad value.
        value: f64,
    },

    /// Fewer items than a statistic needs (for example a KDE needs two points).
    #[error("{what} has {got} entries; at least {need} are needed")]
    TooFew {
        /// Name of the argument.
        what: &'static str,
        /// What it has.
        got: usize,
        /// What is needed.
        need: usize,
    },

    /// A data-copying cell (C_T) that lacks training or test points.
    #[error("cell {cell} has no {set} points; use fewer cells")]
    EmptyCell {
        /// Index of the cell.
        cell: usize,
        /// `"train"` or `"test"`.
        set: &'static str,
    },

    /// No C_T cell has enough synthetic points to be kept.
    #[error("no cell has more than {min_synthetic} synthetic points; use fewer cells or more synthetic images")]
    NoCellKept {
        /// The per-cell threshold `τ·m`.
        min_synthetic: usize,
    },

    /// Data that admits no estimate, for example points with a singular covariance.
    #[error("{what} is degenerate: {reason}")]
    Degenerate {
        /// Name of the argument.
        what: &'static str,
        /// Why, in words.
        reason: &'static str,
    },

    /// A group (patient) that contains both members and non-members.
    #[error("group {group} contains both members and non-members; a patient must be in train or in holdout, not both")]
    MixedGroup {
        /// The group id.
        group: u32,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that every entry of `values` is a finite, non-negative distance.
pub(crate) fn check_distances(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|d| !(d.is_finite() && *d >= 0.0)) {
        Some(index) => Err(Error::InvalidDistance {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that `values` is not empty.
pub(crate) fn check_nonempty<T>(what: &'static str, values: &[T]) -> Result<()> {
    if values.is_empty() {
        Err(Error::Empty { what })
    } else {
        Ok(())
    }
}

/// Checks that two parallel slices have the same length.
pub(crate) fn check_same_len<A, B>(
    left: &'static str,
    a: &[A],
    right: &'static str,
    b: &[B],
) -> Result<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            left,
            left_len: a.len(),
            right,
            right_len: b.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_argument_and_index() {
        let e = check_distances("d1", &[0.5, f64::NAN]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d1[1] = NaN is not a distance (must be finite and >= 0)"
        );
        let e = check_distances("null_d1", &[-1.0]).unwrap_err();
        assert!(matches!(e, Error::InvalidDistance { index: 0, .. }));
        let e = check_same_len("d1", &[1.0], "d2", &[1.0, 2.0]).unwrap_err();
        assert_eq!(e.to_string(), "d1 has 1 entries but d2 has 2");
        assert_eq!(
            check_nonempty::<f64>("cos", &[]).unwrap_err().to_string(),
            "cos is empty"
        );
    }

    #[test]
    fn valid_inputs_pass() {
        assert!(check_distances("d", &[0.0, 1.0, 1e300]).is_ok());
        assert!(check_distances("d", &[]).is_ok());
        assert!(check_distances("d", &[f64::INFINITY]).is_err());
        assert!(check_same_len("a", &[1u8], "b", &[true]).is_ok());
    }
}
