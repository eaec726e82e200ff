//! Micro-benchmarks of the CPU work on the hot paths: password hashing, JWT signing and verification, and
//! parsing and checking PATs and refresh tokens (everything but the I/O).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use keygate::keys::{KeyMaterial, KeySet};
use keygate::pat::{self, Pat};
use keygate::tokens::{self, AccessClaims, RefreshToken};
use secrecy::SecretString;

fn passwords(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let password = SecretString::from("correct horse battery staple");
    let hash = runtime.block_on(keygate::passwords::hash(&password)).unwrap();
    let mut group = c.benchmark_group("argon2id m=19456 t=2 p=1");
    group.sample_size(20).measurement_time(Duration::from_secs(4));
    group.bench_function("hash", |b| {
        b.iter(|| {
            runtime
                .block_on(keygate::passwords::hash(black_box(&password)))
                .unwrap()
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            runtime
                .block_on(keygate::passwords::verify(black_box(&password), Some(&hash)))
                .unwrap()
        })
    });
    group.finish();
}

fn jwts(c: &mut Criterion) {
    let material = KeyMaterial::generate().unwrap();
    let keys = KeySet::from_materials(Some(&material), &[], 0);
    let claims = AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "0b0e2c4e-9d7c-4c1a-9a8e-1f2d3c4b5a69".into(),
        aud: "keygate".into(),
        exp: 2_000_000_000,
        iat: 1_700_000_000,
        jti: "hX-qzlXemi9vlhLKqMwumg".into(),
        sid: "rMpP2Kjz5ViDw4R43iCICQ".into(),
        scope: "profile:read profile:write sessions:read sessions:write tokens:read tokens:write".into(),
        amr: vec!["pwd".into()],
        auth_time: 1_700_000_000,
        ..AccessClaims::default()
    };
    let jwt = tokens::sign_access_token(&keys, &claims).unwrap();
    let mut group = c.benchmark_group("RS256");
    group.bench_function("sign", |b| {
        b.iter(|| tokens::sign_access_token(&keys, black_box(&claims)).unwrap())
    });
    group.bench_function("verify (authorizer, JWT)", |b| {
        b.iter(|| {
            tokens::verify_access_token(
                &keys,
                black_box(&jwt),
                "https://auth.example.com",
                "keygate",
                1_800_000_000,
            )
            .unwrap()
        })
    });
    group.finish();
}

fn opaque_tokens(c: &mut Criterion) {
    let id = pat::new_id();
    let wire = Pat::generate(&id).expose("kg");
    let stored_hash = Pat::parse(&wire, "kg").unwrap().hash();
    let refresh = RefreshToken::generate(&tokens::new_session_id(), &keygate::store::users::new_user_id()).expose();
    let mut group = c.benchmark_group("opaque tokens");
    group.bench_function("PAT parse + checksum + hash-compare (authorizer, PAT, no I/O)", |b| {
        b.iter(|| {
            let pat = Pat::parse(black_box(&wire), "kg").unwrap();
            assert!(keygate::secret::ct_eq(&pat.hash(), &stored_hash));
        })
    });
    group.bench_function("PAT with a typo (refused before any read)", |b| {
        let typo = wire.replacen('.', ".A", 1);
        b.iter(|| Pat::parse(black_box(&typo), "kg").is_err())
    });
    group.bench_function("refresh token parse + hash", |b| {
        b.iter(|| RefreshToken::parse(black_box(&refresh)).unwrap().hash())
    });
    group.finish();
}

criterion_group!(benches, passwords, jwts, opaque_tokens);
criterion_main!(benches);
