//! Open-time probe (see `docs/performance.md`, "Optimisation log").
//!
//! `cargo run --release -p strata --example openbench -- load DIR N` fills `DIR/clean` with
//! `N` keys (16 B keys in random order, 100 B values, 1000 keys per commit) and closes it
//! cleanly; it also leaves `DIR/crashed`, a copy of the directory taken while the tree was
//! open with every commit acknowledged (what a crash of the process leaves: every write is in
//! the OS, the memtable only in the WAL).
//! `... -- clean DIR REPS` opens and closes `DIR/clean` REPS times and prints the median open
//! time; `... -- crash DIR REPS` copies `DIR/crashed` to a scratch directory and opens it,
//! REPS times, and prints the median open time (replaying the WAL). The steps are separate so
//! that one can run under `strace -c -f` or `valgrind --tool=callgrind` alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use strata::{Tree, TreeBuilder};

fn open(dir: &Path) -> Tree {
    TreeBuilder::new().with_path(dir.to_path_buf()).build().expect("open tree")
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(format!("{i:016}").as_bytes());
    k
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list").flatten() {
        let name = entry.file_name();
        if name != "LOCK" {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

fn load(dir: &Path, n: u64) {
    let clean = dir.join("clean");
    let tree = open(&clean);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    // A fixed-seed permutation (splitmix64 Fisher-Yates) so every load is the same.
    let mut state = 0x0BE4_C40Bu64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<u64> = (0..n).collect();
    for i in (1..order.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    for chunk in order.chunks(1000) {
        let mut txn = tree.begin().expect("begin");
        for &i in chunk {
            let mut v = [0u8; 100];
            let r = next().to_le_bytes();
            for (b, byte) in v.iter_mut().enumerate() {
                *byte = r[b % 8] ^ (b as u8 / 50);
            }
            txn.set(&key(i), &v).expect("set");
        }
        rt.block_on(txn.commit()).expect("commit");
    }
    copy_dir(&clean, &dir.join("crashed"));
    tree.close().expect("close");
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: openbench load DIR N | clean DIR REPS | crash DIR REPS";
    let (step, dir, count) = match args.as_slice() {
        [_, step, dir, count, ..] => {
            (step.as_str(), PathBuf::from(dir), count.parse::<u64>().expect("count"))
        }
        _ => panic!("{usage}"),
    };
    match step {
        "load" => load(&dir, count),
        "clean" => {
            let clean = dir.join("clean");
            let mut times = Vec::new();
            for _ in 0..count {
                let start = Instant::now();
                let tree = open(&clean);
                times.push(start.elapsed().as_secs_f64() * 1e3);
                tree.close().expect("close");
            }
            println!("reopen_clean_ms {:.3}", median(times));
        }
        "crash" => {
            let scratch = dir.join("crash-scratch");
            let mut times = Vec::new();
            for _ in 0..count {
                let _ = std::fs::remove_dir_all(&scratch);
                copy_dir(&dir.join("crashed"), &scratch);
                let start = Instant::now();
                let tree = open(&scratch);
                times.push(start.elapsed().as_secs_f64() * 1e3);
                // Drop without the close's flush cost mattering to the figure.
                tree.close().expect("close");
            }
            let _ = std::fs::remove_dir_all(&scratch);
            println!("reopen_crash_ms {:.3}", median(times));
        }
        _ => panic!("{usage}"),
    }
}
