//! Write batch encoder round trip: arbitrary ops (set, delete, versioned set and delete, value
//! pointers with and without a timestamp), a sequence number and a commit timestamp are
//! encoded with `WriteBatch`, parsed with `BatchView`, and must come back exactly: same header,
//! same ops in the same order, and the encoded length the batch announced.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::batch::{BatchOp, BatchView, WriteBatch};

#[derive(Debug, Arbitrary)]
enum Op {
    Set { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    SetAt { key: Vec<u8>, value: Vec<u8>, ts: u64 },
    DeleteAt { key: Vec<u8>, ts: u64 },
    SetPointer { key: Vec<u8>, pointer: Vec<u8>, ts: Option<u64> },
}

#[derive(Debug, Arbitrary)]
struct Input {
    seq: u64,
    commit_ts: u64,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let mut batch = WriteBatch::new();
    let mut want = Vec::new();
    for op in &input.ops {
        match op {
            Op::Set { key, value } => {
                batch.set(key, value);
                want.push(BatchOp::Set { key, value, ts: None });
            }
            Op::Delete { key } => {
                batch.delete(key);
                want.push(BatchOp::Delete { key, ts: None });
            }
            Op::SetAt { key, value, ts } => {
                batch.set_at(key, value, *ts);
                want.push(BatchOp::Set { key, value, ts: Some(*ts) });
            }
            Op::DeleteAt { key, ts } => {
                batch.delete_at(key, *ts);
                want.push(BatchOp::Delete { key, ts: Some(*ts) });
            }
            Op::SetPointer { key, pointer, ts } => {
                batch.set_pointer(key, pointer, *ts);
                want.push(BatchOp::SetPointer { key, pointer, ts: *ts });
            }
        }
    }
    batch.stamp(input.seq, input.commit_ts);
    assert_eq!(batch.stamped(), (input.seq, input.commit_ts));
    assert_eq!(batch.count() as usize, want.len());
    assert_eq!(batch.encoded_len(), batch.as_bytes().len());
    let view = BatchView::parse(batch.as_bytes()).expect("an encoded batch parses");
    assert_eq!(
        (view.seq, view.commit_ts, view.count as usize),
        (input.seq, input.commit_ts, want.len())
    );
    let got: Vec<BatchOp<'_>> = view.ops().map(|op| op.expect("an encoded op decodes")).collect();
    assert_eq!(got, want, "encode, decode gives the same ops");
    let again: Vec<BatchOp<'_>> = batch.ops().map(|op| op.expect("op")).collect();
    assert_eq!(again, want, "the batch's own iterator agrees");
});
