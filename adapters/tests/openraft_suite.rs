//! openraft's own storage test suite (`openraft::testing::Suite::test_all`, 35 cases) against
//! the Strata log store and state machine. Each case gets a fresh tree in its own temporary
//! directory; the directory lives as long as the case's stores (the builder's guard value).

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use strata::TreeBuilder;
use strata_adapters::openraft::{KeyLayout, KvConfig, LogStore, StateMachine, open};
use tempfile::TempDir;

struct StrataStoreBuilder;

impl StoreBuilder<KvConfig, LogStore<KvConfig>, StateMachine<KvConfig>, TempDir>
    for StrataStoreBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<KvConfig>, StateMachine<KvConfig>), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| {
            StorageError::from_io_error(
                openraft::ErrorSubject::Store,
                openraft::ErrorVerb::Write,
                e,
            )
        })?;
        let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().map_err(|e| {
            strata_adapters::openraft::Error::from(e)
                .into_storage(openraft::ErrorSubject::Store, openraft::ErrorVerb::Write)
        })?;
        let (log, sm) = open::<KvConfig>(tree, KeyLayout::default());
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(StrataStoreBuilder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
