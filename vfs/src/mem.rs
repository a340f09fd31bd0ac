//! [`MemFs`]: an in-memory filesystem that simulates power cuts.
//!
//! It is a crash simulator, not a map of byte vectors. Files are inodes holding their bytes and
//! how many of them were synced; the directory exists twice, as the process sees it (live) and
//! as of the last [`Vfs::sync_dir`] (durable), with the log of creates, renames, removes and
//! links in between. [`MemFs::crash`] turns that into the image a power cut would leave, under
//! a [`CrashPolicy`] and a seed, so a failure reproduces exactly.

mod handles;
pub(crate) mod rng;
mod state;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

pub use handles::{MemFile, MemLock, MemWriter};
use state::{State, validate_name};

use crate::sync::{Mutex, MutexGuard};
use crate::{Caps, Error, ErrorKind, FileKind, Result, Vfs};

/// The sector size of [`MemFs::new`].
const DEFAULT_SECTOR_SIZE: u32 = 512;

/// What a simulated power cut does to data and directory changes that were not made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPolicy {
    /// Everything unsynced is lost: unsynced file tails and every directory change since the
    /// last `sync_dir`. The most common outcome.
    DropUnsynced,
    /// Everything unsynced made it to the medium anyway.
    KeepUnsynced,
    /// A prefix of the pending directory changes persists; each unsynced file tail is kept up
    /// to a random sector boundary, plus a random part of the next sector.
    TornTail,
    /// A prefix of the pending directory changes persists; each unsynced file tail is kept up
    /// to a random sector boundary and the rest of it is random bytes (the file keeps its
    /// length).
    GarbageTail,
}

impl CrashPolicy {
    /// Every policy, for tests that loop over them.
    pub const ALL: [CrashPolicy; 4] = [
        CrashPolicy::DropUnsynced,
        CrashPolicy::KeepUnsynced,
        CrashPolicy::TornTail,
        CrashPolicy::GarbageTail,
    ];
}

/// An in-memory crash-simulating filesystem: one flat directory.
///
/// Files are inodes holding their bytes and how many of them were synced; the directory exists
/// twice, as the process sees it (live) and as of the last [`Vfs::sync_dir`] (durable), with the
/// ordered log of creates, renames, removes and links in between. Handles refer to inodes, so a
/// removed file's handles keep working, and its data comes back after a crash if the removal
/// was not made durable.
///
/// Clones share the same directory (and its locks, counters and armed crash); it is `Send` and
/// `Sync`. [`MemFs::crash`] produces an independent image, deterministically from a seed.
///
/// ## What survives a crash
///
/// - Bytes appended to a file survive only once [`AppendWrite::sync`](crate::AppendWrite::sync) returned `Ok`; the
///   unsynced tail is dropped, kept, torn at a sector boundary or replaced by garbage.
/// - Space reserved with [`AppendWrite::reserve`](crate::AppendWrite::reserve) reads as zeros
///   past the appended bytes; a crash keeps the file at least as long as it was at its last
///   sync (zeros where nothing durable was written), and an unsynced reservation like
///   unsynced data: dropped, kept, or either under the torn and garbage policies.
/// - Directory changes survive only once [`Vfs::sync_dir`] returned `Ok`; the unsynced ones are
///   persisted in order (like a journaling filesystem's metadata): none, all, or a prefix.
/// - [`AppendWrite::flush`](crate::AppendWrite::flush) changes nothing about durability: there is no cache between the
///   process and the simulated disk, so flushed-but-unsynced bytes are as fragile as any.
/// - Locks never survive.
#[derive(Clone)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
    sector: u32,
}

impl MemFs {
    /// An empty filesystem with 512-byte sectors.
    pub fn new() -> Self {
        Self::with_sector_size(DEFAULT_SECTOR_SIZE)
    }

    /// An empty filesystem with the given sector size (the granularity of torn writes); 0 is
    /// taken as 1.
    pub fn with_sector_size(sector: u32) -> Self {
        Self::from_state(State::new(sector.max(1)))
    }

    fn from_state(state: State) -> Self {
        let sector = state.sector;
        MemFs { state: Arc::new(Mutex::new(state)), sector }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The state, or the power-cut error once an armed crash has fired.
    fn live_state(&self) -> Result<MutexGuard<'_, State>> {
        let st = self.state.lock();
        st.alive()?;
        Ok(st)
    }

