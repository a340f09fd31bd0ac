//! The `strata` binary driven as a user drives it: spawned with arguments, judged by its
//! output and exit code. Databases are built with the library (or the tool itself) in
//! temporary directories; damage is a real byte flipped in a real file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata::TreeBuilder;

const OK: i32 = 0;
const FAILED: i32 = 1;
const USAGE: i32 = 2;
const DAMAGED: i32 = 3;
const NOT_FOUND: i32 = 4;

/// The binary, with `STRATA_KEY_FILE` removed from its environment (a key set in the
/// environment of the test run must not change what the tests see).
fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env_remove("STRATA_KEY_FILE");
    c
}

fn strata(args: &[&str]) -> Output {
    command().args(args).output().expect("spawn strata")
}

/// Runs `strata --db DIR args...`.
fn on(db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--db", db.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    strata(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

/// Asserts a failure: the exit code, and exactly one line on stderr (never a panic).
fn assert_fails(o: &Output, expected: i32, mentions: &str) {
    let err = stderr(o);
    assert_eq!(code(o), expected, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("strata: "), "{err}");
    assert!(err.contains(mentions), "{err:?} should mention {mentions:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Every file of `dir` with its bytes (missing directory: empty).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().into_string().expect("utf-8 name");
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// Asserts `dir` holds exactly `before`, naming the files that differ.
fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = contents(dir);
    let differ: Vec<&String> =
        before.keys().chain(now.keys()).filter(|k| before.get(*k) != now.get(*k)).collect();
    assert!(differ.is_empty(), "{what} changed the database: {differ:?}");
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// A database with tables (flushed) and a value log, closed cleanly, and some recent writes
/// left in the WAL only (so opening it runs a real recovery).
fn build_db(dir: &Path) {
    let tree = TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(64)
        .build()
        .expect("build");
    for i in 0..200u32 {
        let mut txn = tree.begin().expect("begin");
        let value = format!("value-{i:04}-{}", "x".repeat(100));
        txn.set(format!("key{i:04}").as_bytes(), value.as_bytes()).expect("set");
        txn.set(format!("small{i:04}").as_bytes(), b"tiny").expect("set");
        txn.commit_blocking().expect("commit");
    }
    tree.flush().expect("flush");
    let mut txn = tree.begin().expect("begin");
    txn.set(b"wal-only", b"recent").expect("set");
    txn.commit_blocking().expect("commit");
    tree.close().expect("close");
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

const SUBCOMMANDS: [&str; 15] = [
    "get",
    "put",
    "delete",
    "scan",
    "history",
    "stats",
    "verify",
    "compact",
    "vlog-gc",
    "checkpoint",
    "restore",
    "dump-wal",
    "dump-sst",
    "dump-manifest",
    "dump-vlog",
];

#[test]
fn every_subcommand_has_help() {
    let top = strata(&["--help"]);
    assert_eq!(code(&top), OK);
    for sub in SUBCOMMANDS {
        assert!(stdout(&top).contains(sub), "top-level help lists {sub}");
        let o = strata(&[sub, "--help"]);
        assert_eq!(code(&o), OK, "{sub} --help");
        let text = stdout(&o);
        assert!(text.contains("Usage: strata") && text.contains(sub), "{sub}: {text}");
    }
}

#[test]
fn put_get_delete_with_text_hex_and_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    assert_eq!(code(&on(&db, &["put", "--create", "greeting", "hello world"])), OK);
    assert_eq!(code(&on(&db, &["put", "hex:00ff", "hex:0102"])), OK);

    let o = on(&db, &["get", "greeting"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (OK, "hello world\n"));
    let o = on(&db, &["get", "hex:00FF"]);
    assert_eq!(stdout(&o), "hex:0102\n", "binary values print as hex");
    let o = on(&db, &["--json", "get", "greeting"]);
    assert_eq!(stdout(&o).trim(), r#"{"key":"greeting","value":"hello world"}"#);

    assert_fails(&on(&db, &["get", "absent"]), NOT_FOUND, "no value");
    assert_eq!(code(&on(&db, &["delete", "greeting"])), OK);
    assert_fails(&on(&db, &["get", "greeting"]), NOT_FOUND, "greeting");
    let o = on(&db, &["--json", "get", "greeting"]);
    assert_eq!(code(&o), NOT_FOUND);
    assert_eq!(stdout(&o).trim(), r#"{"key":"greeting","value":null}"#);
}

#[test]
fn scan_bounds_limit_reverse_keys_only_and_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    assert_eq!(code(&on(&db, &["put", "--create", "a", "1"])), OK);
    for (k, v) in [("b", "2"), ("c", "3"), ("d", "4")] {
        assert_eq!(code(&on(&db, &["put", k, v])), OK);
    }
    assert_eq!(stdout(&on(&db, &["scan"])), "a\t1\nb\t2\nc\t3\nd\t4\n");
    assert_eq!(stdout(&on(&db, &["scan", "--from", "b", "--to", "d"])), "b\t2\nc\t3\n");
    assert_eq!(stdout(&on(&db, &["scan", "--reverse", "--limit", "2"])), "d\t4\nc\t3\n");
    assert_eq!(stdout(&on(&db, &["scan", "--keys-only", "--from", "c"])), "c\nd\n");
    let o = on(&db, &["--json", "scan", "--limit", "2"]);
    let doc = stdout(&o).split_whitespace().collect::<String>();
    assert_eq!(doc, r#"[{"key":"a","value":"1"},{"key":"b","value":"2"}]"#);
    let o = on(&db, &["scan", "--at", "5"]);
    assert_fails(&o, FAILED, "versioning");
}

#[test]
fn history_and_time_travel_on_a_versioned_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    assert_eq!(code(&on(&db, &["put", "--create", "--versioning", "k", "v1", "--at", "100"])), OK);
    assert_eq!(code(&on(&db, &["put", "k", "v2", "--at", "200"])), OK);
    assert_eq!(code(&on(&db, &["put", "other", "x", "--at", "150"])), OK);
    let o = on(&db, &["history", "k"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (OK, "200\tset\tv2\n100\tset\tv1\n"));
    assert_eq!(stdout(&on(&db, &["get", "k", "--at", "150"])), "v1\n");
    assert_eq!(stdout(&on(&db, &["scan", "--at", "160"])), "k\tv1\nother\tx\n");
    let o = on(&db, &["--json", "history", "k", "--limit", "1"]);
    let doc = stdout(&o).split_whitespace().collect::<String>();
    assert_eq!(doc, r#"[{"deleted":false,"ts":200,"value":"v2"}]"#);
}

#[test]
fn commands_that_read_change_nothing_and_create_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let before = contents(&db);
    let checkpoint = tmp.path().join("cp");
    let sst = files_with(&db, "sst")[0].clone();
    let wal = files_with(&db, "wal")[0].clone();
    let vlog = files_with(&db, "vlog")[0].clone();
    let runs: Vec<Vec<&str>> = vec![
        vec!["get", "wal-only"],
        vec!["get", "key0007"],
        vec!["scan", "--limit", "3"],
        vec!["scan", "--reverse", "--keys-only"],
        vec!["stats"],
        vec!["verify"],
        vec!["dump-manifest"],
        vec!["dump-sst", sst.to_str().expect("utf-8")],
        vec!["dump-wal", wal.to_str().expect("utf-8")],
        vec!["dump-vlog", vlog.to_str().expect("utf-8")],
        vec!["checkpoint", checkpoint.to_str().expect("utf-8")],
    ];
    for args in &runs {
        let o = on(&db, args);
        assert_eq!(code(&o), OK, "{args:?}: {}", stderr(&o));
        assert_unchanged(&db, &before, &format!("{args:?}"));
    }
    assert_eq!(stdout(&on(&db, &["get", "wal-only"])), "recent\n", "WAL replayed in memory");
    // The checkpoint holds the WAL-only write too (flushed into it, not into the database).
    assert_eq!(stdout(&on(&checkpoint, &["get", "wal-only"])), "recent\n");
    assert_eq!(stdout(&on(&checkpoint, &["get", "key0199"])).len(), "value-0199-".len() + 101);

    let missing = tmp.path().join("missing");
    for args in [&["get", "k"][..], &["scan"], &["stats"], &["verify"], &["history", "k"]] {
        assert_fails(&on(&missing, args), FAILED, "no database");
        assert!(!missing.exists(), "{args:?} created the directory");
    }
    for args in [&["put", "k", "v"][..], &["delete", "k"], &["compact"], &["vlog-gc"]] {
        assert_fails(&on(&missing, args), FAILED, "no database");
        assert!(!missing.exists(), "{args:?} created the directory");
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert_fails(&on(&empty, &["scan"]), FAILED, "no database");
    assert_fails(&on(&empty, &["verify"]), FAILED, "no database");
    assert_fails(&on(&empty, &["put", "k", "v"]), FAILED, "no database");
    assert!(contents(&empty).is_empty(), "nothing created in an empty directory");
    assert_fails(&strata(&["get", "k"]), FAILED, "--db");
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let before = contents(&db);
    assert_fails(&on(&db, &["put", "hex:abc", "v"]), FAILED, "malformed hex in key");
    assert_fails(&on(&db, &["put", "k", "hex:zz"]), FAILED, "malformed hex in value");
    assert_fails(&on(&db, &["delete", "hex:0"]), FAILED, "malformed hex");
    assert_fails(&on(&db, &["scan", "--from", "hex:xy"]), FAILED, "malformed hex in --from");
    assert_fails(&on(&db, &["scan", "--frobnicate"]), USAGE, "--frobnicate");
    assert_fails(&on(&db, &["scan", "--limit", "many"]), USAGE, "many");
    assert_fails(&on(&db, &["transmogrify"]), USAGE, "transmogrify");
    assert_fails(&on(&db, &["put", "only-a-key"]), USAGE, "required");
    assert_fails(
        &on(&db, &["restore", tmp.path().join("nope").to_str().expect("utf-8")]),
        FAILED,
        "does not exist",
    );
    assert_fails(&strata(&["dump-sst", "/no/such/file.sst"]), FAILED, "no such file");
    assert_fails(&on(&db, &["put", "k", "v", "--at", "7"]), FAILED, "versioning");
    let huge_key = "k".repeat(strata::MAX_KEY_SIZE + 1);
    assert_fails(&on(&db, &["put", &huge_key, "v"]), FAILED, "key of");
    let not_a_checkpoint = tmp.path().join("not-a-checkpoint");
    std::fs::create_dir(&not_a_checkpoint).expect("mkdir");
    assert_fails(
        &on(&db, &["restore", not_a_checkpoint.to_str().expect("utf-8")]),
        FAILED,
        "checkpoint",
    );
    assert_unchanged(&db, &before, "bad input");
}

#[test]
fn a_locked_database_is_refused_by_readers_and_writers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let tree =
        TreeBuilder::new().with_path(db.clone()).with_enable_vlog(true).build().expect("open");
    for args in [&["get", "key0001"][..], &["scan"], &["verify"], &["put", "k", "v"], &["compact"]]
    {
        assert_fails(&on(&db, args), FAILED, "locked");
    }
    drop(tree);
    assert_eq!(code(&on(&db, &["get", "key0001"])), OK, "released on close");
    // Two readers at once are fine: a shared lock each.
    let ro = TreeBuilder::new().with_path(db.clone()).build_read_only().expect("read-only open");
    assert_eq!(code(&on(&db, &["get", "key0001"])), OK);
    assert_fails(&on(&db, &["put", "k", "v"]), FAILED, "locked");
    drop(ro);
}

#[test]
fn verify_reports_a_flipped_byte_in_a_table_and_in_a_value_log_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let o = on(&db, &["verify"]);
    assert_eq!(code(&o), OK, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("OK: "), "{}", stdout(&o));
    assert!(stderr(&o).is_empty(), "no progress bar off a terminal: {}", stderr(&o));

    let sst = files_with(&db, "sst")[0].clone();
    let vlog = files_with(&db, "vlog")[0].clone();
    // Byte 5 is inside the first data block (offset 0); byte 40 inside the first value log
    // record (offset 16, after the 16-byte file header), past its lengths.
    flip(&sst, 5);
    flip(&vlog, 40);
    let sst_name = sst.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    let vlog_name = vlog.file_name().and_then(|n| n.to_str()).expect("name").to_owned();

    let o = on(&db, &["verify"]);
    let text = stdout(&o);
    assert_eq!(code(&o), DAMAGED, "{text}");
    assert!(text.contains(&format!("DAMAGED {sst_name} at offset 0")), "{text}");
    assert!(text.contains(&format!("DAMAGED {vlog_name} at offset 16")), "{text}");
    assert!(text.contains("Checksum"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("DAMAGED ")).count(), 2, "{text}");

    let o = on(&db, &["--json", "verify"]);
    assert_eq!(code(&o), DAMAGED);
    let doc = stdout(&o);
    assert!(doc.contains(r#""clean":false"#), "{doc}");
    assert!(doc.contains(&format!(r#""file":"{sst_name}","offset":0"#)), "{doc}");
    assert!(doc.contains(&format!(r#""file":"{vlog_name}","offset":16"#)), "{doc}");

    // The dumps show the same damage, after everything that still decodes.
    let o = strata(&["dump-sst", sst.to_str().expect("utf-8")]);
    assert_eq!(code(&o), DAMAGED);
    assert!(stdout(&o).contains("DAMAGED data block at 0"), "{}", stdout(&o));
    assert!(stdout(&o).contains("data block at"), "later blocks still listed");
    let o = strata(&["dump-vlog", vlog.to_str().expect("utf-8")]);
    assert_eq!(code(&o), DAMAGED);
    assert!(stdout(&o).contains("at offset 16"), "{}", stdout(&o));
}

#[test]
fn dumps_decode_each_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let sst = files_with(&db, "sst")[0].clone();
    let o = strata(&["dump-sst", sst.to_str().expect("utf-8")]);
    let text = stdout(&o);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(text.contains("entries (0 deletions)"), "{text}");
    assert!(text.contains("small0000 @") && text.contains("= tiny"), "{text}");
    assert!(text.contains("key0000 @") && text.contains("-> value log file"), "{text}");
    let blocks = stdout(&strata(&["dump-sst", "--blocks-only", sst.to_str().expect("utf-8")]));
    assert!(!blocks.contains("= tiny") && blocks.contains("data block at 0"), "{blocks}");

    let o = on(&db, &["dump-manifest"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).contains("snapshot at 40:"), "{}", stdout(&o));
    assert!(stdout(&o).contains("add L0 table"), "{}", stdout(&o));
    assert!(stdout(&o).contains("value log add"), "{}", stdout(&o));

    // The newest WAL segment holds the write made after the flush.
    let wal = files_with(&db, "wal").pop().expect("a segment");
    let o = strata(&["dump-wal", wal.to_str().expect("utf-8")]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).contains("set wal-only = recent"), "{}", stdout(&o));
    let o = strata(&["--json", "dump-wal", wal.to_str().expect("utf-8")]);
    assert!(stdout(&o).contains(r#""key":"wal-only""#), "{}", stdout(&o));

    let vlog = files_with(&db, "vlog")[0].clone();
    let o = strata(&["dump-vlog", vlog.to_str().expect("utf-8")]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).contains("record at 16"), "{}", stdout(&o));
    assert!(stdout(&o).contains("key0000 = value-0000-"), "{}", stdout(&o));
}

#[test]
fn compact_vlog_gc_stats_checkpoint_and_restore() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_db(&db);
    let o = on(&db, &["compact"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ran "), "{}", stdout(&o));
    assert!(!files_with(&db, "sst").is_empty());

    let o = on(&db, &["--json", "stats"]);
    let doc = stdout(&o);
    assert_eq!(code(&o), OK);
    assert!(doc.contains(r#""levels":[{"bytes":"#), "{doc}");
    assert!(
        doc.contains(r#""garbage_bytes":"#) && doc.contains(r#""write_amplification":"#),
        "{doc}"
    );

    let cp = tmp.path().join("cp");
    assert_eq!(code(&on(&db, &["checkpoint", cp.to_str().expect("utf-8")])), OK);
    for i in 0..50 {
        let key = format!("key{i:04}");
        assert_eq!(code(&on(&db, &["put", &key, &"y".repeat(200)])), OK);
    }
    assert_eq!(code(&on(&db, &["compact"])), OK);
    let o = on(&db, &["vlog-gc"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("examined "), "{}", stdout(&o));
    assert_eq!(stdout(&on(&db, &["get", "key0003"])), format!("{}\n", "y".repeat(200)));

    let o = on(&db, &["restore", cp.to_str().expect("utf-8")]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&on(&db, &["get", "key0003"])).starts_with("value-0003-"));
    assert_eq!(code(&on(&db, &["verify"])), OK);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let tree = TreeBuilder::new().with_path(db.clone()).build().expect("build");
    let mut txn = tree.begin().expect("begin");
    for i in 0..5000u32 {
        txn.set(format!("key{i:05}").as_bytes(), &[b'v'; 100]).expect("set");
    }
    txn.commit_blocking().expect("commit");
    tree.close().expect("close");
    // Half a megabyte of output into a pipe whose reader stops after a few bytes, as `head`
    // does.
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--db", db.to_str().expect("utf-8"), "scan"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 8];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("read");
    assert_eq!(&first, b"key00000");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

// ---- encrypted databases ----

const KEY: [u8; 32] = *b"a key for the cli tests: 32 b..!";
const OTHER_KEY: [u8; 32] = [0x3C; 32];
/// A value looked for in the files: an encrypted database must not show it anywhere.
const CANARY: &str = "CLI-PLAINTEXT-CANARY-5d21";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `key` into `dir/name` as 64 hex digits and a newline; returns the path.
fn hex_key_file(dir: &Path, name: &str, key: &[u8; 32]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", hex(key))).expect("write key file");
    path
}

/// Runs `strata --db DB --key-file KEY args...`.
fn on_with_key(db: &Path, key: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--key-file", key.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    on(db, &all)
}

/// Files of `dir` whose bytes hold [`CANARY`].
fn leaking(dir: &Path) -> Vec<String> {
    contents(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()))
        .map(|(name, _)| name)
        .collect()
}

fn canary_value(i: u32) -> String {
    format!("{CANARY}-{i:04}-{}", "z".repeat(150))
}

/// An encrypted database made with the library: tables, value log files (values over 64
/// bytes), and a last write left in the WAL only.
fn build_encrypted_db(dir: &Path, key: [u8; 32]) {
    let tree = TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_encryption_key(key)
        .with_enable_vlog(true)
        .with_vlog_value_threshold(64)
        .with_compression(false)
        .build()
        .expect("build");
    for i in 0..100u32 {
        let mut txn = tree.begin().expect("begin");
        txn.set(format!("key{i:04}").as_bytes(), canary_value(i).as_bytes()).expect("set");
        txn.set(format!("small{i:04}").as_bytes(), format!("{CANARY}-s").as_bytes()).expect("set");
        txn.commit_blocking().expect("commit");
    }
    tree.flush().expect("flush");
    let mut txn = tree.begin().expect("begin");
    txn.set(b"wal-only", CANARY.as_bytes()).expect("set");
    txn.commit_blocking().expect("commit");
    tree.close().expect("close");
}

#[test]
fn an_encrypted_database_is_created_and_used_through_its_key_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let key = hex_key_file(tmp.path(), "db.key", &KEY);
    let o = on_with_key(&db, &key, &["put", "--create", "greeting", CANARY]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(db.join("ENCRYPTION").is_file(), "created encrypted");
    for i in 0..20 {
        let o = on_with_key(&db, &key, &["put", &format!("k{i:02}"), &canary_value(i)]);
        assert_eq!(code(&o), OK, "{}", stderr(&o));
    }
    assert_eq!(code(&on_with_key(&db, &key, &["delete", "k05"])), OK);

    assert_eq!(stdout(&on_with_key(&db, &key, &["get", "greeting"])), format!("{CANARY}\n"));
    let o = on_with_key(&db, &key, &["scan", "--from", "k00", "--to", "k10", "--keys-only"]);
    assert_eq!(stdout(&o), "k00\nk01\nk02\nk03\nk04\nk06\nk07\nk08\nk09\n", "{}", stderr(&o));
    let o = on_with_key(&db, &key, &["verify"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("OK: "), "{}", stdout(&o));
    let o = on_with_key(&db, &key, &["compact"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(!files_with(&db, "sst").is_empty());
    let o = on_with_key(&db, &key, &["stats"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    let o = on_with_key(&db, &key, &["vlog-gc"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    let o = on_with_key(&db, &key, &["verify"]);
    assert_eq!(code(&o), OK, "after compaction: {}", stdout(&o));
    assert!(leaking(&db).is_empty(), "plaintext in {:?}", leaking(&db));

    // The same key as 32 raw bytes, and through STRATA_KEY_FILE.
    let raw = tmp.path().join("raw.key");
    std::fs::write(&raw, KEY).expect("write raw key");
    assert_eq!(stdout(&on_with_key(&db, &raw, &["get", "k03"])), format!("{}\n", canary_value(3)));
    let o = command()
        .env("STRATA_KEY_FILE", &key)
        .args(["--db", db.to_str().expect("utf-8"), "get", "greeting"])
        .output()
        .expect("spawn");
    assert_eq!(stdout(&o), format!("{CANARY}\n"), "{}", stderr(&o));
    // --key-file wins over the environment.
    let wrong = hex_key_file(tmp.path(), "wrong.key", &OTHER_KEY);
    let o = command()
        .env("STRATA_KEY_FILE", &wrong)
        .args(["--db", db.to_str().expect("utf-8"), "--key-file", key.to_str().expect("utf-8")])
        .args(["get", "greeting"])
        .output()
        .expect("spawn");
    assert_eq!(code(&o), OK, "{}", stderr(&o));

    // What the tool wrote, the library reads with the same key.
    let tree = TreeBuilder::new()
        .with_path(db.clone())
        .with_encryption_key(KEY)
        .build_read_only()
        .expect("library opens it");
    let txn = tree.begin_with_mode(strata::Mode::ReadOnly).expect("begin");
    assert_eq!(txn.get(b"k19").expect("get").as_deref(), Some(canary_value(19).as_bytes()));
    assert_eq!(txn.get(b"k05").expect("get"), None);
}

#[test]
fn an_encrypted_database_without_its_key_or_with_another_is_refused_and_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_encrypted_db(&db, KEY);
    let before = contents(&db);
    let wrong = hex_key_file(tmp.path(), "wrong.key", &OTHER_KEY);
    let cp = tmp.path().join("cp");
    let cp = cp.to_str().expect("utf-8");
    let commands: Vec<Vec<&str>> = vec![
        vec!["get", "key0001"],
        vec!["put", "k", "v"],
        vec!["put", "--create", "k", "v"],
        vec!["delete", "key0001"],
        vec!["scan"],
        vec!["history", "key0001"],
        vec!["stats"],
        vec!["verify"],
        vec!["compact"],
        vec!["vlog-gc"],
        vec!["checkpoint", cp],
        vec!["restore", cp],
        vec!["dump-manifest"],
    ];
    for args in &commands {
        let o = on(&db, args);
        assert_fails(&o, FAILED, "is encrypted: pass its key with --key-file");
        let o = on_with_key(&db, &wrong, args);
        assert_fails(&o, FAILED, "wrong encryption key");
        assert!(!stderr(&o).contains(&hex(&OTHER_KEY)), "the key is never printed");
        assert_unchanged(&db, &before, &format!("{args:?}"));
        assert!(!Path::new(cp).exists(), "{args:?} created the checkpoint directory");
    }
    for (cmd, ext) in [("dump-wal", "wal"), ("dump-sst", "sst"), ("dump-vlog", "vlog")] {
        let file = files_with(&db, ext)[0].clone();
        let file = file.to_str().expect("utf-8");
        assert_fails(&strata(&[cmd, file]), FAILED, "is encrypted: pass its key with --key-file");
        assert_fails(&on_with_key(&db, &wrong, &[cmd, file]), FAILED, "wrong encryption key");
    }
    assert_unchanged(&db, &before, "dumps");

    // A key for an unencrypted database is refused too: it would not be read as ciphertext.
    let plain = tmp.path().join("plain");
    build_db(&plain);
    let before = contents(&plain);
    let key = hex_key_file(tmp.path(), "db.key", &KEY);
    for args in [&["get", "key0001"][..], &["put", "k", "v"], &["verify"]] {
        assert_fails(&on_with_key(&plain, &key, args), FAILED, "is not encrypted");
    }
    assert_unchanged(&plain, &before, "a key for a plain database");
}

#[test]
fn malformed_key_files_are_refused_with_one_line_that_never_shows_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let hex_key = hex(&KEY);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("31 raw bytes", KEY[..31].to_vec()),
        ("33 raw bytes", [&KEY[..], b"!"].concat()),
        ("63 hex digits", hex_key.as_bytes()[..63].to_vec()),
        ("64 characters, not hex", format!("{}qq", &hex_key[..62]).into_bytes()),
        ("two newlines", format!("{hex_key}\n\n").into_bytes()),
        ("leading space", format!(" {hex_key}").into_bytes()),
        ("a large file", vec![b'7'; 1 << 20]),
    ];
    for (what, bytes) in cases {
        let path = tmp.path().join("bad.key");
        std::fs::write(&path, &bytes).expect("write");
        let o = on_with_key(&db, &path, &["put", "--create", "k", "v"]);
        assert_fails(&o, FAILED, "bad key file");
        assert!(stderr(&o).contains("32 raw bytes or 64 hex digits"), "{what}: {}", stderr(&o));
        assert!(!stderr(&o).contains(&hex_key[..16]), "{what}: the contents are never printed");
        assert!(!db.exists(), "{what}: nothing created");
    }
    let o = on_with_key(&db, &tmp.path().join("missing.key"), &["put", "--create", "k", "v"]);
    assert_fails(&o, FAILED, "cannot read key file");
    assert!(!db.exists());
}

#[test]
fn a_checkpoint_of_an_encrypted_database_stays_encrypted_and_restores_with_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_encrypted_db(&db, KEY);
    assert!(leaking(&db).is_empty(), "plaintext in {:?}", leaking(&db));
    let key = hex_key_file(tmp.path(), "db.key", &KEY);
    let cp = tmp.path().join("cp");
    let cp_arg = cp.to_str().expect("utf-8");
    let o = on_with_key(&db, &key, &["checkpoint", cp_arg]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(cp.join("ENCRYPTION").is_file(), "the checkpoint carries the key check marker");
    assert!(contents(&cp).len() > 3, "{:?}", contents(&cp).keys().collect::<Vec<_>>());
    assert!(leaking(&cp).is_empty(), "plaintext in the checkpoint: {:?}", leaking(&cp));
    // The WAL-only write was flushed into the checkpoint, encrypted.
    assert_eq!(stdout(&on_with_key(&cp, &key, &["get", "wal-only"])), format!("{CANARY}\n"));
    assert_fails(&on(&cp, &["get", "wal-only"]), FAILED, "is encrypted");

    assert_eq!(code(&on_with_key(&db, &key, &["put", "key0001", "changed"])), OK);
    let o = on_with_key(&db, &key, &["restore", cp_arg]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert_eq!(
        stdout(&on_with_key(&db, &key, &["get", "key0001"])),
        format!("{}\n", canary_value(1))
    );
    assert!(leaking(&db).is_empty(), "plaintext after restore: {:?}", leaking(&db));

    // A checkpoint of another database (unencrypted, or under another key) is refused before
    // the database is opened.
    let before = contents(&db);
    let plain = tmp.path().join("plain");
    build_db(&plain);
    let plain_cp = tmp.path().join("plain-cp");
    assert_eq!(code(&on(&plain, &["checkpoint", plain_cp.to_str().expect("utf-8")])), OK);
    let o = on_with_key(&db, &key, &["restore", plain_cp.to_str().expect("utf-8")]);
    assert_fails(&o, FAILED, "checkpoint at");
    assert!(stderr(&o).contains("is not encrypted"), "{}", stderr(&o));
    let other = tmp.path().join("other");
    build_encrypted_db(&other, OTHER_KEY);
    let other_key = hex_key_file(tmp.path(), "other.key", &OTHER_KEY);
    let other_cp = tmp.path().join("other-cp");
    assert_eq!(
        code(&on_with_key(&other, &other_key, &["checkpoint", other_cp.to_str().expect("utf-8")])),
        OK
    );
    let o = on_with_key(&db, &key, &["restore", other_cp.to_str().expect("utf-8")]);
    assert_fails(&o, FAILED, "wrong encryption key for the checkpoint");
    assert_unchanged(&db, &before, "a refused restore");
}

#[test]
fn dumps_of_encrypted_files_decrypt_with_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    build_encrypted_db(&db, KEY);
    let key = hex_key_file(tmp.path(), "db.key", &KEY);
    // The last write is in the newest WAL segment; the first value log file and table hold
    // the first keys.
    let newest_wal = files_with(&db, "wal").pop().expect("a WAL segment");
    let first_sst = files_with(&db, "sst")[0].clone();
    let first_vlog = files_with(&db, "vlog")[0].clone();
    for (cmd, file, shows) in [
        ("dump-wal", &newest_wal, "set wal-only = CLI-PLAINTEXT-CANARY"),
        ("dump-sst", &first_sst, "= CLI-PLAINTEXT-CANARY-5d21-s"),
        ("dump-vlog", &first_vlog, ": key0000 = CLI-PLAINTEXT-CANARY-5d21-0000-"),
    ] {
        let o = on_with_key(&db, &key, &[cmd, file.to_str().expect("utf-8")]);
        assert_eq!(code(&o), OK, "{cmd}: {}", stderr(&o));
        assert!(stdout(&o).contains(shows), "{cmd}: {}", stdout(&o));
    }
    let o = on_with_key(&db, &key, &["dump-manifest"]);
    assert_eq!(code(&o), OK, "{}", stderr(&o));
    assert!(stdout(&o).contains("add L0 table"), "{}", stdout(&o));
    // A copied file away from its directory's key check marker is refused, not guessed at.
    let lone = tmp.path().join("lone");
    std::fs::create_dir(&lone).expect("mkdir");
    let sst = files_with(&db, "sst")[0].clone();
    let copy = lone.join(sst.file_name().expect("name"));
    std::fs::copy(&sst, &copy).expect("copy");
    let o = on_with_key(&db, &key, &["dump-sst", copy.to_str().expect("utf-8")]);
    assert_fails(&o, FAILED, "no ENCRYPTION file");

    // verify decrypts and checks every block: a flipped ciphertext byte is damage.
    assert_eq!(code(&on_with_key(&db, &key, &["verify"])), OK);
    flip(&first_sst, 48 + 10);
    let o = on_with_key(&db, &key, &["verify"]);
    assert_eq!(code(&o), DAMAGED, "{}", stdout(&o));
    assert!(stdout(&o).contains("DAMAGED"), "{}", stdout(&o));
}
