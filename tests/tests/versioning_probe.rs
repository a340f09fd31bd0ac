#![allow(clippy::unwrap_used)]
use std::sync::Arc;
use strata::TreeBuilder;
use strata_vfs::MemFs;

#[test]
fn probe() {
    let mem = MemFs::new();
    let b = || TreeBuilder::new().with_vfs(mem.clone()).with_versioning(true, 0).with_clock(Arc::new(strata_core::LogicalClock::starting_at(1000)));
    let tree = b().build().unwrap();
    let mut t = tree.begin().unwrap();
    t.set(b"k", b"plain").unwrap();
    t.set_at_version(b"k", b"explicit", 1001).unwrap();
    t.set_at_version(b"z", b"zero", 0).unwrap();
    t.set_at_version(b"m", b"max", u64::MAX).unwrap();
    t.commit_blocking().unwrap();
    let mut t = tree.begin().unwrap();
    t.delete(b"d").unwrap();
    t.set_at_version(b"d", b"explicit", 1002).unwrap();
    t.commit_blocking().unwrap();
    let t = tree.begin().unwrap();
    println!("{:?}", t.scan_all_versions(b"", b"\xff", None).unwrap());
    println!("k {:?} d {:?} z {:?} z0 {:?} m {:?} mMAX {:?}", t.get(b"k").unwrap(), t.get(b"d").unwrap(), t.get(b"z").unwrap(), t.get_at_version(b"z", 0).unwrap(), t.get(b"m").unwrap(), t.get_at_version(b"m", u64::MAX).unwrap());
    println!("{:?}", t.range_at_version(b"", b"\xff", u64::MAX, None).unwrap().collect::<Vec<_>>());
    println!("{:?}", t.range_at_version(b"", b"\xff", 0, None).unwrap().collect::<Vec<_>>());
    drop(t);
    tree.close().unwrap();
    let tree = b().build().unwrap();
    let t = tree.begin().unwrap();
    println!("after reopen {:?}", t.scan_all_versions(b"", b"\xff", None).unwrap());
    drop(t);
    tree.maintenance_step(usize::MAX).unwrap();
    // older history in a newer source, then reopen without versioning
    let mut t = tree.begin().unwrap();
    t.set_at_version(b"h", b"new", 5000).unwrap();
    t.commit_blocking().unwrap();
    tree.close().unwrap();
    let tree = b().with_max_memtable_size(64*1024).build().unwrap();
    // force flush: write a lot
    for i in 0..200 { let mut t = tree.begin().unwrap(); t.set(format!("f{i}").as_bytes(), &[0u8; 1000]).unwrap(); t.commit_blocking().unwrap(); }
    tree.maintenance_step(usize::MAX).unwrap();
    let mut t = tree.begin().unwrap();
    t.set_at_version(b"h", b"old", 10).unwrap();
    t.commit_blocking().unwrap();
    println!("versioned get h {:?}", tree.begin().unwrap().get(b"h").unwrap());
    tree.close().unwrap();
    let tree = TreeBuilder::new().with_vfs(mem.clone()).build().unwrap();
    println!("unversioned get h {:?} range {:?}", tree.begin().unwrap().get(b"h").unwrap(), tree.begin().unwrap().range(b"h", b"i", None).unwrap().collect::<Vec<_>>());
}
