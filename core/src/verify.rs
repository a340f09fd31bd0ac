//! Checking every byte a database depends on, without opening it (so a database too damaged
//! to open can still be examined) and without writing anything.
//!
//! The walk follows the data's path at recovery, then goes further than recovery does:
//!
//! 1. `CURRENT` → the live manifest, replayed by [`manifest::recover`], which also checks that
//!    every table it names exists with its recorded size. If that fails, the failure is
//!    reported and every file in the directory is checked by its name instead.
//! 2. Every live table: footer, properties, filter and index ([`Table::open`]), then every
//!    index partition and data block ([`Table::walk_blocks`]): checksum, decompression, and
//!    the decoding of every entry. A damaged block is reported and the walk moves on.
//! 3. Every value log file: its header, then every record's checksum. A record whose checksum
//!    fails but whose lengths decode is skipped by those lengths, so later damage is found
//!    too. Damage at the end of the unsealed head file with no good record after it is what a
//!    crash leaves (a torn tail), listed apart from damage.
//! 4. The WAL segments recovery would replay: framing, fragment checksums, the segment chain,
//!    and the decoding of every batch. A torn tail of the last segment is listed apart.
//!
//! Every problem is an [`Error`] naming the file (and, for corruption, the offset of the
//! damaged block or record); [`VerifyReport::damage`] holds them all.

use alloc::string::String;
use alloc::vec::Vec;

use strata_vfs::{FileKind, RandomRead, Vfs};

use crate::batch::BatchView;
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::filenames::{self, FileName};
use crate::inspect::{self, DatabaseShape};
use crate::manifest::{self, Recovered};
use crate::sstable::Table;
use crate::vlog::format as vlog_format;
use crate::wal::{self, RecoveryMode};

/// One file the walk read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFile {
    /// The file name.
    pub name: String,
    /// What the file is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Blocks (tables) or records (value log, WAL, manifest) read from it, good or bad.
    pub units: u64,
}

/// Bytes at the end of a log that a crash left half-written: recovery drops them, so they are
/// not damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub file: String,
    /// Where the unusable bytes start.
    pub offset: u64,
    /// How many there are.
    pub bytes: u64,
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Every file read, in the order read.
    pub files: Vec<CheckedFile>,
    /// Every problem found: [`Error::Corruption`] with the file and offset, or
    /// [`Error::Io`] for a file that could not be read.
    pub damage: Vec<Error>,
    /// Torn tails of the WAL and of the value log head file (not damage).
    pub torn_tails: Vec<TornTail>,
}

impl VerifyReport {
    /// `true` when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }

    /// Bytes of every file read.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    fn add_damage(&mut self, e: Error) {
        let seen = self.damage.iter().any(|d| same_place(d, &e));
        if !seen {
            self.damage.push(e);
        }
    }
}

/// `true` if both errors are corruption at the same file and offset.
fn same_place(a: &Error, b: &Error) -> bool {
    matches!(
        (a, b),
        (Error::Corruption { file: fa, offset: oa, .. }, Error::Corruption { file: fb, offset: ob, .. })
            if fa == fb && oa == ob
    )
}

/// How far the walk is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    /// Bytes read so far.
    pub done: u64,
    /// Bytes to read in all (the sizes of the files to check).
    pub total: u64,
}

/// Where a value log file's records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VlogEnd {
    /// Sealed by the manifest at this length: damage anywhere before it is damage.
    Sealed(u64),
    /// The head file being written when the database stopped: damage at its end with nothing
    /// good after it is a torn tail.
    Head,
    /// Unknown (no readable manifest): read to the file's size, strictly.
    Size,
}

/// The files to check.
#[derive(Debug, Default)]
struct Plan {
    /// `(name, file_no)`.
    tables: Vec<(String, u64)>,
    vlogs: Vec<(String, VlogEnd)>,
    /// Segment numbers, ascending.
    wal: Vec<u64>,
    wal_closed: Option<(u64, u64)>,
    manifests: Vec<String>,
}

