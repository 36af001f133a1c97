//! Custom strategies: a flag's strategy that the application registered
//! (`strategies:`) is answered by Ruby code. The core asks the context
//! ([`forkflag_core::Context::custom_strategy`]); for a client with custom
//! strategies the evaluation's context is wrapped in a [`WithStrategies`],
//! which calls the client's `Forkflag::Strategies` object
//! (`call(name, parameters, context)`, Ruby in `lib/forkflag/strategies.rb`)
//! under `rb_protect`. That object rescues what the application's code
//! raises (the strategy answers false); what still stops the call (an
//! Interrupt, SystemExit, a `throw`, Thread#kill) leaves the evaluation
//! uncounted and is raised once the Rust frames have unwound. Clients
//! without custom strategies never construct the wrapper.

use std::cell::Cell;
use std::net::IpAddr;

use forkflag_core::{Context, CurrentTime, CustomStrategy, Field};
use magnus::rb_sys::AsRawId;
use magnus::value::LazyId;
use magnus::{Error, Ruby};
use rb_sys::VALUE;

use crate::protect::{is_standard_error, protect};

/// A context whose custom strategies are answered by `dispatcher`, given
/// the evaluation's context argument as the application passed it.
pub(super) struct WithStrategies<'a, C: ?Sized> {
    inner: &'a C,
    dispatcher: VALUE,
    argument: VALUE,
    /// What stopped a call of the dispatcher and must reach Ruby.
    failure: Cell<Option<Error>>,
}

impl<'a, C: Context + ?Sized> WithStrategies<'a, C> {
    /// `dispatcher` and `argument` must stay alive while the context is
    /// used (the client marks the first; the second is an argument of the
    /// current method call).
    pub(super) fn new(inner: &'a C, dispatcher: VALUE, argument: VALUE) -> Self {
        WithStrategies {
            inner,
            dispatcher,
            argument,
            failure: Cell::new(None),
        }
    }

    /// What stopped a call of the dispatcher (the evaluation was not
    /// counted), to raise now that the evaluation returned.
    pub(super) fn take_failure(&self) -> Option<Error> {
        self.failure.take()
    }
}

/// `call`, interned once.
static CALL: LazyId = LazyId::new("call");

/// A new frozen UTF-8 String (the texts come from JSON: valid UTF-8).
///
/// # Safety
/// On a Ruby thread, under `rb_protect` (it allocates).
unsafe fn frozen_string(text: &str) -> VALUE {
    let s = rb_sys::rb_utf8_str_new(text.as_ptr().cast(), text.len() as _);
    rb_sys::rb_obj_freeze(s)
}

impl<C: Context + ?Sized> Context for WithStrategies<'_, C> {
    #[inline]
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        self.inner.with_field(field, f)
    }

    #[inline]
    fn current_time(&self) -> CurrentTime {
        self.inner.current_time()
    }

    #[inline]
    fn remote_ip(&self) -> Option<IpAddr> {
        self.inner.remote_ip()
    }

    #[inline]
    fn failed(&self) -> bool {
        // SAFETY: a read of the Cell's content with no other reference to
        // it alive (one thread; no method of this type is running).
        self.inner.failed() || unsafe { (*self.failure.as_ptr()).is_some() }
    }

    fn custom_strategy(&self, strategy: &CustomStrategy) -> bool {
        if self.failed() {
            return false;
        }
        // SAFETY: on a Ruby thread (this is an evaluation's context).
        let ruby = unsafe { Ruby::get_unchecked() };
        let id = LazyId::get_inner_with(&CALL, &ruby).as_raw();
        let (dispatcher, argument) = (self.dispatcher, self.argument);
        // Everything here allocates or runs Ruby code, so all of it runs
        // under rb_protect; the closure holds only references and plain
        // values (no destructor is skipped if it is left by a jump).
        let called = protect(|| unsafe {
            let name = frozen_string(strategy.name());
            let parameters = rb_sys::rb_hash_new();
            for (key, value) in strategy.parameters() {
                rb_sys::rb_hash_aset(parameters, frozen_string(key), frozen_string(value));
            }
            rb_sys::rb_obj_freeze(parameters);
            rb_sys::rb_funcall(dispatcher, id, 3, name, parameters, argument)
        });
        match called {
            Ok(answer) => rb_sys::TEST(answer),
            Err(error) => {
                if !is_standard_error(&ruby, &error) {
                    self.failure.set(Some(error));
                }
                false
            }
        }
    }
}
