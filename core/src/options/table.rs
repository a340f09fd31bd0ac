//! The option table: the one definition of every option (name, type, default, valid range,
//! builder method, documentation).
//!
//! [`engine_option_table!`](crate::engine_option_table) hands the table to a *generator* macro,
//! so every place that needs the options is produced from this one list:
//!
//! - in this crate, `define_engine_options!` (`options/define.rs`) makes the fields of
//!   [`EngineOptions`](crate::EngineOptions), its `Default`, the range checks of `validate`, and
//!   [`descriptors`](crate::options::descriptors) (the list the README's option table is
//!   checked against);
//! - in the host (`strata`), the generator makes the `with_*` methods of `Options` and
//!   `TreeBuilder`.
//!
//! A new option is one entry here; nothing else can drift.
//!
//! # Entry syntax
//!
//! ```text
//! /// First line: the summary the README shows.
//! /// More lines: detail for the API docs.
//! field: Type = default_expr, Unit
//!     [, valid lo, hi, "must be ..."]           range check on the value widened to u64/f64
//!     [, setter with_name(arg: ArgType) [=> conversion_expr]]   generated builder method
//!     [, custom with_name]                      builder method written by hand in the host
//! ;
//! ```
//!
//! An entry with neither `setter` nor `custom` is internal: the engine uses it, users cannot
//! set it through the builder, and the README does not list it. The `valid` rule text is what
//! `Error::InvalidArgument` reports; a test checks that it says exactly what the bounds are.
//! Defaults and bounds may use the names in scope of `core/src/options/mod.rs` (they are only
//! expanded there); setter argument types and conversions use `$crate` paths because the host
//! expands them.

