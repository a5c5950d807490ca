//! The host's TLS identity (MS-RDPBCGR 5.4.5.1: TLS replaces RDP's own encryption): a
//! self-signed certificate made once with rcgen and kept in the data directory, so a client
//! that pins it on first use sees the same one on every run.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    if !cert_path.exists() || !key_path.exists() {
        let certified = rcgen::generate_simple_self_signed(vec![host_name.to_owned()])
            .map_err(|e| error(format!("generating the certificate: {e}")))?;
        std::fs::write(&key_path, certified.signing_key.serialize_pem())
            .map_err(|e| error(format!("writing {KEY_FILE}: {e}")))?;
        std::fs::write(&cert_path, certified.cert.pem())
            .map_err(|e| error(format!("writing {CERT_FILE}: {e}")))?;
    }
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(format!("reading {CERT_FILE}: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| error(format!("reading {KEY_FILE}: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| error(e.to_string()))?;
    Ok(Arc::new(config))
}
