//! I/O errors and a full disk, injected with `FaultFs<MemFs>` at every call site of a small
//! workload.
//!
//! The rule: a commit whose WAL write or sync failed is never acknowledged; the tree is then
//! poisoned (later commits fail with `Poisoned`, reads keep working and see exactly the
//! acknowledged commits); no injected failure goes unreported; and after a reopen without the
//! fault every acknowledged commit is there, the failed one entirely or not at all, nothing
//! else. A power cut after the failure keeps every acknowledged Immediate commit.
//!
//! `STRATA_SOAK=1` tries every space limit instead of a sample.
//!
//! Every test runs on both filesystem stacks ([`Stack`]): `_plain` with the engine on
//! `FaultFs<MemFs>`, `_encrypted` on `EncryptedFs<FaultFs<MemFs>>`, so every fault is
//! injected underneath the encryption layer, where the disk would fail.

#![allow(clippy::unwrap_used)]

use strata::{Durability, Error, IoOp, Tree};
use strata_tests::{
    MARKER_KEY, Model, Rng, Stack, TxnSpec, copy_fs, diff, dump, is_io_error, is_soak,
    prefix_states, tagged_value, test_seed, which_prefix,
};
use strata_vfs::{CrashPolicy, FaultFs, FaultOp, FaultRule, MemFs};

/// 14 transactions, mixed durability, two values big enough to fragment and to make the
/// 64 KiB WAL segment rotate.
fn workload() -> Vec<TxnSpec> {
    (0..14usize)
        .map(|i| {
            let len = match i {
                4 => 40 * 1024,
                9 => 35 * 1024,
                _ if i % 5 == 2 => 3 * 1024,
                _ => 10 + 13 * i,
            };
            let mut writes =
                vec![(format!("k{}", i % 5).into_bytes(), Some(tagged_value(i as u64, len)))];
            if i % 4 == 3 {
                writes.push((format!("k{}", (i + 2) % 5).into_bytes(), None));
            }
            writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
            let durability = if i % 3 == 0 { Durability::Immediate } else { Durability::Eventual };
            TxnSpec { writes, durability }
        })
        .collect()
}

/// What a run under faults got acknowledged.
#[derive(Debug, Default)]
struct Run {
    open_failed: bool,
    acked: usize,
    /// Shortest prefix holding every acknowledged Immediate commit.
    durable: usize,
    failed_at: Option<usize>,
    close_failed: bool,
}

impl Run {
    fn error_surfaced(&self) -> bool {
        self.open_failed || self.failed_at.is_some() || self.close_failed
    }

    /// Prefixes a reopen may give when the data written survives: the acknowledged commits,
    /// plus the failed one if it made it whole.
    fn max_prefix(&self) -> usize {
        self.acked + usize::from(self.failed_at == Some(self.acked))
    }
}

/// Runs the workload on `fs`, checking the poisoning rules as it goes.
fn run_workload(
    stack: Stack,
    fs: &FaultFs<MemFs>,
    txns: &[TxnSpec],
    states: &[Model],
    ctx: &str,
) -> Run {
    let mut run = Run::default();
    let tree = match stack.builder_on(fs.clone()).build() {
        Ok(t) => t,
        Err(e) => {
            assert!(is_io_error(&e), "{ctx}: open failed with {e:?}");
            run.open_failed = true;
            return run;
        }
    };
    for (i, t) in txns.iter().enumerate() {
        let r = t.run(&tree);
        match (run.failed_at, r) {
            (None, Ok(())) => {
                assert!(!tree.is_poisoned(), "{ctx}: poisoned after a successful commit {i}");
                run.acked = i + 1;
                if t.durability == Durability::Immediate {
                    run.durable = i + 1;
                }
            }
            (None, Err(e)) => {
                assert!(is_io_error(&e), "{ctx}: commit {i} failed with {e:?}");
                assert!(
                    tree.is_poisoned(),
                    "{ctx}: commit {i} failed but the tree is not poisoned"
                );
                run.failed_at = Some(i);
            }
            (Some(_), Err(Error::Poisoned)) => {}
            (Some(f), r) => panic!("{ctx}: commit {i} after the failure of {f}: {r:?}"),
        }
        if run.failed_at.is_some() {
            // Reads keep working and show exactly the acknowledged commits.
            let got =
                dump(&tree).unwrap_or_else(|e| panic!("{ctx}: read after the failure: {e:?}"));
            assert!(
                got == states[run.acked],
                "{ctx}: reads after the failure: {}",
                diff(&states[run.acked], &got)
            );
        }
    }
    if let Err(e) = tree.close() {
        assert!(is_io_error(&e), "{ctx}: close failed with {e:?}");
        assert!(
            run.failed_at.is_none(),
            "{ctx}: a poisoned tree has nothing to sync at close: {e:?}"
        );
        run.close_failed = true;
    }
    run
}

