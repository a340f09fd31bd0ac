//! [`Node`]: one member of a replicated key-value service: openraft over a Strata tree,
//! answering [`network`](super::network) frames on a TCP listener.
//!
//! A node owns its tree. [`Node::stop`] shuts openraft down, drops every connection and
//! closes the tree, releasing its directory, so the same directory can start a node again:
//! that node recovers its log, vote and state machine from Strata and catches up from the
//! leader.

use std::sync::Arc;

use openraft::error::{CheckIsLeaderError, Fatal, RaftError};
use openraft::{Config, Raft};
use strata::Tree;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::keys::KeyLayout;
use super::kv::KvConfig;
use super::network::{
    NodeStatus, ReadConsistency, Request, Response, ServiceError, TcpNetwork, read_frame,
    write_frame,
};
use super::state_machine::StateReader;

/// A running node.
pub struct Node {
    id: u64,
    addr: String,
    raft: Raft<KvConfig>,
    reader: StateReader,
    tree: Tree,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).field("addr", &self.addr).finish()
    }
}

impl Node {
    /// Starts node `id` over `tree` (its keys under the default [`KeyLayout`]), serving on
    /// `listener`. The node recovers whatever `tree` holds.
    pub async fn start(
        id: u64,
        listener: TcpListener,
        tree: Tree,
        config: Arc<Config>,
    ) -> Result<Node, Fatal<u64>> {
        let addr = listener.local_addr().map_or_else(|_| String::new(), |a| a.to_string());
        let (log, sm) = super::open::<KvConfig>(tree.clone(), KeyLayout::default());
        let reader = sm.reader();
        let raft = Raft::new(id, config, TcpNetwork, log, sm).await?;
        let server = tokio::spawn(serve(listener, raft.clone(), reader.clone()));
        Ok(Node { id, addr, raft, reader, tree, server })
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The address this node listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// This node's openraft handle (metrics, membership changes, client writes).
    pub fn raft(&self) -> &Raft<KvConfig> {
        &self.raft
    }

    /// Reads of this node's applied state.
    pub fn reader(&self) -> &StateReader {
        &self.reader
    }

    /// Stops the node: openraft shuts down, the listener and every connection close, and
    /// the tree closes (syncing its WAL and releasing the directory).
    pub async fn stop(self) -> strata::Result<()> {
        self.server.abort();
        let _ = self.server.await;
        // A shutdown error only says openraft's task had already stopped.
        let _ = self.raft.shutdown().await;
        self.tree.close()
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, which aborts every
/// connection's task with it.
async fn serve(listener: TcpListener, raft: Raft<KvConfig>, reader: StateReader) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, raft.clone(), reader.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers one connection's frames in order until it closes or sends a bad frame.
async fn serve_connection(mut stream: TcpStream, raft: Raft<KvConfig>, reader: StateReader) {
    while let Ok(Some(request)) = read_frame::<_, Request>(&mut stream).await {
        let response = handle(request, &raft, &reader).await;
        if write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

async fn handle(request: Request, raft: &Raft<KvConfig>, reader: &StateReader) -> Response {
    match request {
        Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
        Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
        Request::InstallSnapshot(rpc) => {
            Response::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        Request::Write(command) => {
            Response::Write(raft.client_write(command).await.map_err(ServiceError::from_write))
        }
        Request::Read { key, consistency } => {
            Response::Read(read(raft, reader, &key, consistency).await)
        }
        Request::Status => Response::Status(status(raft)),
    }
}

fn status(raft: &Raft<KvConfig>) -> NodeStatus {
    let metrics = raft.metrics().borrow().clone();
    NodeStatus {
        id: metrics.id,
        term: metrics.current_term,
        leader: metrics.current_leader,
        last_log_index: metrics.last_log_index,
        last_applied: metrics.last_applied.map(|l| l.index),
        purged: metrics.purged.map(|l| l.index),
        snapshot: metrics.snapshot.map(|l| l.index),
    }
}

async fn read(
    raft: &Raft<KvConfig>,
    reader: &StateReader,
    key: &[u8],
    consistency: ReadConsistency,
) -> Result<Option<Vec<u8>>, ServiceError> {
    if consistency == ReadConsistency::Leader {
        raft.ensure_linearizable().await.map_err(|e| match e {
            RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
                ServiceError::NotLeader { leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)) }
            }
            other => ServiceError::Failed(other.to_string()),
        })?;
    }
    match reader.get(key) {
        Ok(value) => Ok(value.map(|v| v.to_vec())),
        Err(e) => Err(ServiceError::Failed(e.to_string())),
    }
}