impl Plan {
    /// The live files, as the recovered manifest names them.
    fn live(r: &Recovered, names: &[String]) -> Plan {
        let mut wal: Vec<u64> = names
            .iter()
            .filter_map(|n| match filenames::parse(n) {
                Some(FileName::Wal(s)) if s >= r.log_number => Some(s),
                _ => None,
            })
            .collect();
        wal.sort_unstable();
        Plan {
            tables: r
                .version
                .all_files()
                .map(|(_, f)| (filenames::table(f.file_no), f.file_no))
                .collect(),
            vlogs: r
                .vlog
                .values()
                .map(|m| {
                    let end = m.sealed_len.map_or(VlogEnd::Head, VlogEnd::Sealed);
                    (filenames::vlog(m.file_no), end)
                })
                .collect(),
            wal,
            wal_closed: r.wal_closed,
            manifests: alloc::vec![filenames::manifest(r.manifest_file_no)],
        }
    }

    /// Every file of the directory, by its name (when the manifest cannot say which are live).
    /// Value log files are checked to their size; only the newest may end torn.
    fn by_name(names: &[String]) -> Plan {
        let mut plan = Plan::default();
        let mut vlogs = Vec::new();
        for name in names {
            match filenames::parse(name) {
                Some(FileName::Table(n)) => plan.tables.push((name.clone(), n)),
                Some(FileName::ValueLog(n)) => vlogs.push(n),
                Some(FileName::Wal(n)) => plan.wal.push(n),
                Some(FileName::Manifest(_)) => plan.manifests.push(name.clone()),
                _ => {}
            }
        }
        plan.tables.sort_unstable_by_key(|t| t.1);
        vlogs.sort_unstable();
        let newest = vlogs.last().copied();
        plan.vlogs = vlogs
            .into_iter()
            .map(|n| {
                (filenames::vlog(n), if Some(n) == newest { VlogEnd::Head } else { VlogEnd::Size })
            })
            .collect();
        plan.wal.sort_unstable();
        plan.manifests.sort_unstable();
        plan
    }
}

/// Checks every file the database in `vfs` depends on (see the module docs). Problems are
/// collected in the report; only a directory that cannot be listed, or one holding no
/// database (no `CURRENT` and no manifest), is an error. `progress` is called as bytes are
/// read.
pub fn verify<V: Vfs>(vfs: &V, progress: &mut dyn FnMut(VerifyProgress)) -> Result<VerifyReport> {
    let names = vfs.list().map_err(|e| Error::io(IoOp::List, "", e))?;
    let mut report = VerifyReport::default();
    let has_manifest =
        names.iter().any(|n| matches!(filenames::parse(n), Some(FileName::Manifest(_))));
    let plan = match inspect::database_shape(vfs) {
        Ok(Some(DatabaseShape { level_count, .. })) => match manifest::recover(vfs, level_count) {
            Ok(Some(r)) => Plan::live(&r, &names),
            Ok(None) => Plan::by_name(&names),
            Err(e) => {
                report.add_damage(e);
                Plan::by_name(&names)
            }
        },
        Ok(None) if !has_manifest => {
            return Err(Error::corruption(filenames::CURRENT, 0, CorruptionKind::MissingFile));
        }
        Ok(None) => {
            report.add_damage(Error::corruption(
                filenames::CURRENT,
                0,
                CorruptionKind::MissingFile,
            ));
            Plan::by_name(&names)
        }
        Err(e) => {
            report.add_damage(e);
            Plan::by_name(&names)
        }
    };

    let mut walk = Walk { vfs, report, done: 0, total: 0, progress };
    walk.total = walk.planned_bytes(&plan);
    for name in &plan.manifests {
        walk.manifest(name);
    }
    for (name, file_no) in &plan.tables {
        walk.table(name, *file_no);
    }
    for (name, end) in &plan.vlogs {
        walk.vlog(name, *end);
    }
    walk.wal(&plan.wal, plan.wal_closed);
    Ok(walk.report)
}

/// The state of one verification walk.
struct Walk<'a, V: Vfs> {
    vfs: &'a V,
    report: VerifyReport,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(VerifyProgress),
}

