//! Benchmark helper: loads a stopped server's sled store the way `serve`
//! does and exits holding it, so a heap profiler (`heaptrack`) attributes
//! every byte the in-memory catalog keeps to the code that allocated it.
//! It uses the system allocator (only the server binary installs
//! mimalloc), which is what heaptrack intercepts.
//!
//! usage: heaptrack target/release/examples/catalog_heap <store.path>

use appauth::directory::Directory;
use appauth::domain::secret::Pepper;
use appauth::store::{SledStore, Store};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        return Err("usage: catalog_heap <store.path>".into());
    };
    let store: Arc<dyn Store> = Arc::new(SledStore::open(std::path::Path::new(&path))?);
    let dir = Directory::load(store.clone(), Pepper::from_bytes(&[1; 32]), 3600)?;
    store.release_cache()?;
    println!("loaded {} applications", dir.read().apps.len());
    // Exit without dropping: what is still allocated is what the catalog holds.
    std::process::exit(0)
}
