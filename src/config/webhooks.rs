//! Settings of web-service deliveries (`CIDGATE_WEBHOOK_*`) and of what an instance does
//! (`CIDGATE_ROLES`).

use std::time::Duration;

use clap::Args;
use ipnetwork::IpNetwork;
use url::Url;

use super::parse_network;

/// What the webhook client needs: shared by `serve` and `profile test|run`.
#[derive(Debug, Clone, Args)]
pub struct WebhookClientArgs {
    /// Longest a web-service request may take; a 2xx within it is a success (ms)
    #[arg(long, env = "CIDGATE_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(100..=300_000))]
    pub webhook_timeout_ms: u64,

    /// Networks (CIDRs, comma-separated) web-service targets may be in although they are
    /// private, loopback or otherwise internal (an on-premises CRM); `CIDR@tenant` allows
    /// it for that tenant only, a CIDR alone for every tenant
    #[arg(long, env = "CIDGATE_WEBHOOK_ALLOW_NETWORKS", value_delimiter = ',', value_parser = AllowRule::parse)]
    pub webhook_allow_networks: Vec<AllowRule>,

    /// HTTP proxy for web-service requests (none by default: the system's proxy
    /// variables are ignored); its address must be allowed like a target's
    #[arg(long, env = "CIDGATE_WEBHOOK_PROXY", value_parser = parse_proxy)]
    pub webhook_proxy: Option<Url>,
}

impl Default for WebhookClientArgs {
    fn default() -> Self {
        Self {
            webhook_timeout_ms: 15_000,
            webhook_allow_networks: Vec::new(),
            webhook_proxy: None,
        }
    }
}

impl WebhookClientArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }
}

/// The allowed networks alone, for commands that check a target but send nothing
/// (`dialer set http`): the same variable as `serve` reads.
#[derive(Debug, Clone, Default, Args)]
pub struct AllowNetworksArgs {
    /// Networks (CIDRs, comma-separated) targets may be in although they are private,
    /// loopback or otherwise internal (a PBX or CRM on premises); `CIDR@tenant` allows it
    /// for that tenant only, a CIDR alone for every tenant
    #[arg(long = "webhook-allow-networks", env = "CIDGATE_WEBHOOK_ALLOW_NETWORKS",
          value_delimiter = ',', value_parser = AllowRule::parse)]
    pub rules: Vec<AllowRule>,
}

/// One entry of `CIDGATE_WEBHOOK_ALLOW_NETWORKS`: a network allowed for every tenant, or
/// for one (`10.1.0.0/16@acme`: only acme's profiles may reach it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    pub network: IpNetwork,
    /// The tenant's slug; `None`: every tenant (a single-tenant install).
    pub tenant: Option<String>,
}

impl AllowRule {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (network, tenant) = match raw.trim().split_once('@') {
            Some((network, tenant)) => {
                let tenant = tenant.trim();
                let slug = !tenant.is_empty()
                    && tenant
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !slug {
                    return Err(format!(
                        "`{raw}`: after `@` comes a tenant's slug, e.g. 10.1.0.0/16@acme"
                    ));
                }
                (network, Some(tenant.to_owned()))
            }
            None => (raw, None),
        };
        Ok(Self {
            network: parse_network(network)?,
            tenant,
        })
    }

    /// Whether it applies to `tenant`'s profiles.
    pub fn applies_to(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }
}

impl std::str::FromStr for AllowRule {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }
}

fn parse_proxy(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5") || !url.has_host() {
        return Err("must be an http://, https:// or socks5:// proxy URL".into());
    }
    Ok(url)
}

/// Delays before each attempt of a delivery; the first is `0s` (the first attempt is
/// made at once), the number of entries is the number of attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Svix's schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

