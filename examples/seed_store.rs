//! Benchmark helper: writes N placeholder applications straight into a
//! stopped server's sled store (their secrets are unusable), to measure
//! start-up, memory and token throughput with a large directory without
//! provisioning each one through the API.
//!
//! usage: cargo run --release --example seed_store -- <store.path | postgres://…> <count>
//!
//! With a PostgreSQL URL the records go through the change log, so running
//! instances follow them as they would any other write.

use appauth::store::{PostgresStore, SledStore, Store, Write, keys};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: seed_store <store.path> <count>".into());
    };
    let count: usize = count.parse()?;
    let store: Box<dyn Store> = if path.starts_with("postgres://") || path.starts_with("postgresql://") {
        Box::new(PostgresStore::open(&path)?)
    } else {
        Box::new(SledStore::open(std::path::Path::new(&path))?)
    };
    let now = 1_795_000_000_000_i64;
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let writes: Vec<Write> = chunk
            .iter()
            .map(|i| {
                let id = appauth::domain::new_id();
                let app = serde_json::json!({
                    "id": id,
                    "name": format!("seeded-{i:06}"),
                    "clientId": appauth::domain::new_id(),
                    "secretHash": "00".repeat(32),
                    "enabled": true,
                    "createdBy": "seed",
                    "createdAt": now + *i as i64,
                    "updatedAt": now + *i as i64,
                });
                Write::Put(keys::app(&id), serde_json::to_vec(&app).expect("JSON"))
            })
            .collect();
        store.apply(&writes)?;
    }
    println!("seeded {count} applications");
    Ok(())
}
