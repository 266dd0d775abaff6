//! The values an event id can be built from.

use std::fmt;

/// A value that can be an event id: integers (written without an
/// intermediate `String`), text, and [`fmt::Arguments`] for anything else
/// printable (`format_args!("{uuid}")`).
pub trait EventIdValue {
    /// Calls `f` with the id as text.
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R;
}

macro_rules! integer_ids {
    ($($int:ty)*) => {$(
        impl EventIdValue for $int {
            #[inline]
            fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
                f(itoa::Buffer::new().format(self))
            }
        }
    )*};
}

integer_ids!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

impl EventIdValue for &str {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(self)
    }
}

impl EventIdValue for String {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self)
    }
}

impl EventIdValue for &String {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(self)
    }
}

impl EventIdValue for std::borrow::Cow<'_, str> {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self)
    }
}

impl EventIdValue for std::sync::Arc<str> {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self)
    }
}

impl EventIdValue for fmt::Arguments<'_> {
    #[inline]
    fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self.as_str() {
            Some(text) => f(text),
            None => f(&self.to_string()),
        }
    }
}
