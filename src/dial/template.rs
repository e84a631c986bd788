//! Dialer templates: text with `{{Placeholder}}`s filled from the request (a dial URL,
//! an AMI channel, an ESL endpoint). Unknown placeholders are refused when the dialer
//! is set, not when an agent clicks.

use serde::{Deserialize, Serialize};

use super::DialRequest;

/// The placeholders a template may use, and what they stand for.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("AgentExtension", "the agent's extension (200)"),
    ("Agent", "the agent as events name it: Name(extension)"),
    (
        "Number",
        "what the PBX dials: the queue's prefix, then the number in the dialer's format",
    ),
    (
        "E164Number",
        "the number normalized to E.164 (+40721234567)",
    ),
    ("RequestID", "the request's RequestID"),
    ("Queue", "the queue the CRM named, or empty"),
    (
        "ContactName",
        "the contact's name, or the number when unknown",
    ),
];

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template(String);

impl TryFrom<String> for Template {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<Template> for String {
    fn from(template: Template) -> Self {
        template.0
    }
}

impl Template {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err("a template is one line (no CR, LF or NUL)".into());
        }
        let mut rest = raw;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{raw}` has a `{{{{` without its `}}}}`"))?;
            let name = &after[..close];
            if !PLACEHOLDERS.iter().any(|(known, _)| *known == name) {
                let known: Vec<&str> = PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "`{{{{{name}}}}}` is not a placeholder; use {}",
                    known.join(", ")
                ));
            }
            rest = &after[close + 2..];
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text with each placeholder replaced by its value passed through `escape`
    /// (percent-encoding in a URL, quoting in a dial string).
    pub fn render(&self, request: &DialRequest, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(self.0.len() + 32);
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                break;
            };
            out.push_str(&escape(&value(request, &after[..close])));
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        out
    }
}

fn value(request: &DialRequest, name: &str) -> String {
    match name {
        "AgentExtension" => request.agent_extension.clone(),
        "Agent" => request.agent.clone(),
        "Number" => request.dialled.clone(),
        "E164Number" => request.number.clone(),
        "RequestID" => request.request_id.to_string(),
        "Queue" => request.queue.clone().unwrap_or_default(),
        "ContactName" => request
            .contact_name
            .clone()
            .unwrap_or_else(|| request.number.clone()),
        _ => String::new(),
    }
}

/// Percent-encodes a value for a URL's query or path.
pub fn url_escape(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn request() -> DialRequest {
        DialRequest {
            request_id: 513,
            agent_extension: "200".into(),
            agent: "Agent1(200)".into(),
            number: "+40721234567".into(),
            dialled: "90721234567".into(),
            queue: Some("sales".into()),
            contact_name: Some("Ion & Ana".into()),
        }
    }

    #[test]
    fn placeholders_are_filled_and_escaped() {
        let t = Template::parse(
            "https://pbx/dial?agent={{AgentExtension}}&number={{Number}}&id={{RequestID}}&n={{ContactName}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&request(), url_escape),
            "https://pbx/dial?agent=200&number=90721234567&id=513&n=Ion%20%26%20Ana"
        );
        let t = Template::parse("PJSIP/{{AgentExtension}}").unwrap();
        assert_eq!(t.render(&request(), str::to_owned), "PJSIP/200");
    }

    #[test]
    fn unknown_placeholders_and_line_breaks_are_refused() {
        assert!(Template::parse("x{{Nope}}").is_err());
        assert!(Template::parse("x{{Number").is_err());
        assert!(Template::parse("a\r\nAction: Command").is_err());
        let json: Result<Template, _> = serde_json::from_str(r#""{{Bad}}""#);
        assert!(json.is_err());
    }
}
