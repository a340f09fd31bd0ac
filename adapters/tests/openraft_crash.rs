//! Power cuts through MemFs:
//! - `install_snapshot` is atomic: a crash at any durability call of an install, under every
//!   crash policy, leaves the state machine wholly old or wholly new (data, applied log id and
//!   membership agreeing), never a mix; once the install has returned, the new state survives
//!   any crash;
//! - what the log store acknowledged (a vote, appended entries once the flush callback fired,
//!   a purge) survives a power cut that drops everything unsynced.

use std::collections::BTreeSet;
use std::io::Cursor;

use openraft::storage::{
    RaftLogReader, RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    StoredMembership, Vote,
};
use strata::{Tree, TreeBuilder};
use strata_adapters::openraft::{KeyLayout, KvConfig, KvRequest, LogStore, StateMachine};
use strata_vfs::{CrashPolicy, MemFs};

type Sm = StateMachine<KvConfig>;

/// What the state machine holds: data, applied log id, membership.
type State = (Vec<(Vec<u8>, Vec<u8>)>, Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

fn open(mem: &MemFs) -> strata::Result<Tree> {
    TreeBuilder::new().with_vfs(mem.clone()).with_background_threads(false).build()
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entries(
    term: u64,
    members: &[u64],
    sets: &[(&str, &str)],
    deletes: &[&str],
) -> Vec<Entry<KvConfig>> {
    let members: BTreeSet<u64> = members.iter().copied().collect();
    let mut out = vec![Entry {
        log_id: log_id(term, 1),
        payload: EntryPayload::Membership(Membership::new(vec![members], None)),
    }];
    let commands = sets
        .iter()
        .map(|(k, v)| KvRequest::Set { key: k.as_bytes().to_vec(), value: v.as_bytes().to_vec() })
        .chain(deletes.iter().map(|k| KvRequest::Delete { key: k.as_bytes().to_vec() }));
    for command in commands {
        let index = out.len() as u64 + 1;
        out.push(Entry { log_id: log_id(term, index), payload: EntryPayload::Normal(command) });
    }
    out
}

async fn state(sm: &mut Sm) -> State {
    let data = sm.reader().scan().expect("scan");
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    (data, applied, membership)
}

#[test]
fn install_snapshot_survives_a_power_cut_at_every_sync() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    runtime.block_on(async {
        // The follower's old state: keys a..d, membership {1}.
        let base = MemFs::new();
        let tree = open(&base).expect("open");
        let mut sm = Sm::new(tree.clone(), KeyLayout::default());
        let old_sets = [("a", "old-a"), ("b", "old-b"), ("c", "old-c"), ("d", "old-d")];
        sm.apply(entries(1, &[1], &old_sets, &[])).await.expect("apply old");
        let old = state(&mut sm).await;
        tree.close().expect("close");
        let base = base.crash(CrashPolicy::DropUnsynced, 0);

        // The leader's snapshot: b changed, c deleted, e and f new, membership {1,2,3}.
        let leader = MemFs::new();
        let leader_tree = open(&leader).expect("open leader");
        let mut leader_sm = Sm::new(leader_tree.clone(), KeyLayout::default());
        let new_sets = [("a", "old-a"), ("b", "new-b"), ("c", "x"), ("e", "new-e"), ("f", "new-f")];
        leader_sm.apply(entries(2, &[1, 2, 3], &new_sets, &["c", "d"])).await.expect("apply new");
        let snapshot =
            leader_sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let new = state(&mut leader_sm).await;
        assert_ne!(old, new);
        let meta: SnapshotMeta<u64, BasicNode> = snapshot.meta.clone();
        let bytes = snapshot.snapshot.into_inner();

        // A clean install, to count its durability calls.
        let probe = base.crash(CrashPolicy::KeepUnsynced, 0);
        let tree = open(&probe).expect("open probe");
        let opened_at = probe.sync_count();
        let mut sm = Sm::new(tree.clone(), KeyLayout::default());
        sm.install_snapshot(&meta, Box::new(Cursor::new(bytes.clone()))).await.expect("install");
        assert_eq!(state(&mut sm).await, new, "a clean install gives the leader's state");
        let install_calls = probe.sync_count() - opened_at;
        tree.close().expect("close probe");
        assert!(install_calls > 0, "the install made no durability call");

        // A power cut before each call of the install, and one after it returned.
        let mut cuts = 0;
        for call in 1..=install_calls + 1 {
            for (p, policy) in CrashPolicy::ALL.into_iter().enumerate() {
                let seed = call * 31 + p as u64;
                let img = base.crash(CrashPolicy::KeepUnsynced, 0);
                let tree = open(&img).expect("open image");
                img.arm_crash(img.sync_count() + call, policy, seed);
                let mut sm = Sm::new(tree.clone(), KeyLayout::default());
                let installed =
                    sm.install_snapshot(&meta, Box::new(Cursor::new(bytes.clone()))).await.is_ok();
                let _ = tree.close();
                drop(sm);
                let ctx = format!(
                    "power cut at install call {call} of {install_calls}, {policy:?} seed {seed}"
                );
                let cut =
                    img.take_crash_image().unwrap_or_else(|| panic!("{ctx}: the cut did not fire"));
                let tree = open(&cut).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
                let mut sm = Sm::new(tree.clone(), KeyLayout::default());
                let got = state(&mut sm).await;
                if installed {
                    assert_eq!(got, new, "{ctx}: an acknowledged install was lost");
                } else {
                    assert!(got == old || got == new, "{ctx}: a mixed state: {got:?}");
                }
                tree.close().expect("close");
                cuts += 1;
            }
        }
        println!("{cuts} power cuts during install_snapshot, each left the old or the new state");
    });
}

#[test]
fn acknowledged_log_writes_survive_a_power_cut() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    runtime.block_on(async {
        let mem = MemFs::new();
        let tree = open(&mem).expect("open");
        let mut log = LogStore::<KvConfig>::new(tree.clone(), KeyLayout::default());
        let sets = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
        let vote = Vote::new(2, 1);
        log.save_vote(&vote).await.expect("vote");
        log.blocking_append(entries(1, &[1], &sets, &[])).await.expect("append");
        // A power cut right after the flush callback: everything not synced is gone.
        let after_append = mem.crash(CrashPolicy::DropUnsynced, 0);
        log.purge(log_id(1, 2)).await.expect("purge");
        let after_purge = mem.crash(CrashPolicy::DropUnsynced, 0);

        for (image, purged, first) in
            [(after_append, None, 1), (after_purge, Some(log_id(1, 2)), 3)]
        {
            let tree = open(&image).expect("reopen");
            let mut log = LogStore::<KvConfig>::new(tree, KeyLayout::default());
            assert_eq!(log.read_vote().await.expect("read vote"), Some(vote));
            let state = log.get_log_state().await.expect("log state");
            assert_eq!(state.last_purged_log_id, purged);
            assert_eq!(state.last_log_id, Some(log_id(1, 5)));
            let kept = log.try_get_log_entries(0..10).await.expect("entries");
            let indexes: Vec<u64> = kept.iter().map(|e| e.log_id.index).collect();
            assert_eq!(indexes, (first..=5).collect::<Vec<_>>(), "acknowledged log writes lost");
        }
    });
}
