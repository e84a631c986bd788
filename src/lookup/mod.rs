//! The PBX lookup: from a caller number to the nine-key answer, never late.
//!
//! Order of questions: a fresh cache entry; the number index (an unknown number needs no
//! query, when the tenant's [`Source`] lets the index decide); the source (the mirror:
//! the database), within the deadline. Past the deadline or when the source fails, the
//! last known answer for the number, else the unknown answer — marked degraded.
//! No actix and no SQL here.

mod answer;
pub mod batcher;
pub mod cache;
pub mod known_numbers;
pub mod log;
mod source;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::answer::LookupAnswer;
use self::cache::AnswerCache;
use self::known_numbers::{KnownNumbers, Membership};
pub use self::source::Source;
use crate::domain::{
    CallerTrust, LogEntry, LookupHit, LookupOutcomeKind, MAX_RAW_LEN, PhoneNumber,
    PhoneNumberError, Region, TenantId, parse_remembered, trust_param,
};
use crate::metrics::Metrics;

/// The parameters of a lookup. Unknown parameters are ignored (PBXs add their own);
/// a repeated parameter counts once, first wins. Values borrow from the query string
/// unless they had to be decoded. A `+` that starts a value before a digit 1–9 is a plus
/// sign, not a space: PBXs put `+40721…` into the URL unencoded, and no number starts
/// with a space (nor a country code with 0).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LookupQuery<'a> {
    pub telephone: Option<Cow<'a, str>>,
    pub dnid: Option<Cow<'a, str>>,
    /// `format` (or `type=xml`): the nine-key JSON unless the PBX asked for another form.
    pub format: AnswerForm,
    /// `verstat` and `attest`: what the network said of the caller ID (STIR/SHAKEN).
    pub trust: CallerTrust,
    /// `root_tag`: the XML answer's root element, checked to be an XML name (`contact`
    /// when empty or absent). Read only with `type=xml`.
    pub root_tag: Option<Cow<'a, str>>,
}

/// The forms a lookup answer can take (`format=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnswerForm {
    /// The nine keys, nulls included (the reference's contract).
    #[default]
    Json,
    /// One line, `|`-separated, percent-encoded values (Asterisk's dialplan).
    Text,
    /// The same JSON without its null keys: an unknown caller is `{}` (3CX, whose
    /// template rules test whether a key is present).
    Compact,
    /// The nine keys as child elements of `root_tag` (`type=xml`, the reference PBX's
    /// Generic API).
    Xml,
}

/// The XML answer's root element when the PBX names none.
pub const DEFAULT_ROOT_TAG: &str = "contact";

impl<'a> LookupQuery<'a> {
    /// Reads a query string; the error says what was wrong. Broken escapes and invalid
    /// UTF-8 are kept as text (they are then no phone number), as browsers do.
    pub fn parse(query: &'a str) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut format = None;
        let (mut verstat, mut attest) = (None, None);
        let mut kind = None;
        let mut root_tag = None;
        for pair in query.split('&') {
            let Some((name, mut value)) = form_urlencoded::parse(pair.as_bytes()).next() else {
                continue;
            };
            let slot = match name.as_ref() {
                "telephone" => &mut parsed.telephone,
                "dnid" => &mut parsed.dnid,
                "format" => &mut format,
                "verstat" => &mut verstat,
                "attest" => &mut attest,
                "type" => &mut kind,
                "root_tag" => &mut root_tag,
                _ => continue,
            };
            if slot.is_some() {
                continue;
            }
            let raw_value = pair.split_once('=').map_or("", |(_, v)| v);
            let mut raw_chars = raw_value.chars();
            if raw_chars.next() == Some('+')
                && raw_chars.next().is_some_and(|c| matches!(c, '1'..='9'))
            {
                value.to_mut().replace_range(..1, "+");
            }
            *slot = Some(value);
        }
        parsed.format = match format.as_deref() {
            None | Some("json") => AnswerForm::Json,
            Some("text") => AnswerForm::Text,
            Some("compact") => AnswerForm::Compact,
            Some(_) => return Err("format must be json, text or compact".into()),
        };
        parsed.trust = CallerTrust {
            verstat: trust_param("verstat", verstat.as_deref())?,
            attest: trust_param("attest", attest.as_deref())?,
        };
        // `type` is the reference's Generic API parameter (`send_request_headers` and
        // `ignore_response` come with it and mean nothing to the answer).
        match kind.as_deref() {
            None | Some("" | "json") => {}
            Some("xml") if parsed.format == AnswerForm::Json => {
                parsed.format = AnswerForm::Xml;
                let tag = root_tag.filter(|t| !t.trim().is_empty());
                if let Some(tag) = &tag
                    && !crate::phones::xml::is_xml_name(tag)
                {
                    return Err(format!(
                        "root_tag `{}` is not a valid XML element name (a letter or _ first, \
                         then letters, digits, - . _, no namespace prefix, at most {} characters)",
                        tag.chars().take(80).collect::<String>(),
                        crate::phones::xml::MAX_NAME_LEN
                    ));
                }
                parsed.root_tag = tag;
            }
            Some("xml") => return Err("type=xml cannot be combined with format".into()),
            Some(_) => return Err("type must be json or xml".into()),
        }
        if let Some(dnid) = &parsed.dnid {
            if dnid.chars().count() > MAX_RAW_LEN {
                return Err(format!("dnid is longer than {MAX_RAW_LEN} characters"));
            }
            if dnid.chars().any(char::is_control) {
                return Err("dnid must not contain control characters".into());
            }
            // What decoding made of bytes that are not UTF-8 (`%FF`).
            if dnid.contains(char::REPLACEMENT_CHARACTER) {
                return Err("dnid is not valid UTF-8".into());
            }
        }
        Ok(parsed)
    }
}

