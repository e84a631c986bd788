//! Rate limits (governor): lookups per tenant, sync requests per token, screen pops and
//! failed authentications per source address. Limiters live in bounded caches, so a flood of
//! distinct addresses cannot grow memory without end.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use rustc_hash::FxHashMap;

use crate::config::RateSettings;
use crate::domain::TenantId;

/// Most source addresses tracked for failed authentications; the least recently seen
/// are dropped first.
const MAX_TRACKED_ADDRESSES: u64 = 100_000;
const MAX_TRACKED_KEYS: u64 = 100_000;
/// A key unused this long forgets its limiter (and starts afresh).
const IDLE: Duration = Duration::from_secs(600);

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Lookups,
    Sync,
    AuthFailures,
    Pops,
    Events,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lookups => "lookups",
            Self::Sync => "sync",
            Self::AuthFailures => "auth_failures",
            Self::Pops => "pops",
            Self::Events => "events",
        }
    }
}

/// Over a limit: which, and when to try again.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub limit: Limit,
    pub retry_after: Duration,
}

type Shared = Arc<DefaultDirectRateLimiter>;

#[derive(Clone)]
pub struct RateLimits {
    settings: RateSettings,
    /// Per authenticated tenant (so bounded by the tenants there are), with the rate it
    /// was made for: a changed quota takes a fresh limiter. Asked on every lookup, so a
    /// plain map under a read lock rather than a cache.
    lookups: Arc<RwLock<FxHashMap<TenantId, (u32, Shared)>>>,
    /// The same for call events.
    events: Arc<RwLock<FxHashMap<TenantId, (u32, Shared)>>>,
    sync: Cache<i64, Shared>,
    pops: Cache<IpAddr, Shared>,
    failures: Cache<IpAddr, Shared>,
    blocked: Cache<IpAddr, Instant>,
    /// Agents' sessions (SHA-256 of the secret) this instance started or found live:
    /// while an address is blocked, these are still checked in the database (which
    /// says whether they are live now); anything else gets the 429 without asking.
    vouched_sessions: Cache<[u8; 32], ()>,
    /// When the last block ends (ms after `epoch`): until then, addresses are checked
    /// against `blocked`; after it, nobody is blocked and the check costs nothing.
    blocks_end_ms: Arc<AtomicU64>,
    epoch: Instant,
    clock: DefaultClock,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// A limiter for `rate` per second; a burst of twice the rate absorbs the start of a
/// busy hour.
fn per_second(rate: u32) -> Shared {
    let quota = Quota::per_second(nonzero(rate)).allow_burst(nonzero(rate.saturating_mul(2)));
    Arc::new(RateLimiter::direct(quota))
}

/// Most events one request carries (routes::events::MAX_EVENTS).
const MAX_EVENTS_AT_ONCE: u32 = 1_000;

/// `tenant`'s limiter for `rate` in `limiters`, made afresh when the rate changed.
/// Asked on every request, so a plain map under a read lock rather than a cache.
fn tenant_limiter(
    limiters: &RwLock<FxHashMap<TenantId, (u32, Shared)>>,
    tenant: TenantId,
    rate: u32,
    make: impl Fn(u32) -> Shared,
) -> Shared {
    let known = limiters.read().ok().and_then(|limiters| {
        limiters
            .get(&tenant)
            .filter(|(made_for, _)| *made_for == rate)
            .map(|(_, limiter)| limiter.clone())
    });
    if let Some(limiter) = known {
        return limiter;
    }
    let mut limiters = limiters.write().unwrap_or_else(|e| e.into_inner());
    let (made_for, limiter) = limiters.entry(tenant).or_insert_with(|| (rate, make(rate)));
    if *made_for != rate {
        *made_for = rate;
        *limiter = make(rate);
    }
    limiter.clone()
}

fn cache<K: std::hash::Hash + Eq + Send + Sync + 'static>(capacity: u64) -> Cache<K, Shared> {
    Cache::builder()
        .max_capacity(capacity)
        .time_to_idle(IDLE)
        .build()
}

