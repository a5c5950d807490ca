//! The two rustls crypto providers side by side on the asymmetric work of one TLS 1.3 handshake
//! as `rdpele serve` runs it (X25519 key exchange, an ECDSA P-256 CertificateVerify signature):
//!
//! - `tls_kx_x25519/<provider>`: one side's X25519 — a fresh key pair, then the shared secret
//!   with the peer's share (`SupportedKxGroup::start` + `ActiveKeyExchange::complete`). Each
//!   handshake costs the host one of these, and the in-process emulated client one more.
//! - `tls_sign_ecdsa_p256/<provider>`: the host's CertificateVerify signature with its P-256 key
//!   (`ecdsa_secp256r1_sha256` over a TLS 1.3 signed content's 130 bytes).
//!
//! `<provider>` is `ring` and `aws-lc-rs`. The emulator uses the faster one; BENCHMARKS.md,
//! "TLS provider", holds the figures and the choice.

// A benchmark harness: a provider that fails must stop the run loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{NamedGroup, SignatureScheme};

fn providers() -> [(&'static str, CryptoProvider); 2] {
    [
        ("ring", rustls::crypto::ring::default_provider()),
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
    ]
}

fn x25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_kx_x25519");
    group.throughput(Throughput::Elements(1));
    for (name, provider) in providers() {
        let group_impl = *provider
            .kx_groups
            .iter()
            .find(|kx| kx.name() == NamedGroup::X25519)
            .unwrap();
        let peer_share = group_impl.start().unwrap().pub_key().to_vec();
        group.bench_function(name, |b| {
            b.iter(|| {
                let ours = group_impl.start().unwrap();
                let secret = ours.complete(black_box(&peer_share)).unwrap();
                assert_eq!(secret.secret_bytes().len(), 32);
                secret
            })
        });
    }
    group.finish();
}

fn ecdsa_p256(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_sign_ecdsa_p256");
    group.throughput(Throughput::Elements(1));
    let pkcs8 = rcgen::KeyPair::generate().unwrap().serialize_der();
    let message = [0x20u8; 130];
    for (name, provider) in providers() {
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                pkcs8.clone(),
            )))
            .unwrap();
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        assert!(!signer.sign(&message).unwrap().is_empty());
        group.bench_function(name, |b| {
            b.iter(|| signer.sign(black_box(&message)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, x25519, ecdsa_p256);
criterion_main!(benches);
