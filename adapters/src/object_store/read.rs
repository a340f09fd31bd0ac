//! Reading objects: records at the newest state or at a version, and the byte stream of a
//! get, cut from the chunks the requested range covers.

use std::ops::Range;

use ::object_store::path::Path;
use ::object_store::{GetOptions, GetResult, GetResultPayload, ObjectMeta, Result};
use bytes::Bytes;
use chrono::DateTime;
use futures_util::StreamExt;
use strata::{Mode, Transaction, Tree};

use super::error::{StoreError, from_store, from_strata, not_found};
use super::keys::{self, DataId};
use super::record::{Body, ObjectRecord};
use super::{CHUNK_SIZE, Inner};

/// An object as one snapshot sees it.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) record: ObjectRecord,
    /// The commit timestamp of the record, when the tree keeps history.
    pub(super) version: Option<u64>,
}

/// Whether `tree` was built with versioning (a versioned scan of nothing succeeds).
pub(super) fn tree_keeps_history(tree: &Tree) -> Result<bool> {
    let txn = tree.begin_with_mode(Mode::ReadOnly).map_err(|e| from_strata("", e))?;
    match txn.scan_all_versions(b"", b"", Some(0)) {
        Ok(_) => Ok(true),
        Err(strata::Error::VersioningDisabled) => Ok(false),
        Err(e) => Err(from_strata("", e)),
    }
}

/// The e-tag string of a record's e-tag number.
pub(super) fn e_tag_string(e_tag: u64) -> String {
    format!("{e_tag:016x}")
}

pub(super) fn object_meta(location: Path, found: &Found) -> ObjectMeta {
    ObjectMeta {
        location,
        last_modified: DateTime::from_timestamp_nanos(found.record.last_modified_ns),
        size: found.record.size,
        e_tag: Some(e_tag_string(found.record.e_tag)),
        version: found.version.map(|v| v.to_string()),
    }
}

fn decode(path: &str, value: &Bytes) -> Result<ObjectRecord> {
    ObjectRecord::decode(value).map_err(|e| from_store(path, e))
}

impl Inner {
    pub(super) fn begin_read(&self, path: &str) -> Result<Transaction> {
        self.tree.begin_with_mode(Mode::ReadOnly).map_err(|e| from_strata(path, e))
    }

    /// The object at `path` as `txn` sees it, or as it was at timestamp `at`.
    pub(super) fn read_record(
        &self,
        txn: &Transaction,
        path: &str,
        at: Option<u64>,
    ) -> Result<Option<Found>> {
        let key = keys::object(path);
        if let Some(ts) = at {
            let value = txn.get_at_version(&key, ts).map_err(|e| from_strata(path, e))?;
            return value
                .map(|v| Ok(Found { record: decode(path, &v)?, version: Some(ts) }))
                .transpose();
        }
        if !self.versioning {
            let value = txn.get(&key).map_err(|e| from_strata(path, e))?;
            return value
                .map(|v| Ok(Found { record: decode(path, &v)?, version: None }))
                .transpose();
        }
        // The newest version and its commit timestamp in one read.
        let mut end = key.clone();
        end.push(0);
        let newest =
            txn.scan_all_versions(&key, &end, Some(1)).map_err(|e| from_strata(path, e))?;
        match newest.into_iter().next() {
            Some((_, value, ts, false)) => {
                Ok(Some(Found { record: decode(path, &value)?, version: Some(ts) }))
            }
            _ => Ok(None),
        }
    }

    /// The commit timestamp of the version of `path` whose e-tag is `e_tag` (the write that
    /// just committed), when the tree keeps history. Looks at the newest few versions: the
    /// one wanted is the newest unless other writers committed since.
    pub(super) fn version_of(&self, path: &str, e_tag: u64) -> Result<Option<String>> {
        if !self.versioning {
            return Ok(None);
        }
        let txn = self.begin_read(path)?;
        let key = keys::object(path);
        let mut end = key.clone();
        end.push(0);
        let versions =
            txn.scan_all_versions(&key, &end, Some(16)).map_err(|e| from_strata(path, e))?;
        for (_, value, ts, tombstone) in versions {
            if !tombstone && decode(path, &value)?.e_tag == e_tag {
                return Ok(Some(ts.to_string()));
            }
        }
        Ok(None)
    }

