//! `Forkflag::Client#_noop`: the floor the Ruby benchmarks measure against.
//!
//! An empty native method with the calling convention of `enabled?` (any
//! number of arguments, called on a client), so `bench/evaluate.rb` can show
//! how much of an evaluation is the cost of calling into native code at all.
//! Not part of the public API.

use magnus::{method, prelude::*, Error, Ruby, Value};

/// @api private
/// `_noop(name, context = nil)`: takes the arguments `enabled?` takes, looks
/// at none of them and answers `false`.
fn noop(_rb_self: Value, _args: &[Value]) -> bool {
    false
}

/// Defines `Forkflag::Client#_noop`.
pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let class = ruby
        .define_module("Forkflag")?
        .define_class("Client", ruby.class_object())?;
    class.define_method("_noop", method!(noop, -1))?;
    Ok(())
}
