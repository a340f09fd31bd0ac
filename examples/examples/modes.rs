//! The guide's transaction modes, unchanged apart from the crate name.

#![allow(unused_variables, unused_mut)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = strata::TreeBuilder::new().with_path("path/to/db".into()).build()?;
    use strata::Mode;
    // Read-write transaction (default)
    let mut txn = tree.begin()?;
    // Read-only transaction - prevents any writes
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    // Write-only transaction - optimized for writes, no reads allowed
    let mut txn = tree.begin_with_mode(Mode::WriteOnly)?;
    Ok(())
}