    /// The image a power cut would leave now, as a new independent MemFs (sync count 0, no
    /// locks held, nothing armed). `self` is unchanged. The same state, policy and seed always
    /// give the same image.
    pub fn crash(&self, policy: CrashPolicy, seed: u64) -> MemFs {
        let image = self.lock_state().image(policy, seed);
        MemFs::from_state(image)
    }

    /// Number of successful durability calls so far ([`AppendWrite::sync`] and
    /// [`Vfs::sync_dir`]), counted over this directory's life (shared by clones).
    ///
    /// [`AppendWrite::sync`]: crate::AppendWrite::sync
    pub fn sync_count(&self) -> u64 {
        self.lock_state().sync_count
    }

    /// Arms a power cut: just before the `n`-th durability call (1-based, counting file syncs
    /// and directory syncs over the directory's life) executes, `crash(policy, seed)` is
    /// captured (see [`take_crash_image`](Self::take_crash_image)) and from then on every
    /// operation on this MemFs, its clones and its open handles fails with
    /// [`ErrorKind::Other`] ("memfs: simulated power cut"), the `n`-th call included. An `n`
    /// at or below the number of calls already made fires at the next durability call.
    /// Arming again replaces the previous arming. The inspection calls ([`crash`](Self::crash),
    /// [`sync_count`](Self::sync_count), [`total_bytes`](Self::total_bytes),
    /// [`take_crash_image`](Self::take_crash_image), [`is_crashed`](Self::is_crashed)) keep
    /// working on the dead filesystem.
    pub fn arm_crash(&self, n: u64, policy: CrashPolicy, seed: u64) {
        let counting = state::Counting::DurabilityCalls;
        self.lock_state().armed = Some(state::Armed { at_call: n, counting, policy, seed });
    }

    /// Number of calls so far that change the filesystem (create, append, sync, remove,
    /// rename, link, directory sync, and the create a [`Vfs::lock`] of an absent name makes),
    /// whether they succeeded or not, counted over this directory's life (shared by clones).
    /// Reads, listings and [`write_whole`](Self::write_whole) are not counted.
    pub fn change_count(&self) -> u64 {
        self.lock_state().change_count
    }

    /// Arms a power cut like [`arm_crash`](Self::arm_crash), but just before the `n`-th call
    /// that changes the filesystem (1-based, as [`change_count`](Self::change_count) counts
    /// them): a cut at any write, not only at a sync, so the image also holds a partial
    /// sequence of appends and directory changes. An `n` at or below the calls already made
    /// fires at the next changing call.
    pub fn arm_crash_at_change(&self, n: u64, policy: CrashPolicy, seed: u64) {
        let counting = state::Counting::ChangingCalls;
        self.lock_state().armed = Some(state::Armed { at_call: n, counting, policy, seed });
    }

    /// Cancels an armed power cut that has not fired.
    pub fn disarm_crash(&self) {
        self.lock_state().armed = None;
    }

    /// Takes the image captured by an armed crash that fired, if any.
    pub fn take_crash_image(&self) -> Option<MemFs> {
        self.lock_state().crash_image.take()
    }

    /// Whether an armed crash has fired (every operation now fails).
    pub fn is_crashed(&self) -> bool {
        self.lock_state().dead
    }

    /// Total bytes appended to the files in the directory as the process sees it (a file with
    /// several links is counted once; removed files kept alive by open handles are not
    /// counted; space reserved past a file's appended bytes is not counted).
    pub fn total_bytes(&self) -> u64 {
        self.lock_state().total_bytes()
    }

