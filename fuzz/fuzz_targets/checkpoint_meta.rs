//! Checkpoint metadata: any bytes decode or fail cleanly; an accepted file round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::checkpoint::CheckpointMeta;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = CheckpointMeta::decode(data) {
        assert_eq!(meta.encode(), data);
    }
});
