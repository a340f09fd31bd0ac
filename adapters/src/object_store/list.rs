//! Listings: range scans over the object records. A flat listing streams one scan; a
//! delimiter listing seeks past each common prefix once it has seen it, so a "directory"
//! costs one key however much it holds; pages resume from a token that is the next key.

use ::object_store::list::{PaginatedListOptions, PaginatedListResult};
use ::object_store::path::Path;
use ::object_store::{ListResult, ObjectMeta, Result};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use strata::Transaction;

use super::Inner;
use super::error::{StoreError, from_store, from_strata, generic};
use super::keys;
use super::read::{Found, object_meta};
use super::record::ObjectRecord;

/// The record key range of the objects under `prefix` (whole segments: `a` holds `a/b` but
/// not `ab`).
fn prefix_range(prefix: Option<&Path>) -> (Vec<u8>, Vec<u8>) {
    match prefix.map(|p| p.as_ref()).filter(|p| !p.is_empty()) {
        None => (keys::object(""), keys::objects_end()),
        Some(p) => {
            let start = keys::object(&format!("{p}/"));
            let end = keys::successor(&start);
            (start, end)
        }
    }
}

/// The object a record key and value describe (no version: listings do not read history).
fn meta_of(key: &[u8], value: &bytes::Bytes) -> Result<ObjectMeta> {
    let corrupt = || StoreError::CorruptRecord { record: "object key", field: "path", offset: 0 };
    let path = keys::path_of(key).ok_or_else(|| generic(corrupt()))?;
    let location = Path::parse(path)?;
    let record = ObjectRecord::decode(value).map_err(|e| from_store(path, e))?;
    Ok(object_meta(location, &Found { record, version: None }))
}

/// What one page of a delimiter walk found, and the key to resume from if it stopped early.
struct Page {
    result: ListResult,
    resume: Option<Vec<u8>>,
}

/// Walks the records in `[start, end)`, whose paths all start with `base`: an object whose
/// path continues with `delimiter` after `base` is summarised by its common prefix (and
/// the walk seeks past that prefix), any other is listed. Stops before the `limit + 1`th
/// entry.
fn walk(
    txn: &Transaction,
    base: &str,
    delimiter: Option<&str>,
    mut start: Vec<u8>,
    end: &[u8],
    limit: Option<usize>,
) -> Result<Page> {
    let mut result = ListResult {
        common_prefixes: Vec::new(),
        objects: Vec::new(),
        extensions: Default::default(),
    };
    'scan: loop {
        let iter = txn.range(&start, end, None).map_err(|e| from_strata(base, e))?;
        for item in iter {
            let (key, value) = item.map_err(|e| from_strata(base, e))?;
            if limit.is_some_and(|l| result.objects.len() + result.common_prefixes.len() >= l) {
                return Ok(Page { result, resume: Some(key.to_vec()) });
            }
            let path = keys::path_of(&key).unwrap_or_default();
            let rest = path.get(base.len()..).unwrap_or_default();
            if let Some(at) = delimiter.and_then(|d| rest.find(d)) {
                let common = path.get(..base.len() + at).unwrap_or(path);
                result.common_prefixes.push(Path::parse(common)?);
                // Seek past everything under this prefix.
                let delimiter = delimiter.unwrap_or_default();
                start = keys::successor(&keys::object(&format!("{common}{delimiter}")));
                continue 'scan;
            }
            result.objects.push(meta_of(&key, &value)?);
        }
        return Ok(Page { result, resume: None });
    }
}

impl Inner {
    pub(super) fn list(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let (mut start, end) = prefix_range(prefix);
        if let Some(offset) = offset {
            // Strictly after the offset.
            let mut after = keys::object(offset.as_ref());
            after.push(0);
            start = start.max(after);
        }
        let label = prefix.map(|p| p.to_string()).unwrap_or_default();
        let iter = self
            .begin_read(&label)
            .and_then(|txn| txn.range(&start, &end, None).map_err(|e| from_strata(&label, e)));
        match iter {
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
            Ok(iter) => futures_util::stream::iter(iter.map(move |item| {
                let (key, value) = item.map_err(|e| from_strata(&label, e))?;
                meta_of(&key, &value)
            }))
            .boxed(),
        }
    }

    pub(super) fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let (start, end) = prefix_range(prefix);
        let base = match prefix.map(|p| p.as_ref()).filter(|p| !p.is_empty()) {
            Some(p) => format!("{p}/"),
            None => String::new(),
        };
        let txn = self.begin_read(&base)?;
        Ok(walk(&txn, &base, Some("/"), start, &end, None)?.result)
    }

    pub(super) fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> Result<PaginatedListResult> {
        let base = prefix.unwrap_or_default();
        let mut start = keys::object(base);
        let end = if base.is_empty() { keys::objects_end() } else { keys::successor(&start) };
        if let Some(offset) = &opts.offset {
            let mut after = keys::object(offset);
            after.push(0);
            start = start.max(after);
        }
        if let Some(token) = &opts.page_token {
            let resume = decode_token(token)
                .ok_or_else(|| generic(StoreError::BadPageToken(token.clone())))?;
            start = start.max(resume);
        }
        let txn = self.begin_read(base)?;
        let page = walk(&txn, base, opts.delimiter.as_deref(), start, &end, opts.max_keys)?;
        Ok(PaginatedListResult {
            result: page.result,
            page_token: page.resume.as_deref().map(encode_token),
        })
    }
}

/// A page token: the key to resume from, in hex.
fn encode_token(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
