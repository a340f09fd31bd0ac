//! The guide's checkpoint and restore example, unchanged apart from the crate name.

#![allow(clippy::needless_borrows_for_generic_args)] // the guide passes `&checkpoint_dir`

use strata::TreeBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A checkpoint directory must be empty: clear the one a previous run left.
    let _ = std::fs::remove_dir_all("path/to/checkpoint");
    let tree = TreeBuilder::new().with_path("path/to/db".into()).build()?;
    // Insert some data
    let mut txn = tree.begin()?;
    txn.set(b"key1", b"value1")?;
    txn.set(b"key2", b"value2")?;
    txn.commit().await?;
    // Create checkpoint
    let checkpoint_dir = "path/to/checkpoint";
    let metadata = tree.create_checkpoint(&checkpoint_dir)?;
    println!("Checkpoint created at timestamp: {}", metadata.timestamp);
    println!("Sequence number: {}", metadata.sequence_number);
    println!("SSTable count: {}", metadata.sstable_count);
    println!("Total size: {} bytes", metadata.total_size);
    // Restore database to checkpoint state
    tree.restore_from_checkpoint(&checkpoint_dir)?;
    // Data is now restored to the checkpoint state
    // Any data written after checkpoint creation is discarded
    let txn = tree.begin()?;
    assert_eq!(txn.get(b"key1")?.as_deref(), Some(&b"value1"[..]));
    Ok(())
}
