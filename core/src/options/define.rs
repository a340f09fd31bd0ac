//! What the option table becomes in this crate: the fields, defaults and range checks of
//! [`EngineOptions`](super::EngineOptions), and an [`OptionDescriptor`] per option for
//! documentation (the README's option table is checked against [`descriptors`](super::descriptors)).

use alloc::format;
use alloc::string::String;

use super::{GIB, KIB, MIB, VLogChecksumLevel};
use crate::wal::RecoveryMode;

/// How an option's values are written for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A size in bytes, written with the largest binary unit that divides it (`64 MiB`).
    Bytes,
    /// A plain number.
    Count,
    /// A fraction between 0 and 1.
    Ratio,
    /// On or off.
    Flag,
    /// A duration in nanoseconds.
    Nanos,
    /// One of an enum's variants, by name.
    Choice,
}

/// One option as documentation sees it, made from its table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionDescriptor {
    /// The field name, which is also what `Error::InvalidArgument` names.
    pub name: &'static str,
    /// The builder method that sets it (`None` for options the engine keeps internal).
    pub setter: Option<&'static str>,
    /// The first line of its documentation.
    pub summary: &'static str,
    /// Its default, written for people.
    pub default: String,
    /// Its valid range, if it has one.
    pub range: Option<OptionRange>,
}

/// An option's valid range, written for people, and the rule a value outside it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionRange {
    /// The smallest valid value.
    pub min: String,
    /// The largest valid value (`None`: no upper bound).
    pub max: Option<String>,
    /// The rule `Error::InvalidArgument` reports.
    pub rule: &'static str,
}

impl OptionRange {
    /// Describes `min..=max`; a `max` at the type's limit means no upper bound.
    pub fn new<W: Widened>(min: W, max: W, unit: Unit, rule: &'static str) -> Self {
        OptionRange {
            min: min.render(unit),
            max: (!max.is_unbounded()).then(|| max.render(unit)),
            rule,
        }
    }

    /// The rule the bounds imply: "must be between MIN and MAX" or "must be at least MIN".
    pub fn implied_rule(&self) -> String {
        match &self.max {
            Some(max) => format!("must be between {} and {max}", self.min),
            None => format!("must be at least {}", self.min),
        }
    }

    /// The range for a table cell: "MIN to MAX" or "at least MIN".
    pub fn text(&self) -> String {
        match &self.max {
            Some(max) => format!("{} to {max}", self.min),
            None => format!("at least {}", self.min),
        }
    }
}

/// A value an option can hold, written for people.
pub trait OptionValue {
    /// The value in `unit`.
    fn render(&self, unit: Unit) -> String;
}

/// A numeric option value, widened to the type its bounds are written in (`u64` for
/// integers, so a bound of 4 GiB means the same on 32-bit targets).
pub trait Widen {
    /// The wide type.
    type Wide: Widened;
    /// The value, widened.
    fn widen(&self) -> Self::Wide;
}

/// A bound type: `u64` or `f64`.
pub trait Widened: OptionValue + PartialOrd + Copy {
    /// `true` for the type's largest value, which the table uses for "no upper bound".
    fn is_unbounded(&self) -> bool;
}

impl Widen for u64 {
    type Wide = u64;
    fn widen(&self) -> u64 {
        *self
    }
}

impl Widen for usize {
    type Wide = u64;
    fn widen(&self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        *self as u64
    }
}

impl Widen for u32 {
    type Wide = u64;
    fn widen(&self) -> u64 {
        u64::from(*self)
    }
}

impl Widen for f64 {
    type Wide = f64;
    fn widen(&self) -> f64 {
        *self
    }
}

impl Widened for u64 {
    fn is_unbounded(&self) -> bool {
        *self == u64::MAX
    }
}

impl Widened for f64 {
    fn is_unbounded(&self) -> bool {
        self.is_infinite()
    }
}

impl OptionValue for u64 {
    fn render(&self, unit: Unit) -> String {
        match unit {
            Unit::Bytes => render_bytes(*self),
            Unit::Nanos => format!("{self} ns"),
            _ => format!("{self}"),
        }
    }
}

impl OptionValue for usize {
    fn render(&self, unit: Unit) -> String {
        self.widen().render(unit)
    }
}

impl OptionValue for u32 {
    fn render(&self, unit: Unit) -> String {
        self.widen().render(unit)
    }
}

impl OptionValue for f64 {
    fn render(&self, _unit: Unit) -> String {
        // Debug keeps the decimal point ("1.0"), so a fraction reads as one.
        format!("{self:?}")
    }
}

impl OptionValue for bool {
    fn render(&self, _unit: Unit) -> String {
        String::from(if *self { "on" } else { "off" })
    }
}

impl OptionValue for RecoveryMode {
    fn render(&self, _unit: Unit) -> String {
        format!("{self:?}")
    }
}

impl OptionValue for VLogChecksumLevel {
    fn render(&self, _unit: Unit) -> String {
        format!("{self:?}")
    }
}

/// `bytes` with the largest binary unit that divides it exactly.
fn render_bytes(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} B")
}

/// The first line of an option's doc comment, trimmed.
pub(super) fn first_line(lines: &[&'static str]) -> &'static str {
    lines.first().map_or("", |line| line.trim())
}

/// `Some(tokens)` when there are tokens, `None` when there are none: turns an optional part
/// of a table entry into an `Option`.
macro_rules! some_or_none {
    () => {
        None
    };
    ($($t:tt)+) => {
        Some($($t)+)
    };
}

/// The generator [`engine_option_table!`](crate::engine_option_table) feeds in this crate:
/// the [`EngineOptions`](super::EngineOptions) struct, its `Default`, its range checks and
/// [`descriptors`](super::descriptors).
macro_rules! define_engine_options {
    (
        {}
        $(
            $(#[doc = $doc:literal])+
            $field:ident : $ty:ty = $default:expr, $unit:ident
            $(, valid $lo:expr, $hi:expr, $rule:literal)?
            $(, setter $setter:ident ($arg:ident : $arg_ty:ty) $(=> $conv:expr)?)?
            $(, custom $custom:ident)?
        ;)*
    ) => {
        /// Engine configuration. Every field is one entry of the option table
        /// (`core/src/options/table.rs`), which also gives its default and valid range.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct EngineOptions {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl Default for EngineOptions {
            fn default() -> Self {
                EngineOptions { $( $field: $default, )* }
            }
        }

        impl EngineOptions {
            /// Checks every option that has a valid range, in table order.
            fn validate_ranges(&self) -> Result<()> {
                $( $(
                    if !($lo..=$hi).contains(&define::Widen::widen(&self.$field)) {
                        return Err(Error::invalid(stringify!($field), $rule));
                    }
                )? )*
                Ok(())
            }
        }

        /// Every option, in table order, as documentation sees it.
        pub fn descriptors() -> Vec<OptionDescriptor> {
            let defaults = EngineOptions::default();
            alloc::vec![$(
                OptionDescriptor {
                    name: stringify!($field),
                    setter: some_or_none!($(stringify!($setter))? $(stringify!($custom))?),
                    summary: define::first_line(&[$($doc),+]),
                    default: define::OptionValue::render(&defaults.$field, Unit::$unit),
                    range: some_or_none!($(
                        OptionRange::new::<<$ty as define::Widen>::Wide>(
                            $lo, $hi, Unit::$unit, $rule,
                        )
                    )?),
                },
            )*]
        }
    };
}
