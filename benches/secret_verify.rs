//! Client-secret checks: the keyed hash (HMAC-SHA256 with the pepper), a
//! known and an unknown client through the directory, and format parsing.

use appauth::directory::Directory;
use appauth::domain::application::AppName;
use appauth::domain::secret::{ClientSecret, Pepper};
use appauth::store::MemoryStore;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = Directory::load(Arc::new(MemoryStore::default()), Pepper::from_bytes(&[7; 32]), 3600).unwrap();
    let (app, secret) = rt
        .block_on(dir.create_app(
            AppName::parse("bench-app").unwrap(),
            Default::default(),
            Default::default(),
            &appauth::directory::Actor::system(),
        ))
        .unwrap();
    let id = app.client_id.as_str().to_owned();
    let s = secret.expose().to_owned();
    let mut g = c.benchmark_group("secret_verify");
    g.bench_function("parse_format_and_checksum", |b| {
        b.iter(|| ClientSecret::parse(black_box(&s)).unwrap())
    });
    g.bench_function("authenticate_known_client", |b| {
        b.iter(|| assert!(dir.authenticate(black_box(&id), black_box(&s), 0).is_some()))
    });
    g.bench_function("authenticate_unknown_client", |b| {
        b.iter(|| {
            assert!(
                dir.authenticate(black_box("00000000-0000-4000-8000-000000000000"), black_box(&s), 0)
                    .is_none()
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
