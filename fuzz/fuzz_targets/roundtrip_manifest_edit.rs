//! Manifest encoders round trip.
//!
//! 1. A version edit built from arbitrary fields (made valid where the format requires it: a
//!    level count of 1..=256, sequence numbers of at most 56 bits, each file's smallest key,
//!    sequence numbers and timestamps in order) encodes and decodes to exactly itself.
//! 2. A manifest file: `ManifestWriter` writes a snapshot edit and then the arbitrary edits,
//!    `CURRENT` is pointed at it, and `manifest::recover` reads it back; whatever it recovers
//!    (or the error it reports for edits that do not apply to the version) must be a fixpoint:
//!    writing the recovered state into a second manifest and recovering that gives the same
//!    state.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::Bytes;
use strata_core::key::{InternalKey, MAX_SEQ, ValueKind};
use strata_core::manifest::{self, FileMeta, ManifestWriter, VersionEdit, VlogEdit, set_current};
use strata_vfs::MemFs;

const LEVELS: u32 = 4;

#[derive(Debug, Arbitrary)]
struct Key {
    user_key: Vec<u8>,
    ts: u64,
    seq: u64,
    kind: u8,
}

impl Key {
    fn build(&self) -> InternalKey {
        let kind = match self.kind % 3 {
            0 => ValueKind::Delete,
            1 => ValueKind::Set,
            _ => ValueKind::Pointer,
        };
        InternalKey::new(Bytes::copy_from_slice(&self.user_key), self.ts, self.seq & MAX_SEQ, kind)
    }
}

#[derive(Debug, Arbitrary)]
struct File {
    level: u8,
    file_no: u64,
    size: u64,
    a: Key,
    b: Key,
    seqs: (u64, u64),
    tss: (u64, u64),
    entries: u64,
}

#[derive(Debug, Arbitrary)]
enum Vlog {
    Add { id: u64, file_no: u64 },
    Seal { id: u64, len: u64 },
    Discard { id: u64, bytes: u64 },
    Delete { id: u64 },
}

#[derive(Debug, Arbitrary)]
struct Edit {
    log_number: Option<u64>,
    next_file_number: Option<u64>,
    last_seq: Option<u64>,
    last_ts: Option<u64>,
    level_count: Option<u32>,
    compaction_pointers: Vec<(u8, Key)>,
    deleted: Vec<(u8, u64)>,
    added: Vec<File>,
    wal_closed: Option<(u64, u64)>,
    versioning: Option<bool>,
    vlog: Vec<Vlog>,
}

impl Edit {
    fn build(&self) -> VersionEdit {
        VersionEdit {
            log_number: self.log_number,
            next_file_number: self.next_file_number,
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            level_count: self.level_count.map(|n| n % 256 + 1),
            compaction_pointers: self
                .compaction_pointers
                .iter()
                .map(|(l, k)| (*l, k.build()))
                .collect(),
            deleted: self.deleted.clone(),
            added: self.added.iter().map(|f| (f.level, f.build())).collect(),
            wal_closed: self.wal_closed,
            versioning: self.versioning,
            vlog: self
                .vlog
                .iter()
                .map(|v| match *v {
                    Vlog::Add { id, file_no } => VlogEdit::Add { id, file_no },
                    Vlog::Seal { id, len } => VlogEdit::Seal { id, len },
                    Vlog::Discard { id, bytes } => VlogEdit::Discard { id, bytes },
                    Vlog::Delete { id } => VlogEdit::Delete { id },
                })
                .collect(),
        }
    }
}

impl File {
    fn build(&self) -> FileMeta {
        let (a, b) = (self.a.build(), self.b.build());
        let (smallest, largest) = if a <= b { (a, b) } else { (b, a) };
        FileMeta {
            file_no: self.file_no,
            // Small, so the manifest-file part below can create every table at its size.
            size: self.size % 4096,
            smallest,
            largest,
            min_seq: self.seqs.0.min(self.seqs.1),
            max_seq: self.seqs.0.max(self.seqs.1),
            min_ts: self.tss.0.min(self.tss.1),
            max_ts: self.tss.0.max(self.tss.1),
            entries: self.entries,
        }
    }
}

fuzz_target!(|edits: Vec<Edit>| {
    let built: Vec<VersionEdit> = edits.iter().map(Edit::build).collect();
    for edit in &built {
        let bytes = edit.encode_to_vec();
        assert_eq!(VersionEdit::decode(&bytes).as_ref(), Ok(edit), "encode, decode");
    }

    // A manifest file: a snapshot, then the edits (level indexes kept inside the level count,
    // since the writer trusts its caller on that and the reader checks it).
    let snapshot = VersionEdit {
        log_number: Some(1),
        next_file_number: Some(2),
        last_seq: Some(0),
        last_ts: Some(0),
        level_count: Some(LEVELS),
        ..VersionEdit::default()
    };
    let fs = MemFs::new();
    let again = MemFs::new();
    let Ok(mut writer) = ManifestWriter::create(&fs, 1, &snapshot) else { return };
    for edit in &built {
        let mut edit = edit.clone();
        edit.level_count = None;
        for (level, meta) in &mut edit.added {
            *level %= LEVELS as u8;
            // Recovery checks every table it names exists with its recorded size.
            let name = strata_core::filenames::table(meta.file_no);
            let zeros = vec![0u8; meta.size as usize];
            for dir in [&fs, &again] {
                dir.write_whole(&name, &zeros).expect("memfs write");
            }
        }
        for (level, _) in &mut edit.deleted {
            *level %= LEVELS as u8;
        }
        for (level, _) in &mut edit.compaction_pointers {
            *level %= LEVELS as u8;
        }
        if writer.append(&edit).is_err() {
            return;
        }
    }
    drop(writer);
    set_current(&fs, 1).expect("set CURRENT on MemFs");
    let Ok(Some(first)) = manifest::recover(&fs, LEVELS as usize) else { return };

    let mut writer = ManifestWriter::create(&again, 7, &first.snapshot_edit())
        .expect("a recovered state's snapshot is a valid snapshot");
    writer.append(&VersionEdit::default()).expect("append");
    drop(writer);
    set_current(&again, 7).expect("set CURRENT on MemFs");
    let second = manifest::recover(&again, LEVELS as usize)
        .expect("a manifest written from a recovered state recovers")
        .expect("it exists");
    assert_eq!(first.version, second.version, "tables");
    assert_eq!(
        (first.log_number, first.last_seq, first.last_ts, first.versioning),
        (second.log_number, second.last_seq, second.last_ts, second.versioning)
    );
    assert_eq!(first.vlog, second.vlog, "value log files");
    assert_eq!(first.compaction_pointers, second.compaction_pointers);
});