/// Checks what the filesystem holds after a faulty run: a reopen without faults, and a power
/// cut image taken before it.
fn check_after(stack: Stack, mem: &MemFs, run: &Run, states: &[Model], ctx: &str) {
    let cut = mem.crash(CrashPolicy::DropUnsynced, 0);
    let tree = stack
        .builder_on(mem.clone())
        .build()
        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e:?}"));
    let got = dump(&tree).unwrap();
    let p =
        which_prefix(states, &got).unwrap_or_else(|| panic!("{ctx}: reopened state is no prefix"));
    assert!(
        (run.acked..=run.max_prefix()).contains(&p),
        "{ctx}: reopened with prefix {p}; acknowledged {}, failed {:?}",
        run.acked,
        run.failed_at
    );
    // It takes writes again.
    let extra = TxnSpec {
        writes: vec![(b"again".to_vec(), Some(b"1".to_vec()))],
        durability: Durability::Immediate,
    };
    extra.run(&tree).unwrap_or_else(|e| panic!("{ctx}: commit after reopen: {e:?}"));
    tree.close().unwrap();
    drop(tree);

    let tree = stack
        .builder_on(cut)
        .build()
        .unwrap_or_else(|e| panic!("{ctx}: open after a power cut: {e:?}"));
    let got = dump(&tree).unwrap();
    let p = which_prefix(states, &got)
        .unwrap_or_else(|| panic!("{ctx}: state after a power cut is no prefix"));
    assert!(
        (run.durable..=run.max_prefix()).contains(&p),
        "{ctx}: after a power cut prefix {p}; durable {}, acknowledged {}",
        run.durable,
        run.acked
    );
}

/// Counts calls of each operation in a clean run.
fn clean_counts(stack: Stack, txns: &[TxnSpec], states: &[Model]) -> (FaultFs<MemFs>, MemFs) {
    let mem = MemFs::new();
    let fs = FaultFs::new(mem.clone());
    let run = run_workload(stack, &fs, txns, states, "clean run");
    assert_eq!(run.acked, txns.len());
    assert!(!run.error_surfaced());
    (fs, mem)
}

/// Fails the `n`-th call of each operation (and, separately, that call and every later one),
/// for every `n` the workload reaches.
#[test]
fn every_failing_call_is_reported_and_nothing_acknowledged_is_lost_plain() {
    every_failing_call_is_reported_and_nothing_acknowledged_is_lost(Stack::Plain);
}

#[test]
fn every_failing_call_is_reported_and_nothing_acknowledged_is_lost_encrypted() {
    every_failing_call_is_reported_and_nothing_acknowledged_is_lost(Stack::Encrypted);
}

