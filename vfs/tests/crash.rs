//! MemFs crash semantics: what each CrashPolicy leaves, determinism, and armed crashes.

use strata_vfs::{AppendWrite, CrashPolicy, ErrorKind, FileKind, MemFs, RandomRead, SyncMode, Vfs};

const SECTOR: u64 = 512;
const SYNCED: usize = 1000;
const TOTAL: usize = 2500;

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 8) as u8).collect()
}

/// A directory with:
/// - `a.wal`: durable name, 1000 synced bytes then 1500 unsynced;
/// - `b.sst`: durable name, fully synced;
/// - `c.tmp`: fully synced data, but its create is not durable.
fn setup() -> MemFs {
    let fs = MemFs::new();
    let a = pattern(TOTAL, 1);
    let mut w = fs.create("a.wal", FileKind::Wal).expect("create a");
    w.append(&a[..SYNCED]).expect("append");
    w.sync(SyncMode::Data).expect("sync");
    let mut b = fs.create("b.sst", FileKind::Table).expect("create b");
    b.append(&pattern(700, 2)).expect("append b");
    b.sync(SyncMode::All).expect("sync b");
    fs.sync_dir().expect("sync_dir");
    w.append(&a[SYNCED..]).expect("append tail");
    w.flush().expect("flush");
    let mut c = fs.create("c.tmp", FileKind::Temp).expect("create c");
    c.append(b"temp").expect("append c");
    c.sync(SyncMode::Data).expect("sync c");
    fs
}

/// Every file's name and bytes, sorted by name.
type Snapshot = Vec<(String, Vec<u8>)>;

fn snapshot(fs: &MemFs) -> Snapshot {
    let mut names = fs.list().expect("list");
    names.sort();
    names.into_iter().map(|n| (n.clone(), fs.read_all(&n).expect("read"))).collect()
}

#[test]
fn synced_bytes_always_survive() {
    let fs = setup();
    let a = pattern(TOTAL, 1);
    for policy in CrashPolicy::ALL {
        for seed in 0..64 {
            let img = fs.crash(policy, seed);
            let got = img.read_all("a.wal").expect("a survives: its name is durable");
            assert!(got.len() >= SYNCED, "{policy:?}/{seed}: {} bytes", got.len());
            assert_eq!(&got[..SYNCED], &a[..SYNCED], "{policy:?}/{seed}");
            assert_eq!(img.read_all("b.sst").expect("b"), pattern(700, 2), "{policy:?}/{seed}");
            if let Ok(c) = img.read_all("c.tmp") {
                assert_eq!(c, b"temp", "synced data of c is intact when c exists");
            }
        }
    }
}

#[test]
fn drop_unsynced_loses_tails_and_creates() {
    let fs = setup();
    let img = fs.crash(CrashPolicy::DropUnsynced, 9);
    assert_eq!(img.read_all("a.wal").expect("a"), &pattern(TOTAL, 1)[..SYNCED]);
    assert_eq!(img.size("c.tmp").map_err(|e| e.kind()), Err(ErrorKind::NotFound));
    let mut names = img.list().expect("list");
    names.sort();
    assert_eq!(names, ["a.wal", "b.sst"]);
}

#[test]
fn keep_unsynced_keeps_everything() {
    let fs = setup();
    let img = fs.crash(CrashPolicy::KeepUnsynced, 9);
    assert_eq!(img.read_all("a.wal").expect("a"), pattern(TOTAL, 1));
    assert_eq!(img.read_all("c.tmp").expect("c"), b"temp");
    assert_eq!(snapshot(&img), snapshot(&fs));
}

#[test]
fn torn_tail_is_a_prefix_between_synced_and_full() {
    let fs = setup();
    let a = pattern(TOTAL, 1);
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let got = fs.crash(CrashPolicy::TornTail, seed).read_all("a.wal").expect("a");
        assert!((SYNCED..=TOTAL).contains(&got.len()), "seed {seed}: {}", got.len());
        assert_eq!(&got[..], &a[..got.len()], "seed {seed}: not a prefix");
        lengths.insert(got.len());
    }
    assert!(lengths.len() > 20, "torn lengths barely vary: {lengths:?}");
    assert!(
        lengths.iter().any(|&l| !(l as u64).is_multiple_of(SECTOR) && l != SYNCED && l != TOTAL)
    );
    assert!(lengths.iter().any(|&l| l > SYNCED));
}

