//! The HTTP clients out: one reqwest client per use (web services, the HTTP dialer, next
//! CRM sources) and per tenant a `CIDR@tenant` rule names, all built here the same way:
//! rustls on ring with the system's roots, no redirects, no retries, no system proxy
//! (only the proxy a use names), every name resolved through the tenant's guard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use super::guard::{Guard, Refused};
use super::resolve::Resolver;
use crate::config::webhooks::AllowRule;

/// What every client out shares: the allowed networks and the resolver.
#[derive(Clone)]
pub struct Network {
    rules: Arc<[AllowRule]>,
    resolver: Arc<dyn Resolver>,
}

impl Network {
    pub fn new(rules: Vec<AllowRule>, resolver: Arc<dyn Resolver>) -> Self {
        Self {
            rules: rules.into(),
            resolver,
        }
    }

    /// The allowed networks and the system's resolver.
    pub fn system(rules: Vec<AllowRule>) -> Self {
        Self::new(rules, super::resolve::system())
    }

    /// The guard of `tenant` (`None`: of every tenant no rule names).
    pub fn guard(&self, tenant: Option<&str>) -> Guard {
        let allowed = self
            .rules
            .iter()
            .filter(|r| match tenant {
                Some(tenant) => r.applies_to(tenant),
                None => r.tenant.is_none(),
            })
            .map(|r| r.network)
            .collect();
        Guard::with_resolver(allowed, self.resolver.clone())
    }

    fn names(&self, tenant: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.tenant.as_deref() == Some(tenant))
    }
}

/// How the clients of one use are built.
#[derive(Debug, Clone)]
pub struct Settings {
    pub user_agent: &'static str,
    /// The whole request, answer included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The one proxy this use goes through (none: the system's proxy variables are
    /// ignored too).
    pub proxy: Option<Url>,
}

/// One tenant's client of one use.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    guard: Guard,
    proxy: Option<Url>,
}

impl Client {
    fn build(settings: &Settings, guard: Guard) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::web_client_config())
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(settings.user_agent)
            .dns_resolver(guard.clone())
            .no_proxy();
        if let Some(proxy) = &settings.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        Ok(Self {
            http: builder.build()?,
            guard,
            proxy: settings.proxy.clone(),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// What is checked before a request leaves: an IP-literal target, and a proxy named
    /// by an IP literal (names, the target's and the proxy's, are checked as they are
    /// resolved for the connection).
    pub fn check_literals(&self, url: &Url) -> Result<(), Refused> {
        self.guard.check_url(url)?;
        match &self.proxy {
            Some(proxy) => self.guard.check_url(proxy),
            None => Ok(()),
        }
    }

    /// Checks a target when it is saved: its IP literal, or every address its name
    /// resolves to now (a name that does not resolve yet is accepted: it is checked
    /// again at every connection).
    pub async fn check_target(&self, url: &Url) -> Result<(), Refused> {
        self.guard.check_url(url)?;
        if let Some(url::Host::Domain(host)) = url.host()
            && let Err(e) = self.guard.resolve(host).await
            && let Some(refused) = e.downcast_ref::<Refused>()
        {
            return Err(refused.clone());
        }
        Ok(())
    }
}

/// The clients of one use: the shared one, and those of tenants a rule names (built
/// when first needed, each with its own guard).
#[derive(Clone)]
pub struct Clients {
    network: Network,
    settings: Arc<Settings>,
    everyone: Client,
    tenants: Arc<Mutex<HashMap<String, Client>>>,
}

impl Clients {
    pub fn new(network: &Network, settings: Settings) -> anyhow::Result<Self> {
        let everyone = Client::build(&settings, network.guard(None))?;
        Ok(Self {
            network: network.clone(),
            settings: Arc::new(settings),
            everyone,
            tenants: Arc::default(),
        })
    }

    /// The client for `tenant`'s requests: the shared one unless a rule names it.
    pub fn for_tenant(&self, tenant: &str) -> anyhow::Result<Client> {
        if !self.network.names(tenant) {
            return Ok(self.everyone.clone());
        }
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = tenants.get(tenant) {
            return Ok(client.clone());
        }
        let client = Client::build(&self.settings, self.network.guard(Some(tenant)))?;
        tenants.insert(tenant.to_owned(), client.clone());
        Ok(client)
    }

    /// The client of every tenant no rule names.
    pub fn shared(&self) -> &Client {
        &self.everyone
    }
}

/// The guard's refusal, if that is why a request failed.
pub fn refusal(error: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        source = e.source();
    }
    None
}

/// A failure in words: the error and its causes.
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
