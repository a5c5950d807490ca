//! The host's TLS identity (MS-RDPBCGR 5.4.5.1: TLS replaces RDP's own encryption): a
//! self-signed certificate made once with rcgen and kept in the data directory, so a client
//! that pins it on first use sees the same one on every run. Its key is ECDSA P-256, 0600.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use rdpele_license_server::private_files::load_or_create;

/// Certificate and key files in the data directory.
pub const CERT_FILE: &str = "host_tls_cert.pem";
pub const KEY_FILE: &str = "host_tls_key.pem";

#[derive(Debug, thiserror::Error)]
#[error("TLS identity in {dir}: {reason}")]
pub struct TlsError {
    pub dir: String,
    pub reason: String,
}

/// Loads the host's certificate and key from `dir`, creating them on first use, and builds the
/// acceptor's configuration.
pub fn server_config(dir: &Path, host_name: &str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let error = |reason: String| TlsError {
        dir: dir.display().to_string(),
        reason,
    };
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let key_pem = load_or_create(
        &key_path,
        || Ok(rcgen::KeyPair::generate()?.serialize_pem()),
    )
    .map_err(|e| error(format!("{KEY_FILE}: {e}")))?;
    rdpele_license_server::private_files::warn_if_open_to_others(&key_path);
    // A certificate made for the key on disk, whoever wrote the key: two hosts starting on one
    // fresh directory may each make one, and either is valid for it.
    load_or_create(&cert_path, || {
        let key = rcgen::KeyPair::from_pem(&key_pem)?;
        let params = rcgen::CertificateParams::new(vec![host_name.to_owned()])?;
        Ok(params.self_signed(&key)?.pem())
    })
    .map_err(|e| error(format!("{CERT_FILE}: {e}")))?;
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(format!("reading {CERT_FILE}: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| error(format!("reading {KEY_FILE}: {e}")))?;
    // TLS_AES_128_GCM_SHA256 first, whatever the client prefers: every TLS 1.3 client has it
    // (RFC 8446 9.1 makes it mandatory), and its key schedule's SHA-256 runs on the CPU's SHA
    // instructions where AES-256-GCM's SHA-384 has none on x86 (3.8 % of all CPU time in a
    // loopback profile of `serve_handshake/valid/16`; BENCHMARKS.md).
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| error(e.to_string()))?;
    config.ignore_client_order = true;
    // RDP clients open a new TLS session per connection (FreeRDP makes a fresh SSL_CTX for each,
    // rdpele's own client does too), so rustls' two TLS 1.3 session tickets per handshake would
    // be encrypted, sent and cached for nothing.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};

    use rustls::client::ClientSessionMemoryCache;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, RootCertStore, ServerConnection};

    use super::*;

    /// Moves every TLS byte each side has to send to the other until neither has any.
    fn exchange(client: &mut ClientConnection, server: &mut ServerConnection) {
        let mut wire = Vec::new();
        while client.wants_write() || server.wants_write() {
            wire.clear();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            wire.clear();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut wire.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
    }

    #[test]
    fn the_host_picks_aes_128_gcm_and_hands_out_no_session_tickets() {
        let dir = tempfile::tempdir().unwrap();
        let server_config = server_config(dir.path(), "host.test").unwrap();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(dir.path().join(CERT_FILE)).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let sessions = Arc::new(ClientSessionMemoryCache::new(8));
        let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        client_config.resumption = rustls::client::Resumption::store(sessions.clone());
        let name = ServerName::try_from("host.test").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name.clone()).unwrap();
        let mut server = ServerConnection::new(server_config).unwrap();

        exchange(&mut client, &mut server);
        server.writer().write_all(b"MCS").unwrap();
        exchange(&mut client, &mut server);
        let mut received = [0u8; 3];
        client.reader().read_exact(&mut received).unwrap();

        assert!(!client.is_handshaking() && &received == b"MCS");
        // The client (rustls' default order) prefers AES-256-GCM, as OpenSSL and Schannel do.
        assert_eq!(
            client.negotiated_cipher_suite().map(|suite| suite.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
        assert_eq!(
            client.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert!(
            rustls::client::ClientSessionStore::take_tls13_ticket(sessions.as_ref(), &name)
                .is_none(),
            "the host sent a TLS 1.3 session ticket"
        );
    }
}
