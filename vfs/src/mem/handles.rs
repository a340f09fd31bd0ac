//! Open-file and lock handles of [`super::MemFs`]. They refer to inodes, not names: a renamed
//! or removed file's handles keep working on its data.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

use super::state::{Ino, State};
use crate::sync::Mutex;
use crate::{AppendWrite, Error, ErrorKind, RandomRead, Result, SyncMode};

/// A [`super::MemFs`] file opened for reading. Sees appends made through any writer.
pub struct MemFile {
    state: Arc<Mutex<State>>,
    ino: Ino,
}

impl MemFile {
    pub(super) fn new(state: Arc<Mutex<State>>, ino: Ino) -> Self {
        MemFile { state, ino }
    }
}

impl RandomRead for MemFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let st = self.state.lock();
        st.alive()?;
        let data = &st.inode(self.ino)?.data;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .filter(|r| r.end <= data.len())
            .ok_or(Error::new(ErrorKind::UnexpectedEof, "memfs: read past end of file"))?;
        buf.copy_from_slice(&data[range]);
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        let st = self.state.lock();
        st.alive()?;
        Ok(st.inode(self.ino)?.data.len() as u64)
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        self.state.lock().release_handle(self.ino);
    }
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemFile").field("ino", &self.ino).finish()
    }
}

/// A [`super::MemFs`] file being appended to.
pub struct MemWriter {
    state: Arc<Mutex<State>>,
    ino: Ino,
}

impl MemWriter {
    pub(super) fn new(state: Arc<Mutex<State>>, ino: Ino) -> Self {
        MemWriter { state, ino }
    }
}

impl AppendWrite for MemWriter {
    /// The bytes are immediately visible to readers and unsynced until [`sync`](Self::sync).
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        st.change_gate(false)?;
        let inode = st.inode_mut(self.ino)?;
        // Over the zeros of reserved space first, then past the end.
        let at = inode.written.min(inode.data.len());
        let (over, beyond) = data.split_at(data.len().min(inode.data.len() - at));
        inode
            .data
            .try_reserve(beyond.len())
            .map_err(|_| Error::new(ErrorKind::NoSpace, "memfs: out of memory"))?;
        if let Some(dst) = inode.data.get_mut(at..at + over.len()) {
            dst.copy_from_slice(over);
        }
        inode.data.extend_from_slice(beyond);
        inode.written = at + data.len();
        Ok(())
    }

    /// Nothing to do (appends are visible at once); durability is unchanged.
    fn flush(&mut self) -> Result<()> {
        self.state.lock().alive()
    }

    /// Every byte appended so far becomes crash-proof. Counts as a durability call (and may
    /// fire an armed crash).
    fn sync(&mut self, _mode: SyncMode) -> Result<()> {
        self.state.lock().sync_file(self.ino)
    }

    fn len(&self) -> u64 {
        let st = self.state.lock();
        st.inode(self.ino).map_or(0, |inode| inode.written as u64)
    }

    /// Makes the file `upto` bytes long with zeros past the appended bytes, as `fallocate`
    /// does; the new length is durable after the next [`sync`](Self::sync) (see the crash
    /// image in `state.rs`), so the log's zero tail is exercised by every crash test.
    fn reserve(&mut self, upto: u64) -> Result<()> {
        let mut st = self.state.lock();
        st.change_gate(false)?;
        let upto = usize::try_from(upto)
            .map_err(|_| Error::new(ErrorKind::NoSpace, "memfs: length does not fit in memory"))?;
        let inode = st.inode_mut(self.ino)?;
        if upto > inode.data.len() {
            let more = upto - inode.data.len();
            inode
                .data
                .try_reserve(more)
                .map_err(|_| Error::new(ErrorKind::NoSpace, "memfs: out of memory"))?;
            inode.data.resize(upto, 0);
        }
        Ok(())
    }
}

impl Drop for MemWriter {
    fn drop(&mut self) {
        self.state.lock().release_handle(self.ino);
    }
}

impl fmt::Debug for MemWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemWriter").field("ino", &self.ino).finish()
    }
}

/// A held [`super::MemFs`] lock; dropping it releases the lock.
pub struct MemLock {
    state: Arc<Mutex<State>>,
    name: String,
}

impl MemLock {
    pub(super) fn new(state: Arc<Mutex<State>>, name: String) -> Self {
        MemLock { state, name }
    }
}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.name);
    }
}

impl fmt::Debug for MemLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemLock").field("name", &self.name).finish()
    }
}
