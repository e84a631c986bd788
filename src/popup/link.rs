//! Screen-pop links: expiring capabilities naming the tenant, the contact, the caller's
//! number and the dialled line. A changed, truncated or expired link opens nothing, and
//! a link shows none of what it names to whoever sees it (a proxy log, a browser
//! history, a screenshot of the address bar).
//!
//! Form: `2.<tenant>.<key id>.<nonce, sealed claims, tag; base64url>`. The claims (JSON)
//! are sealed with XChaCha20-Poly1305 under a key derived from the tenant's signing key
//! with HKDF-SHA256, what precedes them as associated data: the seal both hides and
//! authenticates them, and the keys, their rotation and retirement stay as they were.
//! Links of the first form, `1.<key id>.<claims, base64url JSON>.<HMAC-SHA256 of what
//! precedes>`, are still opened until they expire; none are made any more.

use std::borrow::Cow;
use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use chrono::Utc;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{PopupKey, TenantId};

/// Links made now: sealed claims.
const SEALED: &str = "2";
/// Links made before: readable claims, signed.
const SIGNED: &str = "1";
/// Longest link token accepted before any decoding work.
const MAX_TOKEN_LEN: usize = 2048;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Room for a link's nonce, claims and tag: claims longer than this (a long CRM id) only
/// cost the buffer one more growth.
const SEAL_CAPACITY: usize = 256;
/// What the link cipher's key is derived for: a signing key's other use (the HMAC of
/// first-form links) never meets this key.
const HKDF_INFO: &[u8] = b"cidgate screen-pop link seal v2";

/// What a link grants: the screen pop of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The caller ID's verification (`verstat`) and attestation, as the PBX passed them.
    #[serde(rename = "v", skip_serializing_if = "Option::is_none", default)]
    pub verstat: Option<Cow<'a, str>>,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none", default)]
    pub attest: Option<Cow<'a, str>>,
    /// Why the call was screened, when it was.
    #[serde(rename = "s", skip_serializing_if = "Option::is_none", default)]
    pub screened: Option<Cow<'a, str>>,
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

/// A link split into its parts, before its seal or signature is checked: it names the
/// tenant and the key to check it with, and nothing else can be trusted yet.
pub struct UnverifiedLink<'a> {
    tenant: TenantId,
    pub key_id: i32,
    form: Form<'a>,
}

enum Form<'a> {
    /// The current form: `header` (`2.<tenant>.<key id>`) is the associated data.
    Sealed { header: &'a str, sealed: Vec<u8> },
    /// The first form: the claims were readable, `signed` is what the HMAC covers.
    Signed {
        claims: LinkClaims<'static>,
        signed: &'a str,
        mac: Vec<u8>,
    },
}

type HmacSha256 = Hmac<Sha256>;

/// One of a tenant's signing keys, ready to use: keyed once (at a directory load), so a
/// link costs only its own cipher and hash work.
#[derive(Clone)]
pub struct LinkKey {
    tenant: TenantId,
    key_id: i32,
    /// Seals and opens links of the current form.
    cipher: XChaCha20Poly1305,
    /// Checks links of the first form.
    mac: HmacSha256,
}

impl LinkKey {
    /// The cipher's key is derived from the signing key (HKDF), so no key is stored
    /// twice and rotating or retiring a signing key rotates or retires its links' seal.
    pub fn new(key: &PopupKey) -> Self {
        let mut sealing = chacha20poly1305::Key::default();
        Hkdf::<Sha256>::new(None, &key.secret)
            .expand(HKDF_INFO, &mut sealing)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            tenant: key.tenant,
            key_id: key.key_id,
            cipher: XChaCha20Poly1305::new(&sealing),
            mac: <HmacSha256 as Mac>::new_from_slice(&key.secret)
                .expect("HMAC takes keys of any length"),
        }
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn key_id(&self) -> i32 {
        self.key_id
    }

    pub fn seal(&self, claims: &LinkClaims<'_>) -> String {
        let mut token = String::new();
        self.seal_into(claims, &mut token);
        token
    }

