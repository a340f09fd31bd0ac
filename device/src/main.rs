//! Strata on a microcontroller: `strata-core` over the flash filesystem on a RAM-backed NOR
//! flash, on a Cortex-M4 (`thumbv7em-none-eabihf`, qemu machine `mps2-an386`).
//!
//! It opens a database, commits transactions (each acknowledged only once its WAL record is
//! synced), drives flushes and compactions with `maintenance_step` (there are no threads),
//! then cuts the power twice: once between commits (the engine is dropped, never closed, and
//! the flash image is all a reboot sees) and once in the middle of a flash operation of a
//! commit. After each reboot it checks that every acknowledged commit is there. It reports
//! through semihosting, with the heap figures a counting allocator measured; the exit code is
//! 0 only if every check passed.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m as _;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap;
use strata_core::iter::KeyRange;
use strata_core::{Durability, Engine, EngineOptions, LogicalClock, Mode, TxnCore};
use strata_vfs::flash::{FlashFs, RamFlash};

/// Heap for everything, the RAM flash included (two copies of it at the power cut).
const HEAP_BYTES: usize = 3 * 1024 * 1024;
/// The flash: 160 erase units of 4 KiB.
const FLASH_UNITS: usize = 160;
type Flash = RamFlash<4, 4096>;
type Db = Engine<FlashFs<Flash>>;

/// The allocator, counting bytes in use and the most ever in use.
struct CountingHeap {
    heap: LlffHeap,
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

// SAFETY: every call is forwarded to the underlying heap unchanged; the counters only observe.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            let now = self.in_use.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { self.heap.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: LlffHeap::empty(),
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

fn heap_in_use() -> usize {
    HEAP.in_use.load(Ordering::Relaxed)
}

/// The smallest sizes the engine accepts, and no block cache.
fn options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.max_memtable_size = 64 * 1024;
    o.wal_segment_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 64 * 1024;
    o.block_cache_bytes = 0;
    o.max_open_tables = 4;
    o.l0_compaction_trigger = 2;
    o.max_manifest_size = 16 * 1024;
    o
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn open(flash: &Flash) -> Result<Db, strata_core::Error> {
    let fs = match FlashFs::mount(flash.clone()) {
        Ok(fs) => fs,
        Err(e) => {
            hprintln!("mount failed: {}", e);
            return Err(strata_core::Error::Closed);
        }
    };
    Engine::open(fs, options(), Arc::new(LogicalClock::default()))
}

/// Commits one transaction of `writes`, durably, then runs background work.
fn commit(db: &Db, writes: &[(Vec<u8>, Vec<u8>)], sync: bool) -> Result<(), strata_core::Error> {
    let mut txn = TxnCore::begin(db, Mode::ReadWrite)?;
    if sync {
        txn.set_durability(Durability::Immediate);
    }
    for (k, v) in writes {
        txn.set(k, v)?;
    }
    db.commit(txn.finish()?)?;
    db.maintenance_step(usize::MAX)?;
    Ok(())
}

fn contents(db: &Db) -> Result<Model, strata_core::Error> {
    let txn = TxnCore::begin(db, Mode::ReadOnly)?;
    let mut out = Model::new();
    for item in txn.range(db, KeyRange::all(), None, None, false)? {
        let (k, v) = item?;
        out.insert(k.to_vec(), v.to_vec());
    }
    Ok(out)
}

/// Transaction `i` of the workload: one to three keys, values of 100 to 700 bytes.
fn transaction(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut x = i.wrapping_mul(2_654_435_761) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..1 + next() % 3)
        .map(|_| {
            let key = alloc::format!("sensor/{:04}", next() % 400).into_bytes();
            let len = 100 + (next() % 600) as usize;
            let seed = next();
            let value = (0..len).map(|j| (seed as usize + j) as u8).collect();
            (key, value)
        })
        .collect()
}

struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        hprintln!("[{}] {}", if ok { "ok" } else { "FAILED" }, what);
        if !ok {
            self.failed += 1;
        }
    }
}

