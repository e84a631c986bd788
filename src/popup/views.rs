//! Screen-pop pages (askama templates in `templates/`, auto-escaped) and every string
//! they show, in one place for translation.

use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use phonenumber::Mode;
use serde_json::Value;

use chrono_tz::Tz;

use crate::domain::{ContactRecord, RecentCall, Region};
use crate::store::cdr::CallRecord;

/// Every text a page shows. English first; a translation is another `Strings`.
pub struct Strings {
    pub lang: &'static str,
    pub incoming_call: &'static str,
    pub on_line: &'static str,
    pub number: &'static str,
    pub crm_id: &'static str,
    pub open_in_crm: &'static str,
    pub routing: &'static str,
    pub direct_line: &'static str,
    pub direct_line_means: &'static str,
    pub queue_position: &'static str,
    pub queue_position_means: &'static str,
    pub language: &'static str,
    pub language_means: &'static str,
    pub route_identifier: &'static str,
    pub route_identifier_means: &'static str,
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
}

pub const EN: Strings = Strings {
    lang: "en",
    incoming_call: "Incoming call",
    on_line: "on line",
    number: "Number",
    crm_id: "CRM id",
    open_in_crm: "Open in CRM",
    routing: "How this call is routed",
    direct_line: "Direct line",
    direct_line_means: "the call goes straight to this agent or queue",
    queue_position: "Queue position",
    queue_position_means: "priority in the queue (0 is answered first, 100 last)",
    language: "Language",
    language_means: "the language the caller is greeted and served in",
    route_identifier: "Route",
    route_identifier_means: "a special route that sets the number shown when calling this customer back",
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
}

#[derive(Template, WebTemplate)]
#[template(path = "pop_error.html")]
pub struct ErrorPage<'a> {
    pub s: &'a Strings,
    pub css_href: &'a str,
    pub heading: &'a str,
    pub message: &'a str,
}

/// The routing fields that are set, in words an agent understands.
pub fn routing_items(s: &Strings, contact: &ContactRecord) -> Vec<RoutingItem> {
    let mut items = Vec::new();
    let mut push = |label, value: Option<String>, explanation| {
        if let Some(value) = value {
            items.push(RoutingItem {
                label,
                value,
                explanation,
            });
        }
    };
    push(
        s.direct_line,
        contact.direct_line.clone(),
        s.direct_line_means,
    );
    push(
        s.queue_position,
        contact.queue_position.map(|q| q.to_string()),
        s.queue_position_means,
    );
    push(
        s.language,
        contact.language.as_deref().map(language_name),
        s.language_means,
    );
    push(
        s.route_identifier,
        contact.route_identifier.clone(),
        s.route_identifier_means,
    );
    items
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
}