#[test]
fn torn_tail_with_one_byte_sectors() {
    let fs = MemFs::with_sector_size(1);
    let mut w = fs.create("x", FileKind::Wal).expect("create");
    w.append(b"0123456789").expect("append");
    fs.sync_dir().expect("sync_dir");
    let mut seen = [false; 11];
    for seed in 0..400 {
        let got = fs.crash(CrashPolicy::TornTail, seed).read_all("x").expect("x");
        assert_eq!(&got[..], &b"0123456789"[..got.len()]);
        seen[got.len()] = true;
    }
    assert!(seen.iter().all(|&s| s), "every length 0..=10 is reachable: {seen:?}");
}

#[test]
fn garbage_tail_keeps_length_and_a_sector_aligned_prefix() {
    let fs = setup();
    let a = pattern(TOTAL, 1);
    let (mut changed, mut unaligned_starts) = (0, 0);
    for seed in 0..300 {
        let got = fs.crash(CrashPolicy::GarbageTail, seed).read_all("a.wal").expect("a");
        assert_eq!(got.len(), TOTAL, "seed {seed}");
        assert_eq!(&got[..SYNCED], &a[..SYNCED], "seed {seed}");
        if let Some(first_diff) = got.iter().zip(&a).position(|(x, y)| x != y) {
            changed += 1;
            // Garbage starts at a sector boundary (or at the synced length, 1000, inside the
            // sector [512, 1024)); a random byte equals the original 1 time in 256, so the
            // first difference is almost always exactly there.
            let at_start = (first_diff as u64).is_multiple_of(SECTOR) || first_diff == SYNCED;
            if !at_start {
                unaligned_starts += 1;
            }
        }
    }
    assert!(changed > 200, "garbage rarely written: {changed}/300");
    assert!(unaligned_starts < 10, "garbage not sector aligned: {unaligned_starts}");
}

#[test]
fn unsynced_remove_and_rename_revert_or_stay() {
    let fs = MemFs::new();
    fs.write_whole("old.sst", b"old").expect("write");
    fs.write_whole("CURRENT", b"MANIFEST-1").expect("write");
    fs.write_whole("CURRENT.tmp", b"MANIFEST-2").expect("write");
    fs.write_whole("moved", b"m").expect("write");
    fs.remove("old.sst").expect("remove");
    fs.rename("CURRENT.tmp", "CURRENT").expect("rename");
    fs.rename("moved", "moved2").expect("rename to fresh name");

    let img = fs.crash(CrashPolicy::DropUnsynced, 0);
    assert_eq!(img.read_all("old.sst").expect("removal reverted"), b"old");
    assert_eq!(img.read_all("CURRENT").expect("CURRENT"), b"MANIFEST-1");
    assert_eq!(img.read_all("CURRENT.tmp").expect("tmp back"), b"MANIFEST-2");
    assert!(img.exists("moved").expect("exists") && !img.exists("moved2").expect("exists"));

    let img = fs.crash(CrashPolicy::KeepUnsynced, 0);
    assert!(!img.exists("old.sst").expect("exists"));
    assert_eq!(img.read_all("CURRENT").expect("CURRENT"), b"MANIFEST-2");
    assert!(!img.exists("CURRENT.tmp").expect("exists"));
    assert!(!img.exists("moved").expect("exists") && img.exists("moved2").expect("exists"));

    // Partial replays: CURRENT is always one of the two, never missing, never a mix.
    for policy in [CrashPolicy::TornTail, CrashPolicy::GarbageTail] {
        for seed in 0..50 {
            let img = fs.crash(policy, seed);
            let current = img.read_all("CURRENT").expect("CURRENT never vanishes");
            assert!(current == b"MANIFEST-1" || current == b"MANIFEST-2");
            let moved =
                img.exists("moved").expect("a") as u8 + img.exists("moved2").expect("b") as u8;
            assert_eq!(moved, 1, "exactly one of moved/moved2");
        }
    }
}

