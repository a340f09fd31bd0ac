//! The state behind a [`super::MemFs`]: inodes, the live and durable directories, the pending
//! directory log, and how a power cut turns them into a new image.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use super::rng::SplitMix64;
use super::{CrashPolicy, MemFs};
use crate::{Error, ErrorKind, Result};

/// Inode number: the identity of a file's data, independent of its names.
pub(super) type Ino = u64;

/// A directory: name -> inode.
pub(super) type Dir = BTreeMap<String, Ino>;

/// One file's data.
#[derive(Debug, Clone, Default)]
pub(super) struct Inode {
    /// The file's contents: every byte appended so far (`data[..written]`), then the zeros of
    /// space reserved past them (`AppendWrite::reserve`), which later appends overwrite.
    pub(super) data: Vec<u8>,
    /// Where the next append goes: the bytes appended so far.
    pub(super) written: usize,
    /// `data[..synced_len]` survives any crash (never more than `written`).
    pub(super) synced_len: usize,
    /// The file's length at its last sync: a crash keeps at least this long a file, the
    /// reserved part as zeros (a reservation is durable once synced, as `fallocate` is).
    pub(super) synced_size: usize,
    /// Open read/write handles; an inode with handles is kept even when no name refers to it.
    pub(super) handles: usize,
}

/// A directory change not yet made durable by `sync_dir`, replayed by name on top of the
/// durable directory when a crash image is built.
#[derive(Debug, Clone)]
pub(super) enum DirOp {
    /// `name` now refers to the new inode `ino` (replacing any previous entry).
    Create { name: String, ino: Ino },
    /// `from` moved to `to`, replacing `to`.
    Rename { from: String, to: String },
    /// `name` removed.
    Remove { name: String },
    /// `new` refers to the same inode as `existing`.
    Link { existing: String, new: String },
}

impl DirOp {
    /// Applies the change to `dir`. Replays always start from the state the op was logged
    /// against, so the names exist; a missing name is skipped rather than trusted.
    fn apply(&self, dir: &mut Dir) {
        match self {
            DirOp::Create { name, ino } => {
                dir.insert(name.clone(), *ino);
            }
            DirOp::Rename { from, to } => {
                if let Some(ino) = dir.remove(from) {
                    dir.insert(to.clone(), ino);
                }
            }
            DirOp::Remove { name } => {
                dir.remove(name);
            }
            DirOp::Link { existing, new } => {
                if let Some(&ino) = dir.get(existing) {
                    dir.insert(new.clone(), ino);
                }
            }
        }
    }

    /// The inode this op brings into existence, if any.
    fn created(&self) -> Option<Ino> {
        match self {
            DirOp::Create { ino, .. } => Some(*ino),
            _ => None,
        }
    }
}

/// An armed power cut.
#[derive(Debug, Clone, Copy)]
pub(super) struct Armed {
    /// Fires just before this call, 1-based.
    pub(super) at_call: u64,
    /// What `at_call` counts: durability calls only, or every changing operation.
    pub(super) counting: Counting,
    pub(super) policy: CrashPolicy,
    pub(super) seed: u64,
}

/// Which calls an armed power cut counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counting {
    /// File syncs and directory syncs.
    DurabilityCalls,
    /// Every call that changes the filesystem: create, append, sync, remove, rename, link,
    /// directory sync.
    ChangingCalls,
}

/// Everything a MemFs holds; shared by its clones and handles behind one mutex.
#[derive(Debug)]
pub(super) struct State {
    pub(super) sector: u32,
    pub(super) inodes: BTreeMap<Ino, Inode>,
    pub(super) next_ino: Ino,
    /// The directory as the process sees it.
    pub(super) live: Dir,
    /// The directory as of the last successful `sync_dir`.
    pub(super) durable: Dir,
    /// Directory changes since the last `sync_dir`, oldest first.
    pub(super) pending: Vec<DirOp>,
    /// Names of locks currently held.
    pub(super) locks: BTreeSet<String>,
    /// Successful durability calls (file syncs and directory syncs).
    pub(super) sync_count: u64,
    /// Calls that change the filesystem (successful or not), over the directory's life.
    pub(super) change_count: u64,
    pub(super) armed: Option<Armed>,
    pub(super) crash_image: Option<MemFs>,
    /// An armed crash fired: every operation fails.
    pub(super) dead: bool,
}

pub(super) fn dead_error() -> Error {
    Error::new(ErrorKind::Other, "memfs: simulated power cut")
}

pub(super) fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "memfs: no such file")
}

fn exists_error() -> Error {
    Error::new(ErrorKind::AlreadyExists, "memfs: file exists")
}

fn stale_handle() -> Error {
    Error::new(ErrorKind::Other, "memfs: handle refers to a released inode")
}

/// Rejects names a flat directory cannot hold.
pub(super) fn validate_name(name: &str) -> Result<()> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']);
    if bad { Err(Error::new(ErrorKind::Other, "invalid file name")) } else { Ok(()) }
}

