//! A type-erased [`Vfs`], so `Tree` is one concrete type whatever filesystem it runs on
//! (`StdFs` in production, `MemFs` or `FaultFs` in tests). One virtual call per file
//! operation is noise next to a syscall.

use std::any::Any;
use std::sync::Arc;

use strata_vfs::{AppendWrite, Caps, FileKind, RandomRead, Result, Vfs};

/// A file opened for reading, erased.
pub type DynRead = Box<dyn RandomRead + Send + Sync>;
/// A file opened for appending, erased.
pub type DynWrite = Box<dyn AppendWrite + Send>;
/// A held lock, erased.
pub type DynLock = Box<dyn Any + Send>;

trait ErasedVfs: Send + Sync {
    fn caps(&self) -> Caps;
    fn create(&self, name: &str, kind: FileKind) -> Result<DynWrite>;
    fn open(&self, name: &str, kind: FileKind) -> Result<DynRead>;
    fn remove(&self, name: &str) -> Result<()>;
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    fn sync_dir(&self) -> Result<()>;
    fn list(&self) -> Result<Vec<String>>;
    fn size(&self, name: &str) -> Result<u64>;
    fn lock(&self, name: &str) -> Result<DynLock>;
    fn link(&self, existing: &str, new: &str) -> Result<()>;
}

impl<V> ErasedVfs for V
where
    V: Vfs + Send + Sync + 'static,
    V::Read: Send + Sync + 'static,
    V::Write: Send + 'static,
    V::Lock: Send + 'static,
{
    fn caps(&self) -> Caps {
        Vfs::caps(self)
    }
    fn create(&self, name: &str, kind: FileKind) -> Result<DynWrite> {
        Ok(Box::new(Vfs::create(self, name, kind)?))
    }
    fn open(&self, name: &str, kind: FileKind) -> Result<DynRead> {
        Ok(Box::new(Vfs::open(self, name, kind)?))
    }
    fn remove(&self, name: &str) -> Result<()> {
        Vfs::remove(self, name)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        Vfs::rename(self, from, to)
    }
    fn sync_dir(&self) -> Result<()> {
        Vfs::sync_dir(self)
    }
    fn list(&self) -> Result<Vec<String>> {
        Vfs::list(self)
    }
    fn size(&self, name: &str) -> Result<u64> {
        Vfs::size(self, name)
    }
    fn lock(&self, name: &str) -> Result<DynLock> {
        Ok(Box::new(Vfs::lock(self, name)?))
    }
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        Vfs::link(self, existing, new)
    }
}

/// Any thread-safe [`Vfs`] behind one type.
#[derive(Clone)]
pub struct DynFs(Arc<dyn ErasedVfs>);

impl std::fmt::Debug for DynFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynFs")
    }
}

impl DynFs {
    /// Erases `vfs`.
    pub fn new<V>(vfs: V) -> Self
    where
        V: Vfs + Send + Sync + 'static,
        V::Read: Send + Sync + 'static,
        V::Write: Send + 'static,
        V::Lock: Send + 'static,
    {
        DynFs(Arc::new(vfs))
    }
}

impl Vfs for DynFs {
    type Read = DynRead;
    type Write = DynWrite;
    type Lock = DynLock;

    fn caps(&self) -> Caps {
        self.0.caps()
    }
    fn create(&self, name: &str, kind: FileKind) -> Result<DynWrite> {
        self.0.create(name, kind)
    }
    fn open(&self, name: &str, kind: FileKind) -> Result<DynRead> {
        self.0.open(name, kind)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.0.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.0.rename(from, to)
    }
    fn sync_dir(&self) -> Result<()> {
        self.0.sync_dir()
    }
    fn list(&self) -> Result<Vec<String>> {
        self.0.list()
    }
    fn size(&self, name: &str) -> Result<u64> {
        self.0.size(name)
    }
    fn lock(&self, name: &str) -> Result<DynLock> {
        self.0.lock(name)
    }
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        self.0.link(existing, new)
    }
}
