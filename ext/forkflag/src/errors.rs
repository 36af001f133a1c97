//! Ruby exceptions for core errors. The classes are defined in Ruby
//! (`lib/forkflag/errors.rb`) and looked up lazily.

use magnus::value::Lazy;
use magnus::{prelude::*, Error, ExceptionClass, RModule, Ruby};

use forkflag_core::CoreError;

fn lookup(ruby: &Ruby, name: &str) -> ExceptionClass {
    let forkflag: RModule = ruby
        .class_object()
        .const_get("Forkflag")
        .expect("Forkflag is defined before the native library is loaded");
    forkflag
        .const_get(name)
        .unwrap_or_else(|_| panic!("Forkflag::{name} is defined in lib/forkflag/errors.rb"))
}

static ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| lookup(ruby, "Error"));
static CONFIG_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| lookup(ruby, "ConfigError"));
static INTERNAL_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| lookup(ruby, "InternalError"));

/// `Forkflag::Error`.
pub fn error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&ERROR), message.into())
}

/// `Forkflag::ConfigError`.
pub fn config_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&CONFIG_ERROR), message.into())
}

/// `Forkflag::InternalError`: a bug in forkflag (a caught panic).
pub fn internal_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&INTERNAL_ERROR), message.into())
}

/// `TypeError`.
pub fn type_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_type_error(), message.into())
}

/// `ArgumentError`.
pub fn arg_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), message.into())
}

/// Maps a core error to its Ruby exception.
pub fn from_core(ruby: &Ruby, e: CoreError) -> Error {
    match e {
        CoreError::InvalidPayload(_) | CoreError::InvalidConfig(_) => {
            config_error(ruby, e.to_string())
        }
        CoreError::Io { .. } => error(ruby, e.to_string()),
    }
}

/// A short description of a value for an error message: its `inspect`
/// (run under `rb_protect`; `#<Class:0x...>` when it raises or is not
/// defined), cut to a readable length.
pub fn describe(value: magnus::Value) -> String {
    const LIMIT: usize = 200;
    let text = value.inspect();
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}... ({} bytes)", &text[..at], text.len()),
        None => text,
    }
}