#[test]
fn removed_file_with_open_handles_comes_back() {
    let fs = MemFs::new();
    fs.write_whole("000004.sst", b"table").expect("write");
    let r = fs.open("000004.sst", FileKind::Table).expect("open");
    fs.remove("000004.sst").expect("remove");
    let mut buf = [0u8; 5];
    r.read_exact_at(0, &mut buf).expect("read removed");
    drop(r);
    let img = fs.crash(CrashPolicy::DropUnsynced, 0);
    assert_eq!(img.read_all("000004.sst").expect("back"), b"table");
    fs.sync_dir().expect("sync_dir");
    let img = fs.crash(CrashPolicy::DropUnsynced, 0);
    assert!(!img.exists("000004.sst").expect("exists"));
}

#[test]
fn partial_directory_replay_is_a_prefix() {
    let fs = MemFs::new();
    for i in 0..10 {
        let mut w = fs.create(&format!("f{i}"), FileKind::Table).expect("create");
        w.append(&[i as u8; 3]).expect("append");
        w.sync(SyncMode::Data).expect("sync");
    }
    let mut counts = std::collections::BTreeSet::new();
    for policy in [CrashPolicy::TornTail, CrashPolicy::GarbageTail] {
        for seed in 0..200 {
            let img = fs.crash(policy, seed);
            let n = img.list().expect("list").len();
            for i in 0..10 {
                assert_eq!(img.exists(&format!("f{i}")).expect("exists"), i < n, "not a prefix");
            }
            counts.insert(n);
        }
    }
    assert_eq!(counts.len(), 11, "every prefix length occurs: {counts:?}");
}

#[test]
fn hard_links_share_data_and_obey_sync_dir() {
    let fs = MemFs::new();
    let mut w = fs.create("000008.sst", FileKind::Table).expect("create");
    w.append(b"shared").expect("append");
    w.sync(SyncMode::All).expect("sync");
    fs.sync_dir().expect("sync_dir");
    fs.link("000008.sst", "ckpt.sst").expect("link");
    assert_eq!(
        fs.link("000008.sst", "ckpt.sst").map_err(|e| e.kind()),
        Err(ErrorKind::AlreadyExists)
    );
    assert_eq!(fs.link("nope", "x").map_err(|e| e.kind()), Err(ErrorKind::NotFound));
    assert_eq!(fs.total_bytes(), 6, "a linked file is counted once");
    assert!(!fs.crash(CrashPolicy::DropUnsynced, 0).exists("ckpt.sst").expect("exists"));
    let img = fs.crash(CrashPolicy::KeepUnsynced, 0);
    assert_eq!(img.read_all("ckpt.sst").expect("link"), b"shared");
    // In the image the two names still share one inode.
    img.flip_byte("ckpt.sst", 0, 0x20).expect("flip");
    assert_eq!(img.read_all("000008.sst").expect("orig"), b"Shared");
}

#[test]
fn same_seed_same_image_different_seeds_vary() {
    let fs = setup();
    for policy in CrashPolicy::ALL {
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(snapshot(&fs.crash(policy, seed)), snapshot(&fs.crash(policy, seed)));
        }
    }
    for policy in [CrashPolicy::TornTail, CrashPolicy::GarbageTail] {
        let first = snapshot(&fs.crash(policy, 0));
        assert!((1..20).any(|seed| snapshot(&fs.crash(policy, seed)) != first), "{policy:?}");
    }
}

#[test]
fn images_are_independent_and_fresh() {
    let fs = setup();
    let _lock = fs.lock("LOCK").expect("lock");
    let img = fs.crash(CrashPolicy::KeepUnsynced, 3);
    assert_eq!(img.sync_count(), 0);
    drop(img.lock("LOCK").expect("locks do not survive a crash"));
    img.write_whole("new", b"n").expect("write");
    img.remove("a.wal").expect("remove");
    assert!(!fs.exists("new").expect("exists"));
    assert!(fs.exists("a.wal").expect("exists"));
    // Clones share one directory.
    let twin = fs.clone();
    twin.write_whole("twin", b"t").expect("write");
    assert!(fs.exists("twin").expect("exists"));
    assert_eq!(fs.lock("LOCK").map(drop).map_err(|e| e.kind()), Err(ErrorKind::Locked));
}

