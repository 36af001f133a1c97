//! The constraint operators of the Unleash client specification, for the
//! tests that try each one (`tests/differential.rs`, the hostile-payload
//! tables in `tests/fuzz/hostile.rs`). Included by path, not through
//! `support/mod.rs`, which is the counting allocator.

/// Every operator the specification defines.
pub const OPERATORS: [&str; 19] = [
    "IN",
    "NOT_IN",
    "STR_CONTAINS",
    "STR_STARTS_WITH",
    "STR_ENDS_WITH",
    "NUM_EQ",
    "NUM_GT",
    "NUM_GTE",
    "NUM_LT",
    "NUM_LTE",
    "DATE_AFTER",
    "DATE_BEFORE",
    "SEMVER_EQ",
    "SEMVER_GT",
    "SEMVER_GTE",
    "SEMVER_LT",
    "SEMVER_LTE",
    "REGEX",
    "IN_CIDR",
];
