//! Secrets at rest (issue 28 item 8): webhook signing secrets, profiles' secret headers and
//! dialer credentials are sealed with XChaCha20-Poly1305 under a key kept outside the
//! database, `CIDGATE_SECRETS_KEY` (or the file `CIDGATE_SECRETS_KEY_FILE` names): one or
//! more comma-separated base64 keys of 32 bytes, the first seals, every one opens (so a
//! key is rotated by putting the new one first, running `cidgate secrets reseal`, then
//! dropping the old one). A sealed value reads `cgenc:v1:<key id>:<base64>`; a value
//! without that prefix is a plaintext row from before a key was set and is read as it
//! is, until `secrets reseal` seals it. Without a key, values are stored in plaintext
//! (the gateway warns at start).
//!
//! The keys are read from the environment once, when first needed: `serve` and the
//! command line read them the same way (flag-less: the environment or the configuration
//! file, which is loaded into the environment at start).

use std::sync::OnceLock;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_VARIABLE: &str = "CIDGATE_SECRETS_KEY";
pub const KEY_FILE_VARIABLE: &str = "CIDGATE_SECRETS_KEY_FILE";
const PREFIX: &str = "cgenc:v1:";

/// The keys: the first seals, all open.
pub struct Keys(Vec<(String, XChaCha20Poly1305)>);

impl Keys {
    /// Reads `a,b,…` (base64 keys of 32 bytes).
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for (i, part) in raw.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let bytes = STANDARD
                .decode(part)
                .ok()
                .filter(|b| b.len() == 32)
                .with_context(|| {
                    format!(
                        "{KEY_VARIABLE}: key {} is not 32 bytes in base64 (make one with `openssl rand -base64 32`)",
                        i + 1
                    )
                })?;
            let id = hex::encode(&Sha256::digest(&bytes)[..4]);
            keys.push((id, XChaCha20Poly1305::new(bytes.as_slice().into())));
        }
        if keys.is_empty() {
            bail!("{KEY_VARIABLE} holds no key");
        }
        Ok(Self(keys))
    }

    /// Seals `plain` for the column `context` (a sealed value does not open elsewhere).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let (id, cipher) = &self.0[0];
        let mut nonce = XNonce::default();
        rand::rng().fill_bytes(&mut nonce);
        let mut buffer = plain.as_bytes().to_vec();
        let tag = cipher
            .encrypt_in_place_detached(&nonce, context.as_bytes(), &mut buffer)
            .expect("a secret fits XChaCha20-Poly1305");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buffer);
        sealed.extend_from_slice(&tag);
        format!("{PREFIX}{id}:{}", STANDARD.encode(sealed))
    }

    /// Opens a sealed value; a plaintext one (no prefix) is answered as it is.
    pub fn open(&self, context: &str, stored: &str) -> anyhow::Result<String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, data) = rest.split_once(':').context("a malformed sealed secret")?;
        let (_, cipher) = self.0.iter().find(|(k, _)| k == id).with_context(|| {
            format!("a secret sealed with key {id}, which {KEY_VARIABLE} does not hold")
        })?;
        let data = STANDARD.decode(data).context("a malformed sealed secret")?;
        if data.len() < 24 + 16 {
            bail!("a malformed sealed secret");
        }
        let (nonce, rest) = data.split_at(24);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let mut buffer = body.to_vec();
        cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                context.as_bytes(),
                &mut buffer,
                Tag::from_slice(tag),
            )
            .map_err(|_| anyhow::anyhow!("a sealed secret does not open with key {id}"))?;
        String::from_utf8(buffer).context("a sealed secret that is not text")
    }

    /// Whether `stored` is sealed with the first key already.
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with(&format!("{}:", self.0[0].0)))
    }
}

/// The configured keys (`None`: no key; secrets are stored in plaintext).
pub fn keys() -> anyhow::Result<Option<&'static Keys>> {
    static KEYS: OnceLock<Option<Keys>> = OnceLock::new();
    if let Some(keys) = KEYS.get() {
        return Ok(keys.as_ref());
    }
    let raw =
        match (
            std::env::var(KEY_VARIABLE)
                .ok()
                .filter(|v| !v.trim().is_empty()),
            std::env::var_os(KEY_FILE_VARIABLE),
        ) {
            (Some(raw), _) => Some(raw),
            (None, Some(path)) => Some(std::fs::read_to_string(&path).with_context(|| {
                format!("reading {KEY_FILE_VARIABLE} {}", path.to_string_lossy())
            })?),
            (None, None) => None,
        };
    let keys = raw.map(|raw| Keys::parse(raw.trim())).transpose()?;
    Ok(KEYS.get_or_init(|| keys).as_ref())
}

/// `plain` as stored: sealed when a key is configured.
pub fn seal(context: &str, plain: &str) -> anyhow::Result<String> {
    Ok(match keys()? {
        Some(keys) => keys.seal(context, plain),
        None => plain.to_owned(),
    })
}

/// A stored value as text: opened when sealed.
pub fn open(context: &str, stored: &str) -> anyhow::Result<String> {
    if !stored.starts_with(PREFIX) {
        return Ok(stored.to_owned());
    }
    match keys()? {
        Some(keys) => keys.open(context, stored),
        None => bail!("a sealed secret, but no {KEY_VARIABLE} is configured to open it"),
    }
}

