//! The TLS client configurations of everything cidgate connects to: rustls on the `ring`
//! provider, verifying servers against the system's trusted roots (or a given PEM file).
//! Web-service deliveries, the HTTP dialer and the database connection (`store::tls`)
//! all take theirs from here.

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The crypto provider of every TLS connection.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Makes `ring` the process's default provider, for any client built without a
/// configuration of its own (idempotent: a provider already installed stays).
pub fn install_default_provider() {
    let _ = ring::default_provider().install_default();
}

/// Verifies servers against the system's trusted roots.
pub fn system_roots() -> anyhow::Result<ClientConfig> {
    verified(None)
}

/// Verifies servers against `root_cert` (PEM), else the system's trusted roots.
pub fn verified(root_cert: Option<&str>) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading sslrootcert {path}"))?
            {
                let cert = cert.with_context(|| format!("reading sslrootcert {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("sslrootcert {path} holds an unusable certificate"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store with an odd certificate still serves with the rest.
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        bail!("no root certificate to verify the server with");
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's trusted roots for outbound HTTP clients. A system without roots still
/// starts (https targets then fail, and say why).
pub fn web_client_config() -> ClientConfig {
    system_roots().unwrap_or_else(|e| {
        tracing::warn!(
            error = format!("{e:#}"),
            "no trusted roots for https targets (web services, HTTP dialers)"
        );
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    })
}
