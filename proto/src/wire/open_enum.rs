//! Wire code points as open newtypes: named values are associated constants spelled like the
//! specification, and an unknown value is kept, printed and re-emitted instead of rejected.

/// Declares a `pub struct Name(pub int)` with the listed constants, `name()`, `from_name()`, and a `Debug` /
/// `Display` that prints the spec name or the hex value.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name(pub $int);

        #[allow(clippy::allow_attributes)]
        impl $name {
            $( $(#[$vmeta])* pub const $variant: Self = Self($value); )*

            /// The specification's name for this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some(stringify!($variant)), )*
                    _ => None,
                }
            }

            /// The value the specification names `name` (exact spelling), if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( stringify!($variant) => Some(Self::$variant), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(self, f)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => write!(f, "{name} ({:#x})", self.0),
                    None => write!(f, "unknown ({:#x})", self.0),
                }
            }
        }
    };
}

pub(crate) use open_enum;
