//! User-facing configuration: [`Options`] and the [`TreeBuilder`] that opens a [`Tree`].
//!
//! Every option is validated when the tree is built; a value out of range is an
//! [`Error::InvalidArgument`] naming the option, and nothing on disk is touched.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use strata_core::{Clock, EngineOptions, Error, Isolation, Result};

use crate::dyn_fs::DynFs;
use crate::tree::Tree;

/// Everything a [`Tree`] can be configured with: where it lives (a path or a custom
/// filesystem), the clock, and the engine's options.
///
/// Each `with_*` method that sets one engine option is generated from that option's entry in
/// the option table (`core/src/options/table.rs`), together with its default, its range check
/// and its line in the README; [`TreeBuilder`] has the same methods.
#[derive(Clone, Default)]
pub struct Options {
    pub(crate) path: Option<PathBuf>,
    pub(crate) vfs: Option<DynFs>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) engine: EngineOptions,
    /// The isolation level transactions begin with (a host setting, not an engine option).
    pub(crate) isolation: Isolation,
    pub(crate) encryption: Option<crate::encryption::Encryption>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("path", &self.path)
            .field("custom_vfs", &self.vfs.is_some())
            .field("engine", &self.engine)
            .field("isolation", &self.isolation)
            .field("encryption", &self.encryption.is_some())
            .finish()
    }
}

/// The generator the host feeds the option table to: for each entry with a `setter`, a
/// method on [`Options`] that sets the engine field (through the entry's conversion, if any)
/// and a [`TreeBuilder`] method that forwards to it.
macro_rules! option_setters {
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
        impl Options {
            $(
                option_setters! {
                    @method [$($doc),+] $field $(, valid $rule)?
                    $(, setter $setter($arg: $arg_ty) $(=> $conv)?)?
                }
            )*
        }

        impl TreeBuilder {
            $( option_setters! { @forward $(, setter $setter($arg: $arg_ty))? } )*
        }
    };
    // An entry without a generated setter (internal, or written by hand): nothing.
    (@method [$($doc:literal),+] $field:ident $(, valid $rule:literal)?) => {};
    (@forward) => {};
    (
        @method [$($doc:literal),+] $field:ident $(, valid $rule:literal)?,
        setter $setter:ident ($arg:ident : $arg_ty:ty) $(=> $conv:expr)?
    ) => {
        $(#[doc = $doc])+
        #[doc = ""]
        #[doc = concat!(
            "Sets the engine option `", stringify!($field),
            "`; its default is in the README's option table."
        )]
        $(#[doc = concat!(
            "A value out of range (it ", $rule, ") makes `build` fail with ",
            "`Error::InvalidArgument` naming `", stringify!($field), "`."
        )])?
        pub fn $setter(mut self, $arg: $arg_ty) -> Self {
            self.engine.$field = option_setters!(@value $arg $(, $conv)?);
            self
        }
    };
    (@forward, setter $setter:ident ($arg:ident : $arg_ty:ty)) => {
        #[doc = concat!("See [`Options::", stringify!($setter), "`].")]
        pub fn $setter(mut self, $arg: $arg_ty) -> Self {
            self.opts = self.opts.$setter($arg);
            self
        }
    };
    (@value $arg:ident) => { $arg };
    (@value $arg:ident, $conv:expr) => { $conv };
}

strata_core::engine_option_table!(option_setters {});

impl Options {
    /// Defaults: 64 MiB memtable, 4 KiB blocks, 7 levels, no value log, no versioning (the
    /// option table has every default).
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

    /// The isolation level every transaction begins with (default: [`Isolation::Snapshot`]);
    /// [`Transaction::set_isolation`](crate::Transaction::set_isolation) changes it for one.
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Keeps every version for time-travel reads. `retention_ns` is how long old versions are
    /// kept (0 keeps them forever): compaction drops versions with a timestamp older than now
    /// minus the retention (always keeping each key's newest version and whatever a live
    /// transaction can see), and time-travel reads older than that horizon fail with
    /// `Error::TimestampExpired` rather than show a history that compaction may have thinned.
    /// Turns the value log on, as versions make values pile up.
    pub fn with_versioning(mut self, enable: bool, retention_ns: u64) -> Self {
        self.engine.versioning = enable;
        self.engine.retention_ns = retention_ns;
        if enable {
            self.engine.vlog_enabled = true;
        }
        self
    }

    /// Checks every option; the first one out of range is reported.
    pub fn validate(&self) -> Result<()> {
        if self.path.is_none() && self.vfs.is_none() {
            return Err(Error::invalid("path", "must be set with with_path"));
        }
        self.engine_options().validate()
    }

