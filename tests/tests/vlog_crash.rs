//! Power cuts and damage around the value log (WiscKey).
//!
//! 1. A power cut before every durability call of a write workload with the value log on
//!    (values above and below the threshold, 1 MiB value log files so the head rotates, 64 KiB
//!    memtables so flushes and compactions run inline), under every crash policy: the database
//!    opens, holds a prefix of the commit order with every acknowledged Immediate commit, and
//!    every value reads back byte for byte; it then takes writes, garbage collection, a power
//!    cut during its own recovery, and a reopen.
//! 2. A power cut before every durability call of a value log garbage collection that must
//!    relocate live values: nothing is lost, and a second collection after reopening succeeds
//!    and removes every file the uninterrupted collection removed.
//! 3. The head value log file of a database that stopped without closing, cut (or cut and
//!    zero-filled back to its length) at every offset near a record boundary and at a stride:
//!    the log ends at the first commit whose value did not survive, exactly.
//! 4. A flipped byte in a sealed value log file: reads of the damaged value and garbage
//!    collection report `Corruption` naming the file, the file is kept, everything else keeps
//!    working.
//!
//! Crash seeds are random and printed (`STRATA_SEED=<seed>` replays); workloads derive from the
//! same seed. `STRATA_SOAK` runs more seeds.
//!
//! Every test runs on both filesystem stacks ([`Stack`]): `_plain` on `MemFs`, `_encrypted`
//! on `EncryptedFs<MemFs>`. Power cuts, cuts and flipped bytes hit the `MemFs` underneath the
//! encryption; offsets into files are shifted by the encrypted prefix there.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use strata::{Durability, Error, Result, Tree, TreeBuilder};
use strata_tests::crash::{
    self, Acked, RecoveryCuts, power_cut_images, read_back, recovered_prefix, report_crash_states,
    run_until_power_cut,
};
use strata_tests::{
    MARKER_KEY, Model, Rng, Stack, TxnSpec, copy_fs, diff, prefix_states, scaled, tagged_value,
    test_seed, wal_segments,
};
use strata_vfs::{CrashPolicy, MemFs, Vfs};

/// Values of at least this many bytes go to the value log.
const THRESHOLD: usize = 4096;
/// The smallest value log file size the options allow.
const VLOG_FILE_SIZE: u64 = 1024 * 1024;
/// Length of a value log file's header.
const VLOG_HEADER: u64 = 16;

fn builder(stack: Stack, mem: &MemFs) -> TreeBuilder {
    stack
        .builder_on(mem.clone())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(THRESHOLD)
        .with_vlog_max_file_size(VLOG_FILE_SIZE)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(false)
}

fn open(stack: Stack, mem: &MemFs) -> Result<Tree> {
    builder(stack, mem).build()
}

fn vlog_files<V: Vfs>(fs: &V) -> Vec<String> {
    let mut v: Vec<String> =
        fs.list().unwrap().into_iter().filter(|n| n.ends_with(".vlog")).collect();
    v.sort();
    v
}