/// The workload of the arming tests; before each durability call it calls `before_sync`.
fn workload(fs: &MemFs, mut before_sync: impl FnMut(&MemFs)) -> strata_vfs::Result<()> {
    let mut w = fs.create("000001.wal", FileKind::Wal)?;
    for round in 0..4u8 {
        w.append(&pattern(300 + 100 * round as usize, round))?;
        before_sync(fs);
        w.sync(SyncMode::Data)?;
        fs.create(&format!("{round}.tmp"), FileKind::Temp)?.append(&[round; 10])?;
        if round % 2 == 1 {
            fs.rename(&format!("{round}.tmp"), "CURRENT")?;
        }
        before_sync(fs);
        fs.sync_dir()?;
    }
    w.append(b"unsynced tail")?;
    Ok(())
}

#[test]
fn armed_crash_captures_the_state_before_the_nth_sync() {
    // Images a crash just before each durability call would leave, per policy, taken while
    // an unarmed run of the same workload goes by.
    let reference = MemFs::new();
    let mut images: Vec<Vec<Snapshot>> = Vec::new();
    workload(&reference, |fs| {
        let seed = 77 + images.len() as u64;
        images.push(CrashPolicy::ALL.iter().map(|&p| snapshot(&fs.crash(p, seed))).collect());
    })
    .expect("unarmed workload");
    assert_eq!(images.len(), 8);
    assert_eq!(reference.sync_count(), 8);

    for n in 1..=8u64 {
        for (pi, &policy) in CrashPolicy::ALL.iter().enumerate() {
            let fs = MemFs::new();
            fs.arm_crash(n, policy, 77 + (n - 1));
            let err = workload(&fs, |_| {}).expect_err("the armed crash fires");
            assert_eq!(err.kind(), ErrorKind::Other);
            assert_eq!(err.note(), "memfs: simulated power cut");
            assert_eq!(fs.sync_count(), n - 1);
            assert!(fs.is_crashed());
            let img = fs.take_crash_image().expect("image captured");
            assert!(fs.take_crash_image().is_none(), "taken once");
            assert_eq!(snapshot(&img), images[(n - 1) as usize][pi], "n={n} {policy:?}");
            assert_eq!(img.sync_count(), 0);
            img.write_whole("alive", b"yes").expect("the image is a working filesystem");
        }
    }
}

#[test]
fn after_the_armed_crash_everything_fails() {
    let fs = MemFs::new();
    fs.write_whole("a", b"data").expect("write");
    let r = fs.open("a", FileKind::Table).expect("open");
    let mut w = fs.create("b", FileKind::Wal).expect("create");
    let lock = fs.lock("LOCK").expect("lock");
    fs.arm_crash(1, CrashPolicy::DropUnsynced, 0);
    assert!(fs.take_crash_image().is_none(), "not fired yet");
    w.append(b"x").expect("appends are not durability calls");
    let dead = |r: strata_vfs::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(
            (e.kind(), e.note()),
            (ErrorKind::Other, "memfs: simulated power cut"),
            "{what}"
        );
    };
    dead(w.sync(SyncMode::Data), "the armed sync");
    let clone = fs.clone();
    let mut buf = [0u8; 1];
    dead(r.read_exact_at(0, &mut buf), "read");
    dead(r.len().map(drop), "reader len");
    dead(w.append(b"y"), "append");
    dead(w.flush(), "flush");
    dead(w.sync(SyncMode::All), "sync");
    dead(fs.sync_dir(), "sync_dir");
    dead(fs.create("c", FileKind::Wal).map(drop), "create");
    dead(fs.open("a", FileKind::Table).map(drop), "open");
    dead(fs.remove("a"), "remove");
    dead(fs.rename("a", "z"), "rename");
    dead(fs.list().map(drop), "list");
    dead(fs.size("a").map(drop), "size");
    dead(fs.exists("a").map(drop), "exists");
    dead(fs.lock("L2").map(drop), "lock");
    dead(fs.link("a", "l").map(drop), "link");
    dead(clone.read_all("a").map(drop), "read_all via clone");
    dead(fs.write_whole("d", b"").map(drop), "write_whole");
    dead(fs.flip_byte("a", 0, 1), "flip_byte");
    dead(fs.truncate("a", 0), "truncate");
    assert_eq!(fs.sync_count(), 0);
    drop((lock, r, w));
    let img = fs.take_crash_image().expect("image");
    assert_eq!(img.read_all("a").expect("a"), b"data");
    assert!(!img.exists("b").expect("unsynced create dropped"));
}