fn run(checks: &mut Checks) -> Result<(), strata_core::Error> {
    let flash_bytes = FLASH_UNITS * 4096;
    let flash = Flash::new(FLASH_UNITS);
    if let Err(e) = FlashFs::format(flash.clone()) {
        hprintln!("format failed: {}", e);
        return Err(strata_core::Error::Closed);
    }

    // Heap of an empty database: what Engine::open allocates on a fresh filesystem.
    let before_open = heap_in_use();
    let db = open(&flash)?;
    let empty_db = heap_in_use() - before_open;

    // Per memtable entry: small entries (16-byte key, 32-byte value) that stay in the memtable.
    let mut model = Model::new();
    let before_entries = heap_in_use();
    const SMALL: u32 = 200;
    for i in 0..SMALL {
        let write = (alloc::format!("small/{i:010}").into_bytes(), [i as u8; 32].to_vec());
        db.commit({
            let mut txn = TxnCore::begin(&db, Mode::ReadWrite)?;
            txn.set(&write.0, &write.1)?;
            txn.finish()?
        })?;
        model.insert(write.0, write.1);
    }
    let per_entry = (heap_in_use() - before_entries) / SMALL as usize;
    db.maintenance_step(usize::MAX)?;

    // The workload: durable commits with flushes and compactions.
    const COMMITS: u32 = 400;
    for i in 0..COMMITS {
        let writes = transaction(i);
        commit(&db, &writes, true)?;
        model.extend(writes);
    }
    let levels = db.levels();
    let tables: usize = levels.iter().map(|l| l.files).sum();
    checks.check(tables > 0, "memtables were flushed to tables on flash");
    checks.check(contents(&db)? == model, "the database holds every commit before the cut");

    // Power cut 1, between commits: the engine is never closed; a reboot sees the flash as is.
    let image = flash.image();
    drop(db);
    drop(flash);
    let db = open(&image)?;
    checks.check(contents(&db)? == model, "power cut between commits: every commit survived");

    // Power cut 2, inside a flash operation of a commit.
    image.cut_power_after(97, 5);
    let mut in_flight = None;
    for i in COMMITS..COMMITS * 2 {
        let writes = transaction(i);
        if commit(&db, &writes, true).is_err() {
            in_flight = Some(writes);
            break;
        }
        model.extend(writes);
    }
    checks.check(in_flight.is_some() && !image.is_powered(), "the power went off mid-commit");
    let reboot = image.image();
    drop(db);
    drop(image);
    let db = open(&reboot)?;
    let found = contents(&db)?;
    let mut with_flight = model.clone();
    with_flight.extend(in_flight.unwrap_or_default());
    checks.check(
        found == model || found == with_flight,
        "power cut inside a commit: every acknowledged commit survived, nothing else appeared",
    );
    for (k, v) in &model {
        let txn = TxnCore::begin(&db, Mode::ReadOnly)?;
        if txn.get(&db, k)?.as_deref() != Some(v.as_slice()) && found == model {
            checks.check(false, "point read of an acknowledged key");
        }
    }
    db.close()?;

    let peak = HEAP.peak.load(Ordering::Relaxed);
    hprintln!("flash: {} erase units of 4 KiB ({} bytes)", FLASH_UNITS, flash_bytes);
    hprintln!("heap of an empty database: {} bytes", empty_db);
    hprintln!("heap per memtable entry (16-byte key, 32-byte value): {} bytes", per_entry);
    hprintln!(
        "peak heap: {} bytes, of which 2 x {} the RAM flash and its image",
        peak,
        flash_bytes
    );
    hprintln!("peak heap of the engine and filesystem: {} bytes", peak - 2 * flash_bytes);
    hprintln!("keys: {}, tables after the run: {}", model.len(), tables);
    Ok(())
}

#[entry]
fn main() -> ! {
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
    // SAFETY: called once, before any allocation, with memory only the heap uses (cortex-m-rt
    // gives `static mut` in the entry function a unique `&mut`).
    unsafe { HEAP.heap.init(HEAP_MEM.as_mut_ptr() as usize, HEAP_BYTES) };
    let mut checks = Checks { failed: 0 };
    if let Err(e) = run(&mut checks) {
        hprintln!("[FAILED] engine error: {}", e);
        checks.failed += 1;
    }
    if checks.failed == 0 {
        hprintln!("all checks passed");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("{} checks failed", checks.failed);
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::bkpt();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault: {:?}", frame);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