    /// Appends the sealed link to `out`: a lookup builds its whole link in one buffer.
    /// One allocation (the sealing buffer), as the signed form had for its JSON.
    pub fn seal_into(&self, claims: &LinkClaims<'_>, out: &mut String) {
        let start = out.len();
        let _ = write!(out, "{SEALED}.{}.{}", self.tenant.0, self.key_id);
        let mut nonce = XNonce::default();
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = Vec::with_capacity(SEAL_CAPACITY);
        sealed.extend_from_slice(&nonce);
        serde_json::to_writer(&mut sealed, claims).expect("claims serialize");
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, &out.as_bytes()[start..], &mut sealed[NONCE_LEN..])
            .expect("a link is far below the cipher's length limit");
        sealed.extend_from_slice(&tag);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&sealed, out);
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({}, key {})", self.tenant, self.key_id)
    }
}

/// Seals `claims` with the tenant's key.
pub fn seal(key: &PopupKey, claims: &LinkClaims<'_>) -> String {
    LinkKey::new(key).seal(claims)
}

/// Splits a link; says which tenant and key it claims to be made with.
pub fn parse(token: &str) -> Result<UnverifiedLink<'_>, LinkError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(LinkError::Malformed);
    }
    let (header, last) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
    let mut parts = header.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(SEALED), Some(tenant), Some(key_id), None) => {
            let sealed = decode(last)?;
            if sealed.len() < NONCE_LEN + TAG_LEN {
                return Err(LinkError::Malformed);
            }
            Ok(UnverifiedLink {
                tenant: TenantId(number(tenant)?),
                key_id: number(key_id)?,
                form: Form::Sealed { header, sealed },
            })
        }
        (Some(SIGNED), Some(key_id), Some(payload), None) => {
            let claims: LinkClaims<'static> =
                serde_json::from_slice(&decode(payload)?).map_err(|_| LinkError::Malformed)?;
            Ok(UnverifiedLink {
                tenant: TenantId(claims.tenant),
                key_id: number(key_id)?,
                form: Form::Signed {
                    claims,
                    signed: header,
                    mac: decode(last)?,
                },
            })
        }
        _ => Err(LinkError::Malformed),
    }
}

fn decode(part: &str) -> Result<Vec<u8>, LinkError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| LinkError::Malformed)
}

/// Plain digits only: the header is authenticated byte for byte, so `+1` is no `1`.
fn number<T: std::str::FromStr>(part: &str) -> Result<T, LinkError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::Malformed);
    }
    part.parse().map_err(|_| LinkError::Malformed)
}

