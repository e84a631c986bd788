//! Screen-pop links: HMAC-SHA256-signed, expiring capabilities naming the tenant, the
//! contact, the caller's number and the dialled line. A changed, truncated or expired
//! link opens nothing.
//!
//! Form: `1.<key id>.<claims, base64url JSON>.<HMAC-SHA256 of what precedes, base64url>`.

pub mod views;

use std::borrow::Cow;
use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{PopupKey, TenantId};

const VERSION: &str = "1";
/// Longest link token accepted before any decoding work.
const MAX_TOKEN_LEN: usize = 2048;

/// What a link grants: the screen pop of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims<'a> {
    #[serde(rename = "t")]
    pub tenant: i64,
    /// The contact; `None` for an unknown caller's page.
    #[serde(rename = "c", skip_serializing_if = "Option::is_none", default)]
    pub crm_id: Option<Cow<'a, str>>,
    /// The caller's normalized number.
    #[serde(rename = "n")]
    pub number: Cow<'a, str>,
    #[serde(rename = "d", skip_serializing_if = "Option::is_none", default)]
    pub dnid: Option<Cow<'a, str>>,
    /// Unix time after which the link is dead.
    #[serde(rename = "e")]
    pub expires: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is incomplete or altered")]
    Malformed,
    #[error("the link is not genuine")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// A link split into its parts, before the signature is checked.
pub struct UnverifiedLink<'a> {
    pub key_id: i32,
    pub claims: LinkClaims<'static>,
    signed: &'a str,
    mac: Vec<u8>,
}

type HmacSha256 = Hmac<Sha256>;

fn mac_for(secret: &[u8; 32], signed: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signed.as_bytes());
    mac
}

/// Signs links with one key; keyed once, so each link costs only its own hashing.
#[derive(Clone)]
pub struct Signer {
    key_id: i32,
    keyed: HmacSha256,
}

impl Signer {
    pub fn new(key: &PopupKey) -> Self {
        Self {
            key_id: key.key_id,
            keyed: HmacSha256::new_from_slice(&key.secret).expect("HMAC takes keys of any length"),
        }
    }

    pub fn sign(&self, claims: &LinkClaims<'_>) -> String {
        let mut token = String::new();
        self.sign_into(claims, &mut token);
        token
    }

    /// Appends the signed token to `out`: a lookup builds its whole link in one buffer.
    pub fn sign_into(&self, claims: &LinkClaims<'_>, out: &mut String) {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let start = out.len();
        let _ = write!(out, "{VERSION}.{}.", self.key_id);
        URL_SAFE_NO_PAD.encode_string(payload, out);
        let mut mac = self.keyed.clone();
        mac.update(&out.as_bytes()[start..]);
        let tag = mac.finalize().into_bytes();
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, out);
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(key {})", self.key_id)
    }
}

/// Signs `claims` with the tenant's key.
pub fn sign(key: &PopupKey, claims: &LinkClaims<'_>) -> String {
    Signer::new(key).sign(claims)
}

/// Splits a link; says which tenant and key claim to have signed it.
pub fn parse(token: &str) -> Result<UnverifiedLink<'_>, LinkError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(LinkError::Malformed);
    }
    let (signed, mac) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
    let mut parts = signed.split('.');
    let (Some(VERSION), Some(key_id), Some(payload), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    let key_id = key_id.parse().map_err(|_| LinkError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| LinkError::Malformed)?;
    let claims = serde_json::from_slice(&payload).map_err(|_| LinkError::Malformed)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| LinkError::Malformed)?;
    Ok(UnverifiedLink {
        key_id,
        claims,
        signed,
        mac,
    })
}

