//! The guide's range operations, unchanged apart from the crate name.

#![allow(clippy::unwrap_used)] // the guide unwraps each range item

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = strata::TreeBuilder::new().with_path("path/to/db".into()).build()?;
    {
        // Some data to scan (not part of the guide's fragment).
        let mut txn = tree.begin()?;
        for i in 0..12 {
            txn.set(format!("key{i}").as_bytes(), format!("value{i}").as_bytes())?;
        }
        txn.commit().await?;
    }
    // Range scan between keys (inclusive start, exclusive end)
    let mut txn = tree.begin()?;
    let range: Vec<_> = txn.range(b"key1", b"key5", None)?.map(|r| r.unwrap()).collect();
    // Keys-only scan (faster, doesn't fetch values when vlog is enabled)
    let keys: Vec<_> = txn.keys(b"key1", b"key5", None)?.map(|r| r.unwrap()).collect();
    // Range with limit
    let limited: Vec<_> = txn.range(b"key1", b"key9", Some(10))?.map(|r| r.unwrap()).collect();
    // Delete a key
    txn.delete(b"key1")?;
    txn.commit().await?;
    println!("range: {} entries, keys: {}, limited: {}", range.len(), keys.len(), limited.len());
    Ok(())
}
