//! A three-node cluster in this process, over loopback TCP, with nodes killed at random points
//! while a client writes, and restarted from what the kill left on their disks.
//!
//! Each node runs on a tokio runtime of its own (its openraft tasks, its listener and its
//! connections) over a Strata tree on a MemFs of its own (its directory). A kill is abrupt:
//! the node's runtime is shut down, which drops every task of the node at its next await and
//! closes its sockets, without openraft's shutdown and without closing the tree; then the
//! node's directory is cut as a crash leaves it (`MemFs::crash`, a random policy: the
//! unsynced tail kept as after a process kill, or dropped, torn or garbled as after a power
//! cut of that machine). The restarted node opens that image, so nothing the kill interrupted
//! (queued commits, the clean close's syncs) reaches it. The old tree is only dropped after
//! the image is taken, into a filesystem nobody reads again.
//!
//! Each round a writer keeps replicating through the leader while one node (the leader half
//! the time) is killed after a random delay, the writer continues, and the node restarts from
//! its image. The writer checks linearizability as it goes: after each acknowledged write of
//! a counter, a read through the leader must return that value or a later one, never an older
//! one. At the end every acknowledged key must be on every node.
//!
//! Seeded: `STRATA_SEED=N` replays the kill points and policies (not the thread timing); the
//! seed is printed. `STRATA_ROUNDS` sets the number of rounds (default 10).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, Config, SnapshotPolicy};
use strata::TreeBuilder;
use strata_adapters::openraft::{KeyLayout, KvClient, KvConfig, KvRequest, Node, open};
use strata_vfs::{CrashPolicy, MemFs};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

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

/// A running node: its own runtime, the node, the filesystem its tree lives on, and the last
/// log index and applied index it found there when it started.
struct Running {
    runtime: Runtime,
    node: Node,
    disk: MemFs,
    recovered: (Option<u64>, Option<u64>),
}

impl Running {
    fn id(&self) -> u64 {
        self.node.id()
    }
}

/// Starts node `id` over `disk` on a runtime of its own, listening on `addr`.
async fn start(id: u64, disk: MemFs, addr: &str) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("node-{id}"))
        .enable_all()
        .build()
        .expect("node runtime");
    let tree = TreeBuilder::new().with_vfs(disk.clone()).build().expect("open tree");
    let recovered = recovered(&tree).await;
    let addr = addr.to_string();
    // Spawned on the node's runtime, so the listener, openraft's tasks and every connection
    // belong to it and die with it.
    let node = runtime.spawn(async move {
        // The port was just released by the killed node; binding may race its last socket.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        Node::start(id, listener, tree, config()).await.expect("start node")
    });
    let node = node.await.expect("node start task");
    Running { runtime, node, disk, recovered }
}

/// The last log index and the applied index a tree holds, read before openraft starts on it.
async fn recovered(tree: &strata::Tree) -> (Option<u64>, Option<u64>) {
    let (mut log, mut sm) = open::<KvConfig>(tree.clone(), KeyLayout::default());
    let last = log.get_log_state().await.expect("log state").last_log_id.map(|l| l.index);
    let (applied, _) = sm.applied_state().await.expect("applied state");
    (last, applied.map(|l| l.index))
}

/// Kills a node abruptly; returns its disk as the kill left it, and the last log index and
/// applied index the node had reported.
async fn kill(
    running: Running,
    policy: CrashPolicy,
    seed: u64,
) -> (MemFs, (Option<u64>, Option<u64>)) {
    let Running { runtime, node, disk, .. } = running;
    // Every task of the node is dropped at its next await and its sockets close; nothing of
    // openraft's shutdown runs. (Blocking: a runtime cannot be shut down from async code.)
    tokio::task::spawn_blocking(move || runtime.shutdown_timeout(DEADLINE))
        .await
        .expect("shut the node's runtime down");
    // The node can no longer answer anyone: cut its disk now. The tree is still open (a
    // background flush may be running, as in a live process); its clean close happens below,
    // into the old filesystem, after the image is taken.
    let image = disk.crash(policy, seed);
    let metrics = node.raft().metrics().borrow().clone();
    let at_kill = (metrics.last_log_index, metrics.last_applied.map(|l| l.index));
    tokio::task::spawn_blocking(move || drop(node)).await.expect("drop the killed node");
    (image, at_kill)
}

/// Stops a node cleanly (the end of the test).
async fn stop(running: Running) {
    let Running { runtime, node, .. } = running;
    runtime.spawn(node.stop()).await.expect("stop task").expect("stop");
    tokio::task::spawn_blocking(move || runtime.shutdown_timeout(DEADLINE))
        .await
        .expect("shut the node's runtime down");
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
fn cluster_survives_random_kills_and_restarts() {
    let seed = env_u64("STRATA_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let rounds = env_u64("STRATA_ROUNDS").unwrap_or(10);
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
    let mut addrs = BTreeMap::new();
    for id in 1..=3u64 {
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.insert(id, probe.local_addr().expect("addr").to_string());
    }
    let mut nodes = BTreeMap::new();
    for (&id, addr) in &addrs {
        nodes.insert(id, start(id, MemFs::new(), addr).await);
    }
    let members: BTreeMap<u64, BasicNode> =
        addrs.iter().map(|(&id, a)| (id, BasicNode::new(a))).collect();
    nodes[&1].node.raft().initialize(members).await.expect("initialize");

    let mut client = KvClient::new(addrs.clone());
    let mut acked = Acked::default();
    let mut next = 0u64;
    for round in 0..rounds {
        let leader = client.leader_hint().or_else(|| {
            nodes
                .values()
                .find(|n| n.node.raft().metrics().borrow().current_leader == Some(n.id()))
                .map(|n| n.id())
        });
        let victim = match leader {
            Some(l) if rng.below(2) == 0 => l,
            _ => 1 + rng.below(3),
        };
        let before = 5 + rng.below(40);
        let delay = Duration::from_millis(rng.below(300));
        let policy = CrashPolicy::ALL[rng.below(CrashPolicy::ALL.len() as u64) as usize];
        let crash_seed = rng.next();
        let role = if Some(victim) == leader { "the leader" } else { "a follower" };
        println!(
            "round {round}: {before} writes, node {victim} ({role}) killed after {delay:?}, its disk cut {policy:?}"
        );

        // The kill lands while the writer is mid-stream.
        let running = nodes.remove(&victim).expect("victim runs");
        let killer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            kill(running, policy, crash_seed).await
        });
        write_and_check(&mut client, &mut acked, next, before).await;
        next += before;
        let (image, at_kill) = killer.await.expect("killer");

        let during = 5 + rng.below(40);
        write_and_check(&mut client, &mut acked, next, during).await;
        next += during;

        let restarted = start(victim, image, &addrs[&victim]).await;
        println!(
            "round {round}: node {victim} restarted: log to {:?}, applied {:?} (at the kill: {:?}, {:?}); {} keys acked so far",
            restarted.recovered.0,
            restarted.recovered.1,
            at_kill.0,
            at_kill.1,
            acked.keys.len()
        );
        nodes.insert(victim, restarted);
    }
    write_and_check(&mut client, &mut acked, next, 10).await;
    assert!(!acked.keys.is_empty(), "nothing was acknowledged");

    // Every node catches up to the leader's applied index, then holds every acked key.
    let leader = client.leader_hint().expect("a leader answered");
    let target = nodes[&leader].node.raft().metrics().borrow().last_applied.map(|l| l.index);
    for running in nodes.values() {
        let node = &running.node;
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
    for (_, running) in nodes {
        stop(running).await;
    }
}
