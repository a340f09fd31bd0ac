//! The guide's ReadOptions section, unchanged apart from the crate name. Its point-in-time
//! read needs versioning, so the tree it reads is opened with versioning on.

#![allow(clippy::unwrap_used)] // the guide unwraps each range item

use strata::ReadOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A versioned database with some data to read (not part of the guide's code). Other
    // examples leave a database without versioning at the same path, so start afresh.
    let _ = std::fs::remove_dir_all("path/to/db");
    let tree = strata::TreeBuilder::new()
        .with_path("path/to/db".into())
        .with_versioning(true, 0)
        .build()?;
    {
        let mut txn = tree.begin()?;
        for word in ["apple", "banana", "cherry", "kiwi", "mango", "zebra", "zzz"] {
            // As of timestamp 12000 ...
            txn.set_at_version(word.as_bytes(), format!("{word} (old)").as_bytes(), 12_000)?;
            // ... and now.
            txn.set(word.as_bytes(), format!("{word} (new)").as_bytes())?;
        }
        txn.commit().await?;
    }

    let tx = tree.begin()?;
    // Range query with limit and bounds
    let options = ReadOptions::new()
        .with_limit(Some(10))
        .with_iterate_lower_bound(Some(b"a".to_vec()))
        .with_iterate_upper_bound(Some(b"z".to_vec()));
    let results: Vec<_> = tx.range_with_options(&options)?.map(|r| r.unwrap()).collect();
    // Keys-only iteration (faster, doesn't fetch values from disk when vlog is enabled)
    let options = ReadOptions::new()
        .with_keys_only(true)
        .with_limit(Some(100))
        .with_iterate_lower_bound(Some(b"a".to_vec()))
        .with_iterate_upper_bound(Some(b"z".to_vec()));
    let keys: Vec<_> = tx.keys_with_options(&options)?.map(|r| r.unwrap()).collect();
    // Point-in-time read with options (requires versioning enabled)
    let options = ReadOptions::new()
        .with_timestamp(Some(12345))
        .with_limit(Some(50))
        .with_iterate_lower_bound(Some(b"a".to_vec()))
        .with_iterate_upper_bound(Some(b"z".to_vec()));
    let historical_data: Vec<_> = tx.range_with_options(&options)?.map(|r| r.unwrap()).collect();

    // What the reads returned (not part of the guide's code).
    println!("current: {results:?}");
    println!("keys: {keys:?}");
    println!("at timestamp 12345: {historical_data:?}");
    Ok(())
}
