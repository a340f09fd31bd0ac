//! FaultFs: which calls fail, how, and that failed calls have no effect.

use strata_vfs::{
    AppendWrite, CrashPolicy, ErrorKind, FaultFs, FaultOp, FaultRule, FileKind, MemFs, RandomRead,
    SyncMode, Vfs,
};

fn kind<T>(r: strata_vfs::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

#[test]
fn nth_call_fails_exactly_that_call() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::Append).nth(2));
    let mut w = fs.create("000001.wal", FileKind::Wal).expect("create");
    let results: Vec<bool> = (0..5u8).map(|i| w.append(&[i]).is_ok()).collect();
    assert_eq!(results, [true, true, false, true, true]);
    assert_eq!(fs.op_count(FaultOp::Append), 5);
    assert_eq!(fs.injected(), 1);
    assert_eq!(fs.inner().read_all("000001.wal").expect("read"), [0, 1, 3, 4], "nothing appended");
    assert_eq!(w.len(), 4);
}

#[test]
fn nth_counts_only_matching_calls() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::Create).on_name(".sst").nth(1));
    fs.create("1.wal", FileKind::Wal).expect("wal does not match");
    fs.create("2.sst", FileKind::Table).expect("0th sst");
    fs.create("3.wal", FileKind::Wal).expect("wal does not match");
    assert_eq!(kind(fs.create("4.sst", FileKind::Table).map(drop)), Err(ErrorKind::Other));
    assert!(!fs.inner().exists("4.sst").expect("exists"), "failed create created nothing");
    fs.create("5.sst", FileKind::Table).expect("2nd sst");
    assert_eq!(fs.op_count(FaultOp::Create), 5);
}

#[test]
fn persistent_keeps_failing() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::Sync).nth(1).persistent());
    let mut w = fs.create("x", FileKind::Wal).expect("create");
    w.sync(SyncMode::Data).expect("0th sync");
    for _ in 0..5 {
        assert_eq!(kind(w.sync(SyncMode::Data)), Err(ErrorKind::Other));
    }
    assert_eq!(fs.injected(), 5);
    assert_eq!(fs.inner().sync_count(), 1, "failed syncs never reached MemFs");
    fs.clear_rules();
    w.sync(SyncMode::All).expect("rules cleared");
}

#[test]
fn default_rule_fails_every_call_and_once_fails_one() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::List).kind(ErrorKind::Interrupted));
    for _ in 0..3 {
        assert_eq!(kind(fs.list()), Err(ErrorKind::Interrupted));
    }
    fs.clear_rules();
    fs.add_rule(FaultRule::fail(FaultOp::SyncDir).once());
    assert!(fs.sync_dir().is_err());
    fs.sync_dir().expect("once is spent");
    fs.sync_dir().expect("once is spent");
    assert_eq!(fs.injected(), 4);
}

#[test]
fn every_operation_can_fail() {
    let mem = MemFs::new();
    mem.write_whole("a", b"abc").expect("write");
    let fs = FaultFs::new(mem);
    let r = fs.open("a", FileKind::Table).expect("open");
    let mut w = fs.create("w", FileKind::Wal).expect("create");
    for op in FaultOp::ALL {
        fs.add_rule(FaultRule::fail(op).kind(ErrorKind::Interrupted));
    }
    let mut buf = [0u8; 1];
    let results = [
        kind(fs.create("n", FileKind::Wal).map(drop)),
        kind(fs.open("a", FileKind::Table).map(drop)),
        kind(r.read_exact_at(0, &mut buf)),
        kind(w.append(b"x")),
        kind(w.flush()),
        kind(w.sync(SyncMode::Data)),
        kind(fs.sync_dir()),
        kind(fs.remove("a")),
        kind(fs.rename("a", "b")),
        kind(fs.list().map(drop)),
        kind(fs.size("a").map(drop)),
        kind(fs.lock("LOCK").map(drop)),
        kind(fs.link("a", "l")),
    ];
    assert!(results.iter().all(|r| *r == Err(ErrorKind::Interrupted)), "{results:?}");
    assert_eq!(kind(r.len()), Err(ErrorKind::Interrupted), "handle len counts as Size");
    for op in FaultOp::ALL {
        // Create and Open were also called once before the rules; Size twice under them.
        let want = match op {
            FaultOp::Create | FaultOp::Open | FaultOp::Size => 2,
            _ => 1,
        };
        assert_eq!(fs.op_count(op), want, "{op:?}");
    }
    // Nothing reached the inner filesystem.
    let mut names = fs.inner().list().expect("list");
    names.sort();
    assert_eq!(names, ["a", "w"]);
    assert_eq!(fs.inner().sync_count(), 0);
}

