//! User-facing configuration: [`Options`] and the [`TreeBuilder`] that opens a [`Tree`].
//!
//! Every option is validated when the tree is built; a value out of range is an
//! [`Error::InvalidArgument`] naming the option, and nothing on disk is touched.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use strata_core::{Clock, EngineOptions, Error, RecoveryMode, Result};

use crate::dyn_fs::DynFs;
use crate::tree::Tree;

/// How values read from the value log are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum VLogChecksumLevel {
    /// Trust the value log (records are still checksummed when written).
    Disabled,
    /// Verify every value read from the value log.
    #[default]
    Full,
}

/// Everything a [`Tree`] can be configured with.
#[derive(Clone)]
pub struct Options {
    pub(crate) path: Option<PathBuf>,
    pub(crate) vfs: Option<DynFs>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) max_memtable_size: usize,
    pub(crate) block_size: usize,
    pub(crate) level_count: u8,
    pub(crate) enable_vlog: bool,
    pub(crate) vlog_max_file_size: u64,
    pub(crate) vlog_gc_discard_ratio: f64,
    pub(crate) vlog_checksum: VLogChecksumLevel,
    pub(crate) vlog_value_threshold: usize,
    pub(crate) versioning: bool,
    pub(crate) retention_ns: u64,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) wal_segment_size: u64,
    pub(crate) block_cache_capacity: usize,
    pub(crate) compaction_threads: usize,
    pub(crate) background_threads: bool,
    pub(crate) compression: bool,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) level_size_ratio: u64,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("path", &self.path)
            .field("custom_vfs", &self.vfs.is_some())
            .field("max_memtable_size", &self.max_memtable_size)
            .field("block_size", &self.block_size)
            .field("level_count", &self.level_count)
            .field("enable_vlog", &self.enable_vlog)
            .field("vlog_max_file_size", &self.vlog_max_file_size)
            .field("vlog_gc_discard_ratio", &self.vlog_gc_discard_ratio)
            .field("vlog_checksum", &self.vlog_checksum)
            .field("vlog_value_threshold", &self.vlog_value_threshold)
            .field("versioning", &self.versioning)
            .field("retention_ns", &self.retention_ns)
            .field("recovery_mode", &self.recovery_mode)
            .field("wal_segment_size", &self.wal_segment_size)
            .field("block_cache_capacity", &self.block_cache_capacity)
            .field("compaction_threads", &self.compaction_threads)
            .field("background_threads", &self.background_threads)
            .field("compression", &self.compression)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("level_size_ratio", &self.level_size_ratio)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        let engine = EngineOptions::default();
        Options {
            path: None,
            vfs: None,
            clock: None,
            max_memtable_size: engine.max_memtable_size,
            block_size: 4096,
            level_count: 7,
            enable_vlog: false,
            vlog_max_file_size: 256 * 1024 * 1024,
            vlog_gc_discard_ratio: 0.5,
            vlog_checksum: VLogChecksumLevel::Full,
            vlog_value_threshold: engine.vlog_value_threshold,
            versioning: false,
            retention_ns: 0,
            recovery_mode: engine.recovery_mode,
            wal_segment_size: engine.wal_segment_size,
            block_cache_capacity: engine.block_cache_bytes,
            compaction_threads: 1,
            background_threads: true,
            compression: engine.compression,
            bloom_bits_per_key: engine.bloom_bits_per_key,
            level_size_ratio: engine.level_size_ratio,
        }
    }
}

impl Options {
    /// Defaults: 64 MiB memtable, 4 KiB blocks, 7 levels, no value log, no versioning.
    pub fn new() -> Self {
        Self::default()
    }

    /// The database directory (created if missing).
    pub fn with_path(mut self, path: PathBuf) -> Self {
        self.path = Some(path);
        self
    }

    /// Runs the database on a custom [`strata_vfs::Vfs`] instead of a directory, for example
    /// an in-memory `MemFs` or a fault-injecting `FaultFs`. Takes precedence over the path.
    pub fn with_vfs<V>(mut self, vfs: V) -> Self
    where
        V: strata_vfs::Vfs + Send + Sync + 'static,
        V::Read: Send + Sync + 'static,
        V::Write: Send + 'static,
        V::Lock: Send + 'static,
    {
        self.vfs = Some(DynFs::new(vfs));
        self
    }

