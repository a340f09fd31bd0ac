//! `EncryptedFs`: the conformance suite, the on-disk prefix (the worked example of
//! `docs/format/encryption.md`), key checks, crash images and injected faults.

#![cfg(feature = "encryption")]

use std::sync::atomic::{AtomicU64, Ordering};

use strata_vfs::encrypted::{MARKER_NAME, PREFIX_LEN};
use strata_vfs::{
    AppendWrite, CrashPolicy, EncryptedFs, ErrorKind, FaultFs, FaultOp, FaultRule, FileKind, MemFs,
    RandomRead, RandomSource, StaticKey, SyncMode, Vfs, conformance,
};

const KEY: [u8; 32] = [0x42; 32];
const OTHER_KEY: [u8; 32] = [0x24; 32];

/// Deterministic nonces for tests (a real host uses its OS or hardware RNG): SplitMix64 over a
/// counter, so every file still gets a different nonce.
#[derive(Debug)]
struct TestRandom(AtomicU64);

impl TestRandom {
    fn new(seed: u64) -> Self {
        TestRandom(AtomicU64::new(seed))
    }
}

impl RandomSource for TestRandom {
    fn fill(&self, buf: &mut [u8]) -> strata_vfs::Result<()> {
        for chunk in buf.chunks_mut(8) {
            let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// Nonce bytes 0, 1, ..., 23 for the first file, as in the worked example.
#[derive(Debug)]
struct CountingRandom;

impl RandomSource for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> strata_vfs::Result<()> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8;
        }
        Ok(())
    }
}

fn enc<V: Vfs>(inner: V, key: [u8; 32]) -> strata_vfs::Result<EncryptedFs<V>> {
    EncryptedFs::open(inner, &StaticKey::new(key), TestRandom::new(7))
}

fn write_file<V: Vfs>(fs: &V, name: &str, data: &[u8]) {
    let mut w = fs.create(name, FileKind::Table).expect("create");
    w.append(data).expect("append");
    w.sync(SyncMode::Data).expect("sync");
    fs.sync_dir().expect("sync_dir");
}