impl State {
    pub(super) fn new(sector: u32) -> Self {
        State {
            sector,
            inodes: BTreeMap::new(),
            next_ino: 1,
            live: Dir::new(),
            durable: Dir::new(),
            pending: Vec::new(),
            locks: BTreeSet::new(),
            sync_count: 0,
            change_count: 0,
            armed: None,
            crash_image: None,
            dead: false,
        }
    }

    /// `Err` once an armed crash has fired.
    pub(super) fn alive(&self) -> Result<()> {
        if self.dead { Err(dead_error()) } else { Ok(()) }
    }

    pub(super) fn lookup(&self, name: &str) -> Result<Ino> {
        self.live.get(name).copied().ok_or_else(not_found)
    }

    pub(super) fn inode(&self, ino: Ino) -> Result<&Inode> {
        self.inodes.get(&ino).ok_or_else(stale_handle)
    }

    pub(super) fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(stale_handle)
    }

    /// Allocates an inode holding `data` (of which `synced_len` bytes are durable).
    fn alloc(&mut self, data: Vec<u8>, synced_len: usize) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let written = data.len();
        self.inodes
            .insert(ino, Inode { data, written, synced_len, synced_size: synced_len, handles: 0 });
        ino
    }

    /// Logs `op` and applies it to the live directory.
    fn record(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// Create-new: a fresh empty inode under `name`.
    pub(super) fn create(&mut self, name: &str) -> Result<Ino> {
        self.change_gate(false)?;
        if self.live.contains_key(name) {
            return Err(exists_error());
        }
        let ino = self.alloc(Vec::new(), 0);
        self.record(DirOp::Create { name: name.into(), ino });
        Ok(ino)
    }

    pub(super) fn remove(&mut self, name: &str) -> Result<()> {
        self.change_gate(false)?;
        self.lookup(name)?;
        self.record(DirOp::Remove { name: name.into() });
        Ok(())
    }

    pub(super) fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.change_gate(false)?;
        self.lookup(from)?;
        if from != to {
            self.record(DirOp::Rename { from: from.into(), to: to.into() });
        }
        Ok(())
    }

    pub(super) fn link(&mut self, existing: &str, new: &str) -> Result<()> {
        self.change_gate(false)?;
        self.lookup(existing)?;
        if self.live.contains_key(new) {
            return Err(exists_error());
        }
        self.record(DirOp::Link { existing: existing.into(), new: new.into() });
        Ok(())
    }

    /// Replaces (or creates) `name` with a fully synced inode holding `data`, then makes the
    /// whole live directory durable.
    pub(super) fn write_whole(&mut self, name: &str, data: &[u8]) {
        let ino = self.alloc(data.to_vec(), data.len());
        self.record(DirOp::Create { name: name.into(), ino });
        self.commit_dir();
    }

    /// Runs before every durability call: fires an armed crash when its call has come.
    fn durability_gate(&mut self) -> Result<()> {
        self.change_gate(true)
    }

    /// Runs before every call that changes the filesystem (`durability` for syncs): fires an
    /// armed crash when its call has come, else counts the call.
    pub(super) fn change_gate(&mut self, durability: bool) -> Result<()> {
        self.alive()?;
        if let Some(armed) = self.armed {
            let due = match armed.counting {
                Counting::DurabilityCalls => {
                    durability && self.sync_count.saturating_add(1) >= armed.at_call
                }
                Counting::ChangingCalls => self.change_count.saturating_add(1) >= armed.at_call,
            };
            if due {
                let image = self.image(armed.policy, armed.seed);
                self.crash_image = Some(MemFs::from_state(image));
                self.armed = None;
                self.dead = true;
                return Err(dead_error());
            }
        }
        self.change_count += 1;
        Ok(())
    }

    pub(super) fn sync_file(&mut self, ino: Ino) -> Result<()> {
        self.durability_gate()?;
        let inode = self.inode_mut(ino)?;
        inode.synced_len = inode.written;
        inode.synced_size = inode.data.len();
        self.sync_count += 1;
        Ok(())
    }

    pub(super) fn sync_dir(&mut self) -> Result<()> {
        self.durability_gate()?;
        self.commit_dir();
        self.sync_count += 1;
        Ok(())
    }

    /// The live directory becomes the durable one.
    fn commit_dir(&mut self) {
        self.durable = self.live.clone();
        self.pending.clear();
        self.collect_garbage();
    }

    /// Whether a crash image, the live directory or the pending log may still need `ino`.
    fn reachable(&self, ino: Ino) -> bool {
        self.live.values().any(|&i| i == ino)
            || self.durable.values().any(|&i| i == ino)
            || self.pending.iter().any(|op| op.created() == Some(ino))
    }

    /// Frees every inode nothing can reach any more.
    fn collect_garbage(&mut self) {
        let mut keep: BTreeSet<Ino> = self.live.values().copied().collect();
        keep.extend(self.durable.values().copied());
        keep.extend(self.pending.iter().filter_map(DirOp::created));
        self.inodes.retain(|ino, inode| inode.handles > 0 || keep.contains(ino));
    }

    pub(super) fn acquire_handle(&mut self, ino: Ino) -> Result<()> {
        self.inode_mut(ino)?.handles += 1;
        Ok(())
    }

    pub(super) fn release_handle(&mut self, ino: Ino) {
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        inode.handles = inode.handles.saturating_sub(1);
        if inode.handles == 0 && !self.reachable(ino) {
            self.inodes.remove(&ino);
        }
    }

    /// Bytes appended to the files of the live directory (each inode counted once; reserved
    /// space past them is not counted, as FaultFs's space limit does not charge it).
    pub(super) fn total_bytes(&self) -> u64 {
        let inos: BTreeSet<Ino> = self.live.values().copied().collect();
        inos.iter().filter_map(|ino| self.inodes.get(ino)).map(|inode| inode.written as u64).sum()
    }

    /// The state a power cut now would leave, per `policy`, chosen deterministically from
    /// `seed`.
    pub(super) fn image(&self, policy: CrashPolicy, seed: u64) -> State {
        let mut rng = SplitMix64::new(seed);
        let replay = match policy {
            CrashPolicy::DropUnsynced => 0,
            CrashPolicy::KeepUnsynced => self.pending.len(),
            CrashPolicy::TornTail | CrashPolicy::GarbageTail => {
                rng.range_inclusive(0, self.pending.len() as u64) as usize
            }
        };
        let mut dir = self.durable.clone();
        for op in self.pending.iter().take(replay) {
            op.apply(&mut dir);
        }
        // An entry whose inode is gone cannot happen (the pending log keeps created inodes
        // alive); drop it rather than fabricate data if it ever does.
        dir.retain(|_, ino| self.inodes.contains_key(ino));

        let sector = self.sector.max(1) as usize;
        let inos: BTreeSet<Ino> = dir.values().copied().collect();
        let mut inodes = BTreeMap::new();
        for ino in inos {
            if let Some(inode) = self.inodes.get(&ino) {
                let mut data = surviving_bytes(inode, sector, policy, &mut rng);
                let appended = data.len();
                // Reserved space (past the appended bytes) reads as zeros after a crash: the
                // length at the last sync always survives, a later reservation per the
                // policy, like unsynced data. A file without reserved space keeps exactly
                // what `surviving_bytes` gives (and draws nothing more from `rng`).
                let reserved_now = inode.data.len() > inode.written;
                let size = match policy {
                    CrashPolicy::KeepUnsynced if reserved_now => inode.data.len(),
                    CrashPolicy::TornTail | CrashPolicy::GarbageTail
                        if reserved_now && rng.range_inclusive(0, 1) == 1 =>
                    {
                        inode.data.len()
                    }
                    _ => inode.synced_size,
                };
                if data.len() < size {
                    data.resize(size, 0);
                }
                // Everything in the image is durable; the zeros stay reserved space, not
                // appended bytes (`MemFs::appended_len` still tells where the data ends).
                let size = data.len();
                inodes.insert(
                    ino,
                    Inode {
                        data,
                        written: appended,
                        synced_len: appended,
                        synced_size: size,
                        handles: 0,
                    },
                );
            }
        }
        let mut image = State::new(self.sector);
        image.inodes = inodes;
        image.next_ino = self.next_ino;
        image.live = dir.clone();
        image.durable = dir;
        image
    }
}