/// Where each secret lives (a value sealed for one does not open as another).
pub const PROFILE_SECRET: &str = "webhook_profiles.secret";
pub const PROFILE_HEADER: &str = "webhook_profiles.secret_headers";
pub const DIALER_SECRET: &str = "dialers.secret";
pub const SOURCE_PARAM: &str = "crm_sources.params";

/// Secret header lines (`NAME: VALUE`) with each value sealed (`seal`) or opened.
pub fn headers(
    lines: &mut Option<Vec<String>>,
    change: impl Fn(&str, &str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    for line in lines.iter_mut().flatten() {
        if let Some((name, value)) = line.split_once(':') {
            let changed = change(PROFILE_HEADER, value.trim())?;
            *line = format!("{name}: {changed}");
        }
    }
    Ok(())
}

/// A dialer's secret as stored: its JSON sealed into a string when a key is configured.
pub fn seal_json(
    context: &str,
    value: Option<&serde_json::Value>,
) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(value) = value else { return Ok(None) };
    Ok(Some(match keys()? {
        Some(keys) => serde_json::Value::String(keys.seal(context, &value.to_string())),
        None => value.clone(),
    }))
}

/// A dialer's secret as read: opened and parsed when sealed.
pub fn open_json(
    context: &str,
    stored: Option<serde_json::Value>,
) -> anyhow::Result<Option<serde_json::Value>> {
    match stored {
        Some(serde_json::Value::String(s)) if s.starts_with(PREFIX) => Ok(Some(
            serde_json::from_str(&open(context, &s)?).context("a sealed secret")?,
        )),
        other => Ok(other),
    }
}

/// Seals every stored secret with the first key (plaintext rows, and rows sealed with an
/// older key); across tenants on purpose (an operator's command). Answers how many rows
/// changed.
pub async fn reseal(client: &impl deadpool_postgres::GenericClient) -> anyhow::Result<u64> {
    let keys =
        keys()?.with_context(|| format!("set {KEY_VARIABLE} (or {KEY_FILE_VARIABLE}) first"))?;
    let again = |context: &str, stored: &str| -> anyhow::Result<String> {
        if keys.is_current(stored) {
            Ok(stored.to_owned())
        } else {
            Ok(keys.seal(context, &keys.open(context, stored)?))
        }
    };
    let mut changed = 0;
    let rows = client
        .query(
            "SELECT id, secret, previous_secret, definition FROM webhook_profiles FOR UPDATE",
            &[],
        )
        .await
        .context("reading profiles")?;
    for row in rows {
        let id: i64 = row.get(0);
        let secret = again(PROFILE_SECRET, row.get(1))?;
        let previous = row
            .get::<_, Option<&str>>(2)
            .map(|p| again(PROFILE_SECRET, p))
            .transpose()?;
        let mut definition: crate::domain::profile::ProfileInput =
            serde_json::from_value(row.get(3)).context("a stored profile")?;
        headers(&mut definition.secret_headers, |c, v| again(c, v))?;
        changed += client
            .execute(
                "UPDATE webhook_profiles SET secret = $2, previous_secret = $3, definition = $4
                 WHERE id = $1 AND (secret, coalesce(previous_secret, ''), definition)
                       IS DISTINCT FROM ($2, coalesce($3, ''), $4)",
                &[&id, &secret, &previous, &serde_json::to_value(&definition)?],
            )
            .await
            .context("resealing a profile")?;
    }
    let rows = client
        .query(
            "SELECT tenant_id, secret FROM dialers WHERE secret IS NOT NULL FOR UPDATE",
            &[],
        )
        .await
        .context("reading dialers")?;
    for row in rows {
        let tenant: i64 = row.get(0);
        let stored: serde_json::Value = row.get(1);
        if stored.as_str().is_some_and(|s| keys.is_current(s)) {
            continue;
        }
        let plain = open_json(DIALER_SECRET, Some(stored))?.unwrap_or_default();
        let sealed = serde_json::Value::String(keys.seal(DIALER_SECRET, &plain.to_string()));
        changed += client
            .execute(
                "UPDATE dialers SET secret = $2 WHERE tenant_id = $1",
                &[&tenant, &sealed],
            )
            .await
            .context("resealing a dialer")?;
    }
    changed += super::sources::reseal(client, &again).await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let keys = Keys::parse(&key(1)).unwrap();
        let sealed = keys.seal("profile.secret", "whsec_abc");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            keys.seal("profile.secret", "whsec_abc"),
            "a new nonce each time"
        );
        assert_eq!(keys.open("profile.secret", &sealed).unwrap(), "whsec_abc");
        assert!(
            keys.open("dialer.secret", &sealed).is_err(),
            "bound to its column"
        );
        assert_eq!(
            keys.open("x", "plain").unwrap(),
            "plain",
            "plaintext rows still read"
        );
        let other = Keys::parse(&key(2)).unwrap();
        assert!(other.open("profile.secret", &sealed).is_err());
    }

    #[test]
    fn rotation_opens_with_the_old_key_and_seals_with_the_new() {
        let old = Keys::parse(&key(1)).unwrap();
        let sealed = old.seal("c", "s");
        let rotated = Keys::parse(&format!("{},{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open("c", &sealed).unwrap(), "s");
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("c", "s")));
        assert!(Keys::parse("short").is_err());
    }
}