fn varint_len(mut n: u64) -> u64 {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Length of the value log record of `(key, value)` stored raw (docs/format/vlog.md): crc,
/// flags, two varints, key, value. The tests' values are random bytes, which lz4 does not
/// shrink, so the engine stores them raw.
fn record_len(key: &[u8], value_len: usize) -> u64 {
    5 + varint_len(key.len() as u64)
        + varint_len(value_len as u64)
        + key.len() as u64
        + value_len as u64
}

/// Opens `image`, and fails with `ctx` if it does not open.
fn must_open(stack: Stack, image: &MemFs, ctx: &str) -> Tree {
    open(stack, image).unwrap_or_else(|e| panic!("{ctx}: the database does not open: {e:?}"))
}

/// A power cut before each durability call of the recovery of `image` (a pristine copy), or
/// before one random call (see [`RecoveryCuts`]), each under a random policy: the recovery
/// after it must give `want` again (recovery never rewrites what it replays). Returns the
/// number of cuts.
fn power_cut_during_recovery(
    stack: Stack,
    image: &MemFs,
    want: &Model,
    cuts: RecoveryCuts,
    rng: &mut Rng,
    ctx: &str,
) -> u64 {
    crash::power_cut_during_recovery(
        image,
        |m| open(stack, m),
        cuts,
        rng,
        ctx,
        |cut, ctx| {
            let tree = must_open(stack, cut, ctx);
            let got = read_back(&tree, ctx);
            assert!(&got == want, "{ctx}: recovered differently: {}", diff(want, &got));
            tree.close().unwrap_or_else(|e| panic!("{ctx}: close: {e:?}"));
        },
    )
}

/// After recovery to `want`: a large and a small durable write, maintenance, garbage
/// collection, a clean close and a reopen all work and keep the data.
fn keeps_working(stack: Stack, tree: Tree, image: &MemFs, want: &Model, ctx: &str) {
    let extra = TxnSpec {
        writes: vec![
            (b"after-crash/large".to_vec(), Some(tagged_value(u64::MAX, THRESHOLD + 100))),
            (b"after-crash/small".to_vec(), Some(tagged_value(u64::MAX - 1, 100))),
        ],
        durability: Durability::Immediate,
    };
    extra.run(&tree).unwrap_or_else(|e| panic!("{ctx}: commit after recovery: {e:?}"));
    let mut want = want.clone();
    extra.apply(&mut want);
    tree.maintenance_step(usize::MAX)
        .unwrap_or_else(|e| panic!("{ctx}: maintenance after recovery: {e:?}"));
    tree.run_vlog_gc().unwrap_or_else(|e| panic!("{ctx}: value log GC after recovery: {e:?}"));
    let got = read_back(&tree, ctx);
    assert!(got == want, "{ctx}: after recovery, writes and GC: {}", diff(&want, &got));
    tree.close().unwrap_or_else(|e| panic!("{ctx}: close after recovery: {e:?}"));
    drop(tree);
    let tree = must_open(stack, image, &format!("{ctx}: reopen"));
    let got = read_back(&tree, ctx);
    assert!(got == want, "{ctx}: reopen after recovery: {}", diff(&want, &got));
    tree.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// 1. Power cuts during a write workload.

/// About 200 transactions of 1-3 distinct keys out of 32: 45% of writes above the threshold
/// (up to 24 KiB, 2-3 MB in all, so the 1 MiB head rotates), some exactly at and just below
/// it, the rest 1-4 KiB (several memtables' worth, so level 0 is compacted), 15% deletes; 30%
/// Immediate.
fn write_workload(seed: u64, count: usize) -> Vec<TxnSpec> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let mut writes = Vec::new();
            let mut seen = BTreeSet::new();
            for j in 0..rng.range(1, 3) {
                let key = format!("key{:02}", rng.below(32)).into_bytes();
                if !seen.insert(key.clone()) {
                    continue;
                }
                let tag = i as u64 * 8 + j;
                let len = match rng.below(100) {
                    0..=14 => {
                        writes.push((key, None));
                        continue;
                    }
                    15..=59 => rng.range(THRESHOLD as u64 + 1, 24 * 1024) as usize,
                    60..=62 => THRESHOLD,
                    63..=65 => THRESHOLD - 1,
                    _ => rng.range(1000, THRESHOLD as u64 - 1) as usize,
                };
                writes.push((key, Some(tagged_value(tag, len))));
            }
            writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
            let durability =
                if rng.percent(30) { Durability::Immediate } else { Durability::Eventual };
            TxnSpec { writes, durability }
        })
        .collect()
}

/// Inline maintenance (flushes, compactions, value log GC of files compaction found dead)
/// every tenth commit.
fn maintenance(tree: &Tree, i: usize) -> Result<()> {
    if i % 10 == 9 {
        tree.maintenance_step(usize::MAX)?;
    }
    Ok(())
}

/// Opens the database on `mem` (armed or not) and runs the workload until the power cut.
fn run_workload(stack: Stack, mem: &MemFs, txns: &[TxnSpec], ctx: &str) -> (Acked, Option<Tree>) {
    match open(stack, mem) {
        Ok(tree) => (run_until_power_cut(mem, &tree, txns, maintenance, ctx), Some(tree)),
        Err(e) => {
            assert!(mem.is_crashed(), "{ctx}: open failed without a power cut: {e:?}");
            (Acked::default(), None)
        }
    }
}

#[test]
fn power_cut_before_every_durability_call_of_a_vlog_workload_plain() {
    power_cut_before_every_durability_call_of_a_vlog_workload(
        Stack::Plain,
        scaled(2),
        RecoveryCuts::Every,
    );
}

/// The same on `EncryptedFs<MemFs>`. To keep the added CI time modest (the encrypted run
/// took about three times as long), one crash seed per random policy instead of two, and the
/// recovery of each image cut before one random durability call instead of each of them
/// (`STRATA_SOAK` cuts every one); every crash point and every check still runs.
#[test]
fn power_cut_before_every_durability_call_of_a_vlog_workload_encrypted() {
    power_cut_before_every_durability_call_of_a_vlog_workload(
        Stack::Encrypted,
        scaled(1),
        if strata_tests::is_soak() { RecoveryCuts::Every } else { RecoveryCuts::One },
    );
}

