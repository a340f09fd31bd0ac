//! A small TCP transport for [`KvConfig`] nodes: openraft's RPCs and the key-value service's
//! client calls, as length-prefixed frames on one TCP connection per peer.
//!
//! A frame is a `u32` little-endian length then that many bytes of serde JSON (a
//! [`Request`] from the caller, a [`Response`] from the node). Frames over
//! [`MAX_FRAME_LEN`] are refused before anything is allocated for them. Each connection
//! carries one call at a time; a failed call drops the connection and the next one dials
//! again. This is the transport of the example and the cluster test, kept small on purpose:
//! it has no TLS, no authentication and no pipelining.

use std::io;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::kv::{KvConfig, KvRequest};

/// The largest frame either side accepts.
pub const MAX_FRAME_LEN: usize = 64 << 20;

/// Writes `message` as one frame.
pub async fn write_frame<W, T>(stream: &mut W, message: &T) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame over MAX_FRAME_LEN"));
    }
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<R, T>(stream: &mut R) -> io::Result<Option<T>>
where
    R: tokio::io::AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame over MAX_FRAME_LEN"));
    }
    // Grows with the bytes that arrive, not with what the length field claims.
    let mut body = Vec::new();
    (&mut *stream).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadConsistency {
    /// Linearizable: only the leader answers, after confirming with a quorum that it still
    /// leads and after applying every entry committed before the read.
    Leader,
    /// Whatever this node has applied so far (may lag the leader).
    Local,
}

/// A call to a node.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// openraft: replicate entries or heartbeat.
    AppendEntries(AppendEntriesRequest<KvConfig>),
    /// openraft: ask for a vote.
    Vote(VoteRequest<u64>),
    /// openraft: one chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<KvConfig>),
    /// Client: replicate a write (the leader only).
    Write(KvRequest),
    /// Client: read a key.
    Read {
        /// The key.
        key: Vec<u8>,
        /// How fresh the answer must be.
        consistency: ReadConsistency,
    },
    /// Client: where this node stands in the log (any node answers).
    Status,
}

/// A node's view of the cluster and of its own log, from its openraft metrics: what a client
/// outside the node's process needs to find the leader and to wait for replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node answering.
    pub id: u64,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of, if any.
    pub leader: Option<u64>,
    /// The index of the last entry in its log (`None` while the log is empty).
    pub last_log_index: Option<u64>,
    /// The index of the last entry applied to its state machine.
    pub last_applied: Option<u64>,
    /// The index of the last entry purged from its log (its log starts after it).
    pub purged: Option<u64>,
    /// The last index its latest snapshot covers.
    pub snapshot: Option<u64>,
}

/// Why a client call failed on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// This node does not lead; `leader` is the one it knows of, if any.
    NotLeader {
        /// The leader's id and address, when known.
        leader: Option<(u64, String)>,
    },
    /// Anything else, with its message.
    Failed(String),
}

/// A node's answer to a [`Request`] of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// See [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// See [`Request::Vote`].
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// See [`Request::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// See [`Request::Write`].
    Write(Result<ClientWriteResponse<KvConfig>, ServiceError>),
    /// See [`Request::Read`].
    Read(Result<Option<Vec<u8>>, ServiceError>),
    /// See [`Request::Status`].
    Status(NodeStatus),
}

impl ServiceError {
    /// The error of a failed client write.
    pub fn from_write(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ServiceError::NotLeader { leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)) }
            }
            other => ServiceError::Failed(other.to_string()),
        }
    }
}

/// One call over a fresh or kept connection, bounded by `timeout`.
pub async fn call(
    stream: &mut Option<TcpStream>,
    addr: &str,
    request: &Request,
    timeout: Duration,
) -> Result<Response, CallError> {
    let exchange = async {
        if stream.is_none() {
            let s = TcpStream::connect(addr).await.map_err(CallError::Unreachable)?;
            s.set_nodelay(true).map_err(CallError::Unreachable)?;
            *stream = Some(s);
        }
        let Some(s) = stream.as_mut() else {
            return Err(CallError::Unreachable(io::Error::other("no connection")));
        };
        write_frame(s, request).await.map_err(CallError::Network)?;
        match read_frame(s).await.map_err(CallError::Network)? {
            Some(response) => Ok(response),
            None => Err(CallError::Network(io::Error::from(io::ErrorKind::ConnectionAborted))),
        }
    };
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Network(io::Error::from(io::ErrorKind::TimedOut))),
    };
    if result.is_err() {
        // The connection may hold half a frame: never reuse it.
        *stream = None;
    }
    result
}

/// Why [`call`] got no answer.
#[derive(Debug)]
pub enum CallError {
    /// Could not connect.
    Unreachable(io::Error),
    /// Connected, but the exchange failed or timed out.
    Network(io::Error),
    /// The node answered with a response of another kind.
    Mismatch,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => write!(f, "unreachable: {e}"),
            CallError::Network(e) => write!(f, "network: {e}"),
            CallError::Mismatch => f.write_str("response does not match the request"),
        }
    }
}

impl std::error::Error for CallError {}

impl<E: std::error::Error> From<CallError> for RPCError<u64, BasicNode, E> {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

/// openraft's network factory: one [`PeerConnection`] per target node.
#[derive(Debug, Clone, Default)]
pub struct TcpNetwork;

impl RaftNetworkFactory<KvConfig> for TcpNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerConnection {
        PeerConnection { target, addr: node.addr.clone(), stream: None }
    }
}

/// The connection from this node to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    target: u64,
    addr: String,
    stream: Option<TcpStream>,
}

impl PeerConnection {
    async fn rpc(&mut self, request: Request, option: &RPCOption) -> Result<Response, CallError> {
        call(&mut self.stream, &self.addr, &request, option.hard_ttl()).await
    }
}

impl RaftNetwork<KvConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<KvConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.rpc(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(CallError::Mismatch.into()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<KvConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        match self.rpc(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(CallError::Mismatch.into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.rpc(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(CallError::Mismatch.into()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A down peer is retried every 100 ms rather than openraft's 500 ms, so a restarted
        // node catches up soon after it listens again.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_errors() {
        run(async {
            let mut wire = Vec::new();
            write_frame(&mut wire, &ReadConsistency::Local).await.expect("write");
            assert_eq!(wire, b"\x07\x00\x00\x00\"Local\"");
            let got: Option<ReadConsistency> =
                read_frame(&mut wire.as_slice()).await.expect("read");
            assert_eq!(got, Some(ReadConsistency::Local));

            let empty: Option<ReadConsistency> = read_frame(&mut &b""[..]).await.expect("eof");
            assert_eq!(empty, None);
            let mut short = &wire[..wire.len() - 1];
            assert!(read_frame::<_, ReadConsistency>(&mut short).await.is_err(), "short body");
            let huge = (MAX_FRAME_LEN as u32 + 1).to_le_bytes();
            assert!(read_frame::<_, ReadConsistency>(&mut &huge[..]).await.is_err(), "over limit");
            let claims_max = (MAX_FRAME_LEN as u32).to_le_bytes();
            assert!(read_frame::<_, ReadConsistency>(&mut &claims_max[..]).await.is_err());
            let garbage = b"\x02\x00\x00\x00{]";
            assert!(read_frame::<_, ReadConsistency>(&mut &garbage[..]).await.is_err(), "bad json");
        });
    }
}
