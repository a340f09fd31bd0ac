//! Multipart uploads: parts staged as chunks under the upload's id, each in its own
//! transaction; completion publishes the object by writing its record alone, in one
//! transaction that also removes the upload's bookkeeping and any part it does not list.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ::object_store::multipart::PartId;
use ::object_store::{MultipartUpload, PutMultipartOptions, PutResult, Result, UploadPart};
use async_trait::async_trait;
use bytes::Bytes;

use super::Inner;
use super::error::{StoreError, from_store, from_strata};
use super::keys::{self, DataId};
use super::read::e_tag_string;
use super::record::{self, Body, ObjectRecord, UploadRecord};
use super::write::{delete_body, delete_prefix, new_data_id, now_ns, write_chunks};

/// A multipart id as handed to callers: the upload's data id in hex.
pub(super) fn id_to_string(id: &DataId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn id_from_string(path: &str, text: &str) -> Result<DataId> {
    let bad = || from_store(path, StoreError::NoSuchUpload(text.to_owned()));
    if text.len() != 32 {
        return Err(bad());
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        let hex = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
    }
    Ok(id)
}

pub(super) fn part_number(path: &str, index: usize) -> Result<u32> {
    u32::try_from(index).map_err(|_| from_store(path, StoreError::TooLarge { what: "part index" }))
}

impl Inner {
    fn read_upload(
        &self,
        txn: &strata::Transaction,
        path: &str,
        id: &DataId,
    ) -> Result<Option<UploadRecord>> {
        let Some(value) = txn.get(&keys::upload(id)).map_err(|e| from_strata(path, e))? else {
            return Ok(None);
        };
        let upload = UploadRecord::decode(&value).map_err(|e| from_store(path, e))?;
        if upload.path != path {
            // The id names an upload to another path: for this path there is no such upload.
            return Ok(None);
        }
        Ok(Some(upload))
    }

    pub(super) async fn create_upload(
        &self,
        path: &str,
        opts: PutMultipartOptions,
    ) -> Result<DataId> {
        let id = new_data_id()?;
        let upload = UploadRecord { path: path.to_owned(), attributes: opts.attributes };
        let encoded = upload.encode().map_err(|e| from_store(path, e))?;
        self.retrying(path, |txn| {
            txn.set(&keys::upload(&id), &encoded).map_err(|e| from_strata(path, e))
        })
        .await?;
        Ok(id)
    }

    pub(super) async fn put_part(
        &self,
        path: &str,
        id: DataId,
        part: u32,
        data: Bytes,
    ) -> Result<PartId> {
        self.retrying(path, |txn| {
            if self.read_upload(txn, path, &id)?.is_none() {
                return Err(from_store(path, StoreError::NoSuchUpload(id_to_string(&id))));
            }
            // A part sent again replaces the first one.
            delete_prefix(txn, path, &keys::chunks_of_part(&id, part))?;
            write_chunks(txn, path, &id, part, &data)?;
            txn.set(&keys::part(&id, part), &record::encode_part(data.len() as u64))
                .map_err(|e| from_strata(path, e))
        })
        .await?;
        Ok(PartId { content_id: part.to_string() })
    }

    pub(super) async fn complete_upload(
        &self,
        path: &str,
        id: DataId,
        parts: &[PartId],
    ) -> Result<PutResult> {
        let e_tag = self
            .retrying(path, |txn| {
                let upload = self
                    .read_upload(txn, path, &id)?
                    .ok_or_else(|| from_store(path, StoreError::NoSuchUpload(id_to_string(&id))))?;
                let staged = self.staged_parts(txn, path, &id)?;
                let mut listed = Vec::with_capacity(parts.len());
                let mut seen = HashSet::new();
                for part in parts {
                    let unknown =
                        || from_store(path, StoreError::UnknownPart(part.content_id.clone()));
                    let number: u32 = part.content_id.parse().map_err(|_| unknown())?;
                    let len = *staged.get(&number).ok_or_else(unknown)?;
                    if !seen.insert(number) {
                        return Err(from_store(path, StoreError::DuplicatePart(number)));
                    }
                    listed.push((number, len));
                }
                for number in staged.keys().filter(|n| !seen.contains(n)) {
                    delete_prefix(txn, path, &keys::chunks_of_part(&id, *number))?;
                }
                delete_prefix(txn, path, &keys::parts_of(&id))?;
                txn.delete(&keys::upload(&id)).map_err(|e| from_strata(path, e))?;
                if let Some(found) = self.read_record(txn, path, None)? {
                    delete_body(txn, path, &found.record.body, Some(&id))?;
                }
                let size = listed.iter().map(|(_, len)| len).sum();
                let body = if listed.is_empty() {
                    Body::Inline(Bytes::new())
                } else {
                    Body::Chunked { id, parts: listed }
                };
                let record = ObjectRecord {
                    e_tag: txn.snapshot_seq(),
                    last_modified_ns: now_ns(),
                    size,
                    attributes: upload.attributes,
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

    /// The parts staged for upload `id`: number to length.
    fn staged_parts(
        &self,
        txn: &strata::Transaction,
        path: &str,
        id: &DataId,
    ) -> Result<BTreeMap<u32, u64>> {
        let start = keys::parts_of(id);
        let mut staged = BTreeMap::new();
        for item in
            txn.range(&start, &keys::successor(&start), None).map_err(|e| from_strata(path, e))?
        {
            let (key, value) = item.map_err(|e| from_strata(path, e))?;
            let corrupt =
                StoreError::CorruptRecord { record: "part key", field: "part number", offset: 0 };
            let number = keys::part_number_of(&key).ok_or_else(|| from_store(path, corrupt))?;
            staged.insert(number, record::decode_part(&value).map_err(|e| from_store(path, e))?);
        }
        Ok(staged)
    }

    /// Deletes everything staged for upload `id`. An unknown (or finished) upload is fine.
    pub(super) async fn abort_upload(&self, path: &str, id: DataId) -> Result<()> {
        self.retrying(path, |txn| {
            if self.read_upload(txn, path, &id)?.is_none() {
                return Ok(());
            }
            delete_prefix(txn, path, &keys::chunks_of(&id))?;
            delete_prefix(txn, path, &keys::parts_of(&id))?;
            txn.delete(&keys::upload(&id)).map_err(|e| from_strata(path, e))
        })
        .await
    }
}

/// The upload [`ObjectStore::put_multipart_opts`](::object_store::ObjectStore) returns:
/// parts are numbered in the order `put_part` is called (not the order they finish), and
/// `complete` lists them all in that order.
#[derive(Debug)]
pub(super) struct Upload {
    inner: Arc<Inner>,
    path: String,
    id: DataId,
    next_part: u32,
}

impl Upload {
    pub(super) fn new(inner: Arc<Inner>, path: &str, id: DataId) -> Upload {
        Upload { inner, path: path.to_owned(), id, next_part: 0 }
    }
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: ::object_store::PutPayload) -> UploadPart {
        let part = self.next_part;
        self.next_part = self.next_part.saturating_add(1);
        let (inner, path, id) = (Arc::clone(&self.inner), self.path.clone(), self.id);
        Box::pin(async move {
            inner.put_part(&path, id, part, data.into()).await?;
            Ok(())
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let parts: Vec<_> =
            (0..self.next_part).map(|n| PartId { content_id: n.to_string() }).collect();
        self.inner.complete_upload(&self.path, self.id, &parts).await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort_upload(&self.path, self.id).await
    }
}
