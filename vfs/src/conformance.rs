//! A conformance suite every [`Vfs`] implementation must pass.
//!
//! [`run_all`] runs every check, each on a fresh empty directory from the given factory, and
//! panics with a message naming the failing check. Each check is also a public function taking
//! an empty directory, so a host can run them one by one (see [`checks`]).
//!
//! The checks only test what the trait documents, so they hold for an in-memory filesystem, a
//! real directory on disk and any wrapper (fault injection without rules, encryption). They do
//! not simulate crashes: crash behaviour is implementation-specific.
//!
//! ```
//! use strata_vfs::{conformance, MemFs};
//! conformance::run_all(MemFs::new);
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;

use crate::{AppendWrite, ErrorKind, FileKind, RandomRead, Result, SyncMode, Vfs};

/// A named check, as returned by [`checks`].
pub type Check<V> = (&'static str, fn(&V));

/// Every check with its name, in the order [`run_all`] runs them.
pub fn checks<V: Vfs>() -> Vec<Check<V>> {
    vec![
        ("create_append_read", create_append_read::<V> as fn(&V)),
        ("append_after_read_sees_growth", append_after_read_sees_growth::<V>),
        ("create_existing_fails", create_existing_fails::<V>),
        ("missing_file_not_found", missing_file_not_found::<V>),
        ("read_past_eof_fails", read_past_eof_fails::<V>),
        ("empty_reads_succeed", empty_reads_succeed::<V>),
        ("rename_replaces_target", rename_replaces_target::<V>),
        ("list_shows_exactly_the_files", list_shows_exactly_the_files::<V>),
        ("size_matches_appends", size_matches_appends::<V>),
        ("lock_is_exclusive", lock_is_exclusive::<V>),
        ("link_shares_data_or_unsupported", link_shares_data_or_unsupported::<V>),
        ("sync_and_sync_dir_succeed", sync_and_sync_dir_succeed::<V>),
        ("removed_file_stays_readable", removed_file_stays_readable::<V>),
        ("large_appends_read_back", large_appends_read_back::<V>),
    ]
}

/// Runs every check, each on a new directory from `fresh` (which must be empty). Panics on
/// the first failure with a message naming the check.
pub fn run_all<V: Vfs>(mut fresh: impl FnMut() -> V) {
    for (_, check) in checks::<V>() {
        let fs = fresh();
        check(&fs);
    }
}

/// The name of a lock the checks take; [`list_shows_exactly_the_files`] ignores a file of this
/// name (a lock may or may not be a visible file).
pub const LOCK_NAME: &str = "LOCK";

/// Assertion helpers whose panics name the check.
struct Ctx {
    check: &'static str,
}

impl Ctx {
    fn fail(&self, msg: &str) -> ! {
        panic!("vfs conformance check `{}` failed: {}", self.check, msg)
    }

    fn ok<T>(&self, result: Result<T>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(&format!("{what}: unexpected error: {e}")),
        }
    }

    fn err_kind<T>(&self, result: Result<T>, kind: ErrorKind, what: &str) {
        match result {
            Ok(_) => self.fail(&format!("{what}: expected error {kind:?}, got Ok")),
            Err(e) if e.kind() == kind => {}
            Err(e) => {
                self.fail(&format!("{what}: expected error {kind:?}, got {:?} ({e})", e.kind()))
            }
        }
    }

    fn eq<T: PartialEq + Debug>(&self, got: T, want: T, what: &str) {
        if got != want {
            self.fail(&format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    /// Byte comparison that reports the first difference instead of dumping both buffers.
    fn same_bytes(&self, got: &[u8], want: &[u8], what: &str) {
        if got.len() != want.len() {
            self.fail(&format!("{what}: got {} bytes, want {}", got.len(), want.len()));
        }
        if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
            self.fail(&format!(
                "{what}: first difference at byte {i}: got {:#04x}, want {:#04x}",
                got[i], want[i]
            ));
        }
    }

    fn read_at<R: RandomRead>(&self, r: &R, offset: u64, len: usize, what: &str) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.ok(r.read_exact_at(offset, &mut buf), what);
        buf
    }

    /// Creates `name` holding `data`, flushed (the writer is dropped).
    fn write_file<V: Vfs>(&self, fs: &V, name: &str, data: &[u8]) {
        let mut w = self.ok(fs.create(name, FileKind::Table), "create");
        self.ok(w.append(data), "append");
        self.ok(w.flush(), "flush");
    }

    fn read_file<V: Vfs>(&self, fs: &V, name: &str) -> Vec<u8> {
        let r = self.ok(fs.open(name, FileKind::Table), "open");
        let len = self.ok(r.len(), "len");
        let len = usize::try_from(len).unwrap_or_else(|_| self.fail("file length overflows usize"));
        self.read_at(&r, 0, len, "read whole file")
    }

    fn sorted_list<V: Vfs>(&self, fs: &V) -> Vec<String> {
        let mut names = self.ok(fs.list(), "list");
        names.retain(|n| n != LOCK_NAME);
        names.sort();
        names
    }
}

/// Create, append in pieces, flush, and read back at several offsets.
pub fn create_append_read<V: Vfs>(fs: &V) {
    let c = Ctx { check: "create_append_read" };
    let mut w = c.ok(fs.create("000001.wal", FileKind::Wal), "create");
    c.eq(w.len(), 0, "len of a new file");
    c.ok(w.append(b"hello"), "append");
    c.ok(w.append(b""), "empty append");
    c.ok(w.append(b", world"), "append");
    c.eq(w.len(), 12, "writer len after appends");
    c.ok(w.flush(), "flush");
    let r = c.ok(fs.open("000001.wal", FileKind::Wal), "open");
    c.eq(c.ok(r.len(), "reader len"), 12, "reader len");
    c.same_bytes(&c.read_at(&r, 0, 12, "read all"), b"hello, world", "whole file");
    c.same_bytes(&c.read_at(&r, 0, 5, "read head"), b"hello", "head");
    c.same_bytes(&c.read_at(&r, 7, 5, "read tail"), b"world", "tail");
    c.same_bytes(&c.read_at(&r, 3, 4, "read middle"), b"lo, ", "middle");
    c.same_bytes(&c.read_at(&r, 11, 1, "read last byte"), b"d", "last byte");
}

/// A read handle opened before further appends sees the file grow.
pub fn append_after_read_sees_growth<V: Vfs>(fs: &V) {
    let c = Ctx { check: "append_after_read_sees_growth" };
    let mut w = c.ok(fs.create("grow.log", FileKind::ValueLog), "create");
    c.ok(w.append(b"abc"), "append");
    c.ok(w.flush(), "flush");
    let r = c.ok(fs.open("grow.log", FileKind::ValueLog), "open");
    c.same_bytes(&c.read_at(&r, 0, 3, "first read"), b"abc", "first read");
    c.ok(w.append(b"defg"), "second append");
    c.ok(w.flush(), "second flush");
    c.eq(c.ok(r.len(), "len after growth"), 7, "reader len after growth");
    c.same_bytes(&c.read_at(&r, 3, 4, "read new bytes"), b"defg", "appended bytes");
    c.same_bytes(&c.read_at(&r, 0, 7, "read all"), b"abcdefg", "whole file");
    c.eq(c.ok(fs.size("grow.log"), "size"), 7, "size after growth");
}

/// `create` never truncates: an existing name is `AlreadyExists`, the data untouched.
pub fn create_existing_fails<V: Vfs>(fs: &V) {
    let c = Ctx { check: "create_existing_fails" };
    let mut w = c.ok(fs.create("CURRENT", FileKind::Marker), "create");
    c.ok(w.append(b"MANIFEST-000001\n"), "append");
    c.ok(w.flush(), "flush");
    c.err_kind(
        fs.create("CURRENT", FileKind::Marker),
        ErrorKind::AlreadyExists,
        "create while open",
    );
    drop(w);
    c.err_kind(
        fs.create("CURRENT", FileKind::Temp),
        ErrorKind::AlreadyExists,
        "create after close",
    );
    c.same_bytes(&c.read_file(fs, "CURRENT"), b"MANIFEST-000001\n", "data after failed create");
}

/// `open`, `remove` and `size` of a missing file are `NotFound`; `exists` is `false`.
pub fn missing_file_not_found<V: Vfs>(fs: &V) {
    let c = Ctx { check: "missing_file_not_found" };
    c.err_kind(fs.open("missing.sst", FileKind::Table), ErrorKind::NotFound, "open missing");
    c.err_kind(fs.remove("missing.sst"), ErrorKind::NotFound, "remove missing");
    c.err_kind(fs.size("missing.sst"), ErrorKind::NotFound, "size of missing");
    c.eq(c.ok(fs.exists("missing.sst"), "exists"), false, "exists of missing");
    c.write_file(fs, "present.sst", b"x");
    c.eq(c.ok(fs.exists("present.sst"), "exists"), true, "exists of present");
    c.ok(fs.remove("present.sst"), "remove");
    c.err_kind(fs.open("present.sst", FileKind::Table), ErrorKind::NotFound, "open removed");
    c.err_kind(fs.remove("present.sst"), ErrorKind::NotFound, "remove twice");
}

/// A read crossing or starting past the end is `UnexpectedEof`, never a short read.
pub fn read_past_eof_fails<V: Vfs>(fs: &V) {
    let c = Ctx { check: "read_past_eof_fails" };
    c.write_file(fs, "ten.sst", b"0123456789");
    let r = c.ok(fs.open("ten.sst", FileKind::Table), "open");
    let mut buf = [0u8; 8];
    c.err_kind(r.read_exact_at(5, &mut buf), ErrorKind::UnexpectedEof, "read crossing the end");
    c.err_kind(r.read_exact_at(10, &mut buf[..1]), ErrorKind::UnexpectedEof, "read at the end");
    c.err_kind(r.read_exact_at(11, &mut buf), ErrorKind::UnexpectedEof, "read past the end");
    c.err_kind(
        r.read_exact_at(1 << 40, &mut buf),
        ErrorKind::UnexpectedEof,
        "read far past the end",
    );
    c.same_bytes(&c.read_at(&r, 2, 8, "read ending at the end"), b"23456789", "read ending at end");
}

/// Empty reads at or before the end succeed, on empty and non-empty files.
pub fn empty_reads_succeed<V: Vfs>(fs: &V) {
    let c = Ctx { check: "empty_reads_succeed" };
    c.write_file(fs, "empty.sst", b"");
    let r = c.ok(fs.open("empty.sst", FileKind::Table), "open empty");
    c.eq(c.ok(r.len(), "len"), 0, "len of empty file");
    c.eq(c.ok(r.is_empty(), "is_empty"), true, "is_empty of empty file");
    c.ok(r.read_exact_at(0, &mut []), "empty read of empty file");
    c.err_kind(
        r.read_exact_at(0, &mut [0u8; 1]),
        ErrorKind::UnexpectedEof,
        "one byte of empty file",
    );
    c.write_file(fs, "three.sst", b"abc");
    let r = c.ok(fs.open("three.sst", FileKind::Table), "open");
    c.ok(r.read_exact_at(3, &mut []), "empty read at the end");
    c.ok(r.read_exact_at(1, &mut []), "empty read inside");
}

/// `rename` replaces its target atomically; the source name is gone.
pub fn rename_replaces_target<V: Vfs>(fs: &V) {
    let c = Ctx { check: "rename_replaces_target" };
    c.write_file(fs, "CURRENT", b"old contents");
    c.write_file(fs, "CURRENT.tmp", b"new");
    c.ok(fs.rename("CURRENT.tmp", "CURRENT"), "rename over existing");
    c.same_bytes(&c.read_file(fs, "CURRENT"), b"new", "target after rename");
    c.eq(c.ok(fs.size("CURRENT"), "size"), 3, "target size after rename");
    c.err_kind(fs.open("CURRENT.tmp", FileKind::Temp), ErrorKind::NotFound, "source after rename");
    c.ok(fs.rename("CURRENT", "CURRENT.bak"), "rename to a new name");
    c.same_bytes(&c.read_file(fs, "CURRENT.bak"), b"new", "renamed file");
    c.err_kind(fs.size("CURRENT"), ErrorKind::NotFound, "old name after rename");
    c.eq(c.sorted_list(fs), vec![String::from("CURRENT.bak")], "list after renames");
}

/// `list` shows exactly the files (ignoring a lock file), in any order.
pub fn list_shows_exactly_the_files<V: Vfs>(fs: &V) {
    let c = Ctx { check: "list_shows_exactly_the_files" };
    c.eq(c.sorted_list(fs), Vec::<String>::new(), "list of a fresh directory");
    let lock = c.ok(fs.lock(LOCK_NAME), "lock");
    let names = ["000003.sst", "000002.wal", "MANIFEST-000001", "CURRENT"];
    for name in names {
        c.write_file(fs, name, name.as_bytes());
    }
    let mut want: Vec<String> = names.iter().map(|&n| n.into()).collect();
    want.sort();
    c.eq(c.sorted_list(fs), want.clone(), "list after creates");
    c.ok(fs.remove("000002.wal"), "remove");
    want.retain(|n| n != "000002.wal");
    c.eq(c.sorted_list(fs), want, "list after remove");
    drop(lock);
}

/// `size` and the writer's `len` match the bytes appended.
pub fn size_matches_appends<V: Vfs>(fs: &V) {
    let c = Ctx { check: "size_matches_appends" };
    let mut w = c.ok(fs.create("sized.sst", FileKind::Table), "create");
    c.ok(w.flush(), "flush");
    c.eq(c.ok(fs.size("sized.sst"), "size"), 0, "size of a new file");
    let mut total = 0u64;
    for n in [1usize, 100, 4096, 3] {
        c.ok(w.append(&vec![0xA5; n]), "append");
        c.ok(w.flush(), "flush");
        total += n as u64;
        c.eq(w.len(), total, "writer len");
        c.eq(c.ok(fs.size("sized.sst"), "size"), total, "size after flush");
    }
}

/// A second `lock` on a held name is `Locked`; after the guard drops, it succeeds.
pub fn lock_is_exclusive<V: Vfs>(fs: &V) {
    let c = Ctx { check: "lock_is_exclusive" };
    let first = c.ok(fs.lock(LOCK_NAME), "first lock");
    c.err_kind(fs.lock(LOCK_NAME), ErrorKind::Locked, "second lock while held");
    c.err_kind(fs.lock(LOCK_NAME), ErrorKind::Locked, "third lock while held");
    let other = c.ok(fs.lock("OTHER.lock"), "a different lock name");
    drop(first);
    let again = c.ok(fs.lock(LOCK_NAME), "lock after release");
    c.err_kind(fs.lock("OTHER.lock"), ErrorKind::Locked, "other lock still held");
    drop(again);
    drop(other);
}

/// With [`crate::Caps::hard_links`], `link` shares data (surviving removal of the original
/// name); without, it is `Unsupported`.
pub fn link_shares_data_or_unsupported<V: Vfs>(fs: &V) {
    let c = Ctx { check: "link_shares_data_or_unsupported" };
    c.write_file(fs, "000005.sst", b"table bytes");
    if !fs.caps().hard_links {
        c.err_kind(fs.link("000005.sst", "ckpt-000005.sst"), ErrorKind::Unsupported, "link");
        return;
    }
    c.ok(fs.link("000005.sst", "ckpt-000005.sst"), "link");
    c.same_bytes(&c.read_file(fs, "ckpt-000005.sst"), b"table bytes", "link target data");
    c.ok(fs.remove("000005.sst"), "remove original");
    c.same_bytes(&c.read_file(fs, "ckpt-000005.sst"), b"table bytes", "link after removal");
    c.eq(c.sorted_list(fs), vec![String::from("ckpt-000005.sst")], "list after removal");
}

/// `sync` in both modes and `sync_dir` succeed and leave the data readable.
pub fn sync_and_sync_dir_succeed<V: Vfs>(fs: &V) {
    let c = Ctx { check: "sync_and_sync_dir_succeed" };
    let mut w = c.ok(fs.create("000009.wal", FileKind::Wal), "create");
    c.ok(w.sync(SyncMode::Data), "sync of an empty file");
    c.ok(fs.sync_dir(), "sync_dir after create");
    c.ok(w.append(b"record one"), "append");
    c.ok(w.sync(SyncMode::Data), "sync Data");
    c.ok(w.append(b"record two"), "append");
    c.ok(w.sync(SyncMode::All), "sync All");
    c.ok(w.sync(SyncMode::All), "sync with nothing new");
    c.ok(fs.sync_dir(), "sync_dir");
    c.ok(fs.sync_dir(), "sync_dir with nothing new");
    c.same_bytes(&c.read_file(fs, "000009.wal"), b"record onerecord two", "data after syncs");
}

/// An open read handle keeps reading a removed file; the name can be reused meanwhile.
pub fn removed_file_stays_readable<V: Vfs>(fs: &V) {
    let c = Ctx { check: "removed_file_stays_readable" };
    c.write_file(fs, "000007.sst", b"still here");
    let r = c.ok(fs.open("000007.sst", FileKind::Table), "open");
    c.ok(fs.remove("000007.sst"), "remove");
    c.err_kind(fs.size("000007.sst"), ErrorKind::NotFound, "size after remove");
    c.same_bytes(&c.read_at(&r, 0, 10, "read after remove"), b"still here", "removed file data");
    c.write_file(fs, "000007.sst", b"new");
    c.same_bytes(&c.read_at(&r, 6, 4, "read after reuse"), b"here", "old data after name reuse");
    c.same_bytes(&c.read_file(fs, "000007.sst"), b"new", "new file under the reused name");
}

/// Deterministic test bytes: byte `i` of the stream.
fn pattern_byte(i: usize) -> u8 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (i as u8)
}

