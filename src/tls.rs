//! TLS client set-up shared by IMAP and SMTP: rustls with the ring provider, Mozilla's roots
//! (webpki-roots) plus any extra roots from a configured PEM file (a private CA, or a
//! self-signed server certificate). No openssl anywhere.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Every certificate in a PEM blob; an error when there is none or one is malformed.
pub fn parse_pem_certs(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("not a valid PEM certificate file: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    }
    Ok(certs)
}

/// A rustls client config trusting Mozilla's roots and the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading CA file {}", path.display()))?;
        for cert in parse_pem_certs(&pem).with_context(|| format!("CA file {}", path.display()))? {
            roots.add(cert).with_context(|| format!("adding a root from {}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
