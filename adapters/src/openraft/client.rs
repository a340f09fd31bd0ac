//! [`KvClient`]: calls a replicated key-value service's nodes over the
//! [`network`](super::network) frames, finding the leader by itself.
//!
//! Writes and linearizable reads go to the leader: the client tries the node it last saw
//! leading, follows a `NotLeader` answer to the leader it names, and otherwise tries the
//! next node, until its deadline. A write whose answer was lost may have been applied; the
//! client retries it, so commands should be idempotent (sets and deletes are).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::raft::ClientWriteResponse;
use tokio::net::TcpStream;

use super::kv::{KvConfig, KvRequest};
use super::network::{
    CallError, NodeStatus, ReadConsistency, Request, Response, ServiceError, call,
};

/// A client of a cluster of nodes with known ids and addresses.
#[derive(Debug)]
pub struct KvClient {
    nodes: BTreeMap<u64, String>,
    connections: BTreeMap<u64, Option<TcpStream>>,
    leader: Option<u64>,
    call_timeout: Duration,
}

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// No node answered successfully before the deadline; the last failure.
    Deadline(String),
    /// The node asked answered with an error.
    Service(ServiceError),
    /// The node asked could not be reached.
    Call(CallError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Deadline(last) => write!(f, "deadline passed; last failure: {last}"),
            ClientError::Service(e) => write!(f, "{e:?}"),
            ClientError::Call(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl KvClient {
    /// A client of the nodes `(id, address)`.
    pub fn new(nodes: impl IntoIterator<Item = (u64, String)>) -> Self {
        KvClient {
            nodes: nodes.into_iter().collect(),
            connections: BTreeMap::new(),
            leader: None,
            call_timeout: Duration::from_secs(2),
        }
    }

    /// The node the client last saw leading.
    pub fn leader_hint(&self) -> Option<u64> {
        self.leader
    }

    async fn call_node(&mut self, id: u64, request: &Request) -> Result<Response, ClientError> {
        let Some(addr) = self.nodes.get(&id) else {
            return Err(ClientError::Deadline(format!("unknown node {id}")));
        };
        let stream = self.connections.entry(id).or_default();
        call(stream, addr, request, self.call_timeout).await.map_err(ClientError::Call)
    }

    /// Sends `request` to the leader until it answers or `deadline` passes; `answer` turns
    /// its response into a result or a service error.
    async fn call_leader<T>(
        &mut self,
        request: Request,
        deadline: Duration,
        answer: impl Fn(Response) -> Option<Result<T, ServiceError>>,
    ) -> Result<T, ClientError> {
        let until = Instant::now() + deadline;
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        let mut next = 0usize;
        let mut last = String::from("no attempt");
        while Instant::now() < until {
            let target = match self.leader {
                Some(id) => id,
                None => {
                    next += 1;
                    ids.get(next % ids.len().max(1)).copied().unwrap_or_default()
                }
            };
            match self.call_node(target, &request).await.map(&answer) {
                Ok(Some(Ok(value))) => {
                    self.leader = Some(target);
                    return Ok(value);
                }
                Ok(Some(Err(ServiceError::NotLeader { leader: Some((id, _)) })))
                    if id != target =>
                {
                    self.leader = Some(id);
                    continue;
                }
                Ok(Some(Err(e))) => last = format!("node {target}: {e:?}"),
                Ok(None) => last = format!("node {target}: mismatched response"),
                Err(e) => last = format!("node {target}: {e}"),
            }
            self.leader = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ClientError::Deadline(last))
    }

    /// Replicates `command` through the leader; returns once it is committed and applied.
    pub async fn write(
        &mut self,
        command: KvRequest,
        deadline: Duration,
    ) -> Result<ClientWriteResponse<KvConfig>, ClientError> {
        self.call_leader(Request::Write(command), deadline, |r| match r {
            Response::Write(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// A linearizable read of `key` through the leader.
    pub async fn read_leader(
        &mut self,
        key: &[u8],
        deadline: Duration,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let request = Request::Read { key: key.to_vec(), consistency: ReadConsistency::Leader };
        self.call_leader(request, deadline, |r| match r {
            Response::Read(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// Reads `key` from node `id`'s applied state, which may lag the leader.
    pub async fn read_local(
        &mut self,
        id: u64,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let request = Request::Read { key: key.to_vec(), consistency: ReadConsistency::Local };
        match self.call_node(id, &request).await? {
            Response::Read(r) => r.map_err(ClientError::Service),
            _ => Err(ClientError::Call(CallError::Mismatch)),
        }
    }

    /// Node `id`'s view of the cluster and of its log (any node answers, leader or not).
    pub async fn status(&mut self, id: u64) -> Result<NodeStatus, ClientError> {
        match self.call_node(id, &Request::Status).await? {
            Response::Status(status) => Ok(status),
            _ => Err(ClientError::Call(CallError::Mismatch)),
        }
    }
}
