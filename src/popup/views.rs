//! Screen-pop pages (askama templates in `templates/`, auto-escaped) and every string
//! they show, in one place for translation.

use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use phonenumber::Mode;
use serde_json::Value;

use chrono_tz::Tz;

use crate::domain::CallRecord;
use crate::domain::{ContactRecord, FieldValue, RecentCall, Region, RoutingField};

/// What the page says about a routing field it shows.
pub struct FieldText {
    pub field: RoutingField,
    pub label: &'static str,
    pub means: &'static str,
}

/// Routing fields the page leaves out: the PBX's business rather than the agent's, or
/// (`crm_url`) shown as the "Open in CRM" button.
pub const NOT_SHOWN: &[RoutingField] = &[
    RoutingField::OutboundNumber,
    RoutingField::ExternalId,
    RoutingField::CrmUrl,
];

/// Every text a page shows. English first; a translation is another `Strings`.
pub struct Strings {
    pub lang: &'static str,
    pub incoming_call: &'static str,
    pub on_line: &'static str,
    pub number: &'static str,
    pub crm_id: &'static str,
    pub open_in_crm: &'static str,
    pub routing: &'static str,
    /// The routing fields the page shows, in its order; [`NOT_SHOWN`] names the others.
    pub routing_fields: &'static [FieldText],
    pub details: &'static str,
    pub recent_calls: &'static str,
    pub no_recent_calls: &'static str,
    pub when: &'static str,
    pub line_dialled: &'static str,
    pub identified: &'static str,
    pub what_happened: &'static str,
    pub answered_by: &'static str,
    pub answered: &'static str,
    pub missed: &'static str,
    pub in_progress: &'static str,
    pub talked: &'static str,
    pub recorded: &'static str,
    pub outcome_found: &'static str,
    pub outcome_unknown: &'static str,
    pub outcome_degraded: &'static str,
    pub unknown_caller: &'static str,
    pub not_in_crm: &'static str,
    pub create_in_crm: &'static str,
    pub link_invalid: &'static str,
    pub link_invalid_message: &'static str,
    pub link_expired: &'static str,
    pub link_expired_message: &'static str,
    pub contact_gone: &'static str,
    pub contact_gone_message: &'static str,
    pub unavailable: &'static str,
    pub unavailable_message: &'static str,
    pub footer: &'static str,
    pub call_back: &'static str,
    pub calling_as: &'static str,
}

pub const EN: Strings = Strings {
    lang: "en",
    incoming_call: "Incoming call",
    on_line: "on line",
    number: "Number",
    crm_id: "CRM id",
    open_in_crm: "Open in CRM",
    routing: "How this call is routed",
    routing_fields: &[
        FieldText {
            field: RoutingField::DirectLine,
            label: "Direct line",
            means: "the call goes straight to this agent or queue",
        },
        FieldText {
            field: RoutingField::QueuePosition,
            label: "Queue position",
            means: "priority in the queue (0 is answered first, 100 last)",
        },
        FieldText {
            field: RoutingField::Language,
            label: "Language",
            means: "the language the caller is greeted and served in",
        },
        FieldText {
            field: RoutingField::RouteIdentifier,
            label: "Route",
            means: "a special route that sets the number shown when calling this customer back",
        },
    ],
    details: "Details",
    recent_calls: "Recent calls from this number",
    no_recent_calls: "No earlier calls from this number.",
    when: "When",
    line_dialled: "Line dialled",
    identified: "Identified",
    what_happened: "What happened",
    answered_by: "Answered by",
    answered: "Answered",
    missed: "Missed",
    in_progress: "In progress",
    talked: "talk",
    recorded: "recorded",
    outcome_found: "Yes",
    outcome_unknown: "No",
    outcome_degraded: "From memory (database slow or down)",
    unknown_caller: "Unknown caller",
    not_in_crm: "This number is not in the CRM.",
    create_in_crm: "Create in CRM",
    link_invalid: "This link is not valid",
    link_invalid_message: "The link is incomplete or has been changed. Open the screen pop from the phone again.",
    link_expired: "This link has expired",
    link_expired_message: "Screen-pop links only work for a while after the call. Look the caller up in the CRM.",
    contact_gone: "This contact is no longer available",
    contact_gone_message: "It was removed from the CRM after the call.",
    unavailable: "Temporarily unavailable",
    unavailable_message: "The caller's details cannot be loaded right now. Try again in a moment.",
    footer: "Screen pop by cidgate",
    call_back: "Call this number",
    calling_as: "your phone rings first; signed in as agent",
};