#[test]
fn name_filters_match_either_name_of_rename_and_link() {
    let mem = MemFs::new();
    mem.write_whole("x.tmp", b"1").expect("write");
    let fs = FaultFs::new(mem);
    fs.add_rule(FaultRule::fail(FaultOp::Rename).on_name("CURRENT"));
    fs.add_rule(FaultRule::fail(FaultOp::Link).on_name("ckpt"));
    fs.add_rule(FaultRule::fail(FaultOp::SyncDir).on_name("anything"));
    assert!(fs.rename("x.tmp", "CURRENT").is_err(), "target matches");
    assert!(fs.link("x.tmp", "ckpt-1").is_err(), "new name matches");
    fs.sync_dir().expect("nameless calls never match a filtered rule");
    fs.rename("x.tmp", "y.tmp").expect("neither matches");
    assert!(fs.rename("y.tmp", "CURRENT.bak").is_err());
}

#[test]
fn read_errors_leave_the_buffer_alone() {
    let mem = MemFs::new();
    mem.write_whole("t.sst", b"0123456789").expect("write");
    let fs = FaultFs::new(mem);
    fs.add_rule(FaultRule::fail(FaultOp::Read).nth(0));
    let r = fs.open("t.sst", FileKind::Table).expect("open");
    let mut buf = [0xEEu8; 4];
    assert!(r.read_exact_at(2, &mut buf).is_err());
    assert_eq!(buf, [0xEE; 4]);
    r.read_exact_at(2, &mut buf).expect("next read passes");
    assert_eq!(&buf, b"2345");
}

/// Which of `n` sync calls a probability rule fails.
fn failure_pattern(ppm: u32, seed: u64, n: usize) -> Vec<bool> {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::Sync).probability_ppm(ppm, seed));
    let mut w = fs.create("x", FileKind::Wal).expect("create");
    (0..n).map(|_| w.sync(SyncMode::Data).is_err()).collect()
}

#[test]
fn probability_is_deterministic_per_seed() {
    let a = failure_pattern(250_000, 7, 2000);
    assert_eq!(a, failure_pattern(250_000, 7, 2000));
    assert_ne!(a, failure_pattern(250_000, 8, 2000));
    let failures = a.iter().filter(|&&f| f).count();
    assert!((350..650).contains(&failures), "25% of 2000 expected, got {failures}");
    assert!(failure_pattern(0, 1, 500).iter().all(|&f| !f));
    assert!(failure_pattern(1_000_000, 1, 500).iter().all(|&f| f));
    assert!(failure_pattern(5_000_000, 1, 10).iter().all(|&f| f), "clamped to certainty");
}

#[test]
fn persistent_probability_fails_from_the_first_hit_on() {
    let p = {
        let fs = FaultFs::new(MemFs::new());
        fs.add_rule(FaultRule::fail(FaultOp::Flush).probability_ppm(100_000, 3).persistent());
        let mut w = fs.create("x", FileKind::Wal).expect("create");
        (0..200).map(|_| w.flush().is_err()).collect::<Vec<_>>()
    };
    let first = p.iter().position(|&f| f).expect("10% over 200 calls hits");
    assert!(p[first..].iter().all(|&f| f));
    assert!(p[..first].iter().all(|&f| !f));
}

#[test]
fn space_limit_gives_nospace_and_appends_nothing() {
    let fs = FaultFs::new(MemFs::new());
    let mut w = fs.create("v.vlog", FileKind::ValueLog).expect("create");
    w.append(&[1; 1000]).expect("no limit yet");
    fs.set_space_limit(Some(100));
    w.append(&[2; 60]).expect("within limit");
    assert_eq!(kind(w.append(&[3; 50])), Err(ErrorKind::NoSpace));
    assert_eq!(w.len(), 1060);
    assert_eq!(fs.inner().size("v.vlog").expect("size"), 1060, "nothing of the failed call");
    w.append(&[4; 40]).expect("exactly fills the limit");
    w.append(&[]).expect("empty append always fits");
    assert_eq!(kind(w.append(&[5])), Err(ErrorKind::NoSpace));
    let mut other = fs.create("o", FileKind::Table).expect("create is not an append");
    assert_eq!(kind(other.append(&[6])), Err(ErrorKind::NoSpace), "the limit is global");
    assert_eq!(fs.injected(), 3);
    fs.set_space_limit(None);
    w.append(&[7; 5000]).expect("unlimited again");
    assert_eq!(fs.inner().size("v.vlog").expect("size"), 1100 + 5000);
}