    /// The engine's options, with the sizes the builder does not expose derived from the
    /// memtable size.
    pub(crate) fn engine_options(&self) -> EngineOptions {
        let mut e = self.engine.clone();
        // Small memtables (tests, devices) get proportionally small levels and files, so the
        // tree keeps its shape instead of piling everything into level 0.
        let memtable = self.engine.max_memtable_size as u64;
        e.target_file_size = memtable.clamp(64 * 1024, 64 * 1024 * 1024);
        e.base_level_bytes = (memtable * 4).clamp(e.target_file_size, 256 * 1024 * 1024);
        e
    }
}

/// Builds a [`Tree`]: set options, then [`build`](TreeBuilder::build).
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    pub(crate) opts: Options,
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

    /// See [`Options::with_isolation`].
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.opts = self.opts.with_isolation(isolation);
        self
    }

    /// See [`Options::with_versioning`].
    pub fn with_versioning(mut self, enable: bool, retention_ns: u64) -> Self {
        self.opts = self.opts.with_versioning(enable, retention_ns);
        self
    }

    /// Validates the options and opens (or creates) the database, recovering every committed
    /// transaction. Needs no async runtime.
    pub fn build(self) -> Result<Tree> {
        Tree::open(self.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::RecoveryMode;
    use strata_core::options::VLogChecksumLevel;

    /// Every `with_*` method the builder had before the option table keeps its signature and
    /// sets what it always set (the argument types are spelled out so a changed signature
    /// fails to compile).
    #[test]
    fn every_builder_method_keeps_its_signature_and_sets_its_option() {
        let (memtable, block, levels): (usize, usize, u8) = (1 << 20, 8192, 5);
        let (threshold, vlog_file, ratio): (usize, u64, f64) = (100, 2 << 20, 0.25);
        let (segment, cache, threads, bits, size_ratio, txn): (u64, usize, usize, u32, u64, usize) =
            (1 << 20, 0, 3, 12, 8, 1 << 20);
        let b = TreeBuilder::new()
            .with_path(PathBuf::from("unused"))
            .with_max_memtable_size(memtable)
            .with_block_size(block)
            .with_level_count(levels)
            .with_enable_vlog(true)
            .with_vlog_value_threshold(threshold)
            .with_vlog_max_file_size(vlog_file)
            .with_vlog_gc_discard_ratio(ratio)
            .with_vlog_checksum_verification(VLogChecksumLevel::Disabled)
            .with_versioning(true, 99)
            .with_wal_recovery_mode(RecoveryMode::PointInTime)
            .with_wal_segment_size(segment)
            .with_block_cache_capacity(cache)
            .with_compaction_threads(threads)
            .with_background_threads(false)
            .with_compression(false)
            .with_bloom_bits_per_key(bits)
            .with_level_size_ratio(size_ratio)
            .with_max_transaction_size(txn);
        let e = &b.opts.engine;
        assert_eq!(e.max_memtable_size, memtable);
        assert_eq!(e.block_size, block);
        assert_eq!(e.level_count, 5);
        assert!(e.vlog_enabled);
        assert_eq!(e.vlog_value_threshold, threshold);
        assert_eq!(e.vlog_max_file_size, vlog_file);
        assert_eq!(e.vlog_gc_discard_ratio, ratio);
        assert_eq!(e.vlog_checksum, VLogChecksumLevel::Disabled);
        assert!(!e.vlog_verify_checksums());
        assert!(e.versioning);
        assert_eq!(e.retention_ns, 99);
        assert_eq!(e.recovery_mode, RecoveryMode::PointInTime);
        assert_eq!(e.wal_segment_size, segment);
        assert_eq!(e.block_cache_bytes, cache);
        assert_eq!(e.compaction_threads, threads);
        assert!(!e.background_threads);
        assert!(!e.compression);
        assert_eq!(e.bloom_bits_per_key, bits);
        assert_eq!(e.level_size_ratio, size_ratio);
        assert_eq!(e.max_transaction_size, txn);
        b.opts.validate().expect("all in range");
        // Options has the same methods.
        let o = Options::new().with_level_count(levels).with_max_transaction_size(txn);
        assert_eq!((o.engine.level_count, o.engine.max_transaction_size), (5, txn));
    }

    #[test]
    fn versioning_turns_the_value_log_on() {
        let o = Options::new().with_versioning(true, 0);
        assert!(o.engine.vlog_enabled && o.engine.versioning);
    }
}
