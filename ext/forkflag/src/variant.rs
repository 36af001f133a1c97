//! `Forkflag::Variant`: the answer of `Client#variant`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forkflag_core::{Payload, VariantChoice};
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{function, method, prelude::*, Error, RHash, RString, Ruby, Value};

use crate::guard::guard;

/// A chosen variant (or the disabled variant).
#[magnus::wrap(class = "Forkflag::Variant", free_immediately, size)]
pub struct RubyVariant {
    /// `None` is the disabled variant.
    name: Option<Arc<str>>,
    payload: Option<Arc<Payload>>,
    feature_enabled: bool,
}

impl RubyVariant {
    /// The Ruby object for a choice.
    pub fn from_choice(choice: &VariantChoice<'_>) -> RubyVariant {
        RubyVariant {
            name: choice.variant.map(|v| Arc::clone(v.shared_name())),
            payload: choice.variant.and_then(|v| v.payload().cloned()),
            feature_enabled: choice.feature_enabled,
        }
    }

    /// The disabled variant, for a flag that is off or unknown.
    pub fn disabled(feature_enabled: bool) -> RubyVariant {
        RubyVariant {
            name: None,
            payload: None,
            feature_enabled,
        }
    }

    fn build(
        ruby: &Ruby,
        name: String,
        feature_enabled: bool,
        payload: Option<RHash>,
    ) -> Result<RubyVariant, Error> {
        guard(ruby, || {
            let payload = match payload {
                None => None,
                Some(h) => {
                    let get = |k: &str| -> Result<String, Error> {
                        let v: Value = h.aref(ruby.to_symbol(k))?;
                        let v = if v.is_nil() { h.aref(k)? } else { v };
                        String::try_convert(v)
                    };
                    Some(Arc::new(Payload {
                        payload_type: get("type")?.into(),
                        value: get("value")?.into(),
                    }))
                }
            };
            let name = (name != forkflag_core::snapshot::DISABLED_VARIANT).then(|| Arc::from(name));
            Ok(RubyVariant {
                feature_enabled: feature_enabled || name.is_some(),
                name,
                payload,
            })
        })
    }

    fn name(ruby: &Ruby, rb_self: &Self) -> RString {
        let name = rb_self
            .name
            .as_deref()
            .unwrap_or(forkflag_core::snapshot::DISABLED_VARIANT);
        interned(ruby, name)
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.name.is_some()
    }

    pub(crate) fn is_feature_enabled(&self) -> bool {
        self.feature_enabled
    }

    fn payload(ruby: &Ruby, rb_self: &Self) -> Result<Option<RHash>, Error> {
        let Some(p) = &rb_self.payload else {
            return Ok(None);
        };
        let h = ruby.hash_new();
        h.aset(ruby.to_symbol("type"), interned(ruby, &p.payload_type))?;
        h.aset(ruby.to_symbol("value"), ruby.str_new(&p.value).as_value())?;
        h.freeze();
        Ok(Some(h))
    }
}

/// The two disabled variants (flag off or unknown; flag on without
/// variants), created once: `Client#variant` returns these shared, frozen
/// objects instead of allocating one per call. Raw VALUEs of objects
/// registered with the GC as permanent (0 until `init`).
static DISABLED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The shared disabled variant for `feature_enabled`.
#[inline]
pub fn shared_disabled(feature_enabled: bool) -> Value {
    let raw = DISABLED[usize::from(feature_enabled)].load(Ordering::Relaxed);
    debug_assert_ne!(raw, 0, "variant::init creates the shared variants");
    // SAFETY: set once by `init` to a frozen Variant registered with
    // rb_gc_register_mark_object, so it lives as long as the VM.
    unsafe { Value::from_raw(raw as rb_sys::VALUE) }
}

/// The answer of `Client#variant` before it is a Ruby object: made while
/// the evaluation borrows the snapshot, turned into one
/// ([`Answer::into_ruby`]) once those borrows ended, because allocating a
/// Ruby object may raise (NoMemoryError) and a raise must not jump over a
/// live borrow.
pub enum Answer {
    /// The shared disabled variant for `feature_enabled`.
    Disabled(bool),
    /// A chosen variant.
    Chosen(RubyVariant),
}

impl Answer {
    /// The answer for a choice (the variant's name and payload are shared,
    /// not copied).
    #[inline]
    pub fn of(choice: &VariantChoice<'_>) -> Answer {
        match choice.variant {
            None => Answer::Disabled(choice.feature_enabled),
            Some(_) => Answer::Chosen(RubyVariant::from_choice(choice)),
        }
    }

    /// The Ruby object: a shared one for the disabled variant, else a new
    /// frozen one.
    #[inline]
    pub fn into_ruby(self, ruby: &Ruby) -> Value {
        match self {
            Answer::Disabled(feature_enabled) => shared_disabled(feature_enabled),
            Answer::Chosen(variant) => {
                let obj = ruby.obj_wrap(variant);
                obj.freeze();
                obj.as_value()
            }
        }
    }
}

/// A frozen, interned String (created once per distinct text).
pub fn interned(_ruby: &Ruby, text: &str) -> RString {
    // SAFETY: the pointer and length describe `text`, valid UTF-8; the
    // returned VALUE is a String that Ruby keeps in its interned table.
    unsafe {
        let raw = rb_sys::rb_enc_interned_str(
            text.as_ptr().cast(),
            text.len() as std::os::raw::c_long,
            rb_sys::rb_utf8_encoding(),
        );
        RString::from_value(Value::from_raw(raw)).expect("rb_enc_interned_str returns a String")
    }
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let class = crate::native_class(ruby, "Variant")?;
    class
        .singleton_class()?
        .define_private_method("_build", function!(RubyVariant::build, 3))?;
    class.define_method("name", method!(RubyVariant::name, 0))?;
    class.define_method("enabled?", method!(RubyVariant::is_enabled, 0))?;
    class.define_method(
        "feature_enabled?",
        method!(RubyVariant::is_feature_enabled, 0),
    )?;
    class.define_method("payload", method!(RubyVariant::payload, 0))?;
    for feature_enabled in [false, true] {
        let obj = ruby.obj_wrap(RubyVariant::disabled(feature_enabled));
        obj.freeze();
        // SAFETY: a live object, kept by the GC from now on (never freed).
        unsafe { rb_sys::rb_gc_register_mark_object(obj.as_raw()) };
        DISABLED[usize::from(feature_enabled)].store(obj.as_raw() as usize, Ordering::Relaxed);
    }
    Ok(())
}