/// A number shown both ways.
pub struct NumberView {
    pub national: String,
    pub international: String,
}

impl NumberView {
    /// Formats a stored number; bare-digit extensions show as they are.
    pub fn new(stored: &str, region: Region) -> Self {
        let parsed = phonenumber::parse(Some(region.id()), stored)
            .ok()
            .filter(|_| stored.starts_with('+'));
        match parsed {
            Some(n) => Self {
                national: n.format().mode(Mode::National).to_string(),
                international: n.format().mode(Mode::International).to_string(),
            },
            None => Self {
                national: stored.to_owned(),
                international: stored.to_owned(),
            },
        }
    }
}

/// The call button (click-to-call): a form posting the number to `/agent/call`, shown
/// when the tenant has a dialer.
pub struct CallButton {
    /// Relative to the page, so the page works under any path prefix.
    pub action: &'static str,
    pub number: String,
    /// The signed-in agent, when the browser's cookie came with the page.
    pub agent: Option<String>,
}

pub struct RoutingItem {
    pub label: &'static str,
    pub value: String,
    pub explanation: &'static str,
}

/// The number's recent calls: what became of them when the PBX reports calls, else
/// whether the lookups identified the caller.
pub struct RecentCalls {
    /// The last column's heading.
    pub result_label: &'static str,
    pub rows: Vec<RecentView>,
}

