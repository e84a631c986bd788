//! How cidgate reaches PostgreSQL: the connection settings and the TLS they ask for,
//! read the way libpq reads them, so a managed database's URL works as given.
//!
//! - `sslmode=disable`: plain TCP. `prefer` (the default): TLS when the server offers
//!   it. `require`: TLS or no connection.
//! - Without a root certificate, `prefer` and `require` encrypt but do not verify the
//!   server (as libpq does). With `sslrootcert=FILE`, or with `sslmode=verify-ca` /
//!   `verify-full`, the server's certificate must chain to `FILE` (or, without it, to
//!   the system's trusted roots) and name the host connected to. The roots and the
//!   provider are `outbound::tls`'s, as every other TLS client's.

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::outbound::tls::{provider, verified};

/// A parsed `DATABASE_URL` and the TLS connector it asks for.
pub struct DatabaseTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// What the URL asks of the server's certificate.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verification {
    /// `sslmode=verify-ca`/`verify-full`: TLS required and verified.
    verify: bool,
    root_cert: Option<String>,
}

impl DatabaseTarget {
    pub fn parse(database_url: &str) -> anyhow::Result<Self> {
        let (plain, verification) = split_verification(database_url)?;
        let mut config: tokio_postgres::Config = plain
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL connection string")?;
        let verify = verification.verify || verification.root_cert.is_some();
        if verification.verify {
            config.ssl_mode(SslMode::Require);
        }
        let tls = if verify {
            verified(verification.root_cert.as_deref())?
        } else {
            encrypted_only()
        };
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new(tls),
        })
    }
}

/// Takes out what tokio-postgres does not read itself (`sslmode=verify-*`,
/// `sslrootcert`), from a URL (`postgres://…?sslmode=…`) or a key=value string.
fn split_verification(database_url: &str) -> anyhow::Result<(String, Verification)> {
    let mut verification = Verification::default();
    let mut take = |key: &str, value: &str| -> anyhow::Result<bool> {
        match (key, value) {
            ("sslmode", "verify-ca" | "verify-full") => verification.verify = true,
            ("sslrootcert", "") => bail!("sslrootcert is empty"),
            ("sslrootcert", path) => verification.root_cert = Some(path.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let is_url =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    if is_url {
        let mut url = url::Url::parse(database_url)
            .context("DATABASE_URL is not a valid PostgreSQL connection string")?;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            if !take(&key, &value)? {
                kept.push((key.into_owned(), value.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok((url.into(), verification));
    }
    let mut kept = Vec::new();
    for word in database_url.split_whitespace() {
        let taken = match word.split_once('=') {
            Some((key, value)) => take(key, value)?,
            None => false,
        };
        if !taken {
            kept.push(word);
        }
    }
    Ok((kept.join(" "), verification))
}

/// Encrypts without checking who answers: libpq's `require` without a root
/// certificate. Signatures are still checked, so the session key is the server's.
fn encrypted_only() -> ClientConfig {
    let provider = provider();
    let verifier = Arc::new(AnyServer(provider.signature_verification_algorithms));
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_root_certs_are_taken_out_of_urls() {
        let (plain, v) = split_verification(
            "postgres://u:p@db.example.com:5432/cidgate?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            plain,
            "postgres://u:p@db.example.com:5432/cidgate?application_name=x"
        );
        assert_eq!(
            v,
            Verification {
                verify: true,
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        let (plain, v) = split_verification("postgres://db/cidgate?sslmode=require").unwrap();
        assert_eq!(plain, "postgres://db/cidgate?sslmode=require");
        assert_eq!(v, Verification::default());
        let (plain, v) =
            split_verification("host=db dbname=cidgate sslmode=verify-ca sslrootcert=/ca.pem")
                .unwrap();
        assert_eq!(plain, "host=db dbname=cidgate");
        assert!(v.verify);
        assert!(split_verification("postgres://db/x?sslrootcert=").is_err());
    }

    #[test]
    fn a_missing_root_certificate_file_is_an_error_naming_it() {
        let error = DatabaseTarget::parse("postgres://db/x?sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap();
        assert!(format!("{error:#}").contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn verify_modes_require_tls() {
        let target = DatabaseTarget::parse("postgres://db/x?sslmode=verify-full").unwrap();
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        let target = DatabaseTarget::parse("postgres://db/x").unwrap();
        assert_eq!(target.config.get_ssl_mode(), SslMode::Prefer);
    }
}
