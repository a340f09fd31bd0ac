//! Writing objects: put with its modes, delete, copy and rename, each one Strata transaction
//! run again when it loses a write-write conflict (see the module docs of `object_store`).

use std::sync::Arc;

use ::object_store::path::Path;
use ::object_store::{Error, PutMode, PutOptions, PutResult, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use strata::Transaction;

use super::error::{StoreError, from_store, from_strata, generic, not_found};
use super::keys::{self, DataId};
use super::read::{Found, e_tag_string};
use super::record::{Body, ObjectRecord};
use super::{CHUNK_SIZE, INLINE_LIMIT, Inner, WRITE_ATTEMPTS};

/// Nanoseconds since the Unix epoch now (the object's last-modified time).
pub(super) fn now_ns() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A fresh data id: 16 random bytes, so concurrent writers never share chunk keys.
pub(super) fn new_data_id() -> Result<DataId> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| generic(std::io::Error::other(e.to_string())))?;
    Ok(id)
}

/// Writes `data` as part `part` of data `id`: one chunk per [`CHUNK_SIZE`] bytes.
pub(super) fn write_chunks(
    txn: &mut Transaction,
    path: &str,
    id: &DataId,
    part: u32,
    data: &Bytes,
) -> Result<()> {
    for (index, chunk) in data.chunks(CHUNK_SIZE).enumerate() {
        let index = u32::try_from(index)
            .map_err(|_| from_store(path, StoreError::TooLarge { what: "part" }))?;
        txn.set(&keys::chunk(id, part, index), chunk).map_err(|e| from_strata(path, e))?;
    }
    Ok(())
}

/// Deletes every key in `[start, successor(start))`, reading keys only.
pub(super) fn delete_prefix(txn: &mut Transaction, path: &str, start: &[u8]) -> Result<()> {
    let end = keys::successor(start);
    let doomed: Vec<_> = txn
        .keys(start, &end, None)
        .map_err(|e| from_strata(path, e))?
        .collect::<strata::Result<_>>()
        .map_err(|e| from_strata(path, e))?;
    for key in doomed {
        txn.delete(&key).map_err(|e| from_strata(path, e))?;
    }
    Ok(())
}

/// Deletes the chunks of `body`, unless they are data `keep`'s.
pub(super) fn delete_body(
    txn: &mut Transaction,
    path: &str,
    body: &Body,
    keep: Option<&DataId>,
) -> Result<()> {
    match body {
        Body::Chunked { id, .. } if Some(id) != keep => {
            delete_prefix(txn, path, &keys::chunks_of(id))
        }
        _ => Ok(()),
    }
}

fn already_exists(path: &str) -> Error {
    Error::AlreadyExists {
        path: path.to_owned(),
        source: format!("an object exists at {path}").into(),
    }
}

fn precondition(path: &str, why: String) -> Error {
    Error::Precondition { path: path.to_owned(), source: why.into() }
}

/// Checks a put's mode against the object it would replace.
fn check_mode(path: &str, mode: &PutMode, current: Option<&Found>) -> Result<()> {
    match (mode, current) {
        (PutMode::Overwrite, _) | (PutMode::Create, None) => Ok(()),
        (PutMode::Create, Some(_)) => Err(already_exists(path)),
        (PutMode::Update(_), None) => {
            Err(precondition(path, format!("no object at {path} to update")))
        }
        (PutMode::Update(wanted), Some(found)) => {
            let e_tag = e_tag_string(found.record.e_tag);
            if let Some(w) = wanted.e_tag.as_ref().filter(|w| **w != e_tag) {
                return Err(precondition(path, format!("e-tag is {e_tag}, not {w}")));
            }
            let version = found.version.map(|v| v.to_string());
            if let Some(w) =
                wanted.version.as_ref().filter(|w| version.as_deref() != Some(w.as_str()))
            {
                return Err(precondition(path, format!("version is {version:?}, not {w}")));
            }
            Ok(())
        }
    }
}

impl Inner {
    /// Runs `attempt` in a fresh transaction and commits it, again while other writers win
    /// write-write conflicts (each run sees their writes and checks its conditions anew).
    pub(super) async fn retrying<T: Send>(
        &self,
        path: &str,
        mut attempt: impl FnMut(&mut Transaction) -> Result<T> + Send,
    ) -> Result<T> {
        let mut conflict = strata::Error::TransactionConflict;
        for _ in 0..WRITE_ATTEMPTS {
            let mut txn = self.tree.begin().map_err(|e| from_strata(path, e))?;
            txn.set_durability(self.durability);
            let out = attempt(&mut txn)?;
            match txn.commit().await {
                Ok(()) => return Ok(out),
                Err(e @ strata::Error::TransactionConflict) => conflict = e,
                Err(e) => return Err(from_strata(path, e)),
            }
        }
        Err(from_strata(path, conflict))
    }