fn every_failing_call_is_reported_and_nothing_acknowledged_is_lost(stack: Stack) {
    let txns = workload();
    let states = prefix_states(&txns);
    let (_, mem) = clean_counts(stack, &txns, &states);
    assert!(strata_tests::wal_segments(&mem).len() >= 2, "the workload must rotate the WAL");
    let mut total = 0;
    // (operation, file-name filter, whether every failure must surface as an error). Calls on
    // WAL files must; elsewhere (manifest, CURRENT, cleanup) a failure may be tolerated if
    // nothing is lost, which `check_after` verifies either way.
    let cases: [(FaultOp, Option<&str>, bool); 10] = [
        (FaultOp::Append, Some(".wal"), true),
        (FaultOp::Flush, Some(".wal"), true),
        (FaultOp::Sync, Some(".wal"), true),
        (FaultOp::Create, Some(".wal"), true),
        (FaultOp::SyncDir, None, false),
        (FaultOp::Append, None, false),
        (FaultOp::Sync, None, false),
        (FaultOp::Create, None, false),
        (FaultOp::Rename, None, false),
        (FaultOp::Remove, None, false),
    ];
    for (op, filter, must_surface) in cases {
        let (mut sites, mut tolerated) = (0u64, 0u64);
        for persistent in [false, true] {
            // The n-th matching call, for every n the workload reaches: stop at the first n
            // that is never reached.
            for n in 0.. {
                let ctx = format!(
                    "{op:?} call {n} on {} fails{}",
                    filter.unwrap_or("any file"),
                    if persistent { " (and every later one)" } else { "" }
                );
                assert!(n < 10_000, "{ctx}: the workload never runs out of calls");
                let mem = MemFs::new();
                let fs = FaultFs::new(mem.clone());
                let mut rule = FaultRule::fail(op).nth(n);
                if let Some(name) = filter {
                    rule = rule.on_name(name);
                }
                if persistent {
                    rule = rule.persistent();
                }
                fs.add_rule(rule);
                let run = run_workload(stack, &fs, &txns, &states, &ctx);
                if fs.injected() == 0 {
                    break;
                }
                if !run.error_surfaced() {
                    assert!(!must_surface, "{ctx}: an injected failure went unreported: {run:?}");
                    tolerated += 1;
                }
                check_after(stack, &mem, &run, &states, &ctx);
                total += 1;
                if !persistent {
                    sites += 1;
                }
            }
        }
        eprintln!(
            "{op:?} on {}: {sites} call sites, each failed once and persistently; {tolerated} \
             failures tolerated without an error",
            filter.unwrap_or("any file")
        );
    }
    eprintln!("checked {total} injected failures");
}

/// An Immediate commit whose WAL sync fails.
#[test]
fn failed_wal_sync_poisons_the_tree_plain() {
    failed_wal_sync_poisons_the_tree(Stack::Plain);
}

#[test]
fn failed_wal_sync_poisons_the_tree_encrypted() {
    failed_wal_sync_poisons_the_tree(Stack::Encrypted);
}

fn failed_wal_sync_poisons_the_tree(stack: Stack) {
    let mem = MemFs::new();
    let fs = FaultFs::new(mem.clone());
    let tree = stack.builder_on(fs.clone()).build().unwrap();
    let put = |tree: &Tree, k: &str, d: Durability| {
        let mut t = tree.begin().unwrap();
        t.set(k.as_bytes(), k.as_bytes()).unwrap();
        t.set_durability(d);
        t.commit_blocking()
    };
    put(&tree, "a", Durability::Immediate).unwrap();
    put(&tree, "b", Durability::Eventual).unwrap();
    let reader = tree.begin().unwrap();
    fs.add_rule(FaultRule::fail(FaultOp::Sync).on_name(".wal").nth(0));
    let r = put(&tree, "c", Durability::Immediate);
    match &r {
        Err(Error::Io { op: IoOp::Sync, file, .. }) => assert!(file.ends_with(".wal"), "{file}"),
        other => panic!("expected a sync error, got {other:?}"),
    }
    assert!(tree.is_poisoned());
    assert!(matches!(put(&tree, "d", Durability::Eventual), Err(Error::Poisoned)));
    assert!(matches!(put(&tree, "e", Durability::Immediate), Err(Error::Poisoned)));
    // Reads keep working, old snapshots and new ones; the failed commit is not visible.
    assert_eq!(reader.get(b"a").unwrap().as_deref(), Some(&b"a"[..]));
    let got = dump(&tree).unwrap();
    let keys: Vec<&[u8]> = got.keys().map(Vec::as_slice).collect();
    assert_eq!(keys, [&b"a"[..], b"b"]);
    tree.close().unwrap();
    drop((tree, reader));
    // The fault is gone after a restart.
    fs.clear_rules();
    let tree = stack.builder_on(fs.clone()).build().unwrap();
    let got = dump(&tree).unwrap();
    assert!(got.contains_key(&b"a"[..]) && got.contains_key(&b"b"[..]), "{got:?}");
    assert!(!got.contains_key(&b"d"[..]) && !got.contains_key(&b"e"[..]));
    eprintln!("failed commit `c` present after reopen: {}", got.contains_key(&b"c"[..]));
    assert!(!tree.is_poisoned());
    put(&tree, "f", Durability::Immediate).unwrap();
}

/// A WAL append fails in the middle of a record (its fragment header went out, its payload
/// did not).
#[test]
fn failed_wal_append_poisons_the_tree_plain() {
    failed_wal_append_poisons_the_tree(Stack::Plain);
}