#[test]
fn arming_in_the_past_fires_at_the_next_call() {
    let fs = MemFs::new();
    fs.sync_dir().expect("1");
    fs.sync_dir().expect("2");
    fs.arm_crash(1, CrashPolicy::KeepUnsynced, 0);
    assert!(fs.sync_dir().is_err());
    assert!(fs.take_crash_image().is_some());
}

/// The workload of the arming tests, calling `before_change` before each call that changes
/// the filesystem.
fn changing_workload(fs: &MemFs, mut before_change: impl FnMut(&MemFs)) -> strata_vfs::Result<()> {
    before_change(fs);
    let mut w = fs.create("000001.wal", FileKind::Wal)?;
    for round in 0..3u8 {
        before_change(fs);
        w.append(&pattern(300 + 100 * round as usize, round))?;
        before_change(fs);
        w.sync(SyncMode::Data)?;
        before_change(fs);
        let mut t = fs.create(&format!("{round}.tmp"), FileKind::Temp)?;
        before_change(fs);
        t.append(&[round; 10])?;
        before_change(fs);
        fs.rename(&format!("{round}.tmp"), "CURRENT")?;
        before_change(fs);
        fs.sync_dir()?;
    }
    before_change(fs);
    fs.link("CURRENT", "LINKED")?;
    before_change(fs);
    fs.remove("LINKED")?;
    before_change(fs);
    w.append(b"unsynced tail")?;
    Ok(())
}

#[test]
fn armed_crash_at_a_change_captures_the_state_before_the_nth_changing_call() {
    let reference = MemFs::new();
    let mut images: Vec<Vec<Snapshot>> = Vec::new();
    changing_workload(&reference, |fs| {
        let seed = 5 + images.len() as u64;
        images.push(CrashPolicy::ALL.iter().map(|&p| snapshot(&fs.crash(p, seed))).collect());
    })
    .expect("unarmed workload");
    let calls = images.len() as u64;
    assert_eq!(reference.change_count(), calls);
    assert_eq!(calls, 1 + 3 * 6 + 3);
    for n in 1..=calls {
        for (pi, &policy) in CrashPolicy::ALL.iter().enumerate() {
            let fs = MemFs::new();
            fs.arm_crash_at_change(n, policy, 5 + (n - 1));
            let err = changing_workload(&fs, |_| {}).expect_err("the armed crash fires");
            assert_eq!(err.note(), "memfs: simulated power cut");
            assert_eq!(fs.change_count(), n - 1, "calls before the cut");
            let img = fs.take_crash_image().expect("image captured");
            assert_eq!(snapshot(&img), images[(n - 1) as usize][pi], "n={n} {policy:?}");
            assert_eq!(img.change_count(), 0);
        }
    }
    // Disarmed, nothing fires; reads and listings are not counted.
    let fs = MemFs::new();
    fs.arm_crash_at_change(3, CrashPolicy::DropUnsynced, 0);
    fs.disarm_crash();
    changing_workload(&fs, |fs| {
        fs.list().expect("list");
    })
    .expect("disarmed");
    assert!(!fs.is_crashed() && fs.take_crash_image().is_none());
    assert_eq!(fs.change_count(), calls);
}

#[test]
fn damage_helpers() {
    let fs = MemFs::new();
    fs.write_whole("t", b"abcdef").expect("write");
    fs.flip_byte("t", 1, 0xFF).expect("flip");
    assert_eq!(fs.read_all("t").expect("read"), [b'a', !b'b', b'c', b'd', b'e', b'f']);
    assert_eq!(fs.flip_byte("t", 6, 1).map_err(|e| e.kind()), Err(ErrorKind::UnexpectedEof));
    assert_eq!(fs.flip_byte("nope", 0, 1).map_err(|e| e.kind()), Err(ErrorKind::NotFound));
    fs.truncate("t", 3).expect("truncate");
    assert_eq!(fs.size("t").expect("size"), 3);
    // Damage to synced bytes is durable.
    let img = fs.crash(CrashPolicy::DropUnsynced, 0);
    assert_eq!(img.read_all("t").expect("read"), [b'a', !b'b', b'c']);
    // Growing appends unsynced zeros.
    fs.truncate("t", 5).expect("grow");
    assert_eq!(fs.read_all("t").expect("read"), [b'a', !b'b', b'c', 0, 0]);
    assert_eq!(fs.crash(CrashPolicy::DropUnsynced, 0).size("t").expect("size"), 3);
    fs.write_whole("t", b"replaced").expect("replace");
    assert_eq!(fs.read_all("t").expect("read"), b"replaced");
    assert_eq!(fs.total_bytes(), 8);
}

