//! A replicated key-value service: three Strata nodes on loopback, openraft between them.
//!
//! Each node has its own Strata directory and its own TCP port on 127.0.0.1; openraft's RPCs
//! and the client's calls travel as length-prefixed frames (strata_adapters::openraft::
//! network). The program runs the whole story by itself and checks it as it goes:
//!
//! 1. three nodes start and form a cluster; writes go through the leader;
//! 2. the followers replicate them and serve them from their own state;
//! 3. the leader is stopped, the other two elect a new one, and writes continue;
//! 4. the old leader restarts from its directory and catches up (by installing the leader's
//!    snapshot when the leader has purged the log entries it lacks);
//! 5. every acknowledged key is read back from every node.
//!
//! It prints the acknowledged writes per second and the failover time; it panics if a check
//! fails. `cargo run -p strata-examples --features replicated --example replicated`

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Config, SnapshotPolicy};
use strata::TreeBuilder;
use strata_adapters::openraft::{KvClient, KvRequest, Node};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writes before the failover, and after it.
const WRITES_BEFORE: usize = 2_000;
const WRITES_AFTER: usize = 1_000;
/// Concurrent clients; openraft batches their writes into shared log appends.
const CLIENTS: usize = 32;
/// How long any one step may take before the program gives up.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

fn raft_config() -> Result<Arc<Config>, Error> {
    let config = Config {
        cluster_name: "strata-replicated".into(),
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        // Snapshot often and keep no log behind it, so the restarted node needs a snapshot.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(500),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    };
    Ok(Arc::new(config.validate()?))
}

async fn start_node(id: u64, dir: &Path, addr: &str) -> Result<Node, Error> {
    let tree = TreeBuilder::new().with_path(dir.to_path_buf()).build()?;
    // A restarted node takes its old port back; give the old socket a moment to go.
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(e) if tries < 50 => {
                tries += 1;
                println!("node {id}: bind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(Node::start(id, listener, tree, raft_config()?).await?)
}

fn key(i: usize) -> Vec<u8> {
    format!("user:{i:06}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value of {i}").into_bytes()
}

/// Writes keys `range` through the leader from `CLIENTS` concurrent clients; returns the
/// acknowledged keys and the rate.
async fn write_keys(
    addrs: &BTreeMap<u64, String>,
    range: std::ops::Range<usize>,
) -> Result<(Vec<usize>, f64), Error> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let mut client = KvClient::new(addrs.clone());
        let mine: Vec<usize> = range.clone().filter(|i| i % CLIENTS == c).collect();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in mine {
                let command = KvRequest::Set { key: key(i), value: value(i) };
                client.write(command, STEP_DEADLINE).await?;
                acked.push(i);
            }
            Ok::<_, Error>(acked)
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done??);
    }
    let rate = acked.len() as f64 / started.elapsed().as_secs_f64();
    Ok((acked, rate))
}

