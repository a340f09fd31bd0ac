//! A replicated key-value service: three Strata nodes on loopback, openraft between them, each
//! node its own operating-system process.
//!
//! The program is both the nodes and the story. Started plainly it is the story: it starts
//! three copies of itself as nodes (`replicated --node ID --dir D --listen ADDR --peers
//! 1=ADDR,2=ADDR,3=ADDR`), each with its own Strata directory and TCP port on 127.0.0.1, and
//! from then on talks to them only over TCP, with the same frames openraft's RPCs use
//! (strata_adapters::openraft::network). It runs the whole story and checks it as it goes:
//!
//! 1. three nodes start and form a cluster; writes go through the leader;
//! 2. the followers replicate them and serve them from their own state;
//! 3. while 32 clients keep writing, the leader's process is killed (SIGKILL: no shutdown, no
//!    flush, no close; writes are in flight), the other two elect a new leader and the
//!    clients' writes continue through it;
//! 4. the killed node starts again from its directory on its old port and catches up (by
//!    installing the leader's snapshot when the leader has purged the log entries it lacks);
//! 5. every acknowledged key is read back from every node's own state, and through the
//!    leader with linearizable reads.
//!
//! It prints the acknowledged writes per second, the failover time (from the SIGKILL to the
//! first write the new leader acknowledges) and the catch-up time; it fails if a check fails.
//! No node process outlives it: they are killed on every error path, and a node whose parent
//! is gone (its stdin closes) stops by itself.
//! `cargo run -p strata-examples --features replicated --example replicated`

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, Config, SnapshotPolicy};
use strata::TreeBuilder;
use strata_adapters::openraft::{KeyLayout, KvClient, KvConfig, KvRequest, Node, NodeStatus};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writes before the kill; written during it (the leader dies once `KILL_AFTER` of them are
/// acknowledged); written once the killed node is back.
const WRITES_BEFORE: usize = 2_000;
const WRITES_THROUGH_KILL: usize = 3_000;
const KILL_AFTER: usize = 500;
const WRITES_AFTER_RESTART: usize = 500;
/// Concurrent clients; openraft batches their writes into shared log appends.
const CLIENTS: usize = 32;
/// How long any one step may take before the program gives up.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.first().map(String::as_str) == Some("--node") {
        runtime.block_on(node_process(NodeArgs::parse(&args)?))
    } else {
        runtime.block_on(story())
    }
}

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

// ---------------------------------------------------------------------------------------------
// A node: one process.

/// A node process's command line.
struct NodeArgs {
    id: u64,
    dir: PathBuf,
    listen: String,
    peers: BTreeMap<u64, String>,
    initialize: bool,
}

impl NodeArgs {
    fn parse(args: &[String]) -> Result<NodeArgs, Error> {
        let mut id = None;
        let mut dir = None;
        let mut listen = None;
        let mut peers = BTreeMap::new();
        let mut initialize = false;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--node" => id = Some(value()?.parse::<u64>()?),
                "--dir" => dir = Some(PathBuf::from(value()?)),
                "--listen" => listen = Some(value()?.clone()),
                "--peers" => {
                    for peer in value()?.split(',') {
                        let (peer_id, addr) =
                            peer.split_once('=').ok_or_else(|| format!("bad peer {peer:?}"))?;
                        peers.insert(peer_id.parse::<u64>()?, addr.to_string());
                    }
                }
                "--initialize" => initialize = true,
                other => return Err(format!("unknown argument {other:?}").into()),
            }
        }
        Ok(NodeArgs {
            id: id.ok_or("--node ID missing")?,
            dir: dir.ok_or("--dir missing")?,
            listen: listen.ok_or("--listen missing")?,
            peers,
            initialize,
        })
    }
}