fn power_cut_before_every_durability_call_of_a_vlog_workload(
    stack: Stack,
    random_seeds: u64,
    recovery: RecoveryCuts,
) {
    let seed = test_seed(&format!(
        "vlog power_cut_before_every_durability_call_of_a_vlog_workload_{}",
        stack.name()
    ));
    let mut rng = Rng::new(seed);
    let txns = write_workload(seed, 200);
    let states = prefix_states(&txns);

    // The uninterrupted run: how many durability calls, and the premises.
    let mem = MemFs::new();
    let (clean, tree) = run_workload(stack, &mem, &txns, "clean run");
    let tree = tree.unwrap();
    assert_eq!(clean.acked, txns.len());
    let total_syncs = mem.sync_count();
    let stats = tree.stats();
    assert!(stats.vlog_bytes > VLOG_FILE_SIZE, "the head must rotate: {stats:?}");
    assert!(stats.flushes >= 2, "memtables must be flushed: {stats:?}");
    assert_eq!(read_back(&tree, "clean run"), states[txns.len()]);
    let sealed = vlog_files(&mem).len();
    tree.close().unwrap();
    drop(tree);
    eprintln!(
        "clean run: {total_syncs} durability calls, {} flushes, {} compactions, {} value log \
         bytes in {sealed} files, {} GC'd",
        stats.flushes, stats.compactions, stats.vlog_bytes, stats.vlog_gc_files
    );

    let mut prefixes = BTreeSet::new();
    let mut images = 0u64;
    let mut recovery_cuts = 0u64;
    // n = total_syncs + 1: no cut during the workload; the images are taken with the tree
    // still open.
    for n in 1..=total_syncs + 1 {
        let ctx = format!(
            "{} stack, seed {seed}, power cut before durability call {n} of {total_syncs}",
            stack.name()
        );
        let mem = MemFs::new();
        mem.arm_crash(n, CrashPolicy::DropUnsynced, 0);
        let (acked, tree) = run_workload(stack, &mem, &txns, &ctx);
        assert_eq!(mem.is_crashed(), n <= total_syncs, "{ctx}: the armed cut must fire");
        for (policy, crash_seed, image) in power_cut_images(&mem, random_seeds, &mut rng) {
            let ctx = format!("{ctx}, {policy:?} seed {crash_seed} ({acked:?})");
            let pristine = copy_fs(&image);
            let (lo, hi) = acked.bounds(policy);
            let tree = must_open(stack, &image, &ctx);
            let p = recovered_prefix(&tree, &states, lo, hi, &ctx);
            keeps_working(stack, tree, &image, &states[p], &ctx);
            recovery_cuts +=
                power_cut_during_recovery(stack, &pristine, &states[p], recovery, &mut rng, &ctx);
            prefixes.insert(p);
            images += 1;
        }
        drop(tree);
    }
    eprintln!(
        "vlog workload: {total_syncs} durability calls, {images} crash images (+{recovery_cuts} \
         power cuts during their recovery), {} distinct recovered prefixes",
        prefixes.len()
    );
    assert!(prefixes.len() > 20, "crash points spread over the workload: {prefixes:?}");
    report_crash_states(
        &format!("vlog_crash: write workload, {} stack", stack.name()),
        images + recovery_cuts,
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Power cuts during garbage collection.

/// GC rewrites files a quarter dead, so one run collects several files and relocates more
/// than a file's worth of live values (the head rotates during the run).
fn open_gc(stack: Stack, mem: &MemFs) -> Result<Tree> {
    builder(stack, mem).with_vlog_gc_discard_ratio(0.25).build()
}

fn must_open_gc(stack: Stack, image: &MemFs, ctx: &str) -> Tree {
    open_gc(stack, image).unwrap_or_else(|e| panic!("{ctx}: the database does not open: {e:?}"))
}

fn gc_key(i: u64) -> Vec<u8> {
    format!("gc{i:03}").into_bytes()
}

/// A database whose sealed value log files are mostly dead but still hold live values: 300
/// keys written with 5-7 KiB values, 80% of them overwritten in random order, half of those
/// again, a few deleted, a few small (about 4 MB of values, four files); everything made
/// durable by a final Immediate commit.
/// With `close`, the tree is closed cleanly; otherwise the image is taken with it open.
fn gc_setup(stack: Stack, seed: u64, close: bool) -> (MemFs, Model) {
    let mut rng = Rng::new(seed);
    let mem = MemFs::new();
    let tree = open_gc(stack, &mem).unwrap();
    let mut model = Model::new();
    let mut tag = 0u64;
    let mut put_all = |keys: &[u64], model: &mut Model, rng: &mut Rng| {
        for chunk in keys.chunks(4) {
            let mut t = TxnSpec { writes: Vec::new(), durability: Durability::Eventual };
            for &k in chunk {
                tag += 1;
                let v = match rng.below(20) {
                    0 => None,
                    1 => Some(tagged_value(tag, 200)),
                    _ => Some(tagged_value(tag, rng.range(5 * 1024, 7 * 1024) as usize)),
                };
                t.writes.push((gc_key(k), v));
            }
            t.run(&tree).unwrap();
            t.apply(model);
        }
    };
    let all: Vec<u64> = (0..300).collect();
    put_all(&all, &mut model, &mut rng);
    let mut shuffled = all.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.index(i + 1));
    }
    put_all(&shuffled[..190], &mut model, &mut rng);
    put_all(&shuffled[100..190], &mut model, &mut rng);
    let last = TxnSpec {
        writes: vec![(b"gc-last".to_vec(), Some(b"1".to_vec()))],
        durability: Durability::Immediate,
    };
    last.run(&tree).unwrap();
    last.apply(&mut model);
    assert_eq!(read_back(&tree, "gc setup"), model);
    let base = if close {
        tree.close().unwrap();
        copy_fs(&mem)
    } else {
        let image = copy_fs(&mem);
        drop(tree);
        image
    };
    (base, model)
}