fn differing_bits(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[test]
fn bit_flip_changes_exactly_one_bit() {
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let mem = MemFs::new();
    mem.write_whole("000012.sst", &data).expect("write");
    mem.write_whole("000013.wal", &data).expect("write");
    let fs = FaultFs::new(mem);
    fs.add_rule(FaultRule::flip_bit_on_read(".sst"));
    let sst = fs.open("000012.sst", FileKind::Table).expect("open");
    let wal = fs.open("000013.wal", FileKind::Wal).expect("open");
    let mut positions = std::collections::BTreeSet::new();
    for i in 0..50 {
        let mut buf = vec![0u8; 4096];
        sst.read_exact_at(0, &mut buf).expect("flip is not an error");
        assert_eq!(differing_bits(&buf, &data), 1, "read {i}");
        positions.insert(buf.iter().zip(&data).position(|(x, y)| x != y));
        wal.read_exact_at(0, &mut buf).expect("read wal");
        assert_eq!(buf, data, "other files untouched");
    }
    assert!(positions.len() > 10, "the flipped bit moves around");
    assert_eq!(fs.injected(), 50);
    assert_eq!(fs.inner().read_all("000012.sst").expect("read"), data, "stored data intact");
    sst.read_exact_at(4096, &mut []).expect("empty read: nothing to flip");
    assert_eq!(fs.injected(), 50);
}

#[test]
fn bit_flip_honours_nth_and_seed() {
    let mem = MemFs::new();
    mem.write_whole("a.sst", &[0u8; 64]).expect("write");
    let flips = |seed: u64| {
        let fs = FaultFs::new(mem.clone());
        fs.add_rule(FaultRule::flip_bit_on_read("a.sst").nth(1).seed(seed));
        let r = fs.open("a.sst", FileKind::Table).expect("open");
        (0..3)
            .map(|_| {
                let mut buf = [0u8; 64];
                r.read_exact_at(0, &mut buf).expect("read");
                buf
            })
            .collect::<Vec<_>>()
    };
    let a = flips(1);
    assert_eq!(differing_bits(&a[0], &[0; 64]), 0);
    assert_eq!(differing_bits(&a[1], &[0; 64]), 1);
    assert_eq!(differing_bits(&a[2], &[0; 64]), 0);
    assert_eq!(a, flips(1));
    assert!((2..10).any(|s| flips(s)[1] != a[1]));
}

#[test]
fn errors_win_over_flips_and_kind_converts_a_flip_rule() {
    let mem = MemFs::new();
    mem.write_whole("a.sst", b"abcd").expect("write");
    let fs = FaultFs::new(mem);
    fs.add_rule(FaultRule::flip_bit_on_read("a"));
    fs.add_rule(FaultRule::flip_bit_on_read("a").kind(ErrorKind::Interrupted).nth(0));
    let r = fs.open("a.sst", FileKind::Table).expect("open");
    let mut buf = [0u8; 4];
    assert_eq!(kind(r.read_exact_at(0, &mut buf)), Err(ErrorKind::Interrupted));
    assert_eq!(buf, [0; 4]);
    r.read_exact_at(0, &mut buf).expect("flip only");
    assert_eq!(differing_bits(&buf, b"abcd"), 1);
    assert_eq!(fs.injected(), 2);
}

#[test]
fn clones_share_rules_and_counters() {
    let fs = FaultFs::new(MemFs::new());
    let twin = fs.clone();
    twin.add_rule(FaultRule::fail(FaultOp::Create).nth(1));
    fs.create("a", FileKind::Wal).expect("0th");
    assert!(twin.create("b", FileKind::Wal).is_err());
    assert_eq!(fs.op_count(FaultOp::Create), 2);
    assert_eq!(fs.injected(), 1);
    assert!(format!("{fs:?}").contains("FaultFs"));
}

/// The intended use: enumerate "fail the n-th sync" over a workload, and check what a crash
/// right after the failure leaves.
#[test]
fn enumerating_failures_across_a_workload() {
    fn workload<V: Vfs>(fs: &V) -> strata_vfs::Result<()> {
        let mut w = fs.create("000001.wal", FileKind::Wal)?;
        for i in 0..5u8 {
            w.append(&[i; 100])?;
            w.sync(SyncMode::Data)?;
        }
        fs.sync_dir()
    }
    let probe = FaultFs::new(MemFs::new());
    workload(&probe).expect("clean run");
    let syncs = probe.op_count(FaultOp::Sync);
    assert_eq!(syncs, 5);
    for n in 0..syncs {
        let fs = FaultFs::new(MemFs::new());
        fs.add_rule(FaultRule::fail(FaultOp::Sync).nth(n));
        assert!(workload(&fs).is_err());
        assert_eq!(fs.injected(), 1);
        let img = fs.inner().crash(CrashPolicy::DropUnsynced, n);
        // The create was never made durable (the workload stopped before sync_dir).
        assert!(!img.exists("000001.wal").expect("exists"));
        let keep = fs.inner().crash(CrashPolicy::KeepUnsynced, n);
        assert_eq!(keep.size("000001.wal").expect("size"), 100 * (n + 1));
    }
}
