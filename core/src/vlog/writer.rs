//! The head of the value log: the one file the commit path appends records to.

use alloc::string::String;
use alloc::vec::Vec;

use strata_vfs::{AppendWrite, FileKind, SyncMode, Vfs};

use super::format::{self, ValuePointer};
use crate::filenames;
use crate::{Error, IoOp, Result};

/// An open value log file being appended to.
#[derive(Debug)]
pub struct VlogWriter<W: AppendWrite> {
    id: u64,
    name: String,
    file: W,
    len: u64,
    /// Bytes appended since the last sync.
    dirty: bool,
    /// Store values lz4-compressed when that saves space.
    compress: bool,
    buf: Vec<u8>,
}

impl<W: AppendWrite> VlogWriter<W> {
    /// Creates file `id` (its number is its id), writes the header and makes the file and its
    /// directory entry durable, so a later sync of its records needs only a data sync. With
    /// `compress`, values are stored lz4-compressed when that saves at least an eighth.
    pub fn create<V: Vfs<Write = W>>(vfs: &V, id: u64, compress: bool) -> Result<Self> {
        let name = filenames::vlog(id);
        let mut file =
            vfs.create(&name, FileKind::ValueLog).map_err(|e| Error::io(IoOp::Create, &name, e))?;
        file.append(&format::file_header()).map_err(|e| Error::io(IoOp::Append, &name, e))?;
        file.sync(SyncMode::All).map_err(|e| Error::io(IoOp::Sync, &name, e))?;
        vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
        Ok(VlogWriter {
            id,
            name,
            file,
            len: format::FILE_HEADER_LEN,
            dirty: false,
            compress,
            buf: Vec::new(),
        })
    }

    /// The file's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes written, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` if no record was appended.
    pub fn is_empty(&self) -> bool {
        self.len == format::FILE_HEADER_LEN
    }

    /// Appends the record of `(key, value)` and returns where it is. The bytes reach the file
    /// object at once; [`flush`](Self::flush) hands them to the OS, [`sync`](Self::sync) makes
    /// them durable.
    pub fn append(&mut self, key: &[u8], value: &[u8]) -> Result<ValuePointer> {
        self.buf.clear();
        let n = format::encode_record(&mut self.buf, key, value, self.compress);
        let len = u32::try_from(n).map_err(|_| Error::invalid("value", "record too large"))?;
        self.file.append(&self.buf).map_err(|e| Error::io(IoOp::Append, &self.name, e))?;
        let ptr = ValuePointer { file: self.id, offset: self.len, len };
        self.len += n as u64;
        self.dirty = true;
        Ok(ptr)
    }

    /// Hands appended bytes to the operating system (survives a process crash).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io(IoOp::Flush, &self.name, e))
    }

    /// Makes every appended record durable. Cheap when nothing was appended since the last
    /// sync.
    pub fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.flush()?;
        self.file.sync(SyncMode::Data).map_err(|e| Error::io(IoOp::Sync, &self.name, e))?;
        self.dirty = false;
        Ok(())
    }
}
