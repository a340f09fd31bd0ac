//! Version edits: any bytes decode or fail cleanly; an accepted edit round-trips.
//!
//! Seeds: `fuzz/seeds/manifest_edit/` (a clean-close edit whose WAL length understates the
//! segment, crafted by `tests/tests/crafted_files.rs`; the length itself is checked at replay,
//! see the `wal_replay` target).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::manifest::VersionEdit;

fuzz_target!(|data: &[u8]| {
    if let Ok(edit) = VersionEdit::decode(data) {
        let again = VersionEdit::decode(&edit.encode_to_vec()).expect("re-encoded edit decodes");
        assert_eq!(again, edit);
    }
});
