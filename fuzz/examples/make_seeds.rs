//! Writes the seed corpora of the `sstable` and `open_db` targets from real files, so the
//! fuzzer starts past magic numbers, checksums and footers:
//!
//! - `fuzz/seeds/sstable/`: tables written by `TableBuilder` under several options (tiny blocks,
//!   compression on and off, bloom filter on and off, restart interval 1 and 16, a partitioned
//!   index; sets, deletes, value pointers, versioned timestamps), plus every table of the
//!   database seeds (and their WAL segments go to `fuzz/seeds/wal_replay/`);
//! - `fuzz/seeds/open_db/`: small databases written by the engine on MemFs, as
//!   `strata_fuzz::files` containers: closed cleanly, stopped uncleanly with the value log and
//!   versioning on, and a checkpoint directory.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//! Deterministic (logical clock, MemFs), so rerunning it after a format change rewrites the
//! seeds; `fuzz/ci.sh` replays the seeds with `STRATA_FUZZ_REQUIRE_OPEN=1`, which fails when a
//! seed no longer opens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::key::ValueKind;
use strata_core::sstable::{TableBuilder, TableOptions};
use strata_core::{Bytes, Durability, Engine, LogicalClock, Mode, TxnCore};
use strata_fuzz::database::{VLOG_THRESHOLD, option_bits, options};
use strata_fuzz::files;
use strata_vfs::{FileKind, MemFs, Vfs};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let tables = root.join("sstable");
    let dbs = root.join("open_db");
    for dir in [&tables, &dbs] {
        std::fs::create_dir_all(dir).expect("create seed directory");
    }
    write_tables(&tables);

    let closed = option_bits::COMPRESSION;
    write_db(&dbs, &tables, "closed_cleanly", closed, &build_closed(closed));
    let unclean = option_bits::VERSIONING | option_bits::VLOG;
    write_db(&dbs, &tables, "vlog_versioned_unclean", unclean, &build_unclean(unclean));
    let pit = unclean | 2; // PointInTime recovery of the same kind of directory
    write_db(&dbs, &tables, "vlog_versioned_point_in_time", pit, &build_unclean(pit));
    let ckpt = option_bits::VLOG | option_bits::COMPRESSION;
    write_db(&dbs, &tables, "checkpoint", ckpt, &build_checkpoint(ckpt));
}

fn open(fs: &MemFs, byte: u8) -> Engine<MemFs> {
    Engine::open(fs.clone(), options(byte), Arc::new(LogicalClock::default())).expect("open")
}

/// Commits `n` keys starting at `first`, one transaction each, alternating durability; every
/// fourth value is large (value log when on), every seventh key of an earlier round deleted.
fn commit_keys(engine: &Engine<MemFs>, first: u32, n: u32) {
    for i in first..first + n {
        let mut txn = TxnCore::begin(engine, Mode::ReadWrite).expect("begin");
        txn.set_durability(if i % 2 == 0 { Durability::Immediate } else { Durability::Eventual });
        let key = format!("key{i:03}");
        let value = if i % 4 == 0 {
            vec![b'v'; VLOG_THRESHOLD + i as usize]
        } else {
            format!("value{i}").into_bytes()
        };
        txn.set(key.as_bytes(), &value).expect("set");
        if i % 7 == 0 && i >= 7 {
            txn.delete(format!("key{:03}", i - 7).as_bytes()).expect("delete");
        }
        engine.commit(txn.finish().expect("finish")).expect("commit");
    }
}

/// Five flushed tables (the fourth flush triggers a compaction into level 1), then commits
/// only in the WAL, and a clean close.
fn build_closed(byte: u8) -> MemFs {
    let fs = MemFs::new();
    let engine = open(&fs, byte);
    for round in 0..5 {
        commit_keys(&engine, round * 6, 8);
        engine.flush_all().expect("flush");
        while engine.maintenance_step(usize::MAX).expect("maintenance") > 0 {}
    }
    commit_keys(&engine, 40, 5);
    engine.close().expect("close");
    fs
}

/// Tables and value log, then commits after the last flush, then a power cut that keeps
/// everything written (the process stopped without closing: no clean-close record, an
/// unsealed value log head).
fn build_unclean(byte: u8) -> MemFs {
    let fs = MemFs::new();
    let engine = open(&fs, byte);
    for round in 0..3 {
        commit_keys(&engine, round * 5, 6);
        engine.flush_all().expect("flush");
    }
    commit_keys(&engine, 20, 6);
    let image = fs.crash(strata_vfs::CrashPolicy::KeepUnsynced, 1);
    drop(engine);
    image
}

