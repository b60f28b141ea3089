//! FNV-1a, the hash of Grant's own tables: keys are short names that come
//! from the policy, so a fast unkeyed hash is the right trade (a request
//! cannot make its lookups collide with entries the policy author did not
//! write). It is also incremental, which the glob index relies on: the hash
//! of each prefix of a text comes from one pass over it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The FNV-1a state before any byte.
pub const START: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Default, Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { START } else { self.0 };
        for byte in bytes {
            hash = step(hash, *byte);
        }
        self.0 = hash;
    }
}

pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
pub type FnvSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;
/// An insertion-ordered map hashed with FNV-1a.
pub type FnvIndexMap<K, V> = indexmap::IndexMap<K, V, BuildHasherDefault<Fnv>>;

/// The state after one more byte.
#[inline]
pub fn step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(PRIME)
}

/// The FNV-1a hash of `bytes`, as [`step`] builds it a byte at a time (the
/// [`Hasher`] of a `str` key adds a terminator; this does not).
#[inline]
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(START, |hash, &byte| step(hash, byte))
}
