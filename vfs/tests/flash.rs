//! The flash filesystem: conformance on several geometries, remounts, wear spread, and a
//! crash test that cuts the power after every flash operation of a workload.
#![cfg(feature = "flash")]

use std::collections::BTreeMap;

use embedded_storage::nor_flash::NorFlash;
use strata_vfs::flash::{FlashFs, RamFlash, StreamReader};
use strata_vfs::{AppendWrite, ErrorKind, FileKind, RandomRead, SyncMode, Vfs, conformance};

fn fresh<const W: usize, const E: usize>(units: usize) -> FlashFs<RamFlash<W, E>> {
    FlashFs::format(RamFlash::new(units)).expect("format")
}

fn read_all<V: Vfs>(fs: &V, name: &str) -> Vec<u8> {
    let r = fs.open(name, FileKind::Table).expect("open");
    let mut buf = vec![0u8; r.len().expect("len") as usize];
    r.read_exact_at(0, &mut buf).expect("read");
    buf
}

#[test]
fn flashfs_passes_conformance() {
    // 1 MiB files need about 300 erase units of 4 KiB.
    conformance::run_all(|| fresh::<4, 4096>(320));
    conformance::run_all(|| fresh::<1, 4096>(320));
    conformance::run_all(|| fresh::<32, 8192>(160));
}

#[test]
fn a_remount_keeps_synced_files_and_drops_unsynced_ones() {
    let flash = RamFlash::<8, 4096>::new(32);
    let fs = FlashFs::format(flash.clone()).expect("format");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut w = fs.create("000001.wal", FileKind::Wal).expect("create");
    w.append(&data[..5_003]).expect("append");
    w.sync(SyncMode::Data).expect("sync");
    w.append(&data[5_003..]).expect("append");
    w.flush().expect("flush");
    let mut never = fs.create("never.tmp", FileKind::Temp).expect("create");
    never.append(b"unsynced").expect("append");
    fs.rename("000001.wal", "renamed.wal").expect("rename");
    drop(fs); // without sync_dir: the rename and the temp file are not durable
    drop((w, never));
    let fs = FlashFs::mount(flash.image()).expect("mount");
    assert_eq!(fs.list().expect("list"), ["000001.wal"]);
    assert_eq!(read_all(&fs, "000001.wal"), &data[..5_003], "exactly the synced bytes");
}

#[test]
fn sync_dir_makes_renames_and_removes_durable() {
    let flash = RamFlash::<4, 4096>::new(32);
    let fs = FlashFs::format(flash.clone()).expect("format");
    for (name, body) in [("a", &b"first"[..]), ("b", b"second"), ("c", b"third")] {
        let mut w = fs.create(name, FileKind::Marker).expect("create");
        w.append(body).expect("append");
        w.sync(SyncMode::All).expect("sync");
    }
    fs.rename("a", "b").expect("rename over");
    fs.remove("c").expect("remove");
    fs.sync_dir().expect("sync_dir");
    let fs = FlashFs::mount(flash.image()).expect("mount");
    assert_eq!(fs.list().expect("list"), ["b"]);
    assert_eq!(read_all(&fs, "b"), b"first");
}

#[test]
fn mount_of_a_blank_flash_is_not_found() {
    let err = FlashFs::mount(RamFlash::<4, 4096>::new(32)).expect_err("blank");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let fs = FlashFs::mount_or_format(RamFlash::<4, 4096>::new(32)).expect("formats");
    assert!(fs.list().expect("list").is_empty());
}

