//! Power cuts under the object_store adapter: a workload of puts, overwrites, a multipart
//! upload completed and one aborted, a rename and a delete, all with `Immediate` durability,
//! on Strata's crash simulator (MemFs). A power cut is armed before every durability call of
//! the workload in turn, under four crash policies; after each, the recovered store must
//! show exactly the objects of the acknowledged steps (plus, possibly, the step in flight),
//! every object whole: never a partly published multipart object, never a missing chunk.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata::vfs::{CrashPolicy, MemFs};
use strata::{Durability, Tree, TreeBuilder};
use strata_adapters::object_store::{CHUNK_SIZE, StrataObjectStore};

type State = BTreeMap<String, Vec<u8>>;

fn open(mem: &MemFs) -> strata::Result<Tree> {
    TreeBuilder::new().with_vfs(mem.clone()).build()
}

fn store(tree: Tree) -> StrataObjectStore {
    StrataObjectStore::new(tree).expect("store").with_durability(Durability::Immediate)
}

fn bytes(fill: u8, len: usize) -> Vec<u8> {
    vec![fill; len]
}

/// Runs the workload until a step fails. Returns the visible state after each step (index 0:
/// before any) and how many steps were acknowledged.
async fn workload(store: &StrataObjectStore) -> (Vec<State>, usize) {
    let mut states = vec![State::new()];
    let mut acked = 0;
    let mut model = State::new();
    let c = Path::from("dir/c");
    macro_rules! step {
        ($fut:expr, $change:expr) => {
            // The model changes whether or not the step is acknowledged: the state after a
            // step in flight is a legal outcome too.
            let result = $fut.await;
            $change(&mut model);
            states.push(model.clone());
            if result.is_err() {
                return (states, acked);
            }
            acked += 1;
        };
    }
    let a = bytes(1, 3 * CHUNK_SIZE + 5);
    step!(store.put(&Path::from("a"), a.clone().into()), |m: &mut State| {
        m.insert("a".into(), a.clone());
    });
    step!(store.put(&Path::from("small"), "tiny".into()), |m: &mut State| {
        m.insert("small".into(), b"tiny".to_vec());
    });
    let mut upload = match store.put_multipart(&c).await {
        Ok(u) => u,
        Err(_) => return (states, acked),
    };
    step!(upload.put_part(bytes(2, CHUNK_SIZE + CHUNK_SIZE / 2).into()), |_: &mut State| {});
    step!(upload.put_part(bytes(3, CHUNK_SIZE + CHUNK_SIZE / 2).into()), |_: &mut State| {});
    step!(upload.put_part(bytes(4, 10).into()), |_: &mut State| {});
    let mut whole = bytes(2, CHUNK_SIZE + CHUNK_SIZE / 2);
    whole.extend(bytes(3, CHUNK_SIZE + CHUNK_SIZE / 2));
    whole.extend(bytes(4, 10));
    step!(upload.complete(), |m: &mut State| {
        m.insert("dir/c".into(), whole.clone());
    });
    step!(store.put(&Path::from("a"), bytes(5, 100).into()), |m: &mut State| {
        m.insert("a".into(), bytes(5, 100));
    });
    step!(store.rename(&Path::from("small"), &Path::from("moved")), |m: &mut State| {
        m.remove("small");
        m.insert("moved".into(), b"tiny".to_vec());
    });
    let mut aborted = match store.put_multipart(&Path::from("d")).await {
        Ok(u) => u,
        Err(_) => return (states, acked),
    };
    step!(aborted.put_part(bytes(6, 2 * CHUNK_SIZE).into()), |_: &mut State| {});
    step!(aborted.abort(), |_: &mut State| {});
    step!(store.delete(&c), |m: &mut State| {
        m.remove("dir/c");
    });
    (states, acked)
}

/// Every object the store lists, read whole.
async fn visible(store: &StrataObjectStore) -> object_store::Result<State> {
    let mut state = State::new();
    let listed: Vec<_> = store.list(None).try_collect().await?;
    for meta in listed {
        let data = store.get(&meta.location).await?.bytes().await?;
        assert_eq!(data.len() as u64, meta.size);
        state.insert(meta.location.to_string(), data.to_vec());
    }
    Ok(state)
}

#[test]
fn a_power_cut_at_every_sync_leaves_whole_objects_of_a_prefix_of_the_steps() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    // A clean run counts the durability calls.
    let mem = MemFs::new();
    let (states, acked) = rt.block_on(workload(&store(open(&mem).expect("open"))));
    assert_eq!(acked, states.len() - 1, "the clean run failed a step");
    let total_syncs = mem.sync_count();
    assert!(total_syncs >= acked as u64, "Immediate steps sync");
    let mut cuts = 0;
    for n in 1..=total_syncs {
        for policy in [
            CrashPolicy::DropUnsynced,
            CrashPolicy::KeepUnsynced,
            CrashPolicy::TornTail,
            CrashPolicy::GarbageTail,
        ] {
            let ctx = format!("power cut before durability call {n} of {total_syncs}, {policy:?}");
            let mem = MemFs::new();
            mem.arm_crash(n, policy, n);
            let (states, acked) = match open(&mem) {
                Ok(tree) => rt.block_on(workload(&store(tree))),
                Err(_) => (vec![State::new()], 0),
            };
            let image =
                mem.take_crash_image().unwrap_or_else(|| panic!("{ctx}: the cut did not fire"));
            let tree = open(&image).unwrap_or_else(|e| panic!("{ctx}: does not reopen: {e}"));
            let recovered = store(tree);
            let got = rt
                .block_on(visible(&recovered))
                .unwrap_or_else(|e| panic!("{ctx}: read failed: {e}"));
            // Acknowledged steps are durable; the step in flight may have landed or not.
            let legal = &states[acked..states.len().min(acked + 2)];
            assert!(
                legal.contains(&got),
                "{ctx}: {acked} steps acknowledged, recovered {:?}",
                got.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
            );
            // The recovered store takes writes.
            rt.block_on(recovered.put(&Path::from("after"), "ok".into()))
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            cuts += 1;
        }
    }
    eprintln!("{cuts} power cuts over {total_syncs} durability calls");
}