fn read_file<V: Vfs>(fs: &V, name: &str) -> Vec<u8> {
    let r = fs.open(name, FileKind::Table).expect("open");
    let mut buf = vec![0u8; r.len().expect("len") as usize];
    r.read_exact_at(0, &mut buf).expect("read");
    buf
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn conformance_suite_passes_on_encrypted_memfs() {
    conformance::run_all(|| enc(MemFs::new(), KEY).expect("open"));
    conformance::run_all(|| enc(MemFs::with_sector_size(1), KEY).expect("open"));
    conformance::run_all(|| enc(FaultFs::new(MemFs::new()), KEY).expect("open"));
}

/// The worked example of docs/format/encryption.md, byte for byte.
#[test]
fn worked_example_matches_the_format_page() {
    let mem = MemFs::new();
    let fs =
        EncryptedFs::open(mem.clone(), &StaticKey::new([0x42; 32]), CountingRandom).expect("open");
    write_file(&fs, "000001.sst", b"hello, world");
    let raw = mem.read_all("000001.sst").expect("raw");
    assert_eq!(raw.len(), PREFIX_LEN + 12);
    assert_eq!(fs.size("000001.sst").expect("size"), 12);
    assert_eq!(hex(&raw[..8]), hex(b"STRATAEC"), "magic");
    assert_eq!(hex(&raw[8..16]), "0101000000000000", "version, cipher, reserved");
    assert_eq!(hex(&raw[16..40]), "000102030405060708090a0b0c0d0e0f1011121314151617", "nonce");
    assert_eq!(hex(&raw[40..48]), "a0c6ca4ae7f7a8f8", "key check value");
    assert_eq!(hex(&raw[48..]), "e499e88ba88de7b79d14c822", "ciphertext of `hello, world`");
    // The marker is a prefix alone, with the same nonce (the counting source restarts).
    let marker = mem.read_all(MARKER_NAME).expect("marker");
    assert_eq!(marker, raw[..PREFIX_LEN]);
    assert_eq!(read_file(&fs, "000001.sst"), b"hello, world");
}

#[test]
fn ciphertext_holds_no_plaintext_and_reads_decrypt_exact_ranges() {
    let mem = MemFs::new();
    let fs = enc(mem.clone(), KEY).expect("open");
    let secret = b"TOP-SECRET-VALUE-0123456789";
    let mut data = Vec::new();
    for i in 0..500u32 {
        data.extend_from_slice(secret);
        data.extend_from_slice(&i.to_le_bytes());
    }
    let mut w = fs.create("000002.vlog", FileKind::ValueLog).expect("create");
    for piece in data.chunks(97) {
        w.append(piece).expect("append");
    }
    w.flush().expect("flush");
    for name in mem.list().expect("list") {
        let raw = mem.read_all(&name).expect("raw");
        assert!(!raw.windows(10).any(|w| w == &secret[..10]), "plaintext in {name}");
    }
    let r = fs.open("000002.vlog", FileKind::ValueLog).expect("open");
    assert_eq!(r.len().expect("len"), data.len() as u64);
    for (off, len) in
        [(0usize, 1usize), (1, 30), (63, 2), (64, 64), (5_000, 7_777), (data.len() - 3, 3)]
    {
        let mut buf = vec![0u8; len];
        r.read_exact_at(off as u64, &mut buf).expect("read");
        assert_eq!(buf, data[off..off + len], "range {off}+{len}");
    }
    let mut buf = [0u8; 4];
    assert_eq!(
        r.read_exact_at(data.len() as u64 - 2, &mut buf).expect_err("past end").kind(),
        ErrorKind::UnexpectedEof
    );
    // Two files with the same contents have different ciphertexts (different nonces).
    write_file(&fs, "a.sst", secret);
    write_file(&fs, "b.sst", secret);
    assert_ne!(mem.read_all("a.sst").expect("a"), mem.read_all("b.sst").expect("b"));
}

#[test]
fn wrong_key_is_refused_at_open() {
    let mem = MemFs::new();
    let fs = enc(mem.clone(), KEY).expect("create");
    write_file(&fs, "CURRENT", b"MANIFEST-000001\n");
    drop(fs);
    let err = enc(mem.clone(), OTHER_KEY).expect_err("wrong key");
    assert_eq!(err.kind(), ErrorKind::WrongKey, "{err}");
    assert!(err.to_string().contains("wrong encryption key"), "{err}");
    // The right key still opens it, and nothing was changed by the refused attempt.
    let fs = enc(mem.clone(), KEY).expect("right key");
    assert_eq!(read_file(&fs, "CURRENT"), b"MANIFEST-000001\n");

    // A file written under another key (copied in from elsewhere) is refused on its own.
    let other_mem = MemFs::new();
    let other = enc(other_mem.clone(), OTHER_KEY).expect("other");
    write_file(&other, "000009.sst", b"foreign");
    mem.write_whole("000009.sst", &other_mem.read_all("000009.sst").expect("raw")).expect("copy");
    let err = fs.open("000009.sst", FileKind::Table).expect_err("foreign file");
    assert_eq!(err.kind(), ErrorKind::WrongKey);
}

#[test]
fn unencrypted_directory_and_damaged_prefix_are_refused() {
    let mem = MemFs::new();
    mem.write_whole("CURRENT", b"MANIFEST-000001\n").expect("plain file");
    let err = enc(mem.clone(), KEY).expect_err("plaintext database");
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("no ENCRYPTION marker"), "{err}");
    assert!(!mem.exists(MARKER_NAME).expect("exists"), "no marker written into it");

    // Empty files (a lock file) are no obstacle.
    let mem = MemFs::new();
    mem.write_whole("LOCK", b"").expect("lock file");
    let fs = enc(mem.clone(), KEY).expect("empty files are fine");
    write_file(&fs, "000003.sst", b"table");
    // Without its magic the prefix is garbage (as a power cut can leave it): the file opens,
    // its bytes pass through undecrypted, never as the plaintext.
    for at in 0..8 {
        mem.flip_byte("000003.sst", at, 0xA5).expect("garbage magic");
    }
    let got = read_file(&fs, "000003.sst");
    assert_eq!(got.len(), 5);
    assert_ne!(got, b"table", "unreadable, not decrypted");
    for at in 0..8 {
        mem.flip_byte("000003.sst", at, 0xA5).expect("repair");
    }
    assert_eq!(read_file(&fs, "000003.sst"), b"table");
    // A magic a few bits off is a damaged prefix, refused: passed through, a synced file's
    // contents would read as a garbage tail and be dropped.
    for (at, bits) in [(2, 0x01), (0, 0x80), (7, 0x11), (5, 0x0F)] {
        mem.flip_byte("000003.sst", at, bits).expect("damage magic");
        let err = fs.open("000003.sst", FileKind::Table).expect_err("damaged magic");
        assert_eq!(err.kind(), ErrorKind::Other, "{err}");
        assert!(err.to_string().contains("damaged prefix (magic)"), "{err}");
        mem.flip_byte("000003.sst", at, bits).expect("repair");
    }
    assert_eq!(read_file(&fs, "000003.sst"), b"table");
    mem.flip_byte("000003.sst", 8, 0x02).expect("unknown version");
    let err = fs.open("000003.sst", FileKind::Table).expect_err("future version");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    mem.flip_byte("000003.sst", 8, 0x02).expect("repair");
    mem.flip_byte("000003.sst", 30, 0x01).expect("damage nonce");
    let err = fs.open("000003.sst", FileKind::Table).expect_err("damaged nonce");
    assert_eq!(err.kind(), ErrorKind::WrongKey, "a damaged nonce fails the key check: {err}");
}