impl UnverifiedLink<'_> {
    pub fn tenant(&self) -> TenantId {
        TenantId(self.claims.tenant)
    }

    /// Checks the signature (constant time) with the key it names, then the expiry.
    pub fn verify(self, key: &PopupKey) -> Result<LinkClaims<'static>, LinkError> {
        if key.tenant.0 != self.claims.tenant || key.key_id != self.key_id {
            return Err(LinkError::BadSignature);
        }
        mac_for(&key.secret, self.signed)
            .verify_slice(&self.mac)
            .map_err(|_| LinkError::BadSignature)?;
        if self.claims.expires <= Utc::now().timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(self.claims)
    }
}

/// What a filled-in value keeps unencoded: RFC 3986's unreserved characters, which
/// mean the same in a path and in a query (a space becomes `%20`, not a `+` that a path
/// would read as a plus).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Fills `{id}`, `{number}` (E.164) and `{national}` into a URL template, each value
/// percent-encoded so it cannot change the URL's structure.
pub fn fill_template(template: &str, id: Option<&str>, number: &str, national: &str) -> String {
    let encode = |v: &str| percent_encoding::utf8_percent_encode(v, UNRESERVED).to_string();
    template
        .replace("{id}", &encode(id.unwrap_or_default()))
        .replace("{number}", &encode(number))
        .replace("{national}", &encode(national))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: i64, key_id: i32, byte: u8) -> PopupKey {
        PopupKey {
            tenant: TenantId(tenant),
            key_id,
            secret: [byte; 32],
        }
    }

    fn claims(expires_in: i64) -> LinkClaims<'static> {
        LinkClaims {
            tenant: 1,
            crm_id: Some("12345".into()),
            number: "+40721234567".into(),
            dnid: Some("0210000000".into()),
            expires: Utc::now().timestamp() + expires_in,
        }
    }

    #[test]
    fn a_signed_link_verifies_with_its_key_and_reveals_its_claims() {
        let k = key(1, 1, 7);
        let token = sign(&k, &claims(60));
        let link = parse(&token).unwrap();
        assert_eq!(link.key_id, 1);
        assert_eq!(link.tenant(), TenantId(1));
        assert_eq!(link.verify(&k).unwrap().crm_id.as_deref(), Some("12345"));
    }

    #[test]
    fn changed_truncated_foreign_and_expired_links_are_refused() {
        let k = key(1, 1, 7);
        let token = sign(&k, &claims(60));
        // Another contact in the claims, same signature.
        let mut other = claims(60);
        other.crm_id = Some("99999".into());
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("1.1.{forged_payload}.{}", parts[3]);
        assert_eq!(
            parse(&forged).unwrap().verify(&k),
            Err(LinkError::BadSignature)
        );
        // Truncated anywhere.
        for cut in [5, token.len() / 2, token.len() - 1] {
            let result = parse(&token[..cut]).and_then(|l| l.verify(&k));
            assert!(result.is_err(), "cut at {cut}");
        }
        // Another tenant's key, or a key id that does not match.
        assert_eq!(
            parse(&token).unwrap().verify(&key(2, 1, 7)),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            parse(&token).unwrap().verify(&key(1, 1, 8)),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            parse(&token).unwrap().verify(&key(1, 2, 7)),
            Err(LinkError::BadSignature)
        );
        // Expired.
        let old = sign(&k, &claims(-1));
        assert_eq!(parse(&old).unwrap().verify(&k), Err(LinkError::Expired));
        assert_eq!(parse("").err(), Some(LinkError::Malformed));
        assert_eq!(parse(&"a".repeat(5000)).err(), Some(LinkError::Malformed));
    }

    #[test]
    fn templates_are_filled_with_encoded_values() {
        let url = fill_template(
            "https://crm.example.com/c/{id}?p={number}&n={national}",
            Some("a b/c&d?e#f\"<ö"),
            "+40721",
            "0721 234",
        );
        assert_eq!(
            url,
            "https://crm.example.com/c/a%20b%2Fc%26d%3Fe%23f%22%3C%C3%B6?p=%2B40721&n=0721%20234"
        );
    }
}