    /// The clock commit timestamps come from (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Memtable size at which it is flushed to a table (64 KiB to 4 GiB).
    pub fn with_max_memtable_size(mut self, bytes: usize) -> Self {
        self.max_memtable_size = bytes;
        self
    }

    /// Size of table data blocks (512 B to 1 MiB, a power of two is best).
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// Number of LSM levels (2 to 16).
    pub fn with_level_count(mut self, levels: u8) -> Self {
        self.level_count = levels;
        self
    }

    /// Keeps large values (see [`with_vlog_value_threshold`](Options::with_vlog_value_threshold))
    /// in a separate value log; the LSM tree holds small pointers to them, so compaction moves
    /// pointers instead of values. Space of overwritten values is reclaimed by garbage
    /// collection (in the background, or `Tree::run_vlog_gc`).
    pub fn with_enable_vlog(mut self, enable: bool) -> Self {
        self.enable_vlog = enable;
        self
    }

    /// Values of at least this many bytes go to the value log when it is enabled (1 byte to
    /// 256 MiB; default 4 KiB). Below about a page a pointer saves little compaction work but
    /// costs each read a second I/O; above it, rewriting values dominates compaction.
    pub fn with_vlog_value_threshold(mut self, bytes: usize) -> Self {
        self.vlog_value_threshold = bytes;
        self
    }

    /// Value-log file size at which a new file is started (1 MiB to 4 GiB).
    pub fn with_vlog_max_file_size(mut self, bytes: u64) -> Self {
        self.vlog_max_file_size = bytes;
        self
    }

    /// Fraction of dead bytes (0.0 to 1.0) at which a value-log file is collected.
    pub fn with_vlog_gc_discard_ratio(mut self, ratio: f64) -> Self {
        self.vlog_gc_discard_ratio = ratio;
        self
    }

    /// Whether values read from the value log are verified: `Full` (default) checks every
    /// record's checksum and reports a mismatch as `Error::Corruption` naming the file and
    /// offset; `Disabled` trusts the storage (records are still checksummed when written, and
    /// recovery and garbage collection always verify).
    pub fn with_vlog_checksum_verification(mut self, level: VLogChecksumLevel) -> Self {
        self.vlog_checksum = level;
        self
    }

    /// Keeps every version for time-travel reads. `retention_ns` is how long old versions are
    /// kept (0 keeps them forever): compaction drops versions with a timestamp older than now
    /// minus the retention (always keeping each key's newest version and whatever a live
    /// transaction can see), and time-travel reads older than that horizon fail with
    /// `Error::TimestampExpired` rather than show a history that compaction may have thinned.
    /// Turns the value log on, as versions make values pile up.
    pub fn with_versioning(mut self, enable: bool, retention_ns: u64) -> Self {
        self.versioning = enable;
        self.retention_ns = retention_ns;
        if enable {
            self.enable_vlog = true;
        }
        self
    }

    /// How damage in the write-ahead log is handled at open.
    pub fn with_wal_recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// WAL segment size at which a new segment is started (64 KiB to 4 GiB).
    pub fn with_wal_segment_size(mut self, bytes: u64) -> Self {
        self.wal_segment_size = bytes;
        self
    }

    /// Bytes of decoded table blocks kept in memory (default 64 MiB; 0 disables the cache).
    pub fn with_block_cache_capacity(mut self, bytes: usize) -> Self {
        self.block_cache_capacity = bytes;
        self
    }

    /// Number of background compaction threads (1 to 16, default 1). One flush thread always
    /// runs besides them.
    pub fn with_compaction_threads(mut self, threads: usize) -> Self {
        self.compaction_threads = threads;
        self
    }

    /// Compress table blocks, and values in the value log, with lz4 when it saves at least an
    /// eighth (default on).
    pub fn with_compression(mut self, enable: bool) -> Self {
        self.compression = enable;
        self
    }

    /// Run flushes and compactions on background threads (default). With `false` no thread is
    /// started: the commit path runs them itself when memtables or level-0 files pile up, and
    /// `Tree::maintenance_step` runs them on demand. Deterministic; suits single-core devices.
    pub fn with_background_threads(mut self, enable: bool) -> Self {
        self.background_threads = enable;
        self
    }

    /// Bloom filter bits per key (1 to 64, default 10: about 1% false positives).
    pub fn with_bloom_bits_per_key(mut self, bits: u32) -> Self {
        self.bloom_bits_per_key = bits;
        self
    }