#[test]
fn marker_is_hidden_and_reserved() {
    let mem = MemFs::new();
    let fs = enc(mem.clone(), KEY).expect("open");
    assert!(mem.exists(MARKER_NAME).expect("exists"));
    assert_eq!(fs.list().expect("list"), Vec::<String>::new());
    assert_eq!(fs.size(MARKER_NAME).expect_err("size").kind(), ErrorKind::NotFound);
    assert_eq!(
        fs.open(MARKER_NAME, FileKind::Marker).expect_err("open").kind(),
        ErrorKind::NotFound
    );
    assert!(fs.create(MARKER_NAME, FileKind::Marker).is_err());
    assert!(fs.remove(MARKER_NAME).is_err());
    write_file(&fs, "x", b"1");
    assert!(fs.rename("x", MARKER_NAME).is_err());
    assert!(mem.exists(MARKER_NAME).expect("marker kept"));
}

/// Synced bytes survive every kind of power cut; the unsynced tail may be anything, and
/// whatever length survives reads back without error.
#[test]
fn synced_data_survives_power_cuts() {
    for policy in CrashPolicy::ALL {
        for seed in 0..8u64 {
            let mem = MemFs::new();
            let fs = enc(mem.clone(), KEY).expect("open");
            let mut w = fs.create("000004.wal", FileKind::Wal).expect("create");
            fs.sync_dir().expect("sync_dir");
            let synced: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            w.append(&synced).expect("append");
            w.sync(SyncMode::Data).expect("sync");
            w.append(&[0xEE; 2000]).expect("unsynced append");
            w.flush().expect("flush");
            // A file created and named durably, whose data was never synced.
            let _fresh = fs.create("000005.wal", FileKind::Wal).expect("create");
            fs.sync_dir().expect("sync_dir");
            let image = mem.crash(policy, seed);
            let fs = enc(image, KEY).unwrap_or_else(|e| panic!("{policy:?} {seed}: {e}"));
            let got = read_file(&fs, "000004.wal");
            assert!(got.len() >= synced.len() && got.len() <= 5000, "{policy:?} {seed}");
            assert_eq!(got[..synced.len()], synced[..], "{policy:?} {seed}");
            if policy == CrashPolicy::KeepUnsynced || policy == CrashPolicy::DropUnsynced {
                let tail = &got[synced.len()..];
                assert!(tail.iter().all(|&b| b == 0xEE), "{policy:?}: tail decrypts");
            }
            // Its prefix was synced before the name could reach the directory.
            assert_eq!(read_file(&fs, "000005.wal"), b"", "{policy:?} {seed}: fresh file empty");
        }
    }
}

