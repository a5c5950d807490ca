//! TLS for the client side of the connection (MS-RDPBCGR 5.4.5.1: TLS replaces RDP's own
//! encryption once X.224 negotiation selected PROTOCOL_SSL).
//!
//! The client accepts **any** server certificate, as `xfreerdp /cert:ignore` does. An emulated
//! client is pointed at hosts under test, and those present self-signed certificates
//! (`rdpele serve` makes one with rcgen, Windows one per host, xrdp a snakeoil one) that no
//! trust store holds; licensing does not rest on the TLS identity — the License Request
//! carries the host's own licensing certificate, which the licensing machine checks. Handshake
//! signatures are still verified, so the server must hold the key of the certificate it shows;
//! only the trust decision is skipped. Do not reuse this outside test networks.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A connector with the aws-lc-rs provider and the verifier above. Each connection builds its
/// own, so no TLS session is resumed between connections: every connection is a first contact,
/// as from a freshly started mstsc. It offers the classical groups only (X25519 first), as
/// Schannel and Debian's OpenSSL 3.0 do: no post-quantum hybrid key share.
pub(super) fn connector() -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .kx_groups
        .retain(|group| group.name() != rustls::NamedGroup::X25519MLKEM768);
    let provider = Arc::new(provider);
    let verifier = AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
