//! The guide's durability section, unchanged apart from the crate name.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = strata::TreeBuilder::new().with_path("path/to/db".into()).build()?;
    use strata::Durability;
    let mut txn = tree.begin()?;
    // Eventual durability (default) - faster, data written to OS buffer
    txn.set_durability(Durability::Eventual);
    // Immediate durability - slower, fsync before commit returns
    txn.set_durability(Durability::Immediate);
    txn.set(b"key", b"value")?;
    txn.commit().await?;
    Ok(())
}
