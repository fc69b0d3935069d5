//! The self-signed server certificate (made with the openssl CLI) and a rustls client config
//! that trusts only it.
//!
//! Talks to: `openssl`, the instance's tls/ directory.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{MailServers, set_mode, write_file};

impl MailServers {
    /// The server certificate as PEM bytes.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        fs::read(&self.ca_file).with_context(|| format!("reading {}", self.ca_file.display()))
    }

    /// A rustls client config (ring provider) that trusts only this instance's certificate.
    pub fn rustls_client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca_file)
            .with_context(|| format!("reading {}", self.ca_file.display()))?
        {
            roots.add(cert.context("parsing certificate PEM")?).context("adding certificate to root store")?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("rustls protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

pub(super) fn make_certificate(dir: &Path, cert: &Path, key: &Path) -> Result<()> {
    let cnf = dir.join("openssl.cnf");
    write_file(
        &cnf,
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         x509_extensions = ext\n\
         [dn]\n\
         CN = localhost\n\
         [ext]\n\
         basicConstraints = critical,CA:FALSE\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectKeyIdentifier = hash\n"
            .to_string(),
        0o644,
    )?;
    let out = Command::new("openssl")
        .args(["req", "-x509", "-new", "-nodes", "-days", "3650"])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .arg("-config")
        .arg(&cnf)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .env_remove("OPENSSL_CONF")
        .stdin(Stdio::null())
        .output()
        .context("running openssl req")?;
    if !out.status.success() {
        bail!(
            "openssl req failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    set_mode(key, 0o600)?;
    set_mode(cert, 0o644)?;
    Ok(())
}