    pub(super) async fn put(&self, path: &str, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        // Tags are not stored (the trait lets stores without tagging ignore them).
        let PutOptions { mode, attributes, .. } = opts;
        let e_tag = self
            .retrying(path, |txn| {
                let current = self.read_record(txn, path, None)?;
                check_mode(path, &mode, current.as_ref())?;
                if let Some(found) = &current {
                    delete_body(txn, path, &found.record.body, None)?;
                }
                let body = if data.len() < INLINE_LIMIT {
                    Body::Inline(data.clone())
                } else {
                    let id = new_data_id()?;
                    write_chunks(txn, path, &id, 0, &data)?;
                    Body::Chunked { id, parts: vec![(0, data.len() as u64)] }
                };
                let record = ObjectRecord {
                    e_tag: txn.snapshot_seq(),
                    last_modified_ns: now_ns(),
                    size: data.len() as u64,
                    attributes: attributes.clone(),
                    body,
                };
                let encoded = record.encode().map_err(|e| from_store(path, e))?;
                txn.set(&keys::object(path), &encoded).map_err(|e| from_strata(path, e))?;
                Ok(record.e_tag)
            })
            .await?;
        Ok(PutResult {
            e_tag: Some(e_tag_string(e_tag)),
            version: self.version_of(path, e_tag)?,
            extensions: Default::default(),
        })
    }

    /// Deletes the object at `path`; `Ok` also when there is none (as S3 does).
    pub(super) async fn delete(&self, path: &str) -> Result<()> {
        self.retrying(path, |txn| {
            if let Some(found) = self.read_record(txn, path, None)? {
                delete_body(txn, path, &found.record.body, None)?;
                txn.delete(&keys::object(path)).map_err(|e| from_strata(path, e))?;
            }
            Ok(())
        })
        .await
    }

    /// Copies (or, with `rename`, moves) the object at `from` to `to` in one transaction;
    /// with `create`, fails if `to` exists. A rename moves the record only: the chunks stay
    /// where they are, so it costs the same for any object size.
    pub(super) async fn copy(
        &self,
        from: &str,
        to: &str,
        create: bool,
        rename: bool,
    ) -> Result<()> {
        self.retrying(to, |txn| {
            let source = self.read_record(txn, from, None)?.ok_or_else(|| not_found(from))?;
            if from == to {
                // Copying or renaming an object onto itself leaves it as it is.
                return if create { Err(already_exists(to)) } else { Ok(()) };
            }
            let target = self.read_record(txn, to, None)?;
            if create && target.is_some() {
                return Err(already_exists(to));
            }
            if let Some(found) = &target {
                delete_body(txn, to, &found.record.body, None)?;
            }
            let body = if rename {
                txn.delete(&keys::object(from)).map_err(|e| from_strata(from, e))?;
                source.record.body.clone()
            } else {
                self.copy_body(txn, from, &source.record.body)?
            };
            let record = ObjectRecord {
                e_tag: txn.snapshot_seq(),
                last_modified_ns: now_ns(),
                body,
                ..source.record
            };
            let encoded = record.encode().map_err(|e| from_store(to, e))?;
            txn.set(&keys::object(to), &encoded).map_err(|e| from_strata(to, e))?;
            Ok(())
        })
        .await
    }

    /// A copy of `body` under a fresh data id.
    fn copy_body(&self, txn: &mut Transaction, path: &str, body: &Body) -> Result<Body> {
        let Body::Chunked { id, parts } = body else { return Ok(body.clone()) };
        let new_id = new_data_id()?;
        let start = keys::chunks_of(id);
        let pairs: Vec<_> = txn
            .range(&start, &keys::successor(&start), None)
            .map_err(|e| from_strata(path, e))?
            .collect::<strata::Result<_>>()
            .map_err(|e| from_strata(path, e))?;
        let mut new_prefix = keys::chunks_of(&new_id);
        let prefix_len = new_prefix.len();
        for (key, value) in pairs {
            let suffix = key.get(prefix_len..).ok_or_else(|| {
                from_store(
                    path,
                    StoreError::CorruptRecord { record: "chunk key", field: "length", offset: 0 },
                )
            })?;
            new_prefix.truncate(prefix_len);
            new_prefix.extend_from_slice(suffix);
            txn.set(&new_prefix, &value).map_err(|e| from_strata(path, e))?;
        }
        Ok(Body::Chunked { id: new_id, parts: parts.clone() })
    }
}

/// Deletes each path as it arrives, one transaction per path, answering with the path.
pub(super) fn delete_stream(
    inner: Arc<Inner>,
    locations: BoxStream<'static, Result<Path>>,
) -> BoxStream<'static, Result<Path>> {
    locations
        .then(move |location| {
            let inner = Arc::clone(&inner);
            async move {
                let location = location?;
                inner.delete(location.as_ref()).await?;
                Ok(location)
            }
        })
        .boxed()
}
