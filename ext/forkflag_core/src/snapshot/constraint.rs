//! Constraints as compiled: the field, the operator and its operand
//! already parsed (numbers, dates, semvers, CIDRs, regexes, IN-sets), so a
//! test only reads the context field and compares. [`crate::compile`]
//! builds them, [`crate::eval`] tests them.

use super::arena::{Span, StrSet, Text};
use crate::context::Field;

/// An ordering comparison against a fixed operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// String-fragment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    Contains,
    StartsWith,
    EndsWith,
}

/// What a constraint checks, with its operand already parsed. Strings and
/// operands live in the snapshot's [`super::arena::Arena`].
#[derive(Debug)]
pub(crate) enum Test {
    In(StrSet),
    NotIn(StrSet),
    Fragment {
        kind: Fragment,
        values: Span,
        ignore_case: bool,
    },
    Num(Cmp, f64),
    Date(Cmp, i64),
    /// Index into [`super::arena::Arena::versions`].
    Semver(Cmp, u32),
    /// Index into [`super::arena::Arena::regexes`].
    Regex(u32),
    /// Networks in [`super::arena::Arena::nets`].
    Cidr(Span),
    /// A constraint that cannot be understood (unknown operator, unreadable
    /// operand): it never holds, whatever `inverted` says, so a broken
    /// configuration cannot switch a flag on for everyone. Keeps the
    /// operator as the payload named it (for descriptions).
    Never(Text),
}

/// A compiled constraint.
#[derive(Debug)]
pub struct Constraint {
    pub(crate) field: Field,
    pub(crate) inverted: bool,
    pub(crate) test: Test,
}
