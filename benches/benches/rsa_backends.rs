//! The RSA backends side by side on licensing's two private-key operations, each blinded as the
//! server runs it:
//!
//! - `rsa_backend_decrypt_premaster/<backend>/<bits>`: `LicensingPrivateKey::decrypt_premaster`
//!   of an EncryptedPreMasterSecret blob (MS-RDPBCGR 5.3.4.1) — RSADP plus the byte reversals
//!   and range checks around it.
//! - `rsa_backend_sign_sha1/<backend>/<bits>`: `LicensingPrivateKey::sign_sha1` over 700 bytes,
//!   about a client license's TBSCertificate (what signing a CAL certificate costs).
//!
//! `<backend>` is every backend in the build (`rust`, and `openssl`: this crate turns on
//! rdpele-proto's `openssl` feature); `<bits>` is 512 (a proprietary certificate's key) and 2048
//! (the license server's key). aws-lc-rs is not here: its safe API has neither raw (no-padding)
//! RSA decryption nor PKCS#1 v1.5 SHA-1 signing, nor private keys under 2048 bits (BENCHMARKS.md).
//! `scripts/bench-rsa` runs this next to `openssl speed` and prints the table of BENCHMARKS.md.

// A benchmark harness: a backend that disagrees must stop the run loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rdpele_proto::crypto::{LicensingPrivateKey, RsaBackend};
use rdpele_proto::machine::testing::LICENSE_SERVER_KEY_PEM;

/// The 512-bit key is generated from this seed; the 2048-bit one is the testing license server's.
const KEY_SEED: u64 = 512;

/// One key per size, on the default backend (the benchmark re-targets it).
fn keys() -> [LicensingPrivateKey; 2] {
    let mut rng = ChaCha20Rng::seed_from_u64(KEY_SEED);
    [
        LicensingPrivateKey::generate(512, &mut rng).unwrap(),
        LicensingPrivateKey::from_pem(LICENSE_SERVER_KEY_PEM).unwrap(),
    ]
}

fn backends() -> impl Iterator<Item = RsaBackend> {
    RsaBackend::ALL
        .into_iter()
        .filter(|backend| backend.is_available())
}

fn decrypt_premaster(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa_backend_decrypt_premaster");
    group.throughput(Throughput::Elements(1));
    let premaster = [0x5a; 48];
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for key in keys() {
        let bits = key.modulus_len() * 8;
        let encrypted = key.public_key().encrypt_premaster(&premaster).unwrap();
        for backend in backends() {
            let key = key.clone().with_backend(backend).unwrap();
            assert_eq!(
                key.decrypt_premaster(&encrypted, &mut rng).unwrap(),
                premaster
            );
            group.bench_function(BenchmarkId::new(backend.to_string(), bits), |b| {
                b.iter(|| key.decrypt_premaster(black_box(&encrypted), &mut rng))
            });
        }
    }
    group.finish();
}

fn sign_sha1(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa_backend_sign_sha1");
    group.throughput(Throughput::Elements(1));
    let tbs = vec![0x30; 700];
    for key in keys() {
        let bits = key.modulus_len() * 8;
        for backend in backends() {
            let key = key.clone().with_backend(backend).unwrap();
            let signature = key.sign_sha1(&tbs).unwrap();
            assert!(key.public_key().verify_sha1(&tbs, &signature));
            group.bench_function(BenchmarkId::new(backend.to_string(), bits), |b| {
                b.iter(|| key.sign_sha1(black_box(&tbs)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decrypt_premaster, sign_sha1);
criterion_main!(benches);