/// Hands the option table to the generator macro `$callback`, after the tokens in braces.
/// See `core/src/options/table.rs` for the entry syntax.
#[macro_export]
#[doc(hidden)]
macro_rules! engine_option_table {
    ($callback:ident { $($extra:tt)* }) => {
        $callback! {
            { $($extra)* }

            /// Memtable size at which it is flushed to a table.
            max_memtable_size: usize = usize_of(64 * MIB), Bytes,
                valid 64 * KIB, 4 * GIB, "must be between 64 KiB and 4 GiB",
                setter with_max_memtable_size(bytes: usize);

            /// Size of table data blocks (a power of two is best).
            block_size: usize = 4096, Bytes,
                valid 512, MIB, "must be between 512 B and 1 MiB",
                setter with_block_size(bytes: usize);

            /// Number of LSM levels, level 0 included.
            level_count: usize = 7, Count,
                valid 2, 16, "must be between 2 and 16",
                setter with_level_count(levels: u8) => usize::from(levels);

            /// Keep large values in a separate value log, with pointers in the tree.
            ///
            /// Values of at least `vlog_value_threshold` bytes go to the log, so compaction
            /// moves small pointers instead of values. Space of overwritten values is
            /// reclaimed by garbage collection (in the background, or `Tree::run_vlog_gc`).
            vlog_enabled: bool = false, Flag,
                setter with_enable_vlog(enable: bool);

            /// Values of at least this many bytes go to the value log (when it is enabled).
            ///
            /// Why 4 KiB: below about a page, a pointer (~10 bytes) saves little compaction
            /// work but costs every read a second random I/O; from a page up, compaction
            /// rewriting values dominates and separating them pays (WiscKey, Titan and
            /// RocksDB's BlobDB report the crossover in the 1-4 KiB range on SSDs).
            vlog_value_threshold: usize = 4096, Bytes,
                valid 1, MAX_VALUE_SIZE as u64, "must be between 1 B and 256 MiB",
                setter with_vlog_value_threshold(bytes: usize);

            /// Compress value-log values with lz4 when it saves an eighth.
            ///
            /// Why off (since 2026-12-05; before, `compression` covered the log too): a value
            /// in the log is read whole on every read, and decompressing a 64 KiB value was
            /// half of its read. Stored raw, reads of 64 KiB values ran 2.1x faster and of
            /// 8 KiB values 1.4x, fills 3% and 11% slower, for twice the disk when the values
            /// compress 2:1 (`docs/performance.md`, "Value log: values stored raw by
            /// default"). Large values are often compressed already (media, archives), and
            /// RocksDB's BlobDB and Badger store them raw by default too. Turn it on when large
            /// values compress well and disk matters more than read speed.
            vlog_compression: bool = false, Flag,
                setter with_vlog_compression(enable: bool);

            /// Value-log file size at which a new file is started.
            vlog_max_file_size: u64 = 256 * MIB, Bytes,
                valid MIB, 4 * GIB, "must be between 1 MiB and 4 GiB",
                setter with_vlog_max_file_size(bytes: u64);

            /// Fraction of dead bytes at which a value-log file is collected.
            vlog_gc_discard_ratio: f64 = 0.5, Ratio,
                valid 0.0, 1.0, "must be between 0.0 and 1.0",
                setter with_vlog_gc_discard_ratio(ratio: f64);

            /// How values read from the value log are verified.
            ///
            /// `Full` checks every record's checksum and reports a mismatch as
            /// `Error::Corruption` naming the file and offset; `Disabled` trusts the storage
            /// (records are still checksummed when written, and recovery and garbage
            /// collection always verify).
            vlog_checksum: $crate::options::VLogChecksumLevel =
                $crate::options::VLogChecksumLevel::Full, Choice,
                setter with_vlog_checksum_verification(level: $crate::options::VLogChecksumLevel);

            /// Keep every version for time-travel reads (turns the value log on).
            ///
            /// Set together with `retention_ns` by `with_versioning(enable, retention_ns)`.
            versioning: bool = false, Flag,
                custom with_versioning;

            /// With versioning, how long old versions are kept (0 keeps them forever).
            ///
            /// Compaction drops versions with a timestamp older than now minus the retention
            /// (always keeping each key's newest version and whatever a live transaction can
            /// see), and time-travel reads older than that horizon fail with
            /// `Error::TimestampExpired` rather than show a history compaction may have
            /// thinned.
            retention_ns: u64 = 0, Nanos,
                custom with_versioning;

            /// How damage in the write-ahead log is handled at open.
            recovery_mode: $crate::wal::RecoveryMode = $crate::wal::RecoveryMode::TolerateTornTail,
                Choice,
                setter with_wal_recovery_mode(mode: $crate::wal::RecoveryMode);

            /// WAL segment size at which a new segment is started.
            wal_segment_size: u64 = 64 * MIB, Bytes,
                valid 64 * KIB, 4 * GIB, "must be between 64 KiB and 4 GiB",
                setter with_wal_segment_size(bytes: u64);

            /// Largest transaction, in bytes of its encoded write batch.
            ///
            /// A write (`set`, `set_at_version`, `delete`) that would make the transaction's
            /// batch larger fails with `Error::TransactionTooLarge`, and the transaction keeps
            /// its earlier writes. A transaction is buffered in memory, encoded into one WAL
            /// record and inserted into the memtable whole, so this bounds what one commit
            /// holds in memory and how far it can push a memtable past its size. Why 512 MiB:
            /// it is the smallest power of two that admits one maximum-size value (256 MiB)
            /// with a maximum-size key and the batch framing, so every write the key and value
            /// limits accept can be committed.
            max_transaction_size: usize = usize_of(512 * MIB), Bytes,
                valid 64 * KIB, 4 * GIB, "must be between 64 KiB and 4 GiB",
                setter with_max_transaction_size(bytes: usize);

            /// Bytes of table blocks and often-read value-log values kept in memory (0: none).
            ///
            /// A ceiling, not a reservation: the cache holds only blocks that were read. Why
            /// 256 MiB (64 MiB until 2026-12-05): a database of 1,000,000 small keys decodes to
            /// about 130 MiB of blocks, and with 64 MiB half of all point reads missed and
            /// paid a read, a checksum and a decompression (2x slower point reads, 1.5x slower
            /// short scans, `docs/performance.md`); the engines users weigh Strata against
            /// default to 8 MiB (RocksDB, which leans on the OS page cache) up to 512 MiB
            /// (sled) and 1 GiB (redb). Devices and memory-tight hosts set it lower.
            block_cache_bytes: usize = usize_of(256 * MIB), Bytes,
                setter with_block_cache_capacity(bytes: usize);

            /// Number of background compaction threads the host runs.
            ///
            /// One flush thread always runs besides them. The core never starts a thread; this
            /// is read by the host.
            compaction_threads: usize = 1, Count,
                valid 1, 16, "must be between 1 and 16",
                setter with_compaction_threads(threads: usize);

            /// Run flushes and compactions on background threads.
            ///
            /// With `false` no thread is started: the commit path runs them itself when
            /// memtables or level-0 files pile up, and `Tree::maintenance_step` runs them on
            /// demand. Deterministic; suits single-core devices. Read by the host.
            background_threads: bool = true, Flag,
                setter with_background_threads(enable: bool);

            /// Compress table blocks with lz4 when it saves an eighth.
            ///
            /// Value-log values have their own switch, `vlog_compression`.
            compression: bool = true, Flag,
                setter with_compression(enable: bool);

            /// Bloom filter bits per key (10 gives about 1% false positives).
            bloom_bits_per_key: u32 = 10, Count,
                valid 1, 64, "must be between 1 and 64",
                setter with_bloom_bits_per_key(bits: u32);

            /// Size ratio between adjacent levels.
            level_size_ratio: u64 = 10, Count,
                valid 2, u64::MAX, "must be at least 2",
                setter with_level_size_ratio(ratio: u64);

            /// Open table files kept in the table cache.
            max_open_tables: usize = 512, Count,
                valid 1, u64::MAX, "must be at least 1";

            /// L0 file count that triggers an L0 to L1 compaction.
            l0_compaction_trigger: usize = 4, Count,
                valid 1, u64::MAX, "must be at least 1";

            /// L0 file count at which writers wait for compaction (more than the trigger).
            l0_stop_trigger: usize = 20, Count;

            /// Immutable memtables waiting for flush at which writers wait.
            max_immutable_memtables: usize = 4, Count,
                valid 1, u64::MAX, "must be at least 1";

            /// Target size of L1; each deeper level is `level_size_ratio` times larger.
            base_level_bytes: u64 = 256 * MIB, Bytes;

            /// Target size of compaction output files (at most the L1 target).
            target_file_size: u64 = 64 * MIB, Bytes,
                valid 64 * KIB, u64::MAX, "must be at least 64 KiB";

            /// A manifest larger than this is rewritten from a snapshot of the current version.
            max_manifest_size: u64 = 4 * MIB, Bytes;
        }
    };
}
