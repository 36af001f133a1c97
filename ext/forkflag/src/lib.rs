//! The Ruby binding of forkflag: one file per Ruby class, wired here.
//!
//! The binding is deliberately thin: argument conversion, exception mapping
//! and the Ruby-facing objects. Everything else lives in `forkflag_core`.

use magnus::{Error, Ruby};

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
