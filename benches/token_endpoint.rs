//! The whole `POST /oauth/token` handler in-process (router, body, form,
//! Basic auth, secret check, claims, ES256 signature, response) — no socket —
//! and an admin list query over 100,000 applications.

use appauth::directory::Directory;
use appauth::domain::secret::Pepper;
use appauth::listing::AppRecord;
use appauth::store::{MemoryStore, Store, Write, keys};
use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;

fn token_endpoint(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = appauth::Config::load(
        None,
        Vec::new(),
        &[
            "server.listen=127.0.0.1:0".into(),
            format!("store.path={}", dir.path().join("data").display()),
            format!("keys.dir={}", dir.path().join("keys").display()),
        ],
    )
    .unwrap();
    let app = rt.block_on(appauth::App::build(config)).unwrap();
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            creds["clientId"].as_str().unwrap(),
            creds["secret"].as_str().unwrap()
        ))
    );
    c.bench_function("token_endpoint/in_process", |b| {
        b.to_async(&rt).iter(|| {
            let req = Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", &basic)
                .body(Body::from("grant_type=client_credentials"))
                .unwrap();
            let served = app.handle(req);
            async move {
                let resp = served.await.unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
    });
}

fn admin_list_query(c: &mut Criterion) {
    let store = Arc::new(MemoryStore::default());
    let writes: Vec<Write> = (0..100_000)
        .map(|i| {
            let app = serde_json::json!({
                "id": format!("00000000-0000-4000-8000-{i:012}"),
                "name": format!("app-{:05}-{}", (i * 7919) % 100_000, if i % 3 == 0 { "ci" } else { "svc" }),
                "clientId": format!("10000000-0000-4000-8000-{i:012}"),
                "secretHash": "00".repeat(32),
                "enabled": i % 10 != 0,
                "createdBy": format!("creator-{}", i % 50),
                "createdAt": 1_700_000_000_000_i64 + i,
                "updatedAt": 1_700_000_000_000_i64 + i,
            });
            Write::Put(
                keys::app(app["id"].as_str().unwrap()),
                serde_json::to_vec(&app).unwrap(),
            )
        })
        .collect();
    store.apply(&writes).unwrap();
    let dir = Directory::load(store, Pepper::from_bytes(&[1; 32]), 3600).unwrap();
    // A page of a third of the rows, filtered on two columns; and the shape
    // benches/scale.sh asks over HTTP, where all rows match the name filter.
    type Filters = &'static [(&'static str, &'static str)];
    let queries: [(&str, Filters, usize); 2] = [
        (
            "admin_list_query/100k_apps_filter_sort_page",
            &[("filterBy", "name=@ci"), ("filterBy", "enabled==true")],
            20_000,
        ),
        (
            "admin_list_query/100k_apps_wide_filter_sort_page",
            &[("filterBy", "name=@app-")],
            100_000,
        ),
    ];
    for (name, filters, at_least) in queries {
        let page = [
            ("sortBy", "name"),
            ("sortOrder", "desc"),
            ("offset", "100"),
            ("limit", "50"),
        ];
        let pairs: Vec<(String, String)> = filters
            .iter()
            .chain(&page)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.bench_function(name, |b| {
            b.iter(|| {
                let q = appauth::query::parse_query::<AppRecord<'_>>(&pairs, &[]).unwrap();
                let cat = dir.read();
                let (total, ids) = appauth::listing::run_app_query(&cat, &q);
                let views: Vec<_> = ids
                    .iter()
                    .filter_map(|id| cat.apps.get(id))
                    .map(|r| cat.app_view(&r.app))
                    .collect();
                assert!(total >= at_least && views.len() == 50);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = token_endpoint, admin_list_query
}
criterion_main!(benches);