#[test]
fn failed_wal_append_poisons_the_tree_encrypted() {
    failed_wal_append_poisons_the_tree(Stack::Encrypted);
}

fn failed_wal_append_poisons_the_tree(stack: Stack) {
    let mem = MemFs::new();
    let fs = FaultFs::new(mem.clone());
    let tree = stack.builder_on(fs.clone()).build().unwrap();
    let txns = workload();
    let states = prefix_states(&txns);
    for t in &txns[..3] {
        t.run(&tree).unwrap();
    }
    fs.add_rule(FaultRule::fail(FaultOp::Append).on_name(".wal").nth(1));
    let r = txns[3].run(&tree);
    assert!(matches!(r, Err(Error::Io { op: IoOp::Append, .. })), "{r:?}");
    assert!(tree.is_poisoned());
    assert!(matches!(txns[4].run(&tree), Err(Error::Poisoned)));
    assert_eq!(dump(&tree).unwrap(), states[3]);
    tree.close().unwrap();
    drop(tree);
    // Of transactions 0..3 only 0 is Immediate.
    let run = Run { acked: 3, durable: 1, failed_at: Some(3), ..Run::default() };
    check_after(stack, &mem, &run, &states, "append failure");
}

/// The disk fills up: the commit fails with `NoSpace`, nothing acknowledged is lost, and the
/// database opens again once there is room (not before: a new segment needs its header).
#[test]
fn disk_full_poisons_the_tree_and_loses_nothing_acknowledged_plain() {
    disk_full_poisons_the_tree_and_loses_nothing_acknowledged(Stack::Plain);
}

#[test]
fn disk_full_poisons_the_tree_and_loses_nothing_acknowledged_encrypted() {
    disk_full_poisons_the_tree_and_loses_nothing_acknowledged(Stack::Encrypted);
}