/// A checkpoint of a database with tables and a value log.
fn build_checkpoint(byte: u8) -> MemFs {
    let fs = MemFs::new();
    let engine = open(&fs, byte);
    for round in 0..2 {
        commit_keys(&engine, round * 6, 8);
        engine.flush_all().expect("flush");
    }
    commit_keys(&engine, 20, 4);
    let dest = MemFs::new();
    engine.create_checkpoint(&dest, &|_| false).expect("checkpoint");
    engine.close().expect("close");
    dest
}

/// Writes one database container, and each of its tables into the sstable seeds.
fn write_db(dbs: &Path, tables: &Path, name: &str, byte: u8, fs: &MemFs) {
    let mut names = fs.list().expect("list");
    names.sort();
    names.retain(|n| n != "LOCK");
    let contents: Vec<(String, Vec<u8>)> = names
        .into_iter()
        .map(|n| {
            let c = fs.read_all(&n).expect("read");
            (n, c)
        })
        .collect();
    let bytes = files::join(byte, contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    std::fs::write(dbs.join(name), &bytes).expect("write seed");
    println!(
        "open_db/{name}: {} bytes, files {:?}",
        bytes.len(),
        contents.iter().map(|(n, c)| (n, c.len())).collect::<Vec<_>>()
    );
    for (file, data) in &contents {
        let target = if file.ends_with(".sst") {
            tables.to_path_buf()
        } else if file.ends_with(".wal") {
            tables.with_file_name("wal_replay")
        } else {
            continue;
        };
        // The same file in two seed databases is seeded once.
        let duplicate = std::fs::read_dir(&target)
            .expect("list seeds")
            .any(|e| std::fs::read(e.expect("entry").path()).ok().as_ref() == Some(data));
        if !duplicate {
            std::fs::write(target.join(format!("{name}_{file}")), data).expect("write file seed");
        }
    }
}

/// Tables written directly by the builder under different options.
fn write_tables(dir: &Path) {
    let variants: [(&str, TableOptions, u32); 4] = [
        (
            "small_blocks_compressed_bloom",
            TableOptions {
                block_size: 64,
                compression: true,
                bloom_bits_per_key: 10,
                restart_interval: 4,
            },
            60,
        ),
        (
            "plain_no_filter_restart_1",
            TableOptions {
                block_size: 256,
                compression: false,
                bloom_bits_per_key: 0,
                restart_interval: 1,
            },
            40,
        ),
        (
            "partitioned_index",
            TableOptions {
                block_size: 64,
                compression: false,
                bloom_bits_per_key: 4,
                restart_interval: 16,
            },
            200,
        ),
        ("one_block", TableOptions::default(), 12),
    ];
    for (name, opts, n) in variants {
        let fs = MemFs::new();
        let file = fs.create("t.sst", FileKind::Table).expect("create");
        let mut builder = TableBuilder::new(file, "t.sst".into(), opts);
        let mut seq = 1000u64;
        for i in 0..n {
            let user_key = Bytes::from(format!("key{i:04}").into_bytes());
            // Two versions of every third key (newest first: larger timestamp sorts first).
            let versions = if i % 3 == 0 { 2 } else { 1 };
            for v in 0..versions {
                let ts = 500 - u64::from(v) * 100;
                let (kind, value): (ValueKind, Vec<u8>) = match (i + v) % 5 {
                    0 => (ValueKind::Delete, Vec::new()),
                    1 => (
                        ValueKind::Pointer,
                        strata_core::vlog::format::ValuePointer {
                            file: 1,
                            offset: 16 + u64::from(i) * 40,
                            len: 40,
                        }
                        .encode(),
                    ),
                    _ => (
                        ValueKind::Set,
                        format!("value-{i}-{v}-{}", "x".repeat((i % 9) as usize)).into_bytes(),
                    ),
                };
                seq -= 1;
                let key = strata_core::key::InternalKey::new(user_key.clone(), ts, seq, kind);
                builder.add(&key, &value).expect("add");
            }
        }
        builder.finish().expect("finish");
        let bytes = fs.read_all("t.sst").expect("read");
        println!("sstable/{name}: {} bytes", bytes.len());
        std::fs::write(dir.join(name), bytes).expect("write table seed");
    }
}