impl RecentCalls {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

pub struct RecentView {
    pub at: String,
    pub iso: String,
    pub line: String,
    pub result: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pop.html")]
pub struct ContactPage<'a> {
    pub s: &'a Strings,
    pub css_href: &'a str,
    pub name: &'a str,
    pub crm_id: &'a str,
    pub number: NumberView,
    pub dnid: Option<&'a str>,
    pub crm_link: Option<String>,
    pub routing: Vec<RoutingItem>,
    pub attributes: Vec<(String, String)>,
    pub recent: RecentCalls,
    pub call: Option<CallButton>,
    pub trust: Option<TrustView>,
}

/// What the network said of the caller ID, and whether the call was screened (from the
/// link: what the lookup was told). Shown as given, escaped.
#[derive(Debug, Clone, Default)]
pub struct TrustView {
    pub verstat: Option<String>,
    pub attest: Option<String>,
    pub screened: Option<String>,
}

impl TrustView {
    pub fn new(
        verstat: Option<&str>,
        attest: Option<&str>,
        screened: Option<&str>,
    ) -> Option<Self> {
        let owned = |v: Option<&str>| v.map(str::to_owned);
        let view = Self {
            verstat: owned(verstat),
            attest: owned(attest),
            screened: screened.map(|r| match r {
                "spam_list" => "on the spam list".to_owned(),
                "failed_verstat" => "caller ID failed verification".to_owned(),
                other => other.to_owned(),
            }),
        };
        let empty = view.verstat.is_none() && view.attest.is_none() && view.screened.is_none();
        (!empty).then_some(view)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pop_unknown.html")]
pub struct UnknownPage<'a> {
    pub s: &'a Strings,
    pub css_href: &'a str,
    pub number: NumberView,
    pub dnid: Option<&'a str>,
    pub create_link: Option<String>,
    pub recent: RecentCalls,
    pub call: Option<CallButton>,
    pub trust: Option<TrustView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pop_error.html")]
pub struct ErrorPage<'a> {
    pub s: &'a Strings,
    pub css_href: &'a str,
    pub heading: &'a str,
    pub message: &'a str,
}

/// `/agent/login`'s confirmation: the session's agent, and a form that posts the
/// session back (the cookie is set only by that post, from cidgate's own page).
#[derive(Template, WebTemplate)]
#[template(path = "agent_login.html")]
pub struct AgentLoginPage<'a> {
    pub s: &'a Strings,
    pub css_href: &'a str,
    pub agent: &'a str,
    pub until: &'a str,
    pub session: &'a str,
}

/// The routing fields that are set, in words an agent understands.
pub fn routing_items(s: &Strings, contact: &ContactRecord) -> Vec<RoutingItem> {
    s.routing_fields
        .iter()
        .filter_map(|text| {
            let value = match contact.routing.get(text.field)? {
                FieldValue::Text(code) if text.field == RoutingField::Language => {
                    language_name(code)
                }
                FieldValue::Text(value) => value.to_owned(),
                FieldValue::Integer(n) => n.to_string(),
            };
            Some(RoutingItem {
                label: text.label,
                value,
                explanation: text.means,
            })
        })
        .collect()
}

/// A language code with its English name when it is a common one.
fn language_name(code: &str) -> String {
    let name = match code.to_ascii_lowercase().as_str() {
        "en" => "English",
        "ro" => "Romanian",
        "hu" => "Hungarian",
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "pt" => "Portuguese",
        "nl" => "Dutch",
        "pl" => "Polish",
        "bg" => "Bulgarian",
        "ru" => "Russian",
        "uk" => "Ukrainian",
        "tr" => "Turkish",
        _ => return code.to_owned(),
    };
    format!("{name} ({code})")
}

/// The contact's free attributes as key and text, in key order.
pub fn attribute_rows(attributes: &Value) -> Vec<(String, String)> {
    let Some(map) = attributes.as_object() else {
        return Vec::new();
    };
    let mut rows: Vec<(String, String)> = map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    rows.sort();
    rows
}

/// The lookups of the number (for PBXs that report no calls).
pub fn recent_lookups(s: &Strings, calls: &[RecentCall], zone: Tz) -> RecentCalls {
    let rows = calls
        .iter()
        .map(|c| RecentView {
            at: format_time(c.at, zone),
            iso: c.at.to_rfc3339(),
            line: c.dnid.clone().unwrap_or_else(|| "—".to_owned()),
            result: match c.outcome.as_str() {
                "found" => s.outcome_found,
                "degraded" => s.outcome_degraded,
                _ => s.outcome_unknown,
            }
            .to_owned(),
        })
        .collect();
    RecentCalls {
        result_label: s.identified,
        rows,
    }
}

/// The number's calls as the PBX reported them: answered by whom, missed, talk time,
/// recorded.
pub fn recent_calls(s: &Strings, calls: &[CallRecord], zone: Tz) -> RecentCalls {
    let rows = calls
        .iter()
        .map(|c| {
            let mut result = match (c.outcome.as_str(), &c.agent) {
                ("answered", Some(agent)) => format!("{} {agent}", s.answered_by),
                ("answered", None) => s.answered.to_owned(),
                ("missed", _) => s.missed.to_owned(),
                _ => s.in_progress.to_owned(),
            };
            if let Some(talk) = c.talk_ms.filter(|ms| *ms > 0) {
                result.push_str(&format!(" · {} {}", format_duration(talk), s.talked));
            }
            if c.recorded {
                result.push_str(&format!(" · {}", s.recorded));
            }
            RecentView {
                at: format_time(c.started_at, zone),
                iso: c.started_at.to_rfc3339(),
                line: c.dnis.clone().unwrap_or_else(|| "—".to_owned()),
                result,
            }
        })
        .collect();
    RecentCalls {
        result_label: s.what_happened,
        rows,
    }
}

fn format_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `H:MM:SS`, as the reports show durations.
fn format_duration(ms: i64) -> String {
    let secs = ms / 1000;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_nationally_and_internationally() {
        let view = NumberView::new("+40721234567", Region::parse("RO").unwrap());
        assert_eq!(view.national, "0721 234 567");
        assert_eq!(view.international, "+40 721 234 567");
        let ext = NumberView::new("101", Region::parse("RO").unwrap());
        assert_eq!(ext.national, "101");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = ErrorPage {
            s: &EN,
            css_href: "/pop/style.css",
            heading: "<script>alert(1)</script>",
            message: "\"quoted\" & <b>",
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&#60;script&#62;"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn attributes_become_sorted_text_rows() {
        let rows = attribute_rows(&serde_json::json!({"tier": "gold", "age": 3, "tags": ["a"]}));
        assert_eq!(
            rows,
            [
                ("age".into(), "3".into()),
                ("tags".into(), "[\"a\"]".into()),
                ("tier".into(), "gold".into())
            ]
        );
    }

    #[test]
    fn every_routing_field_is_on_the_page_or_said_not_to_be() {
        for &field in RoutingField::ALL {
            let shown = EN
                .routing_fields
                .iter()
                .filter(|t| t.field == field)
                .count();
            let hidden = NOT_SHOWN.contains(&field);
            assert_eq!(
                shown + usize::from(hidden),
                1,
                "{field:?}: give it a label in `Strings` or list it in NOT_SHOWN"
            );
        }
    }

    #[test]
    fn the_page_shows_every_shown_field_in_its_order() {
        let routing = crate::domain::RoutingFields::from_fn(|field| {
            Some(match field.kind() {
                crate::domain::FieldKind::Integer { max, .. } => FieldValue::Integer(max),
                _ => FieldValue::Text(field.name()),
            })
        });
        let contact = ContactRecord {
            id: crate::domain::CrmId::parse("1").unwrap(),
            name: "Ana".into(),
            phones: vec!["+40721234567".into()],
            routing,
            attributes: Value::Null,
            updated_at: None,
        };
        let items = routing_items(&EN, &contact);
        let labels: Vec<&str> = items.iter().map(|i| i.label).collect();
        assert_eq!(
            labels,
            ["Direct line", "Queue position", "Language", "Route"]
        );
        let page = ContactPage {
            s: &EN,
            css_href: "/pop/style.css",
            name: "Ana",
            crm_id: "1",
            number: NumberView::new("+40721234567", Region::parse("RO").unwrap()),
            dnid: None,
            crm_link: None,
            routing: items,
            attributes: Vec::new(),
            recent: RecentCalls {
                result_label: EN.identified,
                rows: Vec::new(),
            },
            call: None,
            trust: TrustView::new(
                Some("<b>TN-Validation-Failed"),
                Some("C"),
                Some("spam_list"),
            ),
        };
        let html = page.render().unwrap();
        // What the PBX passed is shown escaped.
        assert!(
            html.contains("&#60;b&#62;TN-Validation-Failed")
                || html.contains("&lt;b&gt;TN-Validation-Failed"),
            "{html}"
        );
        assert!(html.contains("attestation <bdi>C</bdi>"));
        assert!(html.contains("on the spam list"));
        for text in EN.routing_fields {
            let value = match contact.routing.get(text.field).unwrap() {
                FieldValue::Text(value) => value.to_owned(),
                FieldValue::Integer(n) => n.to_string(),
            };
            assert!(html.contains(text.label), "{}", text.label);
            assert!(html.contains(&format!("<bdi>{value}</bdi>")), "{value}");
        }
        for field in NOT_SHOWN {
            assert!(!html.contains(field.name()), "{field:?}");
        }
    }
}