#[test]
fn power_cut_before_every_durability_call_of_vlog_gc_plain() {
    power_cut_before_every_durability_call_of_vlog_gc(Stack::Plain, RecoveryCuts::Every);
}

/// The recovery of each image cut before one random durability call instead of each of them
/// (CI time, as for the write workload; `STRATA_SOAK` cuts every one).

#[test]
fn power_cut_before_every_durability_call_of_vlog_gc_encrypted() {
    power_cut_before_every_durability_call_of_vlog_gc(
        Stack::Encrypted,
        if strata_tests::is_soak() { RecoveryCuts::Every } else { RecoveryCuts::One },
    );
}

fn power_cut_before_every_durability_call_of_vlog_gc(stack: Stack, recovery: RecoveryCuts) {
    let seed = test_seed(&format!(
        "vlog power_cut_before_every_durability_call_of_vlog_gc_{}",
        stack.name()
    ));
    let mut rng = Rng::new(seed);
    let random_seeds = scaled(1);
    let (mut all_images, mut recovery_cuts) = (0u64, 0u64);
    for close in [true, false] {
        let (base, model) = gc_setup(stack, seed, close);
        let setup = if close { "closed cleanly" } else { "stopped without closing" };

        // The uninterrupted collection.
        let probe = copy_fs(&base);
        let tree = open_gc(stack, &probe).unwrap();
        let opened_at = probe.sync_count();
        let before: BTreeSet<String> = vlog_files(&probe).into_iter().collect();
        let report = tree.run_vlog_gc().unwrap();
        let gc_syncs = probe.sync_count() - opened_at;
        let after: BTreeSet<String> = vlog_files(&probe).into_iter().collect();
        let deleted: Vec<String> = before.difference(&after).cloned().collect();
        assert!(report.files_collected >= 1 && report.bytes_relocated > 0, "{report:?}");
        assert!(!deleted.is_empty(), "the collection deletes files: {report:?}");
        let created = after.difference(&before).count();
        assert_eq!(read_back(&tree, "uninterrupted GC"), model);
        drop(tree);
        eprintln!(
            "GC ({setup}): {gc_syncs} durability calls, {report:?}, deleted {deleted:?}, \
             {created} value log files created"
        );

        let mut images = 0;
        for n in 1..=gc_syncs + 1 {
            let ctx = format!(
                "{} stack, seed {seed}, setup {setup}, power cut before durability call {n} of \
                 {gc_syncs} of the GC",
                stack.name()
            );
            let img = copy_fs(&base);
            let tree = must_open_gc(stack, &img, &ctx);
            assert_eq!(img.sync_count(), opened_at, "{ctx}: recovery is deterministic");
            img.arm_crash(opened_at + n, CrashPolicy::DropUnsynced, 0);
            let gc = tree.run_vlog_gc();
            if n <= gc_syncs {
                // Either the GC reports the failed call, or (a failed manifest edit of the
                // deletion, which the GC leaves to a later run) the tree is poisoned: a failed
                // sync is never ignored.
                assert!(img.is_crashed(), "{ctx}: the cut must fire");
                assert!(gc.is_err() || tree.is_poisoned(), "{ctx}: a failed sync ignored: {gc:?}");
            } else {
                assert!(gc.is_ok() && !img.is_crashed(), "{ctx}: {gc:?}");
            }
            for (policy, crash_seed, image) in power_cut_images(&img, random_seeds, &mut rng) {
                let ctx = format!("{ctx}, {policy:?} seed {crash_seed}");
                recovery_cuts +=
                    power_cut_during_recovery(stack, &image, &model, recovery, &mut rng, &ctx);
                let tree = must_open_gc(stack, &image, &ctx);
                let got = read_back(&tree, &ctx);
                assert!(got == model, "{ctx}: after the cut: {}", diff(&model, &got));
                let again = tree.run_vlog_gc();
                assert!(again.is_ok(), "{ctx}: GC after recovery: {again:?}");
                let got = read_back(&tree, &ctx);
                assert!(got == model, "{ctx}: after a second GC: {}", diff(&model, &got));
                let left: BTreeSet<String> = vlog_files(&image).into_iter().collect();
                for name in &deleted {
                    assert!(!left.contains(name), "{ctx}: {name} survived the second GC");
                }
                tree.close().unwrap_or_else(|e| panic!("{ctx}: close: {e:?}"));
                drop(tree);
                let tree = must_open_gc(stack, &image, &ctx);
                let got = read_back(&tree, &ctx);
                assert!(got == model, "{ctx}: after reopen: {}", diff(&model, &got));
                tree.close().unwrap();
                images += 1;
            }
            drop(tree);
        }
        eprintln!("GC ({setup}): checked {images} crash images");
        all_images += images;
    }
    report_crash_states(
        &format!("vlog_crash: garbage collection, {} stack", stack.name()),
        all_images + recovery_cuts,
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The head file cut at every offset.

/// Where the value log records of the commits after a clean reopen end: for each commit, the
/// end of its last record in the head file (`None` if it wrote no large value), plus every
/// record boundary.
struct HeadLayout {
    commit_end: Vec<Option<u64>>,
    boundaries: Vec<u64>,
    len: u64,
}

/// Records are appended in commit order, so a commit's records end at the running total.
fn head_layout(txns: &[TxnSpec]) -> HeadLayout {
    let mut at = VLOG_HEADER;
    let mut boundaries = vec![at];
    let commit_end = txns
        .iter()
        .map(|t| {
            let mut wrote = false;
            for (k, v) in &t.writes {
                if let Some(v) = v.as_ref().filter(|v| v.len() >= THRESHOLD) {
                    at += record_len(k, v.len());
                    boundaries.push(at);
                    wrote = true;
                }
            }
            wrote.then_some(at)
        })
        .collect();
    HeadLayout { commit_end, boundaries, len: at }
}

/// The offsets to cut the head at: the whole header, a few bytes around every record
/// boundary, and a stride through the rest.
fn cut_offsets(layout: &HeadLayout, stride: u64) -> BTreeSet<u64> {
    let mut cuts: BTreeSet<u64> = (0..=VLOG_HEADER + 2).collect();
    for &b in &layout.boundaries {
        cuts.extend(b.saturating_sub(2)..=(b + 2).min(layout.len));
    }
    cuts.extend((0..layout.len).step_by(stride as usize));
    cuts.insert(layout.len);
    cuts
}

#[test]
fn head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value_plain() {
    head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value(Stack::Plain);
}

#[test]
fn head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value_encrypted() {
    head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value(Stack::Encrypted);
}

fn head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value(stack: Stack) {
    let seed = test_seed(&format!(
        "vlog head_file_cut_at_every_offset_ends_the_log_at_the_first_lost_value_{}",
        stack.name()
    ));
    let mut rng = Rng::new(seed);
    // Before the reopen: a few commits, durable (closed cleanly); their values live in sealed
    // files.
    let before: Vec<TxnSpec> = (0..8)
        .map(|i| TxnSpec {
            writes: vec![
                (format!("old{i}").into_bytes(), Some(tagged_value(1000 + i, 5000))),
                (format!("key{i:02}").into_bytes(), Some(tagged_value(2000 + i, 300))),
                (MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())),
            ],
            durability: Durability::Eventual,
        })
        .collect();
    // After it: 40 commits of 1-2 values above the threshold (some only small ones), so small
    // in the WAL that neither the WAL segment nor the memtable rotates: every record of the
    // head is referenced from the one WAL segment recovery may end early.
    let after: Vec<TxnSpec> = (0..40u64)
        .map(|i| {
            let mut writes = Vec::new();
            let large = if i % 7 == 5 { 0 } else { rng.range(1, 2) };
            for j in 0..large {
                let len = rng.range(THRESHOLD as u64, 20 * 1024) as usize;
                writes.push((
                    format!("key{:02}", i % 16 + j * 16).into_bytes(),
                    Some(tagged_value(3000 + i * 2 + j, len)),
                ));
            }
            if rng.percent(50) {
                writes.push((format!("small{}", i % 5).into_bytes(), Some(tagged_value(i, 100))));
            }
            writes.push((
                MARKER_KEY.to_vec(),
                Some((before.len() as u64 + i).to_string().into_bytes()),
            ));
            let durability =
                if rng.percent(25) { Durability::Immediate } else { Durability::Eventual };
            TxnSpec { writes, durability }
        })
        .collect();
    let txns: Vec<TxnSpec> = before.iter().chain(&after).cloned().collect();
    let states = prefix_states(&txns);
    let layout = head_layout(&after);

    let mem = MemFs::new();
    let tree = open(stack, &mem).unwrap();
    for t in &before {
        t.run(&tree).unwrap();
    }
    tree.close().unwrap();
    drop(tree);
    let sealed = vlog_files(&mem);
    let tree = open(stack, &mem).unwrap();
    // A reopen after a clean close creates its WAL segment at the first write; from then on
    // the WAL must not rotate.
    let mut segments = None;
    for t in &after {
        t.run(&tree).unwrap();
        let now = wal_segments(&mem);
        assert_eq!(segments.get_or_insert_with(|| now.clone()), &now, "the WAL must not rotate");
    }
    let base = copy_fs(&mem);
    drop(tree);
    let head: Vec<String> = vlog_files(&base).into_iter().filter(|n| !sealed.contains(n)).collect();
    assert_eq!(head.len(), 1, "one new head file: {head:?}");
    let head = &head[0];
    // Offsets below are of the data; on the medium, each sits `prefix` bytes further on.
    let prefix = stack.prefix_len();
    assert_eq!(base.size(head).unwrap(), prefix + layout.len, "the record layout is as computed");

    let cuts = cut_offsets(&layout, (4093 / strata_tests::soak_factor()).max(1));
    // The bytes on the medium (ciphertext on the encrypted stack), for the zero fill.
    let bytes = base.read_all(head).unwrap();
    // The first commit of `after` whose values did not all survive a cut at `cut` ends the log.
    let want = |cut: u64| {
        let lost = layout.commit_end.iter().position(|e| e.is_some_and(|e| e > cut));
        before.len() + lost.unwrap_or(after.len())
    };
    // Per variant, the last prefix recovered: a longer head never recovers less.
    let mut last_p = [0; 2];
    let mut checked = 0;
    let mut recovery_cuts = 0u64;
    for &cut in &cuts {
        for zero_fill in [false, true] {
            let ctx = format!(
                "{} stack, seed {seed}: {head} ({} bytes) cut at {cut}, zero-filled {zero_fill}",
                stack.name(),
                layout.len
            );
            let img = copy_fs(&base);
            img.truncate(head, prefix + cut).unwrap();
            // Zeros written over zeros change nothing: the cut is in effect at the first
            // byte the fill changed. (On the encrypted stack the zeros are on the medium, so
            // they read back as keystream garbage, not zeros: a garbage tail.)
            let mut effective = cut;
            if zero_fill {
                img.truncate(head, prefix + layout.len).unwrap();
                let unchanged =
                    bytes[(prefix + cut) as usize..].iter().take_while(|&&b| b == 0).count();
                effective += unchanged as u64;
            }
            let pristine = copy_fs(&img);
            let tree = must_open(stack, &img, &ctx);
            let want_p = want(effective);
            let p = recovered_prefix(&tree, &states, want_p, want_p, &ctx);
            let last = &mut last_p[usize::from(zero_fill)];
            assert!(p >= *last, "{ctx}: a longer head recovered less");
            *last = p;
            keeps_working(stack, tree, &img, &states[p], &ctx);
            if checked % 8 == 0 {
                recovery_cuts += power_cut_during_recovery(
                    stack,
                    &pristine,
                    &states[p],
                    RecoveryCuts::One,
                    &mut rng,
                    &ctx,
                );
            }
            checked += 1;
        }
    }
    assert_eq!(last_p, [txns.len(); 2], "the whole head recovers everything");
    eprintln!("head of {} bytes: checked {checked} cuts", layout.len);
    report_crash_states(
        &format!("vlog_crash: head file cut, {} stack", stack.name()),
        checked + recovery_cuts,
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A flipped byte in a sealed file.

/// The data of file `name` of `mem` as the engine reads it (decrypted on the encrypted stack).
fn read_data(stack: Stack, mem: &MemFs, name: &str) -> Vec<u8> {
    let fs = stack.view(mem.clone());
    let file = fs.open(name, strata_vfs::FileKind::ValueLog).unwrap();
    let mut out = vec![0u8; strata_vfs::RandomRead::len(&file).unwrap() as usize];
    strata_vfs::RandomRead::read_exact_at(&file, 0, &mut out).unwrap();
    out
}

/// `(offset, key, value)` of every record of value log file bytes `b`.
fn parse_records(b: &[u8]) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    use strata_core::vlog::format::{decode_record, parse_prefix};
    let mut out = Vec::new();
    let mut at = VLOG_HEADER as usize;
    while at < b.len() {
        let len = parse_prefix(&b[at..]).expect("a record prefix").record_len();
        let rec = decode_record(&b[at..at + len], true).expect("a whole record");
        let value = rec.value().expect("a value").into_owned();
        out.push((at as u64, rec.key.to_vec(), value));
        at += len;
    }
    out
}

#[test]
fn a_flipped_byte_in_a_sealed_file_is_corruption_for_reads_and_gc_plain() {
    a_flipped_byte_in_a_sealed_file_is_corruption_for_reads_and_gc(Stack::Plain);
}

#[test]
fn a_flipped_byte_in_a_sealed_file_is_corruption_for_reads_and_gc_encrypted() {
    a_flipped_byte_in_a_sealed_file_is_corruption_for_reads_and_gc(Stack::Encrypted);
}

fn a_flipped_byte_in_a_sealed_file_is_corruption_for_reads_and_gc(stack: Stack) {
    // Three files' worth of 6 KiB values; two thirds of the keys overwritten, so the first
    // file is mostly dead (a GC candidate) but keeps live values.
    let mem = MemFs::new();
    let tree = open(stack, &mem).unwrap();
    let mut model = Model::new();
    for round in 0..2u64 {
        for i in 0..240u64 {
            if round == 1 && i % 3 == 0 {
                continue;
            }
            let t = TxnSpec {
                writes: vec![(gc_key(i), Some(tagged_value(round * 1000 + i, 6 * 1024)))],
                durability: Durability::Eventual,
            };
            t.run(&tree).unwrap();
            t.apply(&mut model);
        }
    }
    tree.close().unwrap();
    drop(tree);
    let first = vlog_files(&mem)[0].clone();
    let records = parse_records(&read_data(stack, &mem, &first));
    let live = records.iter().find(|(_, k, v)| model.get(k) == Some(v)).unwrap().clone();
    let dead = records.iter().find(|(_, k, v)| model.get(k) != Some(v)).unwrap().clone();
    let files_before = vlog_files(&mem);

    let mut cases = 0;
    for (what, (offset, key, value)) in [("live", &live), ("dead", &dead)] {
        let header = record_len(key, value.len()) - (key.len() + value.len()) as u64;
        let deltas = [0, 3, 4, header - 1, header, header + key.len() as u64 + 7];
        let mut deltas = deltas.to_vec();
        deltas.push(record_len(key, value.len()) - 1);
        for delta in deltas {
            let ctx = format!(
                "{what} record of {} at {offset} in {first}, byte +{delta}",
                strata_tests::show(key)
            );
            let img = copy_fs(&mem);
            // On the encrypted stack the byte flipped is ciphertext: the same plaintext bit
            // flips (a stream cipher), and the checksums must catch it as they do without.
            img.flip_byte(&first, stack.prefix_len() + offset + delta, 0x40).unwrap();
            let tree = must_open(stack, &img, &ctx);
            let txn = tree.begin().unwrap();
            let expect_corruption = |r: &Result<_>, how: &str| match r {
                Err(Error::Corruption { file, .. }) if *file == first => {}
                other => panic!("{ctx}: {how} must report corruption in {first}, got {other:?}"),
            };
            if what == "live" {
                expect_corruption(&txn.get(key).map(|_| ()), "a read of the damaged value");
            }
            drop(txn);
            let gc = tree.run_vlog_gc();
            expect_corruption(&gc.map(|_| ()), "GC");
            assert_eq!(vlog_files(&img), files_before, "{ctx}: GC must keep every file");
            // Everything else reads back exactly; writes keep working.
            let txn = tree.begin().unwrap();
            for (k, v) in &model {
                if what == "live" && k == key {
                    continue;
                }
                let got = txn.get(k).unwrap_or_else(|e| panic!("{ctx}: get {k:?}: {e:?}"));
                assert!(got.as_deref() == Some(&v[..]), "{ctx}: {}", strata_tests::show(k));
            }
            drop(txn);
            let t = TxnSpec {
                writes: vec![(b"new".to_vec(), Some(tagged_value(7, THRESHOLD * 2)))],
                durability: Durability::Immediate,
            };
            t.run(&tree).unwrap_or_else(|e| panic!("{ctx}: write after the GC error: {e:?}"));
            let got = tree.begin().unwrap().get(b"new").unwrap();
            assert_eq!(got.as_deref(), Some(&tagged_value(7, THRESHOLD * 2)[..]), "{ctx}");
            tree.close().unwrap();
            drop(tree);
            // And again after a reopen: still reported, still kept.
            let tree = must_open(stack, &img, &ctx);
            expect_corruption(&tree.run_vlog_gc().map(|_| ()), "GC after reopen");
            assert!(vlog_files(&img).contains(&first), "{ctx}");
            tree.close().unwrap();
            cases += 1;
        }
    }
    eprintln!("checked {cases} flipped bytes");
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the tests above, reduced.

/// A power cut during the recovery of a log whose newest record points past the head's
/// surviving bytes, before the new WAL segment's header was durable: the next recovery finds
/// that torn segment after the one with the dangling record, and must still treat the record
/// as the torn tail (the torn segment holds nothing).
#[test]
fn dangling_pointer_followed_by_a_torn_segment_from_a_cut_recovery_plain() {
    dangling_pointer_followed_by_a_torn_segment_from_a_cut_recovery(Stack::Plain);
}

#[test]
fn dangling_pointer_followed_by_a_torn_segment_from_a_cut_recovery_encrypted() {
    dangling_pointer_followed_by_a_torn_segment_from_a_cut_recovery(Stack::Encrypted);
}

fn dangling_pointer_followed_by_a_torn_segment_from_a_cut_recovery(stack: Stack) {
    let mem = MemFs::new();
    let tree = open(stack, &mem).unwrap();
    let txns: Vec<TxnSpec> = (0..2u64)
        .map(|i| TxnSpec {
            writes: vec![(format!("k{i}").into_bytes(), Some(tagged_value(i, 5000)))],
            durability: if i == 0 { Durability::Immediate } else { Durability::Eventual },
        })
        .collect();
    for t in &txns {
        t.run(&tree).unwrap();
    }
    // A power cut keeping the WAL's unsynced record but not the value it points at.
    let image = copy_fs(&mem);
    drop(tree);
    let head = vlog_files(&image).pop().unwrap();
    let len = image.size(&head).unwrap();
    image.truncate(&head, len - 100).unwrap();
    // A power cut before recovery's first durability call, leaving the segment it was
    // creating with a torn header.
    let old_segments = wal_segments(&image);
    image.arm_crash(1, CrashPolicy::KeepUnsynced, 0);
    assert!(open(stack, &image).is_err());
    let cut = image.take_crash_image().unwrap();
    let new: Vec<String> =
        wal_segments(&cut).into_iter().filter(|s| !old_segments.contains(s)).collect();
    assert_eq!(new.len(), 1, "recovery was creating a segment: {new:?}");
    cut.truncate(&new[0], 10).unwrap();
    let tree = open(stack, &cut).unwrap_or_else(|e| panic!("does not open: {e:?}"));
    let mut want = Model::new();
    txns[0].apply(&mut want);
    assert_eq!(read_back(&tree, "after the torn recovery"), want);
}

/// The crash tests above count a workload's durability calls once and then cut before each:
/// the count must not depend on thread timing. It did: the commit thread answered a caller
/// before dropping its transaction's snapshot, so a value log file collected right after the
/// commit was sometimes still pinned and deleted later, one `sync_dir` fewer (about 1 run in 6
/// with the machine busy). Two spinning threads keep the machine busy here.
#[test]
fn a_workload_makes_the_same_durability_calls_however_threads_are_scheduled() {
    let txns = write_workload(7092408555018507782, 200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..scaled(40) {
        let mem = MemFs::new();
        let (_, tree) = run_workload(Stack::Plain, &mem, &txns, "timing");
        let tree = tree.expect("opens");
        let stats = tree.stats();
        *counts.entry((mem.sync_count(), stats.vlog_deleted_files)).or_insert(0) += 1;
        tree.close().expect("close");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().expect("spinner");
    }
    assert_eq!(counts.len(), 1, "(durability calls, deleted files) -> runs: {counts:?}");
}
