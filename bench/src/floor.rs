//! The argon2id floor: how fast this machine verifies a password at keygate's parameters when nothing but argon2
//! runs, next to keygate's own verify. Shared by the report and `argon2-floor`, a small binary for trying build
//! options without building the whole harness.

use std::time::{Duration, Instant};

/// The password the comparison verifies.
const PASSWORD: &str = "correct horse battery staple";

/// The argon2id floor: the fastest verify this machine does (working memory allocated once and reused, no
/// parsing, no thread hop), against keygate's verify as the login binary runs it (`keygate::passwords::verify`:
/// PHC parse, pooled memory, a blocking-pool thread), and argon2's own allocating `hash_password_into`, which is
/// what a verify without the pool costs. Alternated, so that load from elsewhere hits all three alike.
pub struct Figures {
    /// argon2 into a reused, paged-in buffer, plus the comparison.
    pub floor: Vec<Duration>,
    /// `keygate::passwords::verify`.
    pub keygate: Vec<Duration>,
    /// argon2's allocating `hash_password_into`.
    pub allocating: Vec<Duration>,
    /// keygate's first verify in this process, its pool still empty: what a cold start's first login pays.
    pub first: Duration,
    /// keygate / floor, pair by pair.
    pub ratios: Vec<f64>,
}

/// `samples` of each variant, alternated.
pub async fn measure(samples: usize) -> Figures {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    let params = Params::new(
        keygate::passwords::MEMORY_KIB,
        keygate::passwords::ITERATIONS,
        keygate::passwords::PARALLELISM,
        Some(32),
    )
    .unwrap();
    let context = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = *b"bench salt 16 by";
    let mut blocks = vec![Block::default(); context.params().block_count()];
    let mut expected = [0u8; 32];
    context
        .hash_password_into_with_memory(PASSWORD.as_bytes(), &salt, &mut expected, &mut blocks)
        .unwrap();
    // A PHC string made by argon2 itself, so that keygate's pool is still empty at its first verify.
    let stored = context
        .hash_password(PASSWORD.as_bytes(), &SaltString::encode_b64(&salt).unwrap())
        .unwrap()
        .to_string();
    let password = PASSWORD.to_owned().into();
    let started = Instant::now();
    let verdict = keygate::passwords::verify(&password, Some(&stored)).await.unwrap();
    let first = started.elapsed();
    assert_eq!(verdict, keygate::passwords::Verified::Yes);
    let mut figures = Figures {
        floor: Vec::new(),
        keygate: Vec::new(),
        allocating: Vec::new(),
        first,
        ratios: Vec::new(),
    };
    for _ in 0..samples {
        let started = Instant::now();
        let mut out = [0u8; 32];
        context
            .hash_password_into_with_memory(PASSWORD.as_bytes(), &salt, &mut out, &mut blocks)
            .unwrap();
        assert!(std::hint::black_box(out) == expected);
        let floor = started.elapsed();

        let started = Instant::now();
        let verdict = keygate::passwords::verify(&password, Some(&stored)).await.unwrap();
        let ours = started.elapsed();
        assert_eq!(verdict, keygate::passwords::Verified::Yes);

        let started = Instant::now();
        let mut out = [0u8; 32];
        context
            .hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
            .unwrap();
        std::hint::black_box(out);
        figures.allocating.push(started.elapsed());

        figures.floor.push(floor);
        figures.keygate.push(ours);
        figures.ratios.push(ours.as_secs_f64() / floor.as_secs_f64().max(1e-9));
    }
    figures
}