    pub(super) fn get(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let path = location.as_ref();
        let at = match &options.version {
            None => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| from_store(path, StoreError::BadVersion(v.clone())))?,
            ),
        };
        let txn = self.begin_read(path)?;
        let found = self.read_record(&txn, path, at)?.ok_or_else(|| not_found(path))?;
        let meta = object_meta(location.clone(), &found);
        options.check_preconditions(&meta)?;
        let size = found.record.size;
        let range = match &options.range {
            None => 0..size,
            Some(r) => r
                .as_range(size)
                .map_err(|e| from_store(path, StoreError::BadRange(e.to_string())))?,
        };
        let record = found.record;
        let payload = if options.head {
            futures_util::stream::empty().boxed()
        } else {
            match record.body {
                Body::Inline(data) => {
                    let slice = to_usize(path, &range).map(|r| data.slice(r));
                    futures_util::stream::once(async move { slice }).boxed()
                }
                Body::Chunked { id, parts } => {
                    let pieces = plan(&parts, &range);
                    let path = path.to_owned();
                    futures_util::stream::iter(
                        pieces
                            .into_iter()
                            .map(move |piece| read_piece(&txn, &path, &id, at, &piece)),
                    )
                    .boxed()
                }
            }
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: record.attributes,
            extensions: Default::default(),
        })
    }
}

fn to_usize(path: &str, range: &Range<u64>) -> Result<Range<usize>> {
    let start = usize::try_from(range.start);
    let end = usize::try_from(range.end);
    match (start, end) {
        (Ok(start), Ok(end)) => Ok(start..end),
        _ => Err(from_store(path, StoreError::TooLarge { what: "range" })),
    }
}

/// One chunk to read and the bytes of it that a get returns.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Piece {
    part: u32,
    index: u64,
    within: Range<u64>,
}

/// The chunks holding `range` of an object made of `parts` (number, length), in order.
pub(super) fn plan(parts: &[(u32, u64)], range: &Range<u64>) -> Vec<Piece> {
    let chunk = CHUNK_SIZE as u64;
    let mut pieces = Vec::new();
    let mut part_start = 0u64;
    for &(part, len) in parts {
        let part_end = part_start.saturating_add(len);
        let start = range.start.max(part_start);
        let end = range.end.min(part_end);
        if start < end {
            let first = (start - part_start) / chunk;
            let last = (end - 1 - part_start) / chunk;
            for index in first..=last {
                let chunk_start = part_start + index * chunk;
                let from = start.max(chunk_start) - chunk_start;
                let to = end.min(chunk_start + chunk) - chunk_start;
                pieces.push(Piece { part, index, within: from..to });
            }
        }
        part_start = part_end;
    }
    pieces
}

fn read_piece(
    txn: &Transaction,
    path: &str,
    id: &DataId,
    at: Option<u64>,
    piece: &Piece,
) -> Result<Bytes> {
    let missing = || {
        from_store(
            path,
            StoreError::MissingChunk {
                path: path.to_owned(),
                part: piece.part,
                piece: u32::try_from(piece.index).unwrap_or(u32::MAX),
            },
        )
    };
    let index = u32::try_from(piece.index).map_err(|_| missing())?;
    let key = keys::chunk(id, piece.part, index);
    let value = match at {
        Some(ts) => txn.get_at_version(&key, ts),
        None => txn.get(&key),
    }
    .map_err(|e| from_strata(path, e))?
    .ok_or_else(missing)?;
    let within = to_usize(path, &piece.within)?;
    if within.end > value.len() {
        return Err(missing());
    }
    Ok(value.slice(within))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_maps_to_the_chunks_that_hold_it() {
        let mib = CHUNK_SIZE as u64;
        // Part 3 is 2.5 chunks, then part 1 is 10 bytes.
        let parts = [(3, 2 * mib + mib / 2), (1, 10)];
        let all = plan(&parts, &(0..2 * mib + mib / 2 + 10));
        assert_eq!(all.len(), 4);
        assert_eq!(all[2], Piece { part: 3, index: 2, within: 0..mib / 2 });
        assert_eq!(all[3], Piece { part: 1, index: 0, within: 0..10 });
        let middle = plan(&parts, &(mib - 1..mib + 1));
        assert_eq!(
            middle,
            vec![
                Piece { part: 3, index: 0, within: mib - 1..mib },
                Piece { part: 3, index: 1, within: 0..1 }
            ]
        );
        assert!(plan(&parts, &(5..5)).is_empty());
    }
}
