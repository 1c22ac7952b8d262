//! Claims building + signing: one access token, ES256, EdDSA and RS256
//! (2048-bit, the per-audience option), with ring and a key parsed once.

use appauth::token::keys::{Alg, KeySet, generate};
use appauth::token::{IssueRequest, TokenIssuer};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let rules = r#"[{"role":"L1 researcher","role_id":"l1-researcher","scope_type":"cluster","scope_id":"5f1c1e0e-9a51-4c8f-8f4e-0b1d3c6f2a77","scope_name":"Cluster: A"}]"#;
    let mut g = c.benchmark_group("token_sign");
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), alg, 0).unwrap();
        let issuer = TokenIssuer::new(
            KeySet::load(dir.path(), 3600).unwrap(),
            "http://127.0.0.1:8080",
            &["urn:appauth:api".into()],
            3600,
        )
        .with_audience_algs(
            &[("urn:appauth:api".to_string(), alg)]
                .into_iter()
                .filter(|(_, a)| a.is_rsa())
                .collect(),
        );
        let req = IssueRequest {
            client_id: "3f2c9a4e-8d1b-4c6f-9e2a-1b7d5c0f4a68",
            audience: 0,
            scope: Some("l1-researcher"),
            access_rules_json: rules,
            min_iat: 0,
            not_after: None,
            ttl: None,
            federated: None,
            dpop_jkt: None,
            x5t: None,
        };
        g.bench_function(alg.as_str(), |b| {
            b.iter(|| issuer.issue(black_box(&req), 1_800_000_000).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