fn disk_full_poisons_the_tree_and_loses_nothing_acknowledged(stack: Stack) {
    let mem = MemFs::new();
    let fs = FaultFs::new(mem.clone());
    let tree = stack.builder_on(fs.clone()).build().unwrap();
    let txns = workload();
    let states = prefix_states(&txns);
    for t in &txns[..4] {
        t.run(&tree).unwrap();
    }
    fs.set_space_limit(Some(1000));
    // Transaction 4 holds a 40 KiB value.
    let r = txns[4].run(&tree);
    match &r {
        Err(Error::NoSpace { file }) => assert!(file.ends_with(".wal"), "{file}"),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(tree.is_poisoned());
    fs.set_space_limit(None);
    assert!(matches!(txns[5].run(&tree), Err(Error::Poisoned)), "poisoned until reopened");
    assert_eq!(dump(&tree).unwrap(), states[4]);
    tree.close().unwrap();
    drop(tree);

    fs.set_space_limit(Some(0));
    let r = stack.builder_on(fs.clone()).build();
    assert!(matches!(r, Err(Error::NoSpace { .. })), "open on a full disk: {r:?}");
    fs.set_space_limit(None);
    let run = Run { acked: 4, durable: 4, failed_at: Some(4), ..Run::default() };
    check_after(stack, &mem, &run, &states, "disk full");
}

/// Every space limit from an empty disk to one that holds the whole workload (sampled; every
/// byte when soaking).
#[test]
fn every_space_limit_plain() {
    every_space_limit(Stack::Plain);
}

#[test]
fn every_space_limit_encrypted() {
    every_space_limit(Stack::Encrypted);
}

fn every_space_limit(stack: Stack) {
    let txns = workload();
    let states = prefix_states(&txns);
    let (_, mem) = clean_counts(stack, &txns, &states);
    let total = mem.total_bytes();
    let limits: Vec<u64> = (0..=total + 1)
        .filter(|&l| is_soak() || l <= 200 || l % 97 == 0 || l + 200 >= total)
        .collect();
    let mut no_space = 0;
    for &limit in &limits {
        let ctx = format!("space limit {limit} of {total}");
        let mem = MemFs::new();
        let fs = FaultFs::new(mem.clone());
        fs.set_space_limit(Some(limit));
        let run = run_workload(stack, &fs, &txns, &states, &ctx);
        if limit < total {
            // The disk fills at open, at a commit, or at close (which records the clean
            // shutdown in the manifest); wherever it does, the failure is reported.
            assert!(
                run.open_failed || run.failed_at.is_some() || run.close_failed,
                "{ctx}: the disk never filled: {run:?}"
            );
            no_space += 1;
        } else {
            assert_eq!(run.acked, txns.len(), "{ctx}");
        }
        check_after(stack, &mem, &run, &states, &ctx);
    }
    eprintln!("checked {} space limits ({no_space} of them filled the disk)", limits.len());
}

/// A bit flipped in a buffer read during recovery (a bad cable, not bad data on disk) must
/// give a Corruption error or the right data, never a panic or data from nowhere. Reported:
/// how often the default mode takes it for a torn tail and drops acknowledged commits.
#[test]
fn bit_flip_on_read_during_recovery_plain() {
    bit_flip_on_read_during_recovery(Stack::Plain);
}

#[test]
fn bit_flip_on_read_during_recovery_encrypted() {
    bit_flip_on_read_during_recovery(Stack::Encrypted);
}

fn bit_flip_on_read_during_recovery(stack: Stack) {
    let txns = workload();
    let states = prefix_states(&txns);
    let (_, mem) = clean_counts(stack, &txns, &states);
    let seed = test_seed(&format!("bit_flip_on_read_during_recovery_{}", stack.name()));
    let mut rng = Rng::new(seed);
    // Reads one clean recovery makes.
    let probe = FaultFs::new(copy_fs(&mem));
    drop(stack.builder_on(probe.clone()).build().unwrap());
    let reads = probe.op_count(FaultOp::Read);
    let (mut detected, mut exact, mut lossy, mut lossy_persisted, mut lost_durable) =
        (0, 0, 0, 0, 0);
    let per_read = if is_soak() { 200 } else { 20 };
    for (n, _) in (0..reads).flat_map(|n| (0..per_read).map(move |k| (n, k))) {
        let ctx = format!("bit flip in WAL read {n} of {reads}");
        let img = copy_fs(&mem);
        let fs = FaultFs::new(img.clone());
        fs.add_rule(FaultRule::flip_bit_on_read(".wal").nth(n).seed(rng.next_u64()));
        match stack.builder_on(fs.clone()).build() {
            Err(Error::Corruption { file, .. }) => {
                assert!(file.ends_with(".wal"), "{ctx}: {file}");
                detected += 1;
            }
            // On the encrypted stack, a flip in a WAL file's 48-byte prefix (past the magic)
            // makes the encrypted fs refuse the file: the nonce or key check value fails the
            // key check, the version or cipher id is unknown, a reserved byte is not zero.
            // Recovery stops with an error naming the WAL file, and nothing is served from it.
            Err(Error::Io { file, source, .. })
                if stack == Stack::Encrypted
                    && file.ends_with(".wal")
                    && source.note().starts_with("encrypted fs:") =>
            {
                detected += 1;
            }
            Err(e) => panic!("{ctx}: {e:?}"),
            Ok(tree) => {
                let got = dump(&tree).unwrap();
                let p = which_prefix(&states, &got)
                    .unwrap_or_else(|| panic!("{ctx}: state is no prefix"));
                drop(tree);
                if p == txns.len() {
                    exact += 1;
                } else {
                    lossy += 1;
                    let durable = txns
                        .iter()
                        .rposition(|t| t.durability == Durability::Immediate)
                        .map_or(0, |i| i + 1);
                    if p < durable {
                        eprintln!(
                            "{ctx}: recovered prefix {p} of {}, durable {durable}",
                            txns.len()
                        );
                        lost_durable += 1;
                    }
                    // Does the loss outlive the transient fault?
                    let tree = stack.builder_on(img).build().unwrap();
                    if dump(&tree).unwrap() != states[txns.len()] {
                        lossy_persisted += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{reads} WAL reads x {per_read} bits flipped: {detected} detected, {exact} full data, {lossy} \
         recovered a shorter prefix ({lost_durable} of them missing Immediate commits; \
         {lossy_persisted} still short after a clean reopen)"
    );
    // A bit flipped on the way from disk is Corruption or harmless; it never costs a commit.
    assert_eq!(lost_durable, 0, "a transient read fault lost acknowledged Immediate commits");
    assert_eq!(lossy_persisted, 0, "a transient read fault lost data for good");
    assert!(detected > 0, "the flips were noticed");
}