/// A caller as the PBX described it, already normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Number(PhoneNumber),
    /// Withheld, empty or not a number: nobody to look up.
    Unidentified,
}

impl Caller {
    /// Reads the `telephone` parameter. Only an absurdly long value is an error; anything
    /// else that is not a number is an unidentified caller, so the PBX can still route.
    pub fn from_param(raw: Option<&str>, region: Region) -> Result<Self, PhoneNumberError> {
        match parse_remembered(raw.unwrap_or_default(), region) {
            Ok(number) => Ok(Self::Number(number)),
            Err(e @ (PhoneNumberError::TooLong | PhoneNumberError::CallerIdTooLong)) => Err(e),
            Err(_) => Ok(Self::Unidentified),
        }
    }
}

/// Why an answer is not the database's current word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degraded {
    /// The last known answer for this number, from before the deadline or outage.
    Stale,
    /// Nothing known about this number: the unknown answer.
    Unknown,
    /// The token could not be checked (database unreachable): the unknown answer.
    Unverified,
}

impl Degraded {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Unknown => "unknown",
            Self::Unverified => "unverified",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LookupOutcome {
    pub hit: Option<LookupHit>,
    pub degraded: Option<Degraded>,
}

impl LookupOutcome {
    fn answered(hit: Option<LookupHit>) -> Self {
        Self {
            hit,
            degraded: None,
        }
    }

