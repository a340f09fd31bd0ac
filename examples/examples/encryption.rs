//! Encryption at rest: a database whose files hold only ciphertext, opened again with its key,
//! refused with another, and moved to a new key through a checkpoint.
//!
//! Run with `cargo run -p strata-examples --example encryption`.

use strata::vfs::{EncryptedFs, ErrorKind, StaticKey};
use strata::{Error, OsRandom, TreeBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("strata-encryption-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("db");
    // In production the key comes from a key-management service or a secure element
    // (implement `strata::vfs::KeyProvider`, pass it with `with_key_provider`).
    let key = [0x11u8; 32];
    let new_key = [0x22u8; 32];

    let tree = TreeBuilder::new().with_path(db.clone()).with_encryption_key(key).build()?;
    let mut txn = tree.begin()?;
    txn.set(b"card:4242", b"holder=Ada Lovelace")?;
    txn.commit_blocking()?;
    tree.close()?;
    drop(tree);

    // No file holds the plaintext.
    for entry in std::fs::read_dir(&db)? {
        let bytes = std::fs::read(entry?.path())?;
        assert!(!bytes.windows(12).any(|w| w == b"Ada Lovelace"));
    }
    println!("files in {}: ciphertext only", db.display());

    // Another key is refused at open, before any data is read.
    match TreeBuilder::new().with_path(db.clone()).with_encryption_key(new_key).build() {
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::WrongKey => {
            println!("wrong key refused: {source}");
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }

    // Key rotation: checkpoint into a directory encrypted under the new key, then use it.
    let tree = TreeBuilder::new().with_path(db).with_encryption_key(key).build()?;
    let rotated = dir.join("rotated");
    let dest = EncryptedFs::open(
        strata::fs::StdFs::open_dir(&rotated)?,
        &StaticKey::new(new_key),
        OsRandom,
    )?;
    tree.create_checkpoint_in(dest)?;
    tree.close()?;
    drop(tree);
    let tree = TreeBuilder::new().with_path(rotated).with_encryption_key(new_key).build()?;
    let value = tree.begin()?.get(b"card:4242")?;
    assert_eq!(value.as_deref(), Some(&b"holder=Ada Lovelace"[..]));
    println!(
        "after rotation to the new key: card:4242 = {}",
        String::from_utf8_lossy(value.as_deref().unwrap_or_default())
    );
    tree.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