/// 1 MiB appended in odd chunk sizes reads back byte-exact, whole and in odd pieces.
pub fn large_appends_read_back<V: Vfs>(fs: &V) {
    let c = Ctx { check: "large_appends_read_back" };
    const TOTAL: usize = 1 << 20;
    let want: Vec<u8> = (0..TOTAL).map(pattern_byte).collect();
    let mut w = c.ok(fs.create("000011.vlog", FileKind::ValueLog), "create");
    let chunks = [1usize, 7, 4093, 65_537, 511, 3, 100_003, 13];
    let (mut pos, mut k) = (0usize, 0usize);
    while pos < TOTAL {
        let n = chunks[k % chunks.len()].min(TOTAL - pos);
        c.ok(w.append(&want[pos..pos + n]), "append");
        pos += n;
        k += 1;
    }
    c.ok(w.flush(), "flush");
    c.eq(w.len(), TOTAL as u64, "writer len");
    c.eq(c.ok(fs.size("000011.vlog"), "size"), TOTAL as u64, "size");
    let r = c.ok(fs.open("000011.vlog", FileKind::ValueLog), "open");
    c.same_bytes(&c.read_at(&r, 0, TOTAL, "read whole"), &want, "whole file");
    let mut off = 0usize;
    while off < TOTAL {
        let n = 9_973.min(TOTAL - off);
        c.same_bytes(&c.read_at(&r, off as u64, n, "read piece"), &want[off..off + n], "piece");
        off += n;
    }
    c.same_bytes(
        &c.read_at(&r, 12_345, 77_777, "read unaligned"),
        &want[12_345..90_122],
        "unaligned",
    );
}