/// Runs one node until its stdin closes (the parent is done with it, or gone), then stops it
/// cleanly. A SIGKILL ends it anywhere in between.
async fn node_process(args: NodeArgs) -> Result<(), Error> {
    let id = args.id;
    let tree = TreeBuilder::new().with_path(args.dir.clone()).build()?;
    // A restarted node takes its old port back; the killed process's socket may linger.
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(&args.listen).await {
            Ok(listener) => break listener,
            Err(e) if tries < 100 => {
                tries += 1;
                if tries == 1 {
                    eprintln!("node {id}: bind {}: {e}; retrying", args.listen);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    // What the directory holds, read from storage before openraft starts on it.
    let (mut log, mut state_machine) =
        strata_adapters::openraft::open::<KvConfig>(tree.clone(), KeyLayout::default());
    let log_state = log.get_log_state().await?;
    let vote = log.read_vote().await?;
    let (applied, _) = state_machine.applied_state().await?;
    drop((log, state_machine));
    let node = Node::start(id, listener, tree, raft_config()?).await?;
    // The parent waits for this line (and reads the recovered log index from it).
    println!(
        "node {id}: pid {} serving on {}; recovered from {}: {} {}, applied {}, term {}",
        std::process::id(),
        args.listen,
        args.dir.display(),
        RECOVERED_LOG,
        show(log_state.last_log_id.map(|l| l.index)),
        show(applied.map(|l| l.index)),
        vote.map_or(0, |v| v.leader_id().get_term())
    );
    if args.initialize {
        let members: BTreeMap<u64, BasicNode> =
            args.peers.iter().map(|(&id, addr)| (id, BasicNode::new(addr))).collect();
        node.raft().initialize(members).await?;
    }
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The parent never writes; end of file means it closed the pipe or died.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let _ = closed_rx.await;
    node.stop().await?;
    println!("node {id}: stopped cleanly");
    Ok(())
}

/// The words before the recovered last log index in a node's first line.
const RECOVERED_LOG: &str = "log up to index";

fn show(index: Option<u64>) -> String {
    index.map_or_else(|| "-".to_string(), |i| i.to_string())
}

// ---------------------------------------------------------------------------------------------
// The story: the cluster of processes, seen from outside.

/// The node processes. Dropping it kills whatever still runs, so no error path leaks one.
struct Cluster {
    exe: PathBuf,
    dirs: BTreeMap<u64, PathBuf>,
    addrs: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// Starts node `id` as a process and waits until it serves; returns the index of the last
    /// log entry it recovered from its directory.
    async fn start(&mut self, id: u64, initialize: bool) -> Result<Option<u64>, Error> {
        let peers: Vec<String> =
            self.addrs.iter().map(|(id, addr)| format!("{id}={addr}")).collect();
        let dir = self.dirs.get(&id).ok_or_else(|| format!("no directory for node {id}"))?;
        let addr = self.addrs.get(&id).ok_or_else(|| format!("no address for node {id}"))?;
        let mut command = Command::new(&self.exe);
        command
            .arg("--node")
            .arg(id.to_string())
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg(addr)
            .arg("--peers")
            .arg(peers.join(","));
        if initialize {
            command.arg("--initialize");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        self.children.insert(id, child);

        // Forward the node's lines into the story, and hand them to us to wait on.
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("    | {line}");
                let _ = lines_tx.send(line);
            }
        });
        let ready = tokio::time::timeout(STEP_DEADLINE, async {
            while let Some(line) = lines.recv().await {
                if let Some((_, rest)) = line.split_once(RECOVERED_LOG) {
                    return Ok(rest.split(',').next().unwrap_or("").trim().parse::<u64>().ok());
                }
            }
            Err(format!("node {id} exited before serving"))
        });
        Ok(ready.await.map_err(|_| format!("node {id} did not start in time"))??)
    }

    /// SIGKILLs node `id`'s process and reaps it.
    fn kill(&mut self, id: u64) -> Result<u32, Error> {
        let mut child = self.children.remove(&id).ok_or("node not running")?;
        let pid = child.id();
        child.kill()?;
        child.wait()?;
        Ok(pid)
    }

    /// Closes every node's stdin, so each stops cleanly, and waits for them to exit.
    fn stop_all(&mut self) -> Result<(), Error> {
        for child in self.children.values_mut() {
            drop(child.stdin.take());
        }
        let until = Instant::now() + STEP_DEADLINE;
        while let Some((&id, child)) = self.children.iter_mut().next() {
            match child.try_wait()? {
                Some(status) if status.success() => {
                    self.children.remove(&id);
                }
                Some(status) => return Err(format!("node {id} exited with {status}").into()),
                None if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                None => return Err(format!("node {id} did not stop in time").into()),
            }
        }
        Ok(())
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("user:{i:06}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value of {i}").into_bytes()
}

/// One acknowledged write: which key, when, and which node acknowledged it as leader.
#[derive(Debug, Clone, Copy)]
struct Ack {
    key: usize,
    at: Instant,
    leader: Option<u64>,
}

/// What the writers share with the story while they run.
#[derive(Default)]
struct Progress {
    acks: Mutex<Vec<Ack>>,
    in_flight: AtomicUsize,
}

impl Progress {
    fn acked(&self) -> usize {
        self.acks.lock().map_or(0, |acks| acks.len())
    }
}

/// Writes keys `range` through the leader from `CLIENTS` concurrent clients, each key once
/// acknowledged (a client retries a write whose answer it lost, on whichever node leads).
async fn write_keys(
    addrs: &BTreeMap<u64, String>,
    range: Range<usize>,
    progress: Arc<Progress>,
) -> Result<(), Error> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let mut client = KvClient::new(addrs.clone());
        let mine: Vec<usize> = range.clone().filter(|i| i % CLIENTS == c).collect();
        let progress = progress.clone();
        tasks.spawn(async move {
            for i in mine {
                let command = KvRequest::Set { key: key(i), value: value(i) };
                progress.in_flight.fetch_add(1, Ordering::SeqCst);
                let written = client.write(command, STEP_DEADLINE).await;
                progress.in_flight.fetch_sub(1, Ordering::SeqCst);
                written.map_err(|e| format!("write of key {i}: {e}"))?;
                let ack = Ack { key: i, at: Instant::now(), leader: client.leader_hint() };
                progress.acks.lock().map_err(|_| "poisoned")?.push(ack);
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Acknowledged writes per second over `acks` (by their acknowledgement times).
fn rate(acks: &[Ack], since: Instant) -> f64 {
    let last = acks.iter().map(|a| a.at).max().unwrap_or(since);
    acks.len() as f64 / last.duration_since(since).as_secs_f64().max(1e-9)
}

async fn statuses(client: &mut KvClient, ids: &[u64]) -> Vec<NodeStatus> {
    let mut out = Vec::new();
    for &id in ids {
        if let Ok(status) = client.status(id).await {
            out.push(status);
        }
    }
    out
}

/// Waits until one of `ids` says it leads.
async fn leader_among(client: &mut KvClient, ids: &[u64]) -> Result<NodeStatus, Error> {
    let until = Instant::now() + STEP_DEADLINE;
    while Instant::now() < until {
        if let Some(leader) =
            statuses(client, ids).await.into_iter().find(|s| s.leader == Some(s.id))
        {
            return Ok(leader);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err("no leader elected in time".into())
}

/// Waits until every node in `ids` has applied everything the leader among them has applied.
async fn wait_caught_up(client: &mut KvClient, ids: &[u64]) -> Result<NodeStatus, Error> {
    let leader = leader_among(client, ids).await?;
    let until = Instant::now() + STEP_DEADLINE;
    for &id in ids {
        loop {
            let status = client.status(id).await.ok();
            if status.as_ref().is_some_and(|s| s.last_applied >= leader.last_applied) {
                break;
            }
            if Instant::now() > until {
                return Err(format!(
                    "node {id} did not apply up to {}: {status:?}",
                    show(leader.last_applied)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(leader)
}

/// Reads every key of `acked` from node `id`'s own state (or, with `id` `None`, through the
/// leader, linearizably) from 8 concurrent clients, and checks each value.
async fn check_keys(
    addrs: &BTreeMap<u64, String>,
    id: Option<u64>,
    acked: &BTreeSet<usize>,
) -> Result<(), Error> {
    const READERS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..READERS {
        let mut client = KvClient::new(addrs.clone());
        let mine: Vec<usize> = acked.iter().copied().filter(|i| i % READERS == r).collect();
        tasks.spawn(async move {
            for i in mine {
                let got = match id {
                    Some(id) => client.read_local(id, &key(i)).await?,
                    None => client.read_leader(&key(i), STEP_DEADLINE).await?,
                };
                if got.as_deref() != Some(value(i).as_slice()) {
                    let node = id.map_or("the leader".to_string(), |id| format!("node {id}"));
                    return Err(format!("{node}: acknowledged key {i} reads {got:?}").into());
                }
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

async fn story() -> Result<(), Error> {
    let run_started = Instant::now();
    let scratch = tempfile::tempdir()?;
    let dirs: BTreeMap<u64, PathBuf> =
        (1..=3).map(|id| (id, scratch.path().join(format!("node-{id}")))).collect();
    // Ports are picked by the system once, then kept: a restarted node listens where the
    // others expect it.
    let mut addrs = BTreeMap::new();
    for &id in dirs.keys() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        addrs.insert(id, probe.local_addr()?.to_string());
    }
    let mut cluster = Cluster {
        exe: std::env::current_exe()?,
        dirs: dirs.clone(),
        addrs: addrs.clone(),
        children: BTreeMap::new(),
    };
    let all: Vec<u64> = dirs.keys().copied().collect();
    for &id in &all {
        cluster.start(id, id == 1).await?;
    }
    let mut client = KvClient::new(addrs.clone());
    let leader = leader_among(&mut client, &all).await?.id;
    println!("cluster formed: node {leader} leads");

    // 1. Writes through the leader.
    let before = Arc::new(Progress::default());
    let started = Instant::now();
    write_keys(&addrs, 0..WRITES_BEFORE, before.clone()).await?;
    let acks = before.acks.lock().map_err(|_| "poisoned")?.clone();
    let rate_three = rate(&acks, started);
    let mut all_acked: BTreeSet<usize> = acks.iter().map(|a| a.key).collect();
    println!(
        "{} keys written through the leader by {CLIENTS} clients: {rate_three:.0} acknowledged writes/s",
        all_acked.len()
    );

    // 2. Reads on the followers once they have applied everything.
    let leader = wait_caught_up(&mut client, &all).await?.id;
    for &id in all.iter().filter(|&&id| id != leader) {
        check_keys(&addrs, Some(id), &all_acked).await?;
        println!("node {id} (follower): all {} keys read back from its own state", all_acked.len());
    }

    // 3. The leader is killed in the middle of a stream of writes.
    let through_kill = Arc::new(Progress::default());
    let range = WRITES_BEFORE..WRITES_BEFORE + WRITES_THROUGH_KILL;
    let writers = tokio::spawn({
        let (addrs, progress) = (addrs.clone(), through_kill.clone());
        async move { write_keys(&addrs, range, progress).await }
    });
    let until = Instant::now() + STEP_DEADLINE;
    while through_kill.acked() < KILL_AFTER {
        if writers.is_finished() || Instant::now() > until {
            writers.await??;
            return Err("the writers stopped before the kill".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let old = leader;
    let in_flight = through_kill.in_flight.load(Ordering::SeqCst);
    let acked_at_kill = through_kill.acked();
    let killed_at = Instant::now();
    let pid = cluster.kill(old)?;
    // Watch the survivors for the election, apart from the writers' own view.
    let survivors: Vec<u64> = all.iter().copied().filter(|&id| id != old).collect();
    let election = tokio::spawn({
        let mut watcher = KvClient::new(addrs.clone());
        async move {
            let leader = leader_among(&mut watcher, &survivors).await?;
            Ok::<_, Error>((leader, killed_at.elapsed()))
        }
    });
    println!(
        "node {old} (leader, pid {pid}): SIGKILL after {acked_at_kill} acknowledged writes of the stream, {in_flight} writes in flight"
    );
    let (elected, election_time) = election.await??;
    println!(
        "node {} elected leader of term {} {} ms after the SIGKILL",
        elected.id,
        elected.term,
        election_time.as_millis()
    );
    writers.await??;
    let acks = through_kill.acks.lock().map_err(|_| "poisoned")?.clone();
    let first_new = acks
        .iter()
        .filter(|a| a.at > killed_at && a.leader.is_some_and(|l| l != old))
        .min_by_key(|a| a.at)
        .copied()
        .ok_or("no write acknowledged by a new leader")?;
    let failover = first_new.at.duration_since(killed_at);
    let new_leader = first_new.leader.ok_or("no leader")?;
    let after_failover: Vec<Ack> = acks.iter().filter(|a| a.at > first_new.at).copied().collect();
    let rate_two = rate(&after_failover, first_new.at);
    all_acked.extend(acks.iter().map(|a| a.key));
    println!(
        "node {new_leader} leads: first write acknowledged {} ms after the SIGKILL; all {} writes of the stream acknowledged, {rate_two:.0}/s with two nodes",
        failover.as_millis(),
        acks.len()
    );

    // 4. The killed node restarts from its directory and catches up.
    let restarted_at = Instant::now();
    let recovered = cluster.start(old, false).await?;
    let leader_status = wait_caught_up(&mut client, &all).await?;
    let caught_up = restarted_at.elapsed();
    let how = match (leader_status.purged, recovered) {
        (Some(purged), Some(last)) if purged > last => format!(
            "by the leader's snapshot: its log starts after index {purged}, node {old} had entries up to {last}"
        ),
        (Some(purged), None) => format!(
            "by the leader's snapshot: its log starts after index {purged}, node {old} had none"
        ),
        _ => "by log replication".to_string(),
    };
    println!(
        "node {old}: caught up with leader {} {} ms after its restart (process start included), {how}",
        leader_status.id,
        caught_up.as_millis()
    );
    let again = Arc::new(Progress::default());
    let range = WRITES_BEFORE + WRITES_THROUGH_KILL
        ..WRITES_BEFORE + WRITES_THROUGH_KILL + WRITES_AFTER_RESTART;
    write_keys(&addrs, range, again.clone()).await?;
    all_acked.extend(again.acks.lock().map_err(|_| "poisoned")?.iter().map(|a| a.key));
    println!("{WRITES_AFTER_RESTART} more keys written with all three nodes up");

    // 5. Every acknowledged key, from every node; and linearizable reads via the leader.
    let expected = WRITES_BEFORE + WRITES_THROUGH_KILL + WRITES_AFTER_RESTART;
    if all_acked.len() != expected {
        return Err(format!("{} keys acknowledged, expected {expected}", all_acked.len()).into());
    }
    wait_caught_up(&mut client, &all).await?;
    for &id in &all {
        check_keys(&addrs, Some(id), &all_acked).await?;
        println!(
            "node {id}: all {} acknowledged keys read back from its own state",
            all_acked.len()
        );
    }
    check_keys(&addrs, None, &all_acked).await?;
    println!("linearizable reads through the leader: all {} keys agree", all_acked.len());

    cluster.stop_all()?;
    println!(
        "figures: {rate_three:.0} acknowledged writes/s with three nodes, {rate_two:.0} with two; failover {} ms (SIGKILL to first write acknowledged by the new leader; election {} ms); catch-up {} ms; run took {:.1} s",
        failover.as_millis(),
        election_time.as_millis(),
        caught_up.as_millis(),
        run_started.elapsed().as_secs_f64()
    );
    Ok(())
}
