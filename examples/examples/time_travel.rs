//! The guide's time-travel section (versioning configuration, writing data with explicit
//! timestamps, querying data as it existed, getting all historical versions), unchanged apart
//! from the crate name.

#![allow(clippy::unwrap_used)] // the guide unwraps reads and range items

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Start from an empty directory: other examples leave a database without versioning at
    // the same path (not part of the guide's code).
    let _ = std::fs::remove_dir_all("path/to/db");

    use strata::{Options, TreeBuilder};
    let opts = Options::new().with_path("path/to/db".into()).with_versioning(true, 0); // retention_ns = 0 means no retention limit
    let tree = TreeBuilder::with_options(opts).build()?;
    // Write data with explicit timestamps
    let mut tx = tree.begin()?;
    tx.set_at_version(b"key1", b"value_v1", 100)?;
    tx.commit().await?;
    // Update with a new version at a later timestamp
    let mut tx = tree.begin()?;
    tx.set_at_version(b"key1", b"value_v2", 200)?;
    tx.commit().await?;

    let tx = tree.begin()?;
    // Get value at specific timestamp
    let value = tx.get_at_version(b"key1", 100)?;
    assert_eq!(value.unwrap().as_ref(), b"value_v1");
    // Get value at later timestamp
    let value = tx.get_at_version(b"key1", 200)?;
    assert_eq!(value.unwrap().as_ref(), b"value_v2");
    // Range query at specific timestamp
    let range: Vec<_> =
        tx.range_at_version(b"key1", b"key9", 150, None)?.map(|r| r.unwrap()).collect();
    // Keys-only query at timestamp (faster, when vlog enabled)
    let keys: Vec<_> =
        tx.keys_at_version(b"key1", b"key9", 150, None)?.map(|r| r.unwrap()).collect();

    let tx = tree.begin()?;
    let versions = tx.scan_all_versions(b"key1", b"key2", None)?;
    for (key, value, timestamp, is_tombstone) in versions {
        if is_tombstone {
            println!("Key {:?} deleted at timestamp {}", key, timestamp);
        } else {
            println!("Key {:?} = {:?} at timestamp {}", key, value, timestamp);
        }
    }

    // What the reads at 150 returned (not part of the guide's code).
    println!("range at 150: {range:?}");
    println!("keys at 150: {keys:?}");
    Ok(())
}
