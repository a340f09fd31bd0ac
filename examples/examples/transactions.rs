//! The guide's transaction example, unchanged apart from the crate name.

use strata::TreeBuilder;
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = TreeBuilder::new().with_path("path/to/db".into()).build()?;
    // Write Transaction
    {
        let mut txn = tree.begin()?;
        // Set multiple key-value pairs
        txn.set(b"foo1", b"bar1")?;
        txn.set(b"foo2", b"bar2")?;
        // Commit changes (async)
        txn.commit().await?;
    }
    // Read Transaction
    {
        let txn = tree.begin()?;
        if let Some(value) = txn.get(b"foo1")? {
            println!("Value: {:?}", value);
        }
    }
    Ok(())
}