    /// Size ratio between adjacent levels (at least 2, default 10).
    pub fn with_level_size_ratio(mut self, ratio: u64) -> Self {
        self.level_size_ratio = ratio;
        self
    }

    /// Checks every option; the first one out of range is reported.
    pub fn validate(&self) -> Result<()> {
        if self.path.is_none() && self.vfs.is_none() {
            return Err(Error::invalid("path", "must be set with with_path"));
        }
        if !(512..=1024 * 1024).contains(&self.block_size) {
            return Err(Error::invalid("block_size", "must be between 512 B and 1 MiB"));
        }
        if !(2..=16).contains(&self.level_count) {
            return Err(Error::invalid("level_count", "must be between 2 and 16"));
        }
        if !(1..=16).contains(&self.compaction_threads) {
            return Err(Error::invalid("compaction_threads", "must be between 1 and 16"));
        }
        if !(1024 * 1024..=4 * 1024 * 1024 * 1024).contains(&self.vlog_max_file_size) {
            return Err(Error::invalid("vlog_max_file_size", "must be between 1 MiB and 4 GiB"));
        }
        if !(0.0..=1.0).contains(&self.vlog_gc_discard_ratio) {
            return Err(Error::invalid("vlog_gc_discard_ratio", "must be between 0.0 and 1.0"));
        }
        self.engine_options().validate()
    }

    pub(crate) fn engine_options(&self) -> EngineOptions {
        let mut e = EngineOptions::default();
        e.recovery_mode = self.recovery_mode;
        e.wal_segment_size = self.wal_segment_size;
        e.max_memtable_size = self.max_memtable_size;
        e.versioning = self.versioning;
        e.retention_ns = self.retention_ns;
        e.level_count = usize::from(self.level_count);
        e.block_size = self.block_size;
        e.block_cache_bytes = self.block_cache_capacity;
        e.compression = self.compression;
        e.bloom_bits_per_key = self.bloom_bits_per_key;
        e.level_size_ratio = self.level_size_ratio;
        e.vlog_enabled = self.enable_vlog;
        e.vlog_value_threshold = self.vlog_value_threshold;
        e.vlog_max_file_size = self.vlog_max_file_size;
        e.vlog_gc_discard_ratio = self.vlog_gc_discard_ratio;
        e.vlog_verify_checksums = self.vlog_checksum == VLogChecksumLevel::Full;
        // Small memtables (tests, devices) get proportionally small levels and files, so the
        // tree keeps its shape instead of piling everything into level 0.
        let memtable = self.max_memtable_size as u64;
        e.target_file_size = memtable.clamp(64 * 1024, 64 * 1024 * 1024);
        e.base_level_bytes = (memtable * 4).clamp(e.target_file_size, 256 * 1024 * 1024);
        e
    }
}

/// Builds a [`Tree`]: set options, then [`build`](TreeBuilder::build).
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    opts: Options,
}

impl TreeBuilder {
    /// A builder with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder starting from `opts`.
    pub fn with_options(opts: Options) -> Self {
        TreeBuilder { opts }
    }

    /// See [`Options::with_path`].
    pub fn with_path(mut self, path: PathBuf) -> Self {
        self.opts = self.opts.with_path(path);
        self
    }

    /// See [`Options::with_vfs`].
    pub fn with_vfs<V>(mut self, vfs: V) -> Self
    where
        V: strata_vfs::Vfs + Send + Sync + 'static,
        V::Read: Send + Sync + 'static,
        V::Write: Send + 'static,
        V::Lock: Send + 'static,
    {
        self.opts = self.opts.with_vfs(vfs);
        self
    }

