//! HTTPS for the license server (`rdpele license-server --tls`): a self-signed certificate
//! made once with rcgen and kept in the data directory (the key 0600), so a session host off
//! loopback can pin it (`rdpele serve --license-server-ca FILE`) and keep its bearer token off
//! the wire in the clear.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::private_files::{create_private_dir, load_or_create, warn_if_open_to_others};

/// The certificate, in the data directory: what session hosts trust.
pub const CERT_FILE: &str = "license_server_tls_cert.pem";
/// Its private key, 0600.
pub const KEY_FILE: &str = "license_server_tls_key.pem";

/// Why the TLS identity could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("TLS identity in {dir}: {reason}")]
pub struct TlsError {
    pub dir: String,
    pub reason: String,
}

/// The server's TLS configuration from the certificate and key in `dir`, made on first use
/// for `names` (DNS names or IP addresses: what session hosts put in their URL). An existing
/// certificate is used as it is, whatever its names: delete both files to make a new one.
pub fn server_config(dir: &Path, names: &[String]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let error = |reason: String| TlsError {
        dir: dir.display().to_string(),
        reason,
    };
    create_private_dir(dir).map_err(|e| error(e.to_string()))?;
    let key_path = dir.join(KEY_FILE);
    let cert_path = dir.join(CERT_FILE);
    let key_pem = load_or_create(
        &key_path,
        || Ok(rcgen::KeyPair::generate()?.serialize_pem()),
    )
    .map_err(|e| error(format!("{KEY_FILE}: {e}")))?;
    warn_if_open_to_others(&key_path);
    let cert_pem = load_or_create(&cert_path, || {
        let key = rcgen::KeyPair::from_pem(&key_pem)?;
        let params = rcgen::CertificateParams::new(names.to_vec())?;
        Ok(params.self_signed(&key)?.pem())
    })
    .map_err(|e| error(format!("{CERT_FILE}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("reading {CERT_FILE}: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| error(format!("reading {KEY_FILE}: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| error(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
