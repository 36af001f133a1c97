//! The Ruby binding of forkflag: one file per Ruby class, wired here.
//!
//! The binding is deliberately thin: argument conversion, exception mapping
//! and the Ruby-facing objects. Everything else lives in `forkflag_core`.

use magnus::{prelude::*, Error, RClass, Ruby};

mod client;
mod context;
mod errors;
mod guard;
mod hash_context;
mod logging;
mod names;
mod nogvl;
mod protect;
mod variant;

#[magnus::init(name = "forkflag")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    forkflag_core::process::fork::install_handlers().map_err(|e| {
        errors::error(
            ruby,
            format!(
                "forkflag cannot install its fork handlers (pthread_atfork: {e}); without them it \
                 cannot tell a forked child from its parent, so it does not load"
            ),
        )
    })?;
    hash_context::init(ruby)?;
    context::init(ruby)?;
    variant::init(ruby)?;
    client::init(ruby)?;
    logging::init(ruby)?;
    Ok(())
}

/// Defines `Forkflag::<name>` as a class whose objects only the native side
/// makes (no `allocate`; each class's private `_build` makes them).
pub(crate) fn native_class(ruby: &Ruby, name: &str) -> Result<RClass, Error> {
    let class = ruby
        .define_module("Forkflag")?
        .define_class(name, ruby.class_object())?;
    class.undef_default_alloc_func();
    Ok(class)
}