impl RetrySchedule {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|d| {
                humantime::parse_duration(d.trim()).map_err(|e| format!("`{}`: {e}", d.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match delays.first() {
            None => Err("needs at least one entry".into()),
            Some(first) if !first.is_zero() => {
                Err("must start with 0s: the first attempt is made at once".into())
            }
            Some(_) if delays.len() > 50 => Err("has more than 50 attempts".into()),
            Some(_) => Ok(Self(delays)),
        }
    }

    /// The delay before the attempt after attempt `made` (from 1) failed; `None` when
    /// that was the last.
    pub fn after(&self, made: u32) -> Option<Duration> {
        self.0.get(made as usize).copied()
    }

    pub fn attempts(&self) -> usize {
        self.0.len()
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_SCHEDULE).expect("the default schedule parses")
    }
}

/// What this instance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub http: bool,
    pub deliver: bool,
}

impl Roles {
    pub const BOTH: Self = Self {
        http: true,
        deliver: true,
    };

    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut roles = Self {
            http: false,
            deliver: false,
        };
        for role in raw.split(',').map(str::trim) {
            match role.to_ascii_lowercase().as_str() {
                "http" => roles.http = true,
                "deliver" => roles.deliver = true,
                "both" => roles = Self::BOTH,
                other => {
                    return Err(format!(
                        "`{other}` is not a role: use http, deliver or both"
                    ));
                }
            }
        }
        if !roles.http && !roles.deliver {
            return Err("name at least one role: http, deliver or both".into());
        }
        Ok(roles)
    }
}

/// Delivery settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    #[command(flatten)]
    pub client: WebhookClientArgs,

    /// Delays before each attempt of a web-service delivery (comma-separated durations;
    /// the first must be 0s)
    #[arg(long, env = "CIDGATE_WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_SCHEDULE,
          value_parser = RetrySchedule::parse)]
    pub webhook_retry_schedule: RetrySchedule,

    /// A profile failing without a success for this long is disabled (e.g. 5d, 12h)
    #[arg(long, env = "CIDGATE_WEBHOOK_DISABLE_AFTER", default_value = "5d",
          value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,

    /// Days the delivery log (finished deliveries and their attempts) is kept
    #[arg(long, env = "CIDGATE_WEBHOOK_LOG_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub webhook_log_retention_days: u32,

    /// Web-service requests in flight at once on this instance
    #[arg(long, env = "CIDGATE_WEBHOOK_CONCURRENCY", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_concurrency: u32,

    /// What this instance does: http (the API), deliver (web-service deliveries) or
    /// both (comma-separated)
    #[arg(long, env = "CIDGATE_ROLES", default_value = "both", value_parser = Roles::parse)]
    pub roles: Roles,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            client: WebhookClientArgs::default(),
            webhook_retry_schedule: RetrySchedule::default(),
            webhook_disable_after: Duration::from_secs(5 * 86_400),
            webhook_log_retention_days: 30,
            webhook_concurrency: 256,
            roles: Roles::BOTH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_svixs() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.after(2), Some(Duration::from_secs(300)));
        assert_eq!(s.after(8), None);
        assert!(RetrySchedule::parse("5s,1m").is_err());
        assert!(RetrySchedule::parse("0s,soon").is_err());
    }

    #[test]
    fn allowed_networks_may_name_their_tenant() {
        let all = AllowRule::parse("10.1.0.0/16").unwrap();
        assert_eq!(all.tenant, None);
        assert!(all.applies_to("acme") && all.applies_to("globex"));
        let one = AllowRule::parse(" 10.1.2.3/16@acme ").unwrap();
        assert_eq!(one.network.to_string(), "10.1.0.0/16");
        assert!(one.applies_to("acme") && !one.applies_to("globex"));
        for bad in ["10.1.0.0/16@", "10.1.0.0/16@Acme Corp", "nope@acme"] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_http_deliver_or_both() {
        assert_eq!(Roles::parse("both").unwrap(), Roles::BOTH);
        assert_eq!(Roles::parse("http,deliver").unwrap(), Roles::BOTH);
        assert!(!Roles::parse("http").unwrap().deliver);
        assert!(Roles::parse("cook").is_err());
    }
}
