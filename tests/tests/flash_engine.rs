//! The core engine on the flash filesystem: commits, flushes and compactions driven by
//! `maintenance_step` on one thread, as a device runs them, over a RAM NOR flash; power cuts
//! after every flash operation keep every acknowledged commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_core::iter::KeyRange;
use strata_core::{Durability, Engine, EngineOptions, LogicalClock, Mode, TxnCore};
use strata_vfs::flash::{FlashFs, RamFlash};

type Flash = RamFlash<4, 4096>;
type Fs = FlashFs<Flash>;

fn options() -> EngineOptions {
    let mut o = EngineOptions::default();
    // The smallest sizes the engine accepts, so a small flash sees flushes and compactions.
    o.max_memtable_size = 64 * 1024;
    o.wal_segment_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 64 * 1024;
    o.block_cache_bytes = 16 * 1024;
    o.max_open_tables = 8;
    o.l0_compaction_trigger = 2;
    o.max_manifest_size = 16 * 1024;
    o
}

fn open(flash: &Flash) -> strata_core::Result<Engine<Fs>> {
    let fs = FlashFs::mount(flash.clone()).expect("the flash holds a filesystem");
    Engine::open(fs, options(), Arc::new(LogicalClock::default()))
}

/// Commits `key = value` durably; `Ok` is the acknowledgement.
fn put(engine: &Engine<Fs>, key: &[u8], value: &[u8]) -> strata_core::Result<()> {
    let mut txn = TxnCore::begin(engine, Mode::ReadWrite)?;
    txn.set_durability(Durability::Immediate);
    txn.set(key, value)?;
    engine.commit(txn.finish()?)?;
    engine.maintenance_step(usize::MAX)?;
    Ok(())
}

fn all(engine: &Engine<Fs>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let txn = TxnCore::begin(engine, Mode::ReadOnly).expect("begin");
    txn.range(engine, KeyRange::all(), None, None, false)
        .expect("range")
        .map(|r| r.expect("read"))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn key(i: usize) -> Vec<u8> {
    format!("key{:04}", (i * 37) % 500).into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    let len = 200 + (i * 53) % 1000;
    (0..len).map(|j| (i + j) as u8).collect()
}

#[test]
fn open_commit_reopen_on_flash() {
    let flash = Flash::new(512);
    FlashFs::format(flash.clone()).expect("format");
    let engine = open(&flash).expect("open");
    let mut model = BTreeMap::new();
    for i in 0..600 {
        put(&engine, &key(i), &value(i)).expect("commit");
        model.insert(key(i), value(i));
    }
    let levels = engine.levels();
    assert!(levels.iter().any(|l| l.files > 0), "memtables were flushed to tables: {levels:?}");
    assert_eq!(all(&engine), model);
    // A power cut: the engine is never closed; the reboot sees the flash as it is.
    let image = flash.image();
    drop(engine);
    let engine = open(&image).expect("reopen");
    assert_eq!(all(&engine), model, "every acknowledged commit after the cut");
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    let got = txn.get(&engine, &key(7)).expect("get");
    assert_eq!(got.as_deref(), model.get(&key(7)).map(Vec::as_slice));
    // And it keeps going.
    put(&engine, b"after", b"reboot").expect("commit after reboot");
    engine.close().expect("close");
    drop(engine);
    let engine = open(&image).expect("reopen again");
    assert_eq!(all(&engine).get(&b"after"[..]).map(Vec::as_slice), Some(&b"reboot"[..]));
}

#[test]
fn a_power_cut_at_any_flash_operation_keeps_acknowledged_commits() {
    const COMMITS: usize = 250;
    let probe = Flash::new(512);
    FlashFs::format(probe.clone()).expect("format");
    let start = probe.ops();
    {
        let engine = open(&probe).expect("open");
        for i in 0..COMMITS {
            put(&engine, &key(i), &value(i)).expect("commit");
        }
        let flushes = engine.stats().flushes.load(std::sync::atomic::Ordering::Relaxed);
        let compactions = engine.stats().compactions.load(std::sync::atomic::Ordering::Relaxed);
        assert!(flushes >= 2 && compactions >= 1, "flushes {flushes}, compactions {compactions}");
    }
    let total = probe.ops() - start;
    assert!(total > 200, "the workload flushes and compacts ({total} flash operations)");
    let mut checked = 0;
    for cut in 0..total {
        let flash = Flash::new(512);
        FlashFs::format(flash.clone()).expect("format");
        flash.cut_power_after(cut, cut);
        let mut acked = BTreeMap::new();
        let mut in_flight = None;
        if let Ok(engine) = open(&flash) {
            for i in 0..COMMITS {
                if put(&engine, &key(i), &value(i)).is_err() {
                    in_flight = Some(i);
                    break;
                }
                acked.insert(key(i), value(i));
            }
        }
        assert!(!flash.is_powered(), "cut {cut} happened");
        let engine = open(&flash.image()).unwrap_or_else(|e| panic!("cut {cut}: reopen: {e}"));
        let found = all(&engine);
        let mut with_flight = acked.clone();
        if let Some(i) = in_flight {
            with_flight.insert(key(i), value(i));
        }
        assert!(found == acked || found == with_flight, "cut {cut}: lost or invented commits");
        checked += 1;
    }
    eprintln!("{checked} power cuts over {total} flash operations");
}