impl RateLimits {
    pub fn new(settings: RateSettings) -> Self {
        Self {
            settings,
            lookups: Arc::default(),
            events: Arc::default(),
            sync: cache(MAX_TRACKED_KEYS),
            pops: cache(MAX_TRACKED_ADDRESSES),
            failures: cache(MAX_TRACKED_ADDRESSES),
            blocked: Cache::builder()
                .max_capacity(MAX_TRACKED_ADDRESSES)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            vouched_sessions: Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_live(Duration::from_secs(12 * 3600))
                .build(),
            blocks_end_ms: Arc::default(),
            epoch: Instant::now(),
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, limiter: &DefaultDirectRateLimiter, limit: Limit) -> Result<(), Limited> {
        limiter.check().map_err(|not_until| Limited {
            limit,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// One lookup for `tenant`; `own_rate` is the tenant's override, if any.
    pub fn lookup(&self, tenant: TenantId, own_rate: Option<u32>) -> Result<(), Limited> {
        let rate = own_rate.unwrap_or(self.settings.lookups_per_sec);
        let limiter = tenant_limiter(&self.lookups, tenant, rate, per_second);
        self.check(&limiter, Limit::Lookups)
    }

    /// `count` call events for `tenant` (`own_rate`: its override). The burst is twice
    /// the rate, and never less than one request's most events, so a valid request can
    /// always pass once the tenant has waited.
    pub fn events(
        &self,
        tenant: TenantId,
        own_rate: Option<u32>,
        count: usize,
    ) -> Result<(), Limited> {
        let rate = own_rate.unwrap_or(self.settings.events_per_sec);
        let limiter = tenant_limiter(&self.events, tenant, rate, |rate| {
            let burst = rate.saturating_mul(2).max(MAX_EVENTS_AT_ONCE);
            Arc::new(RateLimiter::direct(
                Quota::per_second(nonzero(rate)).allow_burst(nonzero(burst)),
            ))
        });
        let count = nonzero(u32::try_from(count).unwrap_or(u32::MAX));
        match limiter.check_n(count) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited {
                limit: Limit::Events,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
            // More than the burst: not reached by requests of at most
            // MAX_EVENTS_AT_ONCE; a second's wait all the same.
            Err(_) => Err(Limited {
                limit: Limit::Events,
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// One sync request with token `token_id`.
    pub fn sync(&self, token_id: i64) -> Result<(), Limited> {
        let rate = self.settings.sync_per_sec;
        let limiter = self.sync.get_with(token_id, || per_second(rate));
        self.check(&limiter, Limit::Sync)
    }

    /// One screen-pop page opened from `ip` (an IPv6 address counts with its /64). The
    /// page checks its link in memory, but a genuine link costs queries: this bounds
    /// what one address can make the database do by replaying links.
    pub fn pop(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        let Some(ip) = ip.map(source) else {
            return Ok(());
        };
        let rate = self.settings.pops_per_sec;
        let limiter = self.pops.get_with(ip, || per_second(rate));
        self.check(&limiter, Limit::Pops)
    }

    fn failure_limiter(&self, ip: IpAddr) -> Shared {
        let per_min = self.settings.auth_failures_per_min;
        self.failures.get_with(ip, || {
            Arc::new(RateLimiter::direct(Quota::per_minute(nonzero(per_min))))
        })
    }

    /// Before authenticating: whether the address failed too often. While it did, only a
    /// token the in-memory directory holds as valid passes (`http::auth`), so guessing
    /// gains nothing and reaches no database.
    pub fn refuse_guessing(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        if self.ms_since_epoch(Instant::now()) >= self.blocks_end_ms.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(until) = ip.and_then(|ip| self.blocked.get(&source(ip))) else {
            return Ok(());
        };
        match until.checked_duration_since(Instant::now()) {
            Some(retry_after) if !retry_after.is_zero() => Err(Limited {
                limit: Limit::AuthFailures,
                retry_after,
            }),
            _ => Ok(()),
        }
    }

    /// After a failed authentication from `ip`: over the limit, the address is blocked
    /// until the limiter has room again.
    pub fn failed_auth(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        let Some(ip) = ip.map(source) else {
            return Ok(());
        };
        let limited = self.check(&self.failure_limiter(ip), Limit::AuthFailures);
        if let Err(over) = &limited {
            let until = Instant::now() + over.retry_after;
            self.blocked.insert(ip, until);
            self.blocks_end_ms
                .fetch_max(self.ms_since_epoch(until) + 1, Ordering::AcqRel);
        }
        limited
    }

    /// A session this instance started or found live: one a blocked address may still
    /// present (behind a CRM's shared egress, others' wrong sessions must not lock its
    /// agents out, as valid tokens are not).
    pub fn vouch_session(&self, hash: [u8; 32]) {
        self.vouched_sessions.insert(hash, ());
    }

    pub fn is_vouched_session(&self, hash: &[u8; 32]) -> bool {
        self.vouched_sessions.contains_key(hash)
    }

    fn ms_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Addresses currently tracked for failed authentications (for tests and metrics).
    pub fn tracked_addresses(&self) -> u64 {
        self.failures.run_pending_tasks();
        self.failures.entry_count()
    }
}

/// Who failed authentications are counted against: an IPv4 address, or an IPv6 /64
/// (one subscriber's or host's network; counting per address would give anyone with a
/// /64 unlimited guesses).
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(lookups: u32, sync: u32, failures: u32) -> RateLimits {
        RateLimits::new(RateSettings {
            lookups_per_sec: lookups,
            sync_per_sec: sync,
            auth_failures_per_min: failures,
            pops_per_sec: 2,
            events_per_sec: 10,
        })
    }

    #[test]
    fn every_limit_is_exported_from_start() {
        let all = [
            Limit::Lookups,
            Limit::Sync,
            Limit::AuthFailures,
            Limit::Pops,
        ];
        let names: Vec<&str> = all.iter().map(|l| l.as_str()).collect();
        assert_eq!(names, crate::metrics::RATE_LIMITS);
    }

    #[test]
    fn screen_pops_are_limited_per_source_address() {
        let limits = limits(1, 1, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let passed = (0..10).filter(|_| limits.pop(Some(ip)).is_ok()).count();
        assert_eq!(passed, 4, "a burst of twice the rate");
        assert_eq!(limits.pop(Some(ip)).unwrap_err().limit, Limit::Pops);
        assert!(limits.pop(Some("192.0.2.8".parse().unwrap())).is_ok());
    }

    #[test]
    fn a_tenant_gets_a_burst_of_twice_its_rate_then_waits() {
        let limits = limits(5, 1, 1);
        let tenant = TenantId(1);
        for _ in 0..10 {
            assert!(limits.lookup(tenant, None).is_ok());
        }
        let over = limits.lookup(tenant, None).unwrap_err();
        assert_eq!(over.limit, Limit::Lookups);
        assert!(over.retry_after > Duration::ZERO);
        assert!(
            limits.lookup(TenantId(2), None).is_ok(),
            "other tenants are not affected"
        );
        assert!(
            limits.lookup(tenant, Some(100)).is_ok(),
            "a raised quota applies at once"
        );
    }

    #[test]
    fn an_address_that_fails_too_often_is_refused_before_authenticating() {
        let limits = limits(1, 1, 3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.refuse_guessing(Some(ip)).is_ok());
            assert!(limits.failed_auth(Some(ip)).is_ok());
        }
        assert!(limits.failed_auth(Some(ip)).is_err());
        let refused = limits.refuse_guessing(Some(ip)).unwrap_err();
        assert_eq!(refused.limit, Limit::AuthFailures);
        assert!(
            limits
                .refuse_guessing(Some("192.0.2.8".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_network_counts_as_one_source() {
        let limits = limits(1, 1, 3);
        let host = |n: u16| IpAddr::from(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, n));
        let refused = (1..=5)
            .filter(|&n| limits.failed_auth(Some(host(n))).is_err())
            .count();
        assert_eq!(
            refused, 2,
            "the fourth and fifth failures of one /64 are over"
        );
        assert!(limits.refuse_guessing(Some(host(99))).is_err());
        let elsewhere = IpAddr::from(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1));
        assert!(limits.refuse_guessing(Some(elsewhere)).is_ok());
    }

    #[test]
    fn tracked_addresses_stay_bounded_under_a_flood() {
        let limits = limits(1, 1, 10);
        for i in 0..(MAX_TRACKED_ADDRESSES + 20_000) {
            let ip = IpAddr::from(std::net::Ipv6Addr::from((u128::from(i) + 1) << 64));
            let _ = limits.failed_auth(Some(ip));
        }
        assert!(limits.tracked_addresses() <= MAX_TRACKED_ADDRESSES);
    }
}
