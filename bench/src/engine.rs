//! The engine trait every peer implements, and the settings a workload opens an engine with.

use std::path::Path;

/// Errors from any engine, carried as text plus source: the harness only reports them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// The two configurations every comparison runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Profile {
    /// Each engine exactly as its builder leaves it (plus "create if missing").
    Default,
    /// Each engine's read cache set to the same budget ([`EQUAL_CACHE_BYTES`]).
    EqualCache,
}

/// The cache budget of [`Profile::EqualCache`]: 64 MiB of block (or page, or object) cache.
pub const EQUAL_CACHE_BYTES: usize = 64 << 20;

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::EqualCache => "cache64",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Profile::Default),
            "cache64" => Some(Profile::EqualCache),
            _ => None,
        }
    }

    /// The cache size to configure, or `None` to leave the engine's default.
    pub fn cache_bytes(self) -> Option<usize> {
        match self {
            Profile::Default => None,
            Profile::EqualCache => Some(EQUAL_CACHE_BYTES),
        }
    }
}

/// How a workload wants the engine opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenSpec {
    pub profile: Profile,
    /// The workload writes values of several KiB: Strata turns its value log on (the peers
    /// keep their defaults, as in the comparison).
    pub large_values: bool,
    /// The workload reads old versions by timestamp: the engine keeps every version.
    pub versioned: bool,
}

/// One open database. Shared by reference across the reader and committer threads, so every
/// method takes `&self`; each engine does its own locking.
pub trait Engine: Send + Sync {
    /// Writes `pairs` atomically (one commit, transaction or batch), and returns once they are
    /// on stable storage if `sync`, otherwise once the engine has accepted them (in the
    /// operating system's buffers for engines with a log).
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()>;

    /// Writes `pairs` as versions stamped `ts` (time-travel workloads). Engines without
    /// versions do not implement it.
    fn write_at(&self, _pairs: &[(&[u8], &[u8])], _ts: u64) -> Result<()> {
        Err("this engine has no versioned writes".into())
    }

    /// A reader for one thread: engines with snapshots take one here and keep it for every
    /// read the reader makes.
    fn reader(&self) -> Result<Box<dyn Reader + '_>>;

    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;

    /// Closes the database cleanly (the engine's own close, where it has one).
    fn close(self: Box<Self>) -> Result<()>;
}

/// Reads on one thread. Values are handed to a visitor as borrowed slices, so an engine that
/// can return a value without copying is not charged for a copy.
pub trait Reader {
    /// Looks `key` up; calls `visit` with the value if present and returns whether it was.
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool>;

    /// The value `key` had at timestamp `ts` (time-travel workloads).
    fn get_at(&mut self, _key: &[u8], _ts: u64, _visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        Err("this engine has no time-travel reads".into())
    }

    /// Visits pairs in key order from `start` (inclusive; `None` for the first key), at most
    /// `limit` of them (`None`: to the end). Returns how many it visited.
    fn scan(
        &mut self,
        start: Option<&[u8]>,
        limit: Option<usize>,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize>;
}

/// Every engine the harness knows, in the order runs rotate through and tables list them;
/// [`compiled_engines`] is the part of it this build has.
pub const ALL_ENGINES: &[&str] = &["strata", "rocksdb", "fjall", "surrealkv", "redb", "sled"];

/// Which engines this build has, by name, in the order of [`ALL_ENGINES`].
#[allow(clippy::vec_init_then_push)] // each push is behind its own feature
pub fn compiled_engines() -> Vec<&'static str> {
    #[allow(unused_mut)] // a build with no engine pushes nothing
    let mut v = Vec::new();
    #[cfg(feature = "strata")]
    v.push("strata");
    #[cfg(feature = "rocksdb")]
    v.push("rocksdb");
    #[cfg(feature = "fjall")]
    v.push("fjall");
    #[cfg(feature = "surrealkv")]
    v.push("surrealkv");
    #[cfg(feature = "redb")]
    v.push("redb");
    #[cfg(feature = "sled")]
    v.push("sled");
    v
}

/// Whether `engine` can run a workload that needs versioned reads.
pub fn has_time_travel(engine: &str) -> bool {
    matches!(engine, "strata" | "surrealkv")
}

/// Opens (creating if needed) the database of `engine` in `dir`.
pub fn open(engine: &str, dir: &Path, spec: OpenSpec) -> Result<Box<dyn Engine>> {
    let _ = (dir, spec);
    match engine {
        #[cfg(feature = "strata")]
        "strata" => Ok(Box::new(crate::engines::strata::StrataEngine::open(dir, spec)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(crate::engines::rocksdb::RocksEngine::open(dir, spec)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(crate::engines::fjall::FjallEngine::open(dir, spec)?)),
        #[cfg(feature = "surrealkv")]
        "surrealkv" => Ok(Box::new(crate::engines::surrealkv::SurrealEngine::open(dir, spec)?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(crate::engines::redb::RedbEngine::open(dir, spec)?)),
        #[cfg(feature = "sled")]
        "sled" => Ok(Box::new(crate::engines::sled::SledEngine::open(dir, spec)?)),
        other => Err(format!("engine {other:?} is not compiled into this build").into()),
    }
}
