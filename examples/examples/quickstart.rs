//! The guide's quick start, unchanged apart from the crate name.

#![allow(unused_imports)] // the guide imports `Tree` without naming it

use strata::{Tree, TreeBuilder};
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create a new LSM tree using TreeBuilder
    let tree = TreeBuilder::new().with_path("path/to/db".into()).build()?;
    // Start a read-write transaction
    let mut txn = tree.begin()?;
    // Set some key-value pairs
    txn.set(b"hello", b"world")?;
    // Commit the transaction (async)
    txn.commit().await?;
    Ok(())
}
