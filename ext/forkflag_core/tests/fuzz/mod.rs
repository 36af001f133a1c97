//! The parts of the hostile-payload test: what it mutates from (corpus),
//! with what (hostile, mutate), how it writes the result (json), which
//! contexts it evaluates (contexts) and what must hold (check).

pub mod check;
pub mod contexts;
pub mod corpus;
pub mod hostile;
pub mod json;
pub mod mutate;
