//! A profile's value: literal text, placeholders (`<Caller Name>`, `{{CallID}}`), or
//! both mixed. Parsed when the profile is saved, so a misspelt placeholder is refused
//! then, not discovered at the first call.

use super::placeholder::{CallFacts, Placeholder};

/// Longest template accepted (a JSON body is the long one).
const MAX_TEMPLATE_CHARS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A parsed template; `source()` gives back what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// How placeholder values are written into the surrounding text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (URL and form parameters are encoded as a whole afterwards).
    None,
    /// Inside a JSON string: quotes, backslashes and control characters escaped.
    JsonString,
}

impl Template {
    /// Parses `source`. `<Name>` is a placeholder when Name is one; a `<…>` that looks
    /// like a name but is none is refused (a typo would otherwise be sent as text), while
    /// other text in angle brackets stays text. `{{Name}}` must be a known name.
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(format!("is longer than {MAX_TEMPLATE_CHARS} characters"));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(i) = rest.find(['<', '{']) {
            text.push_str(&rest[..i]);
            rest = &rest[i..];
            let (found, consumed) = if let Some(inner) = rest.strip_prefix("{{") {
                match inner.find("}}") {
                    Some(end) => {
                        let name = &inner[..end];
                        let p = Placeholder::from_alias(name)
                            .ok_or_else(|| format!("has an unknown placeholder {{{{{name}}}}}"))?;
                        (Some(p), end + 4)
                    }
                    None => (None, 1),
                }
            } else if let Some(inner) = rest.strip_prefix('<') {
                match inner.find('>') {
                    Some(end) if looks_like_name(&inner[..end]) => {
                        let name = &inner[..end];
                        let p = Placeholder::from_name(name).ok_or_else(|| {
                            format!(
                                "has an unknown placeholder <{name}>; known: {}",
                                Placeholder::names()
                                    .map(|n| format!("<{n}>"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })?;
                        (Some(p), end + 2)
                    }
                    _ => (None, 1),
                }
            } else {
                (None, 1)
            };
            match found {
                Some(p) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Value(p));
                }
                None => text.push_str(&rest[..consumed]),
            }
            rest = &rest[consumed..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text for `call`.
    pub fn render(&self, call: &CallFacts, escape: Escape) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(p) => {
                    let value = p.value(call);
                    match escape {
                        Escape::None => out.push_str(&value),
                        Escape::JsonString => {
                            let quoted = serde_json::Value::String(value).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Letters, digits, spaces and `/` only (`Group/Skill`), as every placeholder name is;
/// `<b>` in a JSON body is text only because no placeholder is one letter.
fn looks_like_name(inner: &str) -> bool {
    inner.len() >= 2
        && inner.len() <= 40
        && inner
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_text_placeholders_and_aliases_mix() {
        let t = Template::parse("call <Call Direction> from {{CallID}}!").unwrap();
        let call = CallFacts::sample();
        assert_eq!(
            t.render(&call, Escape::None),
            "call Inbound from 1000000087849!"
        );
        assert_eq!(t.source(), "call <Call Direction> from {{CallID}}!");
    }

    #[test]
    fn misspelt_placeholders_are_refused_and_other_brackets_are_text() {
        assert!(
            Template::parse("<Caler Name>")
                .unwrap_err()
                .contains("<Caler Name>")
        );
        assert!(Template::parse("{{NoSuch}}").is_err());
        let t = Template::parse("a < b, {x}, <b>, <a href=\"x\">").unwrap();
        assert_eq!(
            t.render(&CallFacts::sample(), Escape::None),
            "a < b, {x}, <b>, <a href=\"x\">"
        );
    }

    #[test]
    fn json_strings_get_escaped_values() {
        let t = Template::parse(r#"{"name":"<Caller Name>"}"#).unwrap();
        let mut call = CallFacts::sample();
        call.record.caller_name = Some("Jo \"Q\" \\ \n".into());
        let body = t.render(&call, Escape::JsonString);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["name"], "Jo \"Q\" \\ \n");
    }
}
