//! Reading the value log: values by pointer, and whole files record by record.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use bytes::Bytes;
use core::sync::atomic::Ordering;

use strata_vfs::sync::{AtomicU64, Mutex, RwLock};
use strata_vfs::{FileKind, RandomRead, Vfs};

use super::format::{self, ValuePointer};
use crate::cache::{BlockCache, SeenBefore};
use crate::filenames;
use crate::{CorruptionKind, Error, IoOp, Result};

/// Open value log files, by id, for reading values back.
pub struct VlogStore<V: Vfs> {
    vfs: Arc<dyn VfsRef<V>>,
    /// Verify each record's checksum on read (`VLogChecksumLevel::Full`).
    verify: bool,
    /// id → file number, for every file the database names.
    files: RwLock<BTreeMap<u64, u64>>,
    handles: Mutex<BTreeMap<u64, Arc<V::Read>>>,
    /// The engine's block cache, which also keeps values read from the log (by file number
    /// and record offset), so a value read again costs no file read.
    cache: Option<Arc<BlockCache>>,
    /// Records read before, as bits of hashed `(file number, offset)`: a value enters the
    /// cache on its third read, so values read once or twice cost the cache nothing.
    seen: SeenBefore,
    /// Values read from the log (not counting those served from the cache).
    pub reads: AtomicU64,
    /// Bytes read from the log.
    pub read_bytes: AtomicU64,
}

/// How the store reaches the filesystem (it shares the engine's).
pub trait VfsRef<V: Vfs>: Send + Sync {
    /// The filesystem.
    fn vfs(&self) -> &V;
}

impl<V: Vfs> core::fmt::Debug for VlogStore<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VlogStore").field("verify", &self.verify).finish()
    }
}