    /// XORs the byte at `offset` of `name` with `xor`, bypassing the append-only rule, for
    /// corruption tests. The byte keeps its durability (a synced byte stays synced).
    /// `UnexpectedEof` if `offset` is not inside the file.
    pub fn flip_byte(&self, name: &str, offset: u64, xor: u8) -> Result<()> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        let ino = st.lookup(name)?;
        let inode = st.inode_mut(ino)?;
        let byte = usize::try_from(offset)
            .ok()
            .and_then(|i| inode.data.get_mut(i))
            .ok_or(Error::new(ErrorKind::UnexpectedEof, "memfs: flip_byte past end of file"))?;
        *byte ^= xor;
        Ok(())
    }

    /// Sets the length of `name` to `len`, bypassing the append-only rule: shorter cuts the
    /// tail, longer appends zero bytes (which are unsynced, like any appended byte).
    pub fn truncate(&self, name: &str, len: u64) -> Result<()> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        let ino = st.lookup(name)?;
        let len = usize::try_from(len)
            .map_err(|_| Error::new(ErrorKind::NoSpace, "memfs: length does not fit in memory"))?;
        let inode = st.inode_mut(ino)?;
        inode.data.resize(len, 0);
        inode.written = len;
        inode.synced_len = inode.synced_len.min(len);
        inode.synced_size = inode.synced_size.min(len);
        Ok(())
    }

    /// Bytes appended to `name` so far: its length without the zeros of reserved space past
    /// them (`AppendWrite::reserve`), for tests that locate records in a log.
    pub fn appended_len(&self, name: &str) -> Result<u64> {
        validate_name(name)?;
        let st = self.live_state()?;
        let ino = st.lookup(name)?;
        Ok(st.inode(ino)?.written as u64)
    }

    /// A copy of every byte of `name` (synced or not), reserved zeros included.
    pub fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        validate_name(name)?;
        let st = self.live_state()?;
        let ino = st.lookup(name)?;
        Ok(st.inode(ino)?.data.clone())
    }

    /// Creates or replaces `name` with `data`, fully synced, and makes the directory durable
    /// (as if the file had been written, synced, and the directory synced: other pending
    /// directory changes become durable too). Not counted by [`sync_count`](Self::sync_count)
    /// and never fires an armed crash. Open handles to a replaced file keep its old data.
    pub fn write_whole(&self, name: &str, data: &[u8]) -> Result<()> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        st.write_whole(name, data);
        Ok(())
    }

    /// The sector size.
    pub fn sector_size(&self) -> u32 {
        self.sector
    }
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemFs");
        match self.state.try_lock() {
            Some(st) => d.field("files", &st.live.len()).field("crashed", &st.dead),
            None => d.field("files", &"<locked>"),
        };
        d.finish()
    }
}

impl Vfs for MemFs {
    type Read = MemFile;
    type Write = MemWriter;
    type Lock = MemLock;

    /// Hard links, real directory syncs, and the configured sector size.
    fn caps(&self) -> Caps {
        Caps::new(true, true, self.sector)
    }

    fn create(&self, name: &str, _kind: FileKind) -> Result<MemWriter> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        let ino = st.create(name)?;
        st.acquire_handle(ino)?;
        Ok(MemWriter::new(self.state.clone(), ino))
    }

    fn open(&self, name: &str, _kind: FileKind) -> Result<MemFile> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        let ino = st.lookup(name)?;
        st.acquire_handle(ino)?;
        Ok(MemFile::new(self.state.clone(), ino))
    }

    fn remove(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        self.live_state()?.remove(name)
    }

    /// Atomic replace. Renaming a name onto itself does nothing; renaming onto another link of
    /// the same inode removes `from` (unlike POSIX, which keeps both names).
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        validate_name(from)?;
        validate_name(to)?;
        self.live_state()?.rename(from, to)
    }

    fn sync_dir(&self) -> Result<()> {
        self.lock_state().sync_dir()
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.live_state()?.live.keys().cloned().collect())
    }

    fn size(&self, name: &str) -> Result<u64> {
        validate_name(name)?;
        let st = self.live_state()?;
        let ino = st.lookup(name)?;
        Ok(st.inode(ino)?.data.len() as u64)
    }

    /// Locks are shared by clones of this MemFs (one directory) and never survive a crash.
    /// Creates an empty `name` if absent (an unsynced create, like any other).
    fn lock(&self, name: &str) -> Result<MemLock> {
        validate_name(name)?;
        let mut st = self.live_state()?;
        if st.locks.contains(name) {
            return Err(Error::new(ErrorKind::Locked, "memfs: lock held by another handle"));
        }
        if !st.live.contains_key(name) {
            st.create(name)?;
        }
        st.locks.insert(name.into());
        Ok(MemLock::new(self.state.clone(), name.into()))
    }

    /// `AlreadyExists` if `new` is taken, `NotFound` if `existing` is absent.
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        validate_name(existing)?;
        validate_name(new)?;
        self.live_state()?.link(existing, new)
    }
}
