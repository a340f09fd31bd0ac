//! A three-node cluster in this process, over loopback TCP, with nodes stopped and restarted
//! at random points while a client writes.
//!
//! Each round a writer keeps replicating through the leader while one node (the leader half
//! the time) is stopped after a random delay, the writer continues, and the node restarts
//! from its directory. The writer checks linearizability as it goes: after each acknowledged
//! write of a counter, a read through the leader must return that value or a later one,
//! never an older one. At the end every acknowledged key must be on every node.
//!
//! Seeded: `STRATA_SEED=N` replays a run; the seed is printed. `STRATA_ROUNDS` sets the
//! number of rounds (default 4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use strata::TreeBuilder;
use strata_adapters::openraft::{KvClient, KvRequest, Node};
use tokio::net::TcpListener;

const DEADLINE: Duration = Duration::from_secs(20);

/// SplitMix64: a small, seedable generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(60),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

async fn start(id: u64, dir: &Path, addr: &str) -> Node {
    let tree = TreeBuilder::new().with_path(dir.to_path_buf()).build().expect("open tree");
    // The port was just released by the stopped node; binding may race its last connection.
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("bind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    Node::start(id, listener, tree, config()).await.expect("start node")
}

/// What the writer got acknowledged: keys written once, and the counter's last value.
#[derive(Default)]
struct Acked {
    keys: BTreeMap<Vec<u8>, Vec<u8>>,
    counter: u64,
}

/// Writes `count` new keys and bumps the counter after each, checking that a leader read
/// right after each acknowledged bump sees it (or a later value).
async fn write_and_check(client: &mut KvClient, acked: &mut Acked, first: u64, count: u64) {
    for i in first..first + count {
        let key = format!("k{i:06}").into_bytes();
        let value = format!("v{i}").into_bytes();
        let set = KvRequest::Set { key: key.clone(), value: value.clone() };
        if client.write(set, DEADLINE).await.is_ok() {
            acked.keys.insert(key, value);
        }
        let bump = acked.counter + 1;
        let set = KvRequest::Set { key: b"counter".to_vec(), value: bump.to_be_bytes().to_vec() };
        if client.write(set, DEADLINE).await.is_ok() {
            acked.counter = bump;
            let read = client.read_leader(b"counter", DEADLINE).await.expect("leader read");
            let seen = read
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map(u64::from_be_bytes)
                .expect("counter present");
            assert!(seen >= bump, "stale linearizable read: counter {seen} after {bump} acked");
        }
    }
}

#[test]
fn cluster_survives_random_stops_and_restarts() {
    let seed = env_u64("STRATA_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let rounds = env_u64("STRATA_ROUNDS").unwrap_or(4);
    println!("openraft_cluster: STRATA_SEED={seed} STRATA_ROUNDS={rounds}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(seed, rounds));
}

async fn run(seed: u64, rounds: u64) {
    let mut rng = Rng(seed);
    let scratch = tempfile::tempdir().expect("tempdir");
    let dirs: BTreeMap<u64, PathBuf> =
        (1..=3).map(|id| (id, scratch.path().join(format!("n{id}")))).collect();
    let mut addrs = BTreeMap::new();
    for &id in dirs.keys() {
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.insert(id, probe.local_addr().expect("addr").to_string());
    }
    let mut nodes = BTreeMap::new();
    for (&id, dir) in &dirs {
        nodes.insert(id, start(id, dir, &addrs[&id]).await);
    }
    let members: BTreeMap<u64, BasicNode> =
        addrs.iter().map(|(&id, a)| (id, BasicNode::new(a))).collect();
    nodes[&1].raft().initialize(members).await.expect("initialize");

    let mut client = KvClient::new(addrs.clone());
    let mut acked = Acked::default();
    let mut next = 0u64;
    for round in 0..rounds {
        let leader = client.leader_hint().or_else(|| {
            nodes
                .values()
                .find(|n| n.raft().metrics().borrow().current_leader == Some(n.id()))
                .map(|n| n.id())
        });
        let victim = match leader {
            Some(l) if rng.below(2) == 0 => l,
            _ => 1 + rng.below(3),
        };
        let before = 5 + rng.below(40);
        let delay = Duration::from_millis(rng.below(300));
        let role = if Some(victim) == leader { "the leader" } else { "a follower" };
        println!(
            "round {round}: {before} writes, then node {victim} ({role}) stops after {delay:?}"
        );

        // The stop lands while the writer is mid-stream.
        let node = nodes.remove(&victim).expect("victim runs");
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            node.stop().await.expect("stop");
        });
        write_and_check(&mut client, &mut acked, next, before).await;
        next += before;
        stopper.await.expect("stopper");

        let during = 5 + rng.below(40);
        write_and_check(&mut client, &mut acked, next, during).await;
        next += during;

        nodes.insert(victim, start(victim, &dirs[&victim], &addrs[&victim]).await);
        println!("round {round}: node {victim} restarted; {} keys acked so far", acked.keys.len());
    }
    write_and_check(&mut client, &mut acked, next, 10).await;
    assert!(!acked.keys.is_empty(), "nothing was acknowledged");

    // Every node catches up to the leader's applied index, then holds every acked key.
    let leader = client.leader_hint().expect("a leader answered");
    let target = nodes[&leader].raft().metrics().borrow().last_applied.map(|l| l.index);
    for node in nodes.values() {
        node.raft()
            .wait(Some(DEADLINE))
            .applied_index_at_least(target, "catch up")
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: node {} did not catch up: {e}", node.id()));
        for (key, value) in &acked.keys {
            let got = node.reader().get(key).expect("read");
            assert_eq!(
                got.as_deref(),
                Some(value.as_slice()),
                "seed {seed}: node {} lost acknowledged key {}",
                node.id(),
                key.escape_ascii()
            );
        }
        let counter = node.reader().get(b"counter").expect("read").expect("counter");
        assert!(
            counter.as_ref() >= acked.counter.to_be_bytes().as_slice(),
            "seed {seed}: counter lost"
        );
    }
    println!(
        "{} acknowledged keys on all three nodes; counter at {}",
        acked.keys.len(),
        acked.counter
    );
    for (_, node) in nodes {
        node.stop().await.expect("stop");
    }
}