impl<V: Vfs> Walk<'_, V> {
    fn planned_bytes(&self, plan: &Plan) -> u64 {
        let names = plan
            .manifests
            .iter()
            .chain(plan.tables.iter().map(|t| &t.0))
            .chain(plan.vlogs.iter().map(|v| &v.0));
        let logs: u64 = plan.wal.iter().map(|&s| self.size(&filenames::wal(s))).sum();
        names.map(|n| self.size(n)).sum::<u64>() + logs
    }

    fn size(&self, name: &str) -> u64 {
        self.vfs.size(name).unwrap_or(0)
    }

    fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes).min(self.total);
        (self.progress)(VerifyProgress { done: self.done, total: self.total });
    }

    fn checked(&mut self, name: &str, kind: FileKind, bytes: u64, units: u64) {
        self.report.files.push(CheckedFile { name: name.into(), kind, bytes, units });
    }

    /// A manifest: every record must decode as a version edit.
    fn manifest(&mut self, name: &str) {
        let mut records = 0;
        let mut bad = Vec::new();
        let replayed = inspect::replay_log_file(self.vfs, name, |payload, pos| {
            records += 1;
            if let Err(kind) = manifest::VersionEdit::decode(payload) {
                bad.push(Error::corruption(name, pos.offset, kind));
            }
            Ok(())
        });
        for e in bad {
            self.report.add_damage(e);
        }
        match replayed {
            Ok(r) if r.ignored_tail_bytes > 0 => {
                let offset = r.last.map_or(0, |(_, end)| end);
                self.report.torn_tails.push(TornTail {
                    file: name.into(),
                    offset,
                    bytes: r.ignored_tail_bytes,
                });
            }
            Ok(_) => {}
            Err(e) => self.report.add_damage(e),
        }
        let size = self.size(name);
        self.checked(name, FileKind::Manifest, size, records);
        self.advance(size);
    }

    /// A table: its fixed parts at open, then every block the index reaches.
    fn table(&mut self, name: &str, file_no: u64) {
        let size = self.size(name);
        let opened = self
            .vfs
            .open(name, FileKind::Table)
            .map_err(|e| Error::io(IoOp::Open, name, e))
            .and_then(|file| Table::open(file, name.into(), file_no, None));
        let table = match opened {
            Ok(t) => t,
            Err(e) => {
                self.report.add_damage(e);
                self.checked(name, FileKind::Table, size, 0);
                self.advance(size);
                return;
            }
        };
        let (mut blocks, mut entries, mut damaged) = (0u64, 0u64, false);
        let mut found = Vec::new();
        let mut read = 0u64;
        let walked = table.walk_blocks(|visit| {
            blocks += 1;
            read += visit.handle.size;
            match visit.block {
                Ok(_) if visit.role == crate::sstable::BlockRole::Data => entries += visit.entries,
                Ok(_) => {}
                Err(e) => {
                    damaged = true;
                    found.push(e);
                }
            }
            Ok(())
        });
        for e in found {
            self.report.add_damage(e);
        }
        if let Err(e) = walked {
            self.report.add_damage(e);
        } else if !damaged && entries != table.props().entries {
            // Every block read cleanly but the entries do not add up to what the properties
            // block recorded: blocks are missing from the index.
            self.report.add_damage(Error::corruption(name, 0, CorruptionKind::Truncated));
        }
        self.checked(name, FileKind::Table, size, blocks);
        self.advance(size.max(read));
    }

    /// A value log file, to its sealed length (or its size when it has none).
    fn vlog(&mut self, name: &str, end: VlogEnd) {
        let size = match self.vfs.size(name) {
            Ok(size) => size,
            Err(e) => {
                self.report.add_damage(Error::io(IoOp::Size, name, e));
                return;
            }
        };
        let head = end == VlogEnd::Head;
        let end = match end {
            VlogEnd::Sealed(len) if size < len => {
                self.report.add_damage(Error::corruption(name, size, CorruptionKind::Truncated));
                size
            }
            VlogEnd::Sealed(len) => len,
            VlogEnd::Head | VlogEnd::Size => size,
        };
        let (records, counted) = match self.vfs.open(name, FileKind::ValueLog) {
            Ok(file) => self.vlog_records(&file, name, end, head),
            Err(e) => {
                self.report.add_damage(Error::io(IoOp::Open, name, e));
                (0, 0)
            }
        };
        self.checked(name, FileKind::ValueLog, size, records);
        self.advance(size.saturating_sub(counted));
    }

    /// Walks the records of a value log file up to `end`; returns how many were read and
    /// their bytes (already reported as progress).
    fn vlog_records<R: RandomRead>(
        &mut self,
        file: &R,
        name: &str,
        end: u64,
        head: bool,
    ) -> (u64, u64) {
        let mut header = [0u8; vlog_format::FILE_HEADER_LEN as usize];
        let header_ok = end >= vlog_format::FILE_HEADER_LEN
            && file.read_exact_at(0, &mut header).is_ok()
            && vlog_format::check_file_header(&header).is_ok();
        if !header_ok {
            if head && end <= vlog_format::FILE_HEADER_LEN {
                // Created, header not durable yet: recovery drops such a file.
                return (0, 0);
            }
            let kind = vlog_format::check_file_header(&header).err();
            let kind = kind.unwrap_or(CorruptionKind::Truncated);
            self.report.add_damage(Error::corruption(name, 0, kind));
            return (0, 0);
        }
        let mut at = vlog_format::FILE_HEADER_LEN;
        let mut records = 0;
        let mut good_end = at;
        let mut found: Vec<(u64, CorruptionKind)> = Vec::new();
        let mut prefix = [0u8; vlog_format::MAX_PREFIX_LEN];
        let mut buf = Vec::new();
        while at < end {
            let n = (end - at).min(prefix.len() as u64) as usize;
            let head_bytes = prefix.get_mut(..n).unwrap_or_default();
            if let Err(e) = file.read_exact_at(at, head_bytes) {
                self.report.add_damage(Error::io(IoOp::Read, name, e));
                break;
            }
            let p = match vlog_format::parse_prefix(head_bytes) {
                Ok(p) => p,
                Err(kind) => {
                    // The lengths are unreadable: nothing after this can be located.
                    found.push((at, kind));
                    break;
                }
            };
            let len = p.record_len() as u64;
            if len > end - at {
                found.push((at, CorruptionKind::Truncated));
                break;
            }
            buf.resize(p.record_len(), 0);
            if let Err(e) = file.read_exact_at(at, &mut buf) {
                self.report.add_damage(Error::io(IoOp::Read, name, e));
                break;
            }
            records += 1;
            match vlog_format::decode_record(&buf, true) {
                Ok(_) => good_end = at + len,
                // The lengths decoded: the next record is where they say, if they are right.
                Err(kind) => found.push((at, kind)),
            }
            at += len;
            self.advance(len);
        }
        if head
            && let Some(&(offset, _)) = found.last()
            && offset >= good_end
        {
            // Nothing good after it: the end of a write a crash cut short.
            found.pop();
            self.report.torn_tails.push(TornTail {
                file: name.into(),
                offset,
                bytes: end - offset,
            });
        }
        for (offset, kind) in found {
            self.report.add_damage(Error::corruption(name, offset, kind));
        }
        (records, at - vlog_format::FILE_HEADER_LEN)
    }

    /// The WAL segments recovery would replay, as it would replay them.
    fn wal(&mut self, segments: &[u64], closed: Option<(u64, u64)>) {
        if segments.is_empty() {
            return;
        }
        let mut per_segment = alloc::collections::BTreeMap::<u64, u64>::new();
        let mut bad = Vec::new();
        let replayed = wal::replay_bounded(
            self.vfs,
            segments,
            filenames::wal,
            RecoveryMode::TolerateTornTail,
            closed,
            |payload, pos| {
                *per_segment.entry(pos.segment).or_default() += 1;
                if BatchView::parse(payload).is_err() {
                    let name = filenames::wal(pos.segment);
                    bad.push(Error::corruption(&name, pos.offset, CorruptionKind::BadBatch));
                }
                Ok(())
            },
        );
        for e in bad {
            self.report.add_damage(e);
        }
        match replayed {
            Ok(r) => {
                if r.ignored_tail_bytes > 0
                    && let Some((segment, offset)) = r.last
                {
                    self.report.torn_tails.push(TornTail {
                        file: filenames::wal(segment),
                        offset,
                        bytes: r.ignored_tail_bytes,
                    });
                }
            }
            Err(e) => self.report.add_damage(e),
        }
        for &s in segments {
            let name = filenames::wal(s);
            let size = self.size(&name);
            let records = per_segment.get(&s).copied().unwrap_or(0);
            self.checked(&name, FileKind::Wal, size, records);
            self.advance(size);
        }
    }
}