async fn leader_of(nodes: &BTreeMap<u64, Node>) -> Result<u64, Error> {
    let until = Instant::now() + STEP_DEADLINE;
    while Instant::now() < until {
        for node in nodes.values() {
            let metrics = node.raft().metrics().borrow().clone();
            if metrics.current_leader == Some(node.id()) {
                return Ok(node.id());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err("no leader elected in time".into())
}

/// Waits until every node in `nodes` has applied at least `index`.
async fn wait_applied(nodes: &BTreeMap<u64, Node>, index: u64) -> Result<(), Error> {
    for node in nodes.values() {
        node.raft()
            .wait(Some(STEP_DEADLINE))
            .applied_index_at_least(Some(index), "replicated")
            .await
            .map_err(|e| format!("node {} did not apply {index}: {e}", node.id()))?;
    }
    Ok(())
}

/// Reads every acknowledged key from node `id`'s own state and checks its value.
async fn check_node(client: &mut KvClient, id: u64, acked: &BTreeSet<usize>) -> Result<(), Error> {
    for &i in acked {
        let got = client.read_local(id, &key(i)).await?;
        if got.as_deref() != Some(value(i).as_slice()) {
            return Err(format!("node {id}: key {i} reads {got:?}").into());
        }
    }
    Ok(())
}

fn last_index(nodes: &BTreeMap<u64, Node>, leader: u64) -> Result<u64, Error> {
    let node = nodes.get(&leader).ok_or("leader is not running")?;
    let applied = node.raft().metrics().borrow().last_applied;
    Ok(applied.map_or(0, |id| id.index))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let run_started = Instant::now();
    let scratch = tempfile::tempdir()?;
    let dirs: BTreeMap<u64, PathBuf> =
        (1..=3).map(|id| (id, scratch.path().join(format!("node-{id}")))).collect();

    // Ports are picked by the system once, then kept: a restarted node listens where the
    // others expect it.
    let mut addrs = BTreeMap::new();
    for &id in dirs.keys() {
        let probe = TcpListener::bind("127.0.0.1:0").await?;
        addrs.insert(id, probe.local_addr()?.to_string());
    }
    let mut nodes = BTreeMap::new();
    for (&id, dir) in &dirs {
        nodes.insert(id, start_node(id, dir, &addrs[&id]).await?);
        println!("node {id}: started on {} with its data in {}", addrs[&id], dir.display());
    }

    let members: BTreeMap<u64, BasicNode> =
        addrs.iter().map(|(&id, addr)| (id, BasicNode::new(addr))).collect();
    nodes[&1].raft().initialize(members).await?;
    let leader = leader_of(&nodes).await?;
    println!("cluster formed: node {leader} leads");

    // 1. Writes through the leader.
    let (acked, rate) = write_keys(&addrs, 0..WRITES_BEFORE).await?;
    let mut all_acked: BTreeSet<usize> = acked.into_iter().collect();
    println!("wrote {} keys through the leader: {rate:.0} acknowledged writes/s", all_acked.len());

    // 2. Reads on the followers once they have applied everything.
    wait_applied(&nodes, last_index(&nodes, leader)?).await?;
    let mut reader = KvClient::new(addrs.clone());
    for &id in nodes.keys().filter(|&&id| id != leader) {
        check_node(&mut reader, id, &all_acked).await?;
        println!("node {id} (follower): all {} keys read back from its own state", all_acked.len());
    }

    // 3. The leader goes away; a new one takes over and writes continue.
    let old = leader;
    let old_last_log = nodes[&old].raft().metrics().borrow().last_log_index.unwrap_or(0);
    let stopped_at = Instant::now();
    nodes.remove(&old).ok_or("leader missing")?.stop().await?;
    println!("node {old} (leader): stopped");
    let new_leader = leader_of(&nodes).await?;
    let elected = stopped_at.elapsed();
    let mut probe = KvClient::new(addrs.clone());
    probe
        .write(
            KvRequest::Set { key: key(WRITES_BEFORE), value: value(WRITES_BEFORE) },
            STEP_DEADLINE,
        )
        .await?;
    let failover = stopped_at.elapsed();
    all_acked.insert(WRITES_BEFORE);
    println!(
        "node {new_leader} leads after {} ms; first write acknowledged {} ms after the stop",
        elected.as_millis(),
        failover.as_millis()
    );
    let after = WRITES_BEFORE + 1..WRITES_BEFORE + 1 + WRITES_AFTER;
    let (acked, rate_after) = write_keys(&addrs, after).await?;
    all_acked.extend(acked);
    println!(
        "wrote {WRITES_AFTER} more keys with two nodes: {rate_after:.0} acknowledged writes/s"
    );

    // 4. The old leader restarts from its directory and catches up.
    let restarted_at = Instant::now();
    nodes.insert(old, start_node(old, &dirs[&old], &addrs[&old]).await?);
    println!("node {old}: restarted from {}", dirs[&old].display());
    wait_applied(&nodes, last_index(&nodes, new_leader)?).await?;
    let caught_up = restarted_at.elapsed();
    let leader_purged = nodes[&new_leader].raft().metrics().borrow().purged.map_or(0, |p| p.index);
    let how = if leader_purged > old_last_log {
        format!(
            "by the leader's snapshot: its log starts after {leader_purged}, node {old} stopped at {old_last_log}"
        )
    } else {
        "by log replication".to_string()
    };
    println!("node {old}: caught up in {} ms, {how}", caught_up.as_millis());

    // 5. Every acknowledged key, from every node; and linearizable reads via the leader.
    for &id in nodes.keys() {
        check_node(&mut reader, id, &all_acked).await?;
        println!("node {id}: all {} acknowledged keys read back", all_acked.len());
    }
    for i in [0, WRITES_BEFORE, WRITES_BEFORE + WRITES_AFTER] {
        let got = reader.read_leader(&key(i), STEP_DEADLINE).await?;
        assert_eq!(got, Some(value(i)), "linearizable read of key {i}");
    }
    println!("linearizable reads through the leader agree");

    for (_, node) in nodes {
        node.stop().await?;
    }
    println!(
        "figures: {rate:.0} writes/s with three nodes, {rate_after:.0} with two, failover {} ms (election {} ms); run took {:.1} s",
        failover.as_millis(),
        elected.as_millis(),
        run_started.elapsed().as_secs_f64()
    );
    Ok(())
}
