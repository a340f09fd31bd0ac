//! The worked example of docs/format/openraft.md, byte for byte: a node that voted, appended
//! two entries, recorded them committed, applied them and built a snapshot holds exactly
//! these keys and values.

use std::collections::BTreeSet;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use strata::{Mode, TreeBuilder};
use strata_adapters::openraft::{KeyLayout, KvConfig, KvRequest, LogStore, StateMachine};

const LEADER: &str = r#"{"leader_id":{"term":1,"node_id":1}"#;
const MEMBERSHIP: &str = r#"{"configs":[[1]],"nodes":{"1":{"addr":""}}}"#;

fn json(body: &str) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(body.as_bytes());
    v
}

#[test]
fn worked_example_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    runtime.block_on(async {
        let layout = KeyLayout::default();
        let mut log = LogStore::<KvConfig>::new(tree.clone(), layout.clone());
        let mut sm = StateMachine::<KvConfig>::new(tree.clone(), layout);
        log.save_vote(&Vote::new_committed(1, 1)).await.expect("vote");
        let members: BTreeSet<u64> = [1].into();
        let membership = Membership::<u64, BasicNode>::new(vec![members], None);
        let lid = |i| LogId::new(CommittedLeaderId::new(1, 1), i);
        let set = KvRequest::Set { key: b"k".to_vec(), value: b"v".to_vec() };
        let entries = vec![
            Entry::<KvConfig> { log_id: lid(1), payload: EntryPayload::Membership(membership) },
            Entry { log_id: lid(2), payload: EntryPayload::Normal(set) },
        ];
        log.blocking_append(entries.clone()).await.expect("append");
        log.save_committed(Some(lid(2))).await.expect("committed");
        sm.apply(entries).await.expect("apply");
        sm.get_snapshot_builder().await.build_snapshot().await.expect("snapshot");
    });

    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("txn");
    let got: Vec<(Vec<u8>, Vec<u8>)> = txn
        .range(b"", b"\xff", None)
        .expect("range")
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<strata::Result<_>>()
        .expect("scan");
    let log_id_2 = format!(r#"{LEADER},"index":2}}"#);
    let stored_membership =
        format!(r#"{{"log_id":{LEADER},"index":1}},"membership":{MEMBERSHIP}}}"#);
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"raft/data/k".to_vec(), b"v".to_vec()),
        (
            b"raft/log/\x00\x00\x00\x00\x00\x00\x00\x01".to_vec(),
            json(&format!(r#"{{"log_id":{LEADER},"index":1}},"payload":{{"Membership":{MEMBERSHIP}}}}}"#)),
        ),
        (
            b"raft/log/\x00\x00\x00\x00\x00\x00\x00\x02".to_vec(),
            json(&format!(
                r#"{{"log_id":{log_id_2},"payload":{{"Normal":{{"Set":{{"key":[107],"value":[118]}}}}}}}}"#
            )),
        ),
        (b"raft/meta/committed".to_vec(), json(&log_id_2)),
        (b"raft/meta/vote".to_vec(), json(&format!(r#"{LEADER},"committed":true}}"#))),
        (b"raft/sm/applied".to_vec(), json(&log_id_2)),
        (b"raft/sm/membership".to_vec(), json(&stored_membership)),
        (
            b"raft/sm/snapshot_data".to_vec(),
            b"STRSNAP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00k\x01\x00\x00\x00v\xad\xb0e3"
                .to_vec(),
        ),
    ];
    // The snapshot id ends in a time and a counter, so only its start is fixed.
    let meta_start = json(&format!(
        r#"{{"last_log_id":{log_id_2},"last_membership":{stored_membership},"snapshot_id":"T1-N1-2-"#
    ));
    let (meta_key, meta) = got.last().cloned().expect("keys");
    assert_eq!(meta_key, b"raft/sm/snapshot_meta");
    assert!(meta.starts_with(&meta_start), "snapshot meta: {}", meta.escape_ascii());
    want.push((meta_key, meta));
    for ((gk, gv), (wk, wv)) in got.iter().zip(&want) {
        assert_eq!(gk.escape_ascii().to_string(), wk.escape_ascii().to_string());
        assert_eq!(
            gv.escape_ascii().to_string(),
            wv.escape_ascii().to_string(),
            "value of {}",
            gk.escape_ascii()
        );
    }
    assert_eq!(got.len(), want.len());
}