#[test]
fn too_small_or_odd_flashes_are_refused() {
    let err = FlashFs::format(RamFlash::<4, 4096>::new(4)).expect_err("too small");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = FlashFs::format(RamFlash::<64, 4096>::new(64)).expect_err("write size 64");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[test]
fn names_and_table_capacity_are_checked() {
    let fs = fresh::<4, 4096>(64);
    let long = "x".repeat(strata_vfs::flash::MAX_NAME + 1);
    assert_eq!(
        fs.create(&long, FileKind::Temp).err().map(|e| e.kind()),
        Some(ErrorKind::Unsupported)
    );
    let mut writers = Vec::new();
    for i in 0..strata_vfs::flash::MAX_FILES {
        writers.push(fs.create(&format!("f{i}"), FileKind::Temp).expect("fits"));
    }
    let err = fs.create("one-more", FileKind::Temp).expect_err("full");
    assert_eq!(err.kind(), ErrorKind::NoSpace);
    fs.sync_dir().expect("a full table fits one snapshot");
}

#[test]
fn running_out_of_blocks_is_no_space_and_removal_frees_them() {
    let fs = fresh::<4, 4096>(24);
    let (total, free) = fs.blocks();
    assert_eq!(total, free);
    let chunk = vec![0xA5u8; 1000];
    let mut w = fs.create("big", FileKind::ValueLog).expect("create");
    let err = loop {
        if let Err(e) = w.append(&chunk).and_then(|()| w.flush()) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::NoSpace);
    drop(w);
    fs.remove("big").expect("remove");
    assert_eq!(fs.blocks().1, total, "never durable: blocks free at once");
    let mut w = fs.create("small", FileKind::Wal).expect("create");
    w.append(&chunk).expect("append");
    w.sync(SyncMode::Data).expect("sync");
}

#[test]
fn blocks_of_a_durably_named_file_stay_reserved_until_the_removal_is_durable() {
    let flash = RamFlash::<4, 4096>::new(20);
    let fs = FlashFs::format(flash.clone()).expect("format");
    let payload = fs.block_payload() as usize;
    let (total, _) = fs.blocks();
    let keep: Vec<u8> = (0..payload * 3).map(|i| (i % 253) as u8).collect();
    let mut w = fs.create("keep", FileKind::Table).expect("create");
    w.append(&keep).expect("append");
    w.sync(SyncMode::All).expect("sync");
    drop(w);
    fs.remove("keep").expect("remove");
    // Not yet durable: filling the flash must not reuse keep's blocks.
    let mut w = fs.create("fill", FileKind::Table).expect("create");
    let mut written = 0usize;
    while w.append(&vec![1u8; payload]).and_then(|()| w.flush()).is_ok() {
        written += payload;
    }
    assert_eq!(written / payload, total as usize - 3, "all but keep's blocks");
    drop(w);
    let fs = FlashFs::mount(flash.image()).expect("mount");
    assert_eq!(read_all(&fs, "keep"), keep, "the undurable removal left the data intact");
}

#[test]
fn erases_spread_over_all_data_blocks() {
    let flash = RamFlash::<4, 4096>::new(40);
    let mut fs = FlashFs::format(flash.clone()).expect("format");
    let (total, _) = fs.blocks();
    let payload = fs.block_payload() as usize;
    for round in 0..(total as usize * 4) {
        if round % 50 == 49 {
            fs = FlashFs::mount(flash.image()).expect("remount keeps the cursor");
        }
        let mut w = fs.create("wal", FileKind::Wal).expect("create");
        w.append(&vec![round as u8; payload]).expect("append");
        w.sync(SyncMode::Data).expect("sync");
        drop(w);
        fs.remove("wal").expect("remove");
        fs.sync_dir().expect("sync_dir");
    }
    let counts = flash.erase_counts();
    let meta_units = counts.len() - total as usize;
    let data = &counts[meta_units..];
    let (min, max) = (data.iter().min().copied(), data.iter().max().copied());
    assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 2), "data erases {data:?}");
}

#[test]
fn embedded_io_streams_write_and_read_files() {
    use embedded_io::{Read, Seek, SeekFrom, Write};
    let fs = fresh::<4, 4096>(32);
    let mut w = fs.create("stream", FileKind::Wal).expect("create");
    let body: Vec<u8> = (0..9_000u32).map(|i| (i % 241) as u8).collect();
    w.write_all(&body).expect("write_all");
    Write::flush(&mut w).expect("flush");
    let mut r = StreamReader::new(fs.open("stream", FileKind::Wal).expect("open"));
    let mut back = Vec::new();
    let mut buf = [0u8; 777];
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, body);
    assert_eq!(r.seek(SeekFrom::End(-10)).expect("seek"), 8_990);
    let mut last = [0u8; 10];
    r.read_exact(&mut last).expect("read_exact");
    assert_eq!(last, body[8_990..]);
    assert!(r.seek(SeekFrom::Current(-100_000)).is_err());
}

// ---- Crash test ------------------------------------------------------------------------------

/// Tiny deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Name → bytes a reboot must find.
type Dir = BTreeMap<String, Vec<u8>>;

/// The workload's own view: every file's bytes, how many are synced, and the names.
#[derive(Default)]
struct Model {
    content: BTreeMap<u32, Vec<u8>>,
    synced: BTreeMap<u32, usize>,
    names: BTreeMap<String, u32>,
}

impl Model {
    /// The directory a record written now would hold, after syncing `id` (if any).
    fn candidate(&self, sync: Option<u32>) -> Dir {
        self.names
            .iter()
            .map(|(name, id)| {
                let len = if Some(*id) == sync { self.content[id].len() } else { self.synced[id] };
                (name.clone(), self.content[id][..len].to_vec())
            })
            .collect()
    }
}

