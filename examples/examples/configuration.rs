//! The guide's configuration section, unchanged apart from the crate name.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    use strata::TreeBuilder;
    let tree = TreeBuilder::new()
        .with_path("path/to/db".into()) // Database directory path
        .with_max_memtable_size(100 * 1024 * 1024) // 100MB memtable size
        .with_block_size(4096) // 4KB block size
        .with_level_count(7) // Number of levels in LSM tree
        .build()?;
    drop(tree);
    Ok(())
}
