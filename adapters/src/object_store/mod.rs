//! Apache Arrow's [`object_store::ObjectStore`] over a [`strata::Tree`].
//!
//! The data's path (key layout in [`keys`], record formats in [`record`], both in
//! docs/format/object_store.md):
//! - an object is a record under `"objstore\0" 'm' path` (its e-tag, time, size, attributes)
//!   plus its bytes: inline in the record below [`INLINE_LIMIT`], otherwise in chunks of at
//!   most [`CHUNK_SIZE`] under a data id that is fresh for every write. Chunks are ordinary
//!   values, so with the value log on (`with_enable_vlog`) they live in the log and
//!   compactions move only their pointers. Chunking is why no object is refused for
//!   exceeding [`strata::MAX_VALUE_SIZE`]; a put is one transaction, so it is bounded by the
//!   tree's `max_transaction_size`, and a multipart upload only per part;
//! - every write ([`write`]) is one Strata transaction that reads the current record, checks
//!   the put mode against it, deletes the chunks it replaces and writes the new ones, so an
//!   object is replaced all at once or not at all. A write-write conflict (another writer
//!   committed the same path first) runs the write again on the newer snapshot, where the
//!   put mode is checked again: `Create` then finds the object and fails with
//!   `AlreadyExists`, `Update` finds a new e-tag and fails with `Precondition`;
//! - the e-tag is the snapshot sequence number of the writing transaction
//!   ([`strata::Transaction::snapshot_seq`]): two commits that write one path never share it,
//!   and it grows with every write of the path;
//! - reads ([`read`]) run in one read-only transaction: a get streams the chunks its range
//!   covers from one snapshot, even if the object is replaced meanwhile. With versioning on,
//!   an object's version is the commit timestamp of its record, and `GetOptions::version`
//!   reads the record and chunks as they were at that time;
//! - listings ([`list`]) are range scans over the records; a delimiter listing skips each
//!   common prefix with one seek instead of reading what is under it;
//! - a multipart upload ([`multipart`]) stages each part's chunks under the upload's id, in
//!   its own transaction; completion writes only the object record, pointing at those
//!   chunks, and deletes the upload's bookkeeping and any unlisted part in the same
//!   transaction, so the object appears whole or not at all; abort deletes everything staged.
//!
//! Strata calls are synchronous and run on the calling task (the engine is embedded, like
//! `InMemory`); commits are awaited, so no executor thread blocks on the commit queue.

mod error;
mod keys;
mod list;
mod multipart;
mod read;
mod record;
mod write;

use std::fmt;
use std::sync::Arc;

use ::object_store::multipart::{MultipartStore, PartId};
use ::object_store::path::Path;
use ::object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    RenameTargetMode, Result,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use strata::{Durability, Tree};

pub use error::StoreError;

/// Objects of fewer bytes are stored inside their record; larger ones in chunks. 4 KiB is
/// where Strata's value log takes over by default, so records stay small enough for the LSM
/// tree and listings never read the value log.
pub const INLINE_LIMIT: usize = 4 * 1024;

/// The most bytes one chunk holds. Small enough that a ranged read fetches little it does not
/// need and a chunk is far below [`strata::MAX_VALUE_SIZE`]; large enough that a big object
/// is few keys.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// How many times a write runs when other writers keep winning conflicts on its path.
const WRITE_ATTEMPTS: usize = 64;

/// An [`ObjectStore`] (and [`MultipartStore`], [`PaginatedListStore`]) kept in a Strata tree.
/// Cheap to clone; clones share the store.
///
/// [`PaginatedListStore`]: ::object_store::list::PaginatedListStore
#[derive(Debug, Clone)]
pub struct StrataObjectStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tree: Tree,
    /// Whether the tree keeps history, which gives objects versions.
    versioning: bool,
    /// What every write waits for before it returns.
    durability: Durability,
}

impl StrataObjectStore {
    /// A store in `tree`, beside whatever else the tree holds. Objects written by an earlier
    /// store on the same tree are there. Objects have versions when the tree was built with
    /// versioning.
    pub fn new(tree: Tree) -> Result<StrataObjectStore> {
        let versioning = read::tree_keeps_history(&tree)?;
        let inner = Inner { tree, versioning, durability: Durability::Eventual };
        Ok(StrataObjectStore { inner: Arc::new(inner) })
    }

    /// Makes every write (put, delete, copy, rename, each multipart step) return only once it
    /// is `durability`: with `Immediate`, once the write-ahead log is synced, so an
    /// acknowledged object survives a power cut. The default, `Eventual`, returns once the
    /// write is in the operating system (it survives a process crash), as object_store's
    /// local-filesystem store does.
    #[must_use]
    pub fn with_durability(self, durability: Durability) -> StrataObjectStore {
        let Inner { tree, versioning, .. } = &*self.inner;
        let inner = Inner { tree: tree.clone(), versioning: *versioning, durability };
        StrataObjectStore { inner: Arc::new(inner) }
    }

    /// The tree underneath.
    pub fn tree(&self) -> &Tree {
        &self.inner.tree
    }
}

impl fmt::Display for StrataObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StrataObjectStore")
    }
}

#[async_trait]
impl ObjectStore for StrataObjectStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put(location.as_ref(), payload.into(), opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let id = self.inner.create_upload(location.as_ref(), opts).await?;
        Ok(Box::new(multipart::Upload::new(Arc::clone(&self.inner), location.as_ref(), id)))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get(location, options)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        write::delete_stream(Arc::clone(&self.inner), locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let create = matches!(options.mode, CopyMode::Create);
        self.inner.copy(from.as_ref(), to.as_ref(), create, false).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let create = matches!(options.target_mode, RenameTargetMode::Create);
        self.inner.copy(from.as_ref(), to.as_ref(), create, true).await
    }
}

#[async_trait]
impl MultipartStore for StrataObjectStore {
    async fn create_multipart(&self, path: &Path) -> Result<MultipartId> {
        self.create_multipart_opts(path, PutMultipartOptions::default()).await
    }

    async fn create_multipart_opts(
        &self,
        path: &Path,
        opts: PutMultipartOptions,
    ) -> Result<MultipartId> {
        let id = self.inner.create_upload(path.as_ref(), opts).await?;
        Ok(multipart::id_to_string(&id))
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId> {
        let id = multipart::id_from_string(path.as_ref(), id)?;
        let part = multipart::part_number(path.as_ref(), part_idx)?;
        self.inner.put_part(path.as_ref(), id, part, data.into()).await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult> {
        let id = multipart::id_from_string(path.as_ref(), id)?;
        self.inner.complete_upload(path.as_ref(), id, &parts).await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> Result<()> {
        let id = multipart::id_from_string(path.as_ref(), id)?;
        self.inner.abort_upload(path.as_ref(), id).await
    }
}

#[async_trait]
impl ::object_store::list::PaginatedListStore for StrataObjectStore {
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: ::object_store::list::PaginatedListOptions,
    ) -> Result<::object_store::list::PaginatedListResult> {
        self.inner.list_paginated(prefix, opts)
    }
}