/// Runs the workload until it ends or an operation fails (the power went off). Returns the
/// last acknowledged directory and, if a commit was in flight, the one it would have made.
fn workload<F: NorFlash>(fs: &FlashFs<F>, seed: u64) -> (Dir, Option<Dir>) {
    let mut rng = Rng(seed | 1);
    let mut m = Model::default();
    let mut acked = Dir::new();
    let mut writers: BTreeMap<u32, <FlashFs<F> as Vfs>::Write> = BTreeMap::new();
    let mut next = 0u32;
    for _ in 0..160 {
        let ids: Vec<u32> = writers.keys().copied().collect();
        let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize];
        let names: Vec<String> = m.names.keys().cloned().collect();
        let step = rng.below(100);
        let result = if step < 12 && m.names.len() < 6 {
            next += 1;
            let name = format!("{next:06}.log");
            fs.create(&name, FileKind::Wal).map(|w| {
                writers.insert(next, w);
                m.content.insert(next, Vec::new());
                m.synced.insert(next, 0);
                m.names.insert(name, next);
            })
        } else if step < 50 && !ids.is_empty() {
            let id = pick(&mut rng);
            let len = 1 + rng.below(2_500) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(c) = m.content.get_mut(&id) {
                c.extend_from_slice(&bytes);
            }
            writers.get_mut(&id).map_or(Ok(()), |w| w.append(&bytes))
        } else if step < 70 && !ids.is_empty() {
            let id = pick(&mut rng);
            let candidate = m.candidate(m.names.values().any(|v| *v == id).then_some(id));
            let r = writers.get_mut(&id).map_or(Ok(()), |w| w.sync(SyncMode::Data));
            if r.is_err() {
                return (acked, Some(candidate));
            }
            m.synced.insert(id, m.content[&id].len());
            acked = candidate;
            Ok(())
        } else if step < 78 {
            let candidate = m.candidate(None);
            if fs.sync_dir().is_err() {
                return (acked, Some(candidate));
            }
            acked = candidate;
            Ok(())
        } else if step < 88 && !names.is_empty() {
            let from = &names[rng.below(names.len() as u64) as usize];
            let to = if rng.below(2) == 0 && names.len() > 1 {
                names[rng.below(names.len() as u64) as usize].clone()
            } else {
                format!("r{}", rng.below(1000))
            };
            fs.rename(from, &to).map(|()| {
                if from != &to {
                    let id = m.names.remove(from).expect("named");
                    m.names.insert(to, id);
                }
            })
        } else if step < 94 && !names.is_empty() {
            let name = &names[rng.below(names.len() as u64) as usize];
            fs.remove(name).map(|()| {
                m.names.remove(name);
            })
        } else if !ids.is_empty() {
            let id = pick(&mut rng);
            drop(writers.remove(&id));
            Ok(())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            assert_ne!(e.kind(), ErrorKind::NoSpace, "the workload fits the flash");
            return (acked, None);
        }
    }
    (acked, None)
}

fn dir_of<V: Vfs>(fs: &V) -> Dir {
    fs.list().expect("list").into_iter().map(|n| (n.clone(), read_all(fs, &n))).collect()
}

fn crash_everywhere<const W: usize, const E: usize>(units: usize, seed: u64) -> u64 {
    // A run without a cut tells how many operations the workload takes.
    let probe = RamFlash::<W, E>::new(units);
    let fs = FlashFs::format(probe.clone()).expect("format");
    let start = probe.ops();
    let (full, _) = workload(&fs, seed);
    drop(fs);
    let total = probe.ops() - start;
    assert!(total > 50, "the workload does flash work ({total} ops)");
    assert_eq!(dir_of(&FlashFs::mount(probe.image()).expect("mount")), full);
    for cut in 0..=total {
        let flash = RamFlash::<W, E>::new(units);
        let fs = FlashFs::format(flash.clone()).expect("format");
        flash.cut_power_after(cut, seed ^ cut);
        let (acked, in_flight) = workload(&fs, seed);
        drop(fs);
        let image = flash.image();
        let fs = FlashFs::mount(image.clone())
            .unwrap_or_else(|e| panic!("seed {seed} cut {cut}: mount failed: {e}"));
        let found = dir_of(&fs);
        assert!(
            found == acked || in_flight.as_ref() == Some(&found),
            "seed {seed} cut {cut}: directory {:?} is neither the acknowledged {:?} nor the \
             in-flight one",
            found.keys().collect::<Vec<_>>(),
            acked.keys().collect::<Vec<_>>()
        );
        // The recovered filesystem keeps working, and later writes never clobber old data.
        let body = vec![0x5Au8; 6_000];
        let mut w = fs.create("after-crash", FileKind::Wal).expect("create after crash");
        w.append(&body).expect("append after crash");
        w.sync(SyncMode::Data).expect("sync after crash");
        drop((w, fs));
        let fs = FlashFs::mount(image.image()).expect("second mount");
        let mut want = found.clone();
        want.insert("after-crash".into(), body);
        assert_eq!(dir_of(&fs), want, "seed {seed} cut {cut}: after a write and a remount");
    }
    total
}

#[test]
fn a_power_cut_after_any_flash_operation_keeps_the_synced_directory() {
    for seed in [1u64, 2, 3] {
        let ops = crash_everywhere::<4, 4096>(64, seed);
        eprintln!("seed {seed}: cut at each of {ops} operations");
    }
}

#[test]
fn power_cuts_with_byte_writes_and_small_erase_units() {
    crash_everywhere::<1, 2048>(128, 7);
    crash_everywhere::<16, 4096>(64, 8);
}