#[test]
fn sync_count_counts_durability_calls() {
    let fs = MemFs::new();
    let mut w = fs.create("x", FileKind::Wal).expect("create");
    assert_eq!(fs.sync_count(), 0);
    w.flush().expect("flush");
    assert_eq!(fs.sync_count(), 0, "flush is not a durability call");
    w.sync(SyncMode::Data).expect("sync");
    w.sync(SyncMode::All).expect("sync");
    fs.sync_dir().expect("sync_dir");
    assert_eq!(fs.sync_count(), 3);
    assert_eq!(fs.clone().sync_count(), 3, "shared by clones");
}

/// Reserved space (`AppendWrite::reserve`): readers see the file at its reserved length with
/// zeros past the appended bytes, appends overwrite the zeros, and a crash keeps the synced
/// bytes, then zeros up to at least the length at the last sync. Each policy's image is
/// checked byte for byte against what it may keep.
#[test]
fn reserved_space_reads_as_zeros_and_survives_once_synced() {
    let data = pattern(3000, 7);
    for policy in [
        CrashPolicy::DropUnsynced,
        CrashPolicy::KeepUnsynced,
        CrashPolicy::TornTail,
        CrashPolicy::GarbageTail,
    ] {
        for seed in 0..20 {
            let fs = MemFs::new();
            let mut w = fs.create("r.wal", FileKind::Wal).expect("create");
            w.append(&data[..100]).expect("append");
            w.reserve(4096).expect("reserve");
            assert_eq!((w.len(), fs.size("r.wal").expect("size")), (100, 4096));
            w.append(&data[100..1000]).expect("append");
            w.sync(SyncMode::Data).expect("sync");
            fs.sync_dir().expect("sync_dir");
            // Unsynced: more bytes, and a larger reservation.
            w.append(&data[1000..3000]).expect("append");
            w.reserve(8192).expect("reserve");
            let live = fs.open("r.wal", FileKind::Wal).expect("open");
            let mut all = vec![0u8; 8192];
            live.read_exact_at(0, &mut all).expect("read");
            assert_eq!(&all[..3000], &data[..]);
            assert!(all[3000..].iter().all(|&b| b == 0), "reserved space reads as zeros");

            let img = fs.crash(policy, seed);
            let f = img.open("r.wal", FileKind::Wal).expect("survives");
            let len = f.len().expect("len") as usize;
            assert!(len == 4096 || len == 8192, "{policy:?}/{seed}: length {len}");
            if policy == CrashPolicy::DropUnsynced {
                assert_eq!(len, 4096, "an unsynced reservation is not durable");
            }
            if policy == CrashPolicy::KeepUnsynced {
                assert_eq!(len, 8192);
            }
            let mut got = vec![0u8; len];
            f.read_exact_at(0, &mut got).expect("read");
            assert_eq!(&got[..1000], &data[..1000], "{policy:?}/{seed}: synced bytes");
            match policy {
                CrashPolicy::GarbageTail => {
                    // Unsynced appended bytes may be garbage; past them only zeros.
                    assert!(got[3000..].iter().all(|&b| b == 0), "{policy:?}/{seed}");
                }
                _ => {
                    // A prefix of the unsynced bytes, then zeros.
                    let kept = (1000..=3000).rev().find(|&n| got[1000..n] == data[1000..n]);
                    let kept = kept.expect("a prefix");
                    assert!(got[kept..].iter().all(|&b| b == 0), "{policy:?}/{seed}");
                }
            }
        }
    }
}
