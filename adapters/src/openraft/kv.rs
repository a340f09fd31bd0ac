//! A ready-made key-value type configuration: [`KvConfig`] replicates [`KvRequest`]s (set and
//! delete a key) and answers each with a [`KvResponse`] (the value it replaced). The examples,
//! the cluster test and openraft's own suite run on it; an application with other commands
//! declares its own configuration and implements [`Command`] for its request type.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::state_machine::{Command, StateWriter};

/// A write to the replicated key-value map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRequest {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Deletes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// The answer to a [`KvRequest`]: the value the key held before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    /// The key's previous value, if it had one.
    pub previous: Option<Vec<u8>>,
}

openraft::declare_raft_types!(
    /// openraft types of the replicated key-value map: `u64` node ids, `BasicNode` addresses,
    /// snapshots as bytes in memory.
    pub KvConfig:
        D = KvRequest,
        R = KvResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

impl Command<KvResponse> for KvRequest {
    fn apply(&self, state: &mut StateWriter<'_>) -> strata::Result<KvResponse> {
        let (key, value) = match self {
            KvRequest::Set { key, value } => (key, Some(value)),
            KvRequest::Delete { key } => (key, None),
        };
        let previous = state.get(key)?.map(|v| v.to_vec());
        match value {
            Some(value) => state.set(key, value)?,
            None => state.delete(key)?,
        }
        Ok(KvResponse { previous })
    }
}