    /// See [`Options::with_clock`].
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.opts = self.opts.with_clock(clock);
        self
    }

    /// See [`Options::with_max_memtable_size`].
    pub fn with_max_memtable_size(mut self, bytes: usize) -> Self {
        self.opts = self.opts.with_max_memtable_size(bytes);
        self
    }

    /// See [`Options::with_block_size`].
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.opts = self.opts.with_block_size(bytes);
        self
    }

    /// See [`Options::with_level_count`].
    pub fn with_level_count(mut self, levels: u8) -> Self {
        self.opts = self.opts.with_level_count(levels);
        self
    }

    /// See [`Options::with_enable_vlog`].
    pub fn with_enable_vlog(mut self, enable: bool) -> Self {
        self.opts = self.opts.with_enable_vlog(enable);
        self
    }

    /// See [`Options::with_vlog_value_threshold`].
    pub fn with_vlog_value_threshold(mut self, bytes: usize) -> Self {
        self.opts = self.opts.with_vlog_value_threshold(bytes);
        self
    }

    /// See [`Options::with_vlog_max_file_size`].
    pub fn with_vlog_max_file_size(mut self, bytes: u64) -> Self {
        self.opts = self.opts.with_vlog_max_file_size(bytes);
        self
    }

    /// See [`Options::with_vlog_gc_discard_ratio`].
    pub fn with_vlog_gc_discard_ratio(mut self, ratio: f64) -> Self {
        self.opts = self.opts.with_vlog_gc_discard_ratio(ratio);
        self
    }

    /// See [`Options::with_vlog_checksum_verification`].
    pub fn with_vlog_checksum_verification(mut self, level: VLogChecksumLevel) -> Self {
        self.opts = self.opts.with_vlog_checksum_verification(level);
        self
    }

    /// See [`Options::with_versioning`].
    pub fn with_versioning(mut self, enable: bool, retention_ns: u64) -> Self {
        self.opts = self.opts.with_versioning(enable, retention_ns);
        self
    }

    /// See [`Options::with_wal_recovery_mode`].
    pub fn with_wal_recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.opts = self.opts.with_wal_recovery_mode(mode);
        self
    }

    /// See [`Options::with_wal_segment_size`].
    pub fn with_wal_segment_size(mut self, bytes: u64) -> Self {
        self.opts = self.opts.with_wal_segment_size(bytes);
        self
    }

    /// See [`Options::with_block_cache_capacity`].
    pub fn with_block_cache_capacity(mut self, bytes: usize) -> Self {
        self.opts = self.opts.with_block_cache_capacity(bytes);
        self
    }

    /// See [`Options::with_compaction_threads`].
    pub fn with_compaction_threads(mut self, threads: usize) -> Self {
        self.opts = self.opts.with_compaction_threads(threads);
        self
    }

    /// See [`Options::with_background_threads`].
    pub fn with_background_threads(mut self, enable: bool) -> Self {
        self.opts = self.opts.with_background_threads(enable);
        self
    }

    /// See [`Options::with_compression`].
    pub fn with_compression(mut self, enable: bool) -> Self {
        self.opts = self.opts.with_compression(enable);
        self
    }

    /// See [`Options::with_bloom_bits_per_key`].
    pub fn with_bloom_bits_per_key(mut self, bits: u32) -> Self {
        self.opts = self.opts.with_bloom_bits_per_key(bits);
        self
    }

    /// See [`Options::with_level_size_ratio`].
    pub fn with_level_size_ratio(mut self, ratio: u64) -> Self {
        self.opts = self.opts.with_level_size_ratio(ratio);
        self
    }

    /// Validates the options and opens (or creates) the database, recovering every committed
    /// transaction. Needs no async runtime.
    pub fn build(self) -> Result<Tree> {
        Tree::open(self.opts)
    }

    /// Opens an existing database for reading only: only [`Mode::ReadOnly`] transactions can
    /// begin, and every write-side call (`flush`, `maintenance_step`, `run_vlog_gc`,
    /// `restore_from_checkpoint`) returns [`Error::InvalidArgument`]. Checkpoints can be taken.
    ///
    /// Nothing on disk changes: the directory must exist and hold a database (`CURRENT`), or
    /// the open fails with [`Error::Io`] (`NotFound`) and creates nothing; recovery runs as
    /// usual, but the files it would write (a WAL segment, a manifest) live in memory and
    /// vanish at close (see [`ReadOnlyFs`](crate::fs::ReadOnlyFs)). Instead of the exclusive
    /// directory lock it takes a shared one: any number of read-only opens coexist, and
    /// neither kind of open succeeds ([`Error::Locked`]) while the other holds the database.
    /// The options must match the database (level count, versioning) as for
    /// [`build`](Self::build); a custom filesystem ([`with_vfs`](Self::with_vfs)) is refused.
    /// Background threads are not started.
    ///
    /// [`Mode::ReadOnly`]: strata_core::Mode::ReadOnly
    pub fn build_read_only(self) -> Result<Tree> {
        Tree::open_read_only(self.opts)
    }
}
