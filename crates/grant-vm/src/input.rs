//! The values of one request, as the evaluator reads them: one [`Slot`] per
//! declared attribute, strings in one text buffer, set elements in one list.
//! The decision API fills these; their buffers are reused across requests.

use std::cmp::Ordering;

use grant_compile::program::Const;

/// A range of [`Input::text`] or [`Input::set_items`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlotRange {
    pub start: u32,
    pub len: u32,
}

/// One attribute's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Slot {
    /// Not given: reads are unknown.
    #[default]
    Missing,
    Bool(bool),
    Int(i64),
    /// A range of [`Input::text`].
    Str(SlotRange),
    /// Seconds.
    Duration(u64),
    /// A variant's ordinal.
    Enum(u32),
    /// A range of [`Input::set_items`], sorted by [`cmp_items`], no duplicates.
    Set(SlotRange),
}

/// A request's values, borrowed for one decision.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub values: &'a [Slot],
    pub text: &'a str,
    pub set_items: &'a [Slot],
}

impl<'a> Input<'a> {
    pub fn str(&self, range: SlotRange) -> &'a str {
        let start = range.start as usize;
        self.text
            .get(start..start + range.len as usize)
            .unwrap_or("")
    }

    pub fn set(&self, range: SlotRange) -> &'a [Slot] {
        let start = range.start as usize;
        self.set_items
            .get(start..start + range.len as usize)
            .unwrap_or(&[])
    }
}

/// A scalar value, wherever it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Duration(u64),
    Enum(u32),
}

impl<'a> Scalar<'a> {
    pub(crate) fn of_slot(slot: Slot, input: &Input<'a>) -> Option<Scalar<'a>> {
        Some(match slot {
            Slot::Bool(b) => Scalar::Bool(b),
            Slot::Int(i) => Scalar::Int(i),
            Slot::Str(range) => Scalar::Str(input.str(range)),
            Slot::Duration(d) => Scalar::Duration(d),
            Slot::Enum(e) => Scalar::Enum(e),
            Slot::Missing | Slot::Set(_) => return None,
        })
    }

    pub(crate) fn of_const(value: &'a Const) -> Option<Scalar<'a>> {
        Some(match value {
            Const::Bool(b) => Scalar::Bool(*b),
            Const::Int(i) => Scalar::Int(*i),
            Const::Str(s) => Scalar::Str(s),
            Const::Duration(d) => Scalar::Duration(*d),
            Const::Enum(e) => Scalar::Enum(*e),
            Const::Set(_) => return None,
        })
    }

    /// The order of set elements and comparisons: numbers and ordinals
    /// numerically, strings by bytes. Values of different kinds never meet
    /// in a checked policy; they order by kind to stay total.
    pub(crate) fn cmp(self, other: Scalar<'_>) -> Ordering {
        match (self, other) {
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(&b),
            (Scalar::Int(a), Scalar::Int(b)) => a.cmp(&b),
            (Scalar::Str(a), Scalar::Str(b)) => a.cmp(b),
            (Scalar::Duration(a), Scalar::Duration(b)) => a.cmp(&b),
            (Scalar::Enum(a), Scalar::Enum(b)) => a.cmp(&b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(self) -> u8 {
        match self {
            Scalar::Bool(_) => 0,
            Scalar::Int(_) => 1,
            Scalar::Str(_) => 2,
            Scalar::Duration(_) => 3,
            Scalar::Enum(_) => 4,
        }
    }
}

/// The order of a set's elements: what the request builder sorts by, and
/// what the evaluator's binary searches and merges assume.
pub fn cmp_items(a: &Slot, b: &Slot, input: &Input<'_>) -> Ordering {
    match (Scalar::of_slot(*a, input), Scalar::of_slot(*b, input)) {
        (Some(a), Some(b)) => a.cmp(b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}