    /// The lookup log's record of this answer, for a lookup that began at `started`.
    pub fn log_entry(
        &self,
        tenant: TenantId,
        number: Option<&str>,
        dnid: Option<&str>,
        started: Instant,
    ) -> LogEntry {
        LogEntry {
            tenant,
            at: chrono::Utc::now(),
            number: number.map(str::to_owned),
            dnid: dnid.map(str::to_owned),
            crm_id: self.hit.as_ref().map(|h| h.id().to_owned()),
            outcome: match (self.degraded, &self.hit) {
                (Some(_), _) => LookupOutcomeKind::Degraded,
                (None, Some(_)) => LookupOutcomeKind::Found,
                (None, None) => LookupOutcomeKind::Unknown,
            },
            latency_us: i32::try_from(started.elapsed().as_micros()).unwrap_or(i32::MAX),
            verstat: None,
            attest: None,
            screened: None,
        }
    }
}

/// The part of the lookup deadline that may be spent waiting for the database: the rest
/// (a tenth, at most 10 ms) is left for writing and sending the answer, so it arrives
/// within the deadline rather than just after it.
fn waiting_budget(deadline: Duration) -> Duration {
    deadline.saturating_sub((deadline / 10).min(Duration::from_millis(10)))
}

#[derive(Clone)]
pub struct LookupService {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn Source>,
    cache: AnswerCache,
    index: KnownNumbers,
    deadline: Duration,
    metrics: Arc<Metrics>,
}

impl LookupService {
    /// A lookup answering from `source` (the mirror: a [`batcher::LookupBatcher`]).
    pub fn new(
        source: Arc<dyn Source>,
        cache: AnswerCache,
        index: KnownNumbers,
        deadline: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                cache,
                index,
                deadline: waiting_budget(deadline),
                metrics,
            }),
        }
    }

    /// How long after a request arrived the lookup stops waiting for the database.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    // No tracing span per lookup: at the default level making one costs more than the
    // rest of a cached answer; the few lines logged below name the tenant themselves.
    pub async fn lookup(
        &self,
        tenant: TenantId,
        caller: &Caller,
        started: Instant,
    ) -> LookupOutcome {
        let inner = &self.inner;
        let Caller::Number(number) = caller else {
            inner.metrics.lookup_outcome("unidentified");
            return LookupOutcome::answered(None);
        };
        let Some(key) = number.key().map(|k| (tenant, k)) else {
            // Too long to index or cache (rare): ask the database, still within the deadline.
            return self.uncached(tenant, number, started).await;
        };
        if let Some(hit) = inner.cache.fresh(&key).await {
            inner.metrics.cache_hits.inc();
            inner.metrics.lookup_outcome("cache");
            return LookupOutcome::answered(hit);
        }
        let unknown = |n: &PhoneNumber| inner.index.membership(tenant, n) == Membership::Unknown;
        if unknown(number)
            && number.alternate().is_none_or(|other| unknown(&other))
            && inner.source.index_decides(tenant)
        {
            inner.metrics.lookup_outcome("index_unknown");
            return LookupOutcome::answered(None);
        }
        inner.metrics.cache_misses.inc();

        // The load runs in its own task: if the deadline passes, it still completes and
        // fills the cache for the next call from this number.
        let service = self.clone();
        let number = number.clone();
        let load = tokio::spawn(async move {
            let inner = &service.inner;
            inner
                .cache
                .get_or_load(key, || service.query(tenant, &number))
                .await
        });
        let remaining = inner.deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, load).await {
            Ok(Ok(Ok(hit))) => {
                inner.metrics.lookup_outcome("database");
                return LookupOutcome::answered(hit);
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(%tenant, error = format!("{e:#}"), "lookup query failed");
            }
            Ok(Err(e)) => tracing::error!(%tenant, error = %e, "lookup task failed"),
            Err(_) => tracing::warn!(
                %tenant,
                deadline_ms = inner.deadline.as_millis() as u64,
                "lookup deadline passed"
            ),
        }
        let last_known = inner.cache.last_known(&key).await;
        self.degraded(last_known)
    }

    async fn uncached(
        &self,
        tenant: TenantId,
        number: &PhoneNumber,
        started: Instant,
    ) -> LookupOutcome {
        let remaining = self.inner.deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, self.query(tenant, number)).await {
            Ok(Ok(hit)) => {
                self.inner.metrics.lookup_outcome("database");
                LookupOutcome::answered(hit)
            }
            _ => self.degraded(None),
        }
    }

    fn degraded(&self, last_known: Option<Option<LookupHit>>) -> LookupOutcome {
        self.inner.metrics.degraded.inc();
        let (hit, degraded, outcome) = match last_known {
            Some(hit) => (hit, Degraded::Stale, "degraded_stale"),
            None => (None, Degraded::Unknown, "degraded_unknown"),
        };
        self.inner.metrics.lookup_outcome(outcome);
        LookupOutcome {
            hit,
            degraded: Some(degraded),
        }
    }

    /// One question to the source (the mirror's: shared with the other misses of the
    /// moment and bounded by the query timeout).
    async fn query(
        &self,
        tenant: TenantId,
        number: &PhoneNumber,
    ) -> anyhow::Result<Option<LookupHit>> {
        self.inner.source.find(tenant, number).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_read_leniently_but_bounded() {
        let q = LookupQuery::parse("telephone=0700+000+000&dnid=021&telephone=x&extra=1").unwrap();
        assert_eq!(q.telephone.as_deref(), Some("0700 000 000"));
        assert_eq!(q.dnid.as_deref(), Some("021"));
        assert_eq!(LookupQuery::parse("").unwrap(), LookupQuery::default());
        // Broken escapes and invalid UTF-8 stay text (and are then no phone number).
        assert_eq!(
            LookupQuery::parse("telephone=%ZZ")
                .unwrap()
                .telephone
                .as_deref(),
            Some("%ZZ")
        );
        assert!(
            LookupQuery::parse("telephone=%FF")
                .unwrap()
                .telephone
                .is_some()
        );
        let long = format!("dnid={}", "1".repeat(65));
        assert!(LookupQuery::parse(&long).unwrap_err().contains("dnid"));
        assert!(
            LookupQuery::parse("dnid=021%00")
                .unwrap_err()
                .contains("control characters")
        );
        assert_eq!(
            LookupQuery::parse("dnid=021%FF").unwrap_err(),
            "dnid is not valid UTF-8"
        );
    }

    #[test]
    fn trust_parameters_are_read_and_bounded() {
        let q = LookupQuery::parse("telephone=1&verstat=TN-Validation-Failed&attest=C").unwrap();
        assert_eq!(q.trust.verstat.as_deref(), Some("TN-Validation-Failed"));
        assert_eq!(q.trust.attest.as_deref(), Some("C"));
        let long = format!("attest={}", "A".repeat(33));
        assert_eq!(
            LookupQuery::parse(&long).unwrap_err(),
            "attest is longer than 32 characters"
        );
    }

    #[test]
    fn a_leading_plus_is_a_plus_sign_even_unencoded() {
        let q = LookupQuery::parse("telephone=+40+721+234+567&dnid=+4021").unwrap();
        assert_eq!(q.telephone.as_deref(), Some("+40 721 234 567"));
        assert_eq!(q.dnid.as_deref(), Some("+4021"));
        let encoded = LookupQuery::parse("telephone=%2B40721234567").unwrap();
        assert_eq!(encoded.telephone.as_deref(), Some("+40721234567"));
        let spaced = LookupQuery::parse("telephone=%20+0721").unwrap();
        assert_eq!(spaced.telephone.as_deref(), Some("  0721"));
        // No country code starts with 0: an encoded space before a national number.
        let national = LookupQuery::parse("telephone=+0721234567").unwrap();
        assert_eq!(national.telephone.as_deref(), Some(" 0721234567"));
    }

    #[test]
    fn the_answer_leaves_room_to_arrive_within_the_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(waiting_budget(ms(250)), ms(240));
        assert_eq!(waiting_budget(ms(50)), ms(45));
        assert_eq!(waiting_budget(Duration::ZERO), Duration::ZERO);
    }
}
