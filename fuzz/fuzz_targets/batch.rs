//! The write batch decoder must accept or reject any bytes without panicking, and a batch it
//! accepts must re-encode to a batch that decodes to the same ops. (Not necessarily the same
//! bytes: the decoder accepts varints with redundant continuation bytes, which the encoder
//! never writes.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::batch::{BatchOp, BatchView, WriteBatch};
use strata_core::vlog::format::{MAX_RECORD_LEN, ValuePointer};

fuzz_target!(|data: &[u8]| {
    let Ok(view) = BatchView::parse(data) else { return };
    let mut again = WriteBatch::new();
    for op in view.ops() {
        let op: BatchOp<'_> = op.expect("a parsed batch's ops decode");
        // What recovery does with a pointer op: decode it, never trusting a length beyond
        // what a record can be (seed: fuzz/seeds/batch/oversized_pointer).
        if let BatchOp::SetPointer { pointer, .. } = op
            && let Ok(ptr) = ValuePointer::decode(pointer)
        {
            assert!(ptr.len <= MAX_RECORD_LEN, "a decoded pointer is capped");
        }
        again.push_op(&op);
    }
    again.stamp(view.seq, view.commit_ts);
    let reparsed = BatchView::parse(again.as_bytes()).expect("a re-encoded batch parses");
    assert_eq!(
        (reparsed.seq, reparsed.commit_ts, reparsed.count),
        (view.seq, view.commit_ts, view.count)
    );
    let a: Vec<_> = view.ops().map(|o| o.expect("op")).collect();
    let b: Vec<_> = reparsed.ops().map(|o| o.expect("op")).collect();
    assert_eq!(a, b, "decode, encode, decode gives the same ops");
});