impl UnverifiedLink<'_> {
    /// The tenant the link names (unverified: for choosing the key, and the framing of
    /// an error page).
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Opens the seal (or checks the first form's signature, in constant time) with the
    /// key the link names, then the expiry.
    pub fn verify(self, key: &LinkKey) -> Result<LinkClaims<'static>, LinkError> {
        if key.tenant != self.tenant || key.key_id != self.key_id {
            return Err(LinkError::BadSignature);
        }
        let claims = match self.form {
            Form::Sealed { header, mut sealed } => {
                let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
                let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
                key.cipher
                    .decrypt_in_place_detached(
                        XNonce::from_slice(nonce),
                        header.as_bytes(),
                        body,
                        Tag::from_slice(tag),
                    )
                    .map_err(|_| LinkError::BadSignature)?;
                let claims: LinkClaims<'static> =
                    serde_json::from_slice(body).map_err(|_| LinkError::Malformed)?;
                claims
            }
            Form::Signed {
                claims,
                signed,
                mac,
            } => {
                let mut check = key.mac.clone();
                check.update(signed.as_bytes());
                check
                    .verify_slice(&mac)
                    .map_err(|_| LinkError::BadSignature)?;
                claims
            }
        };
        if claims.tenant != self.tenant.0 {
            return Err(LinkError::BadSignature);
        }
        if claims.expires <= Utc::now().timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }
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
            ..LinkClaims::default()
        }
    }

    /// A link of the first form, made as the versions before sealing made them.
    fn sign_into(keyed: &HmacSha256, key_id: i32, claims: &LinkClaims<'_>, out: &mut String) {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let start = out.len();
        let _ = write!(out, "{SIGNED}.{key_id}.");
        URL_SAFE_NO_PAD.encode_string(payload, out);
        let mut mac = keyed.clone();
        mac.update(&out.as_bytes()[start..]);
        let tag = mac.finalize().into_bytes();
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, out);
    }

    fn signed(key: &PopupKey, claims: &LinkClaims<'_>) -> String {
        let mut out = String::new();
        sign_into(&LinkKey::new(key).mac, key.key_id, claims, &mut out);
        out
    }

    fn open(token: &str, key: &PopupKey) -> Result<LinkClaims<'static>, LinkError> {
        parse(token)?.verify(&LinkKey::new(key))
    }

    #[test]
    fn a_sealed_link_opens_with_its_key_and_shows_nothing_it_names() {
        let k = key(1, 1, 7);
        let token = seal(&k, &claims(60));
        let link = parse(&token).unwrap();
        assert_eq!((link.tenant(), link.key_id), (TenantId(1), 1));
        assert_eq!(open(&token, &k).unwrap().crm_id.as_deref(), Some("12345"));
        assert!(token.starts_with("2.1.1."), "{token}");
        // Neither the text nor its base64 shows the number, the line or the contact.
        let bytes = URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap();
        for secret in ["40721234567", "0210000000", "12345"] {
            assert!(!token.contains(secret), "{token}");
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
        assert_ne!(token, seal(&k, &claims(60)), "a fresh nonce per link");
    }

    #[test]
    fn links_of_the_first_form_keep_opening_until_they_expire() {
        let k = key(1, 1, 7);
        assert_eq!(open(&signed(&k, &claims(60)), &k), Ok(claims(60)));
        assert_eq!(open(&signed(&k, &claims(-1)), &k), Err(LinkError::Expired));
        let mut other = claims(60);
        other.crm_id = Some("99999".into());
        let forged = signed(&k, &other);
        let genuine = signed(&k, &claims(60));
        let (head, _) = forged.rsplit_once('.').unwrap();
        let (_, mac) = genuine.rsplit_once('.').unwrap();
        assert_eq!(
            open(&format!("{head}.{mac}"), &k),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn changed_truncated_foreign_and_expired_links_are_refused() {
        let k = key(1, 1, 7);
        let token = seal(&k, &claims(60));
        // Any bit of the seal flipped.
        let (header, sealed) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed).unwrap();
        for at in [0, NONCE_LEN + 3, bytes.len() - 1] {
            bytes[at] ^= 1;
            let changed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(open(&changed, &k), Err(LinkError::BadSignature), "{at}");
            bytes[at] ^= 1;
        }
        // The seal under another tenant's or key's header: the header is authenticated.
        for header in ["2.2.1", "2.1.2", "2.01.1", "2.+1.1"] {
            let moved = format!("{header}.{sealed}");
            assert!(open(&moved, &key(1, 1, 7)).is_err(), "{header}");
        }
        // Truncated anywhere.
        for cut in [5, token.len() / 2, token.len() - 1] {
            assert!(open(&token[..cut], &k).is_err(), "cut at {cut}");
        }
        // Another tenant's key, another secret, or a key id that does not match.
        for other in [key(2, 1, 7), key(1, 1, 8), key(1, 2, 7)] {
            assert_eq!(open(&token, &other), Err(LinkError::BadSignature));
        }
        assert_eq!(open(&seal(&k, &claims(-1)), &k), Err(LinkError::Expired));
        assert_eq!(parse("").err(), Some(LinkError::Malformed));
        assert_eq!(parse("3.1.1.AAAA").err(), Some(LinkError::Malformed));
        assert_eq!(parse(&"a".repeat(5000)).err(), Some(LinkError::Malformed));
    }

    /// What a lookup pays for its link, sealed against signed (printed, not asserted):
    /// `cargo test --release --lib sealing_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing loop: run it with --release"]
    fn sealing_cost() {
        let (k, c) = (key(1, 1, 7), claims(60));
        let linked = LinkKey::new(&k);
        let rounds = 200_000;
        let mut out = String::with_capacity(512);
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            out.clear();
            linked.seal_into(&c, &mut out);
        }
        let sealed = started.elapsed() / rounds;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            out.clear();
            sign_into(&linked.mac, k.key_id, &c, &mut out);
        }
        let signed = started.elapsed() / rounds;
        println!("per link: sealed {sealed:?}, signed as before {signed:?}");
    }
}
