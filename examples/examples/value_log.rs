//! The guide's value log (VLog) configuration, unchanged apart from the crate name. The guide
//! names `VLogChecksumLevel` without showing its import; here it is `strata::VLogChecksumLevel`.

use strata::{TreeBuilder, VLogChecksumLevel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = TreeBuilder::new()
        .with_path("path/to/db".into())
        .with_enable_vlog(true) // Enable VLog
        .with_vlog_max_file_size(256 * 1024 * 1024) // 256MB VLog file size
        .with_vlog_gc_discard_ratio(0.5) // Trigger GC at 50% garbage
        .with_vlog_checksum_verification(VLogChecksumLevel::Full)
        .build()?;

    // A large value goes to the value log and reads back through its pointer (not part of the
    // guide's code).
    let large = vec![7u8; 64 * 1024];
    let mut txn = tree.begin()?;
    txn.set(b"large", &large)?;
    txn.commit().await?;
    let txn = tree.begin()?;
    assert_eq!(txn.get(b"large")?.as_deref(), Some(&large[..]));
    println!("value log files: {}", tree.stats().vlog_files);
    Ok(())
}