/// What survives of one file's appended bytes (`data[..written]`); `data[..synced_len]`
/// always does.
fn surviving_bytes(
    inode: &Inode,
    sector: usize,
    policy: CrashPolicy,
    rng: &mut SplitMix64,
) -> Vec<u8> {
    let data = inode.data.get(..inode.written).unwrap_or(&inode.data);
    let len = data.len();
    let synced = inode.synced_len.min(len);
    if synced == len {
        return data.to_vec();
    }
    // A sector boundary (absolute offset) in [floor(synced), floor(len)].
    let mut boundary = || {
        let lo = (synced / sector) as u64;
        let hi = (len / sector) as u64;
        rng.range_inclusive(lo, hi) as usize * sector
    };
    match policy {
        CrashPolicy::DropUnsynced => data[..synced].to_vec(),
        CrashPolicy::KeepUnsynced => data.to_vec(),
        CrashPolicy::TornTail => {
            let b = boundary();
            // Part of the next sector: fewer bytes than a whole sector, and not past the end.
            let torn_max = (sector - 1).min(len - b) as u64;
            let torn = rng.range_inclusive(0, torn_max) as usize;
            let keep = (b + torn).max(synced);
            data[..keep].to_vec()
        }
        CrashPolicy::GarbageTail => {
            let keep = boundary().max(synced);
            let mut out = Vec::with_capacity(len);
            out.extend_from_slice(&data[..keep]);
            out.resize(len, 0);
            rng.fill(&mut out[keep..]);
            out
        }
    }
}