impl<V: Vfs> VlogStore<V>
where
    V::Read: Send + Sync,
{
    /// A store over `vfs` reading the files in `files` (id → file number), keeping the values
    /// it reads in `cache` if given.
    pub fn new(
        vfs: Arc<dyn VfsRef<V>>,
        verify: bool,
        files: BTreeMap<u64, u64>,
        cache: Option<Arc<BlockCache>>,
    ) -> Self {
        VlogStore {
            vfs,
            verify,
            files: RwLock::new(files),
            handles: Mutex::new(BTreeMap::new()),
            cache,
            seen: SeenBefore::new(),
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
        }
    }

    /// Makes file `id` (stored as number `file_no`) readable.
    pub fn add_file(&self, id: u64, file_no: u64) {
        self.files.write().insert(id, file_no);
    }

    /// Forgets file `id`, closes its handle and drops its cached values.
    pub fn remove_file(&self, id: u64) {
        let file_no = self.files.write().remove(&id);
        self.handles.lock().remove(&id);
        if let (Some(c), Some(no)) = (&self.cache, file_no) {
            c.erase_file(no);
        }
    }

    /// The file name of file `id`, if the database names it.
    pub fn file_name(&self, id: u64) -> Option<alloc::string::String> {
        self.files.read().get(&id).map(|&n| filenames::vlog(n))
    }

    /// The open file `id`, opening it on first use.
    fn handle(&self, id: u64) -> Result<Arc<V::Read>> {
        if !self.files.read().contains_key(&id) {
            return Err(Error::corruption(&filenames::vlog(id), 0, CorruptionKind::MissingFile));
        }
        if let Some(h) = self.handles.lock().get(&id) {
            return Ok(Arc::clone(h));
        }
        let name = self.name_for_error(id);
        let file = self.vfs.vfs().open(&name, FileKind::ValueLog).map_err(|e| {
            if e.kind() == strata_vfs::ErrorKind::NotFound {
                Error::corruption(&name, 0, CorruptionKind::MissingFile)
            } else {
                Error::io(IoOp::Open, &name, e)
            }
        })?;
        let file = Arc::new(file);
        self.handles.lock().insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// The name of file `id`, built only when it is needed (opening, or an error), so that a
    /// read allocates nothing but its buffer.
    fn name_for_error(&self, id: u64) -> alloc::string::String {
        self.file_name(id).unwrap_or_else(|| filenames::vlog(id))
    }

    /// The value `pointer` names, which must be a record of `key`. With verification on, the
    /// record's checksum is checked: a mismatch is `Corruption { file, offset, Checksum }`.
    /// A value found in the cache (read and checked before, for the same key and record
    /// length) is handed out without reading the file.
    pub fn read(&self, pointer: &ValuePointer, key: &[u8]) -> Result<Bytes> {
        let cache = self
            .cache
            .as_ref()
            .zip(self.files.read().get(&pointer.file).copied())
            .filter(|(c, _)| c.capacity() > 0);
        if let Some((c, no)) = cache
            && let Some(v) = c.get_value(no, pointer.offset, key, pointer.len)
        {
            return Ok(v);
        }
        let value = self.read_file(pointer, key)?;
        if let Some((c, no)) = cache
            && self.seen.note_read(no, pointer.offset, 2)
        {
            c.insert_value(no, pointer.offset, key, pointer.len, value.clone());
        }
        Ok(value)
    }

    /// [`read`](Self::read) from the file.
    fn read_file(&self, pointer: &ValuePointer, key: &[u8]) -> Result<Bytes> {
        let file = self.handle(pointer.file)?;
        let corrupt =
            |kind| Error::corruption(&self.name_for_error(pointer.file), pointer.offset, kind);
        // Checked before allocating: the length comes from the tree, which may hold a
        // pointer made by hand or read from a damaged table.
        if pointer.len > format::MAX_RECORD_LEN {
            return Err(corrupt(CorruptionKind::BadPointer));
        }
        let mut buf = vec![0u8; pointer.len as usize];
        file.read_exact_at(pointer.offset, &mut buf).map_err(|e| {
            if e.kind() == strata_vfs::ErrorKind::UnexpectedEof {
                corrupt(CorruptionKind::BadPointer)
            } else {
                Error::io(IoOp::Read, &self.name_for_error(pointer.file), e)
            }
        })?;
        let view = format::decode_record(&buf, self.verify).map_err(corrupt)?;
        if view.key != key {
            return Err(corrupt(CorruptionKind::BadPointer));
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.read_bytes.fetch_add(u64::from(pointer.len), Ordering::Relaxed);
        if view.compressed {
            let value = view.value().map_err(corrupt)?;
            return Ok(Bytes::from(value.into_owned()));
        }
        // The value is the record's tail: hand it out without copying.
        let start = buf.len() - view.stored.len();
        Ok(Bytes::from(buf).slice(start..))
    }

    /// Decodes `pointer_bytes` and reads the value, for `key`.
    pub fn resolve(&self, key: &[u8], pointer_bytes: &[u8]) -> Result<Bytes> {
        let pointer = ValuePointer::decode(pointer_bytes)
            .map_err(|k| Error::corruption("value pointer", 0, k))?;
        self.read(&pointer, key)
    }
}

/// How a walk over a file's records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Offset just past the last good record (the header length if there was none).
    pub valid_end: u64,
    /// Why the walk stopped before `end`: the damage found at `valid_end`, if any.
    pub damage: Option<CorruptionKind>,
}

/// Walks the records of value log file `name` from its header to `end`, checking each one's
/// checksum, and calls `on_record(record_offset, record_len, record)` for each (the record's
/// value is decompressed only if the callback asks for it). Stops at
/// the first record that is cut short or fails its checksum and reports it in
/// [`ScanEnd::damage`]: recovery takes that as the torn tail of the head file, garbage
/// collection (which only walks sealed files) as corruption. The file header must be valid.
pub fn scan_file<R: RandomRead>(
    file: &R,
    name: &str,
    end: u64,
    mut on_record: impl FnMut(u64, u32, &format::RecordView<'_>) -> Result<()>,
) -> Result<ScanEnd> {
    let io = |e| Error::io(IoOp::Read, name, e);
    let mut header = [0u8; format::FILE_HEADER_LEN as usize];
    if end < format::FILE_HEADER_LEN {
        return Err(Error::corruption(name, 0, CorruptionKind::Truncated));
    }
    file.read_exact_at(0, &mut header).map_err(io)?;
    format::check_file_header(&header).map_err(|k| Error::corruption(name, 0, k))?;
    let mut at = format::FILE_HEADER_LEN;
    let mut prefix = [0u8; format::MAX_PREFIX_LEN];
    let mut buf = alloc::vec::Vec::new();
    while at < end {
        let n = (end - at).min(prefix.len() as u64) as usize;
        let head = prefix.get_mut(..n).unwrap_or_default();
        file.read_exact_at(at, head).map_err(io)?;
        let p = match format::parse_prefix(head) {
            Ok(p) => p,
            Err(k) => return Ok(ScanEnd { valid_end: at, damage: Some(k) }),
        };
        let len = p.record_len() as u64;
        if len > end - at {
            return Ok(ScanEnd { valid_end: at, damage: Some(CorruptionKind::Truncated) });
        }
        buf.resize(p.record_len(), 0);
        file.read_exact_at(at, &mut buf).map_err(io)?;
        let view = match format::decode_record(&buf, true) {
            Ok(v) => v,
            Err(k) => return Ok(ScanEnd { valid_end: at, damage: Some(k) }),
        };
        // At most format::MAX_RECORD_LEN (parse_prefix bounds both lengths), which fits a u32.
        on_record(at, len as u32, &view)?;
        at += len;
    }
    Ok(ScanEnd { valid_end: at, damage: None })
}

/// Where a key walk ([`scan_keys`]) stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyScan {
    /// Offset of the first record not visited (`end` once the walk reached it).
    pub next: u64,
    /// Bytes read from the file.
    pub read_bytes: u64,
    /// The damage found at `next`, if the walk stopped there because a record's prefix does
    /// not parse or the record runs past `end`.
    pub damage: Option<CorruptionKind>,
}

/// Bytes read per record by [`scan_keys`]: the longest prefix plus a typical key, so that one
/// read usually yields both.
const KEY_PEEK_LEN: usize = format::MAX_PREFIX_LEN + 64;

/// Walks the records of value log file `name` from `from` (a record boundary; the file header
/// is checked when it is the first one) towards `end`, reading only each record's prefix and
/// key, never its value, and calls `on_key(record_offset, record_len, key)` for each until it
/// returns `false`. Checksums are not verified (the value is not read): this is for estimates
/// (background garbage collection sampling a file), never for deciding what data is.
pub fn scan_keys<R: RandomRead>(
    file: &R,
    name: &str,
    from: u64,
    end: u64,
    mut on_key: impl FnMut(u64, u32, &[u8]) -> Result<bool>,
) -> Result<KeyScan> {
    let io = |e| Error::io(IoOp::Read, name, e);
    let mut out = KeyScan { next: from.max(format::FILE_HEADER_LEN), read_bytes: 0, damage: None };
    if from < format::FILE_HEADER_LEN {
        if end < format::FILE_HEADER_LEN {
            out.damage = Some(CorruptionKind::Truncated);
            return Ok(out);
        }
        let mut header = [0u8; format::FILE_HEADER_LEN as usize];
        file.read_exact_at(0, &mut header).map_err(io)?;
        out.read_bytes += format::FILE_HEADER_LEN;
        if let Err(k) = format::check_file_header(&header) {
            out.next = 0;
            out.damage = Some(k);
            return Ok(out);
        }
    }
    let mut peek = [0u8; KEY_PEEK_LEN];
    let mut long_key = alloc::vec::Vec::new();
    while out.next < end {
        let at = out.next;
        let n = (end - at).min(KEY_PEEK_LEN as u64) as usize;
        let head = peek.get_mut(..n).unwrap_or_default();
        file.read_exact_at(at, head).map_err(io)?;
        out.read_bytes += n as u64;
        let p = match format::parse_prefix(head) {
            Ok(p) => p,
            Err(k) => {
                out.damage = Some(k);
                return Ok(out);
            }
        };
        let len = p.record_len() as u64;
        if len > end - at {
            out.damage = Some(CorruptionKind::Truncated);
            return Ok(out);
        }
        let key_end = p.header_len + p.key_len;
        let key: &[u8] = if let Some(k) = head.get(p.header_len..key_end) {
            k
        } else {
            // A key longer than the peek: one more read of exactly the key (bounded by
            // `MAX_KEY_SIZE` and by the record, which the file holds).
            long_key.resize(p.key_len, 0);
            file.read_exact_at(at + p.header_len as u64, &mut long_key).map_err(io)?;
            out.read_bytes += p.key_len as u64;
            &long_key
        };
        // At most MAX_KEY_SIZE + MAX_VALUE_SIZE + 25 bytes, which fits a u32.
        let go_on = on_key(at, len as u32, key)?;
        out.next = at + len;
        if !go_on {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use strata_vfs::{AppendWrite, MemFs};

    use super::*;

    /// A fresh MemFs holding `bytes` as file `name`.
    fn file_with(name: &str, bytes: &[u8]) -> MemFs {
        let fs = MemFs::new();
        let mut w = fs.create(name, FileKind::ValueLog).expect("create");
        w.append(bytes).expect("append");
        w.flush().expect("flush");
        fs
    }

    /// A value log file holding `records` (stored raw): its bytes and each record's
    /// `(offset, len)`.
    fn encode(records: &[(&[u8], &[u8])]) -> (Vec<u8>, Vec<(u64, u32)>) {
        let mut bytes = format::file_header().to_vec();
        let mut at = Vec::new();
        for (k, v) in records {
            let offset = bytes.len() as u64;
            let len = format::encode_record(&mut bytes, k, v, false);
            at.push((offset, len as u32));
        }
        (bytes, at)
    }

    type Seen = Vec<(u64, u32, Vec<u8>)>;

    fn walk(fs: &MemFs, from: u64, end: u64, stop_after: usize) -> (KeyScan, Seen) {
        let file = fs.open("000001.vlog", FileKind::ValueLog).expect("open");
        let mut seen = Vec::new();
        let scan = scan_keys(&file, "000001.vlog", from, end, |o, l, k| {
            seen.push((o, l, k.to_vec()));
            Ok(seen.len() < stop_after)
        })
        .expect("scan");
        (scan, seen)
    }

    #[test]
    fn scan_keys_reads_keys_not_values_resumes_and_reports_damage() {
        // A key longer than one peek, and a value far longer than anything read.
        let long_key = vec![b'k'; 300];
        let big_value = vec![7u8; 5000];
        let records: [(&[u8], &[u8]); 3] =
            [(b"a", b"value-a"), (&long_key, b"v"), (b"c", &big_value)];
        let (bytes, at) = encode(&records);
        let end = bytes.len() as u64;
        let fs = file_with("000001.vlog", &bytes);

        let (scan, seen) = walk(&fs, 0, end, usize::MAX);
        let want: Seen =
            at.iter().zip(&records).map(|(&(o, l), (k, _))| (o, l, k.to_vec())).collect();
        assert_eq!(seen, want);
        assert_eq!((scan.next, scan.damage), (end, None));
        // Header, three peeks and the long key: not the values.
        assert_eq!(scan.read_bytes, 16 + 3 * KEY_PEEK_LEN as u64 + 300, "{scan:?}");

        // Stopped after the first record, a walk resumes at the second.
        let (scan, seen) = walk(&fs, 0, end, 1);
        assert_eq!((seen.len(), scan.next), (1, at[1].0));
        let (scan, seen) = walk(&fs, scan.next, end, usize::MAX);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [at[1].0, at[2].0]);
        assert_eq!(scan.next, end);

        // A record running past `end` stops the walk there.
        let (scan, seen) = walk(&fs, 0, end - 1, usize::MAX);
        assert_eq!(seen.len(), 2);
        assert_eq!((scan.next, scan.damage), (at[2].0, Some(CorruptionKind::Truncated)));

        // An unknown flags byte in the second record.
        let mut bad = bytes.clone();
        bad[at[1].0 as usize + 4] = 9;
        let (scan, seen) = walk(&file_with("000001.vlog", &bad), 0, end, usize::MAX);
        assert_eq!(seen.len(), 1);
        assert_eq!((scan.next, scan.damage), (at[1].0, Some(CorruptionKind::UnknownTag(9))));

        // A bad header: nothing is walked.
        let mut bad = bytes;
        bad[0] = b'X';
        let (scan, seen) = walk(&file_with("000001.vlog", &bad), 0, end, usize::MAX);
        assert!(seen.is_empty());
        assert_eq!((scan.next, scan.damage), (0, Some(CorruptionKind::BadMagic)));
    }

    struct Fs(MemFs);

    impl VfsRef<MemFs> for Fs {
        fn vfs(&self) -> &MemFs {
            &self.0
        }
    }

    /// A store reading file id 4, stored as number 7 and holding `bytes`.
    fn store_over(bytes: &[u8], cache: Option<Arc<BlockCache>>) -> VlogStore<MemFs> {
        let fs = file_with(&filenames::vlog(7), bytes);
        VlogStore::new(Arc::new(Fs(fs)), true, BTreeMap::from([(4, 7)]), cache)
    }

    #[test]
    fn values_read_again_come_from_the_cache_for_the_same_key_and_length_only() {
        let big = vec![9u8; 3000];
        let records: [(&[u8], &[u8]); 2] = [(b"a", b"value-a"), (b"b", &big)];
        let (bytes, at) = encode(&records);
        let ptr = |i: usize| ValuePointer { file: 4, offset: at[i].0, len: at[i].1 };
        let cache = Arc::new(BlockCache::new(1 << 20));
        let store = store_over(&bytes, Some(Arc::clone(&cache)));
        for _ in 0..3 {
            for (i, (k, v)) in records.iter().enumerate() {
                assert_eq!(store.read(&ptr(i), k).expect("read")[..], v[..]);
            }
        }
        // A value enters the cache on its third read: three file reads each, then none.
        for _ in 0..3 {
            for (i, (k, v)) in records.iter().enumerate() {
                assert_eq!(store.read(&ptr(i), k).expect("read")[..], v[..]);
            }
        }
        assert_eq!(store.reads.load(Ordering::Relaxed), 6, "each value came from the file 3 times");
        assert!(cache.usage() >= 3000 + 7, "both values are charged: {}", cache.usage());

        // Another key, or another record length, at a cached offset is not answered from the
        // cache: the file is read and judges it, as for a store without a cache.
        let uncached = store_over(&bytes, None);
        let long = ValuePointer { len: at[0].1 + 1, ..ptr(0) };
        for (p, key) in [(ptr(0), &b"zz"[..]), (long, &b"a"[..])] {
            let before = store.reads.load(Ordering::Relaxed);
            let (got, want) = (store.read(&p, key), uncached.read(&p, key));
            assert!(got.is_err() && want.is_err(), "{p:?} for {key:?}: {got:?} / {want:?}");
            assert_eq!(store.reads.load(Ordering::Relaxed), before, "failed reads are not counted");
        }
        assert!(store.read(&ptr(0), b"zz").is_err(), "a refused lookup caches nothing");

        // Removing the file drops its values.
        store.remove_file(4);
        assert_eq!(cache.usage(), 0);

        // A cache of capacity 0 keeps nothing: every read goes to the file.
        let store = store_over(&bytes, Some(Arc::new(BlockCache::new(0))));
        for _ in 0..3 {
            assert_eq!(store.read(&ptr(1), b"b").expect("read")[..], big[..]);
        }
        assert_eq!(store.reads.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn values_read_once_or_twice_are_not_cached() {
        let records: Vec<(Vec<u8>, Vec<u8>)> =
            (0..200u32).map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; 500])).collect();
        let refs: Vec<(&[u8], &[u8])> =
            records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let (bytes, at) = encode(&refs);
        let cache = Arc::new(BlockCache::new(1 << 20));
        let store = store_over(&bytes, Some(Arc::clone(&cache)));
        for ((k, v), &(offset, len)) in records.iter().zip(&at) {
            let p = ValuePointer { file: 4, offset, len };
            assert_eq!(store.read(&p, k).expect("read")[..], v[..]);
        }
        for ((k, _), &(offset, len)) in records.iter().zip(&at).take(100) {
            store.read(&ValuePointer { file: 4, offset, len }, k).expect("read");
        }
        assert_eq!(cache.usage(), 0, "values read once or twice are not cached");
        for ((k, _), &(offset, len)) in records.iter().zip(&at).take(10) {
            store.read(&ValuePointer { file: 4, offset, len }, k).expect("read");
        }
        let usage = cache.usage();
        assert!((10 * 500..20 * 500).contains(&usage), "the ten values read 3 times: {usage}");
    }
}
