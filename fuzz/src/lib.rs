//! Shared code of the fuzz targets: the file-set container the `open_db` target reads its
//! database from, and the scenario it runs on it.
//!
//! The seed generator (`fuzz/examples/make_seeds.rs`) writes containers with [`files::join`];
//! the `open_db` target reads them with [`files::split`], so both sides use one definition of
//! the layout.

pub mod database;
pub mod files;
