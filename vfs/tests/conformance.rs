//! The conformance suite against the in-crate filesystems.

use strata_vfs::{
    AppendWrite, CrashPolicy, ErrorKind, FaultFs, FaultOp, FaultRule, FileKind, MemFs, Vfs,
    conformance,
};

#[test]
fn memfs_passes() {
    conformance::run_all(MemFs::new);
}

#[test]
fn memfs_passes_with_odd_sector_sizes() {
    conformance::run_all(|| MemFs::with_sector_size(1));
    conformance::run_all(|| MemFs::with_sector_size(4096));
}

#[test]
fn faultfs_without_rules_passes() {
    conformance::run_all(|| FaultFs::new(MemFs::new()));
}

#[test]
fn stacked_faultfs_passes() {
    conformance::run_all(|| FaultFs::new(FaultFs::new(MemFs::new())));
}

#[test]
fn crash_images_pass() {
    // A crash image is a full filesystem too.
    conformance::run_all(|| {
        let fs = MemFs::new();
        fs.write_whole("junk", b"x").expect("write");
        fs.remove("junk").expect("remove");
        fs.crash(CrashPolicy::KeepUnsynced, 1)
    });
}

#[test]
fn every_check_is_listed_once() {
    let checks = conformance::checks::<MemFs>();
    assert_eq!(checks.len(), 14);
    let mut names: Vec<&str> = checks.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), checks.len());
    for (_, check) in checks {
        check(&MemFs::new());
    }
}

#[test]
#[should_panic(expected = "vfs conformance check `missing_file_not_found` failed")]
fn a_broken_vfs_fails_naming_the_check() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::fail(FaultOp::Size).kind(ErrorKind::Interrupted));
    conformance::missing_file_not_found(&fs);
}

#[test]
#[should_panic(expected = "vfs conformance check `large_appends_read_back` failed")]
fn corrupted_reads_fail_the_suite() {
    let fs = FaultFs::new(MemFs::new());
    fs.add_rule(FaultRule::flip_bit_on_read("vlog").nth(3));
    conformance::large_appends_read_back(&fs);
}

/// A Vfs without hard links must answer `Unsupported`, which the suite accepts.
#[derive(Debug, Clone, Default)]
struct NoLinks(MemFs);

impl Vfs for NoLinks {
    type Read = <MemFs as Vfs>::Read;
    type Write = <MemFs as Vfs>::Write;
    type Lock = <MemFs as Vfs>::Lock;
    fn caps(&self) -> strata_vfs::Caps {
        let c = self.0.caps();
        strata_vfs::Caps::new(false, c.dir_sync, c.sector_size)
    }
    fn create(&self, name: &str, kind: FileKind) -> strata_vfs::Result<Self::Write> {
        self.0.create(name, kind)
    }
    fn open(&self, name: &str, kind: FileKind) -> strata_vfs::Result<Self::Read> {
        self.0.open(name, kind)
    }
    fn remove(&self, name: &str) -> strata_vfs::Result<()> {
        self.0.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> strata_vfs::Result<()> {
        self.0.rename(from, to)
    }
    fn sync_dir(&self) -> strata_vfs::Result<()> {
        self.0.sync_dir()
    }
    fn list(&self) -> strata_vfs::Result<Vec<String>> {
        self.0.list()
    }
    fn size(&self, name: &str) -> strata_vfs::Result<u64> {
        self.0.size(name)
    }
    fn lock(&self, name: &str) -> strata_vfs::Result<Self::Lock> {
        self.0.lock(name)
    }
}

#[test]
fn vfs_without_links_passes() {
    conformance::run_all(NoLinks::default);
    conformance::run_all(|| FaultFs::new(NoLinks::default()));
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemFs>();
    assert_send_sync::<<MemFs as Vfs>::Read>();
    assert_send_sync::<<MemFs as Vfs>::Write>();
    assert_send_sync::<<MemFs as Vfs>::Lock>();
    assert_send_sync::<FaultFs<MemFs>>();
    assert_send_sync::<<FaultFs<MemFs> as Vfs>::Read>();
    assert_send_sync::<<FaultFs<MemFs> as Vfs>::Write>();
}

#[test]
fn concurrent_readers_and_a_writer() {
    let fs = MemFs::new();
    let mut w = fs.create("shared.log", FileKind::Wal).expect("create");
    w.append(&[7u8; 4096]).expect("append");
    std::thread::scope(|s| {
        for _ in 0..4 {
            let fs = fs.clone();
            s.spawn(move || {
                let r = fs.open("shared.log", FileKind::Wal).expect("open");
                let mut buf = [0u8; 64];
                for i in 0..1000u64 {
                    strata_vfs::RandomRead::read_exact_at(&r, (i * 64) % 4096, &mut buf)
                        .expect("read");
                    assert!(buf.iter().all(|&b| b == 7));
                }
            });
        }
        for _ in 0..100 {
            w.append(&[7u8; 64]).expect("append");
        }
    });
    assert_eq!(fs.size("shared.log").expect("size"), 4096 + 6400);
}