/// A power cut at any durability call while a new encrypted directory is set up leaves either
/// no marker (and the setup runs again) or a whole one that checks the key.
#[test]
fn power_cut_while_writing_the_marker() {
    let mem = MemFs::new();
    enc(mem.clone(), KEY).expect("open");
    let total = mem.sync_count();
    assert!(total >= 2, "marker file sync and directory sync");
    for n in 1..=total {
        for policy in CrashPolicy::ALL {
            let mem = MemFs::new();
            mem.arm_crash(n, policy, n);
            assert!(enc(mem.clone(), KEY).is_err(), "the cut fires during open");
            let image = mem.take_crash_image().expect("image");
            let fs = enc(image.clone(), KEY).unwrap_or_else(|e| panic!("{n} {policy:?}: {e}"));
            assert_eq!(fs.list().expect("list"), Vec::<String>::new());
            let err = enc(image, OTHER_KEY).expect_err("marker now checks the key");
            assert_eq!(err.kind(), ErrorKind::WrongKey);
        }
    }
}

#[test]
fn injected_faults_surface_and_flipped_bits_flip_plaintext_bits() {
    let faulty = FaultFs::new(MemFs::new());
    let fs = enc(faulty.clone(), KEY).expect("open");
    write_file(&fs, "000006.sst", &[0u8; 256]);
    // A flipped ciphertext bit flips the same plaintext bit: no MAC, the checksums above catch it.
    faulty.add_rule(FaultRule::flip_bit_on_read("000006.sst").nth(1).once());
    let got = read_file(&fs, "000006.sst");
    assert_eq!(got.iter().map(|b| b.count_ones()).sum::<u32>(), 1, "exactly one bit flipped");
    assert_eq!(read_file(&fs, "000006.sst"), vec![0u8; 256], "the next read is clean");

    faulty.add_rule(
        FaultRule::fail(FaultOp::Append).on_name("000007").kind(ErrorKind::NoSpace).once(),
    );
    assert!(fs.create("000007.wal", FileKind::Wal).is_err(), "prefix append fails");
    faulty.add_rule(FaultRule::fail(FaultOp::Sync).on_name("000008").once());
    assert!(fs.create("000008.wal", FileKind::Wal).is_err(), "prefix sync fails");
    faulty.add_rule(
        FaultRule::fail(FaultOp::Read).on_name("000006").kind(ErrorKind::Interrupted).once(),
    );
    let r = fs.open("000006.sst", FileKind::Table);
    assert_eq!(r.expect_err("prefix read fails").kind(), ErrorKind::Interrupted);
    faulty.add_rule(FaultRule::fail(FaultOp::Append).on_name("000010").nth(1).once());
    let mut w = fs.create("000010.wal", FileKind::Wal).expect("create");
    assert!(w.append(b"data").is_err(), "data append fails");
}

/// A power cut inside `create`, after the name reached the directory but before the prefix
/// was synced, leaves a file that opens: empty, or unreadable bytes (never an error at open,
/// never plaintext).
#[test]
fn power_cut_inside_create_leaves_an_openable_file() {
    let mut seen_unreadable = false;
    for policy in CrashPolicy::ALL {
        for seed in 0..16u64 {
            let mem = MemFs::new();
            let fs = enc(mem.clone(), KEY).expect("open");
            let before = mem.sync_count();
            // The cut fires at the prefix sync, so create fails; the directory entry may persist.
            mem.arm_crash(before + 1, policy, seed);
            assert!(fs.create("000012.wal", FileKind::Wal).is_err());
            let image = mem.take_crash_image().expect("image");
            let fs = enc(image.clone(), KEY).expect("reopen");
            if !image.exists("000012.wal").expect("exists") {
                continue;
            }
            let r = fs.open("000012.wal", FileKind::Wal).expect("opens");
            let len = r.len().expect("len");
            let mut buf = vec![0u8; len as usize];
            r.read_exact_at(0, &mut buf).expect("read");
            let raw = image.read_all("000012.wal").expect("raw");
            assert_eq!(len, raw.len().saturating_sub(PREFIX_LEN) as u64);
            seen_unreadable |= raw.len() >= PREFIX_LEN && raw[..8] != *b"STRATAEC";
        }
    }
    assert!(seen_unreadable, "some image keeps a garbage prefix (GarbageTail)");
}
