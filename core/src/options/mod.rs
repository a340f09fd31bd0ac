//! Options: the limits every write obeys, and [`EngineOptions`], made from the option table.
//!
//! Each option is defined once, in `table.rs` (name, type, default, valid range, builder
//! method, doc). `define.rs` turns the table into the struct, its defaults, its range checks
//! and [`descriptors`]; the host turns the same table into its builder methods. The rules
//! that tie two options together are checked by hand in [`EngineOptions::validate`].

#[macro_use]
mod define;
mod table;

use alloc::vec::Vec;

pub use define::{OptionDescriptor, OptionRange, OptionValue, Unit, Widen, Widened};

use crate::{Error, Result};

/// Largest key accepted, in bytes. Keys live in memtables, index blocks and conflict sets, so
/// they are kept small; 64 KiB also fits every length field of the table formats.
pub const MAX_KEY_SIZE: usize = 64 * 1024;

/// Largest value accepted, in bytes. A value travels whole through the WAL and the memtable.
pub const MAX_VALUE_SIZE: usize = 256 * 1024 * 1024;

/// One KiB, for sizes in the option table.
const KIB: u64 = 1024;
/// One MiB.
const MIB: u64 = 1024 * KIB;
/// One GiB.
const GIB: u64 = 1024 * MIB;

/// A size default as `usize`: every default in the table fits 32 bits.
const fn usize_of(bytes: u64) -> usize {
    bytes as usize
}

/// How values read from the value log are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum VLogChecksumLevel {
    /// Trust the value log on reads: only a record's framing and key are checked. Records
    /// are still checksummed when written, and recovery, garbage collection and verification
    /// always check them.
    Disabled,
    /// Verify the checksum of every value read from the value log; a mismatch is
    /// `Error::Corruption` naming the file and offset.
    #[default]
    Full,
}

crate::engine_option_table!(define_engine_options {});

impl EngineOptions {
    /// Checks every option, returning the first one out of range: each option against its
    /// own range (from the table), then the rules that tie options together.
    pub fn validate(&self) -> Result<()> {
        self.validate_ranges()?;
        if self.l0_stop_trigger <= self.l0_compaction_trigger {
            return Err(Error::invalid(
                "l0_stop_trigger",
                "must be greater than l0_compaction_trigger",
            ));
        }
        if self.base_level_bytes < self.target_file_size {
            return Err(Error::invalid("target_file_size", "must be at most base_level_bytes"));
        }
        if !self.versioning && self.retention_ns != 0 {
            return Err(Error::invalid("retention_ns", "requires versioning to be enabled"));
        }
        Ok(())
    }

    /// `true` when values read from the value log are checksummed.
    pub fn vlog_verify_checksums(&self) -> bool {
        self.vlog_checksum == VLogChecksumLevel::Full
    }
}

/// Checks a key against [`MAX_KEY_SIZE`].
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge { len: key.len(), max: MAX_KEY_SIZE });
    }
    Ok(())
}

/// Checks a value against [`MAX_VALUE_SIZE`].
pub fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::ValueTooLarge { len: value.len(), max: MAX_VALUE_SIZE });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch;

    #[test]
    fn every_rule_says_exactly_what_its_bounds_are() {
        for d in descriptors() {
            if let Some(range) = &d.range {
                assert_eq!(range.rule, range.implied_rule(), "option {}", d.name);
            }
        }
    }

    #[test]
    fn defaults_are_valid_and_every_option_is_described_once() {
        EngineOptions::default().validate().expect("the defaults are valid");
        let all = descriptors();
        let mut names: Vec<_> = all.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "an option is defined twice");
        assert!(all.iter().all(|d| !d.summary.is_empty()), "every option has a summary");
    }

    #[test]
    fn range_checks_come_from_the_table() {
        type Breaks = fn(&mut EngineOptions);
        let cases: [(&str, Breaks); 6] = [
            ("max_memtable_size", |o| o.max_memtable_size = 1),
            ("max_transaction_size", |o| o.max_transaction_size = 1024),
            ("compaction_threads", |o| o.compaction_threads = 17),
            ("level_size_ratio", |o| o.level_size_ratio = 1),
            ("vlog_gc_discard_ratio", |o| o.vlog_gc_discard_ratio = f64::NAN),
            ("max_open_tables", |o| o.max_open_tables = 0),
        ];
        for (name, breaks) in cases {
            let mut o = EngineOptions::default();
            breaks(&mut o);
            match o.validate() {
                Err(Error::InvalidArgument { what, .. }) => assert_eq!(what, name),
                other => panic!("{name}: expected InvalidArgument, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_default_transaction_limit_admits_a_maximum_size_write() {
        let largest_op = batch::op_encoded_len(MAX_KEY_SIZE, Some(MAX_VALUE_SIZE), true);
        let default = EngineOptions::default().max_transaction_size;
        assert!(batch::HEADER_LEN + largest_op <= default);
        // ...and it is the smallest power of two that does (the reason it was chosen).
        assert!(batch::HEADER_LEN + largest_op > default / 2);
        assert!(default.is_power_of_two());
    }

    #[test]
    fn sizes_are_written_in_exact_binary_units() {
        let d = descriptors();
        let find = |n: &str| d.iter().find(|x| x.name == n).expect("described");
        assert_eq!(find("max_memtable_size").default, "64 MiB");
        assert_eq!(find("max_transaction_size").default, "512 MiB");
        assert_eq!(find("block_size").default, "4 KiB");
        assert_eq!(find("level_count").default, "7");
        assert_eq!(find("vlog_enabled").default, "off");
        assert_eq!(find("vlog_checksum").default, "Full");
        let range = find("level_size_ratio").range.clone().expect("ranged");
        assert_eq!(range.text(), "at least 2");
        assert_eq!(find("level_count").setter, Some("with_level_count"));
        assert_eq!(find("l0_stop_trigger").setter, None);
    }
}
