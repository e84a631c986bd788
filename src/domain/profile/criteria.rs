//! A profile's criteria: `FIELD OP VALUE`, all of which must hold for a call to be
//! sent (DESIGN §8). Text comparisons ignore case.

use std::fmt;

use super::placeholder::{CallFacts, Placeholder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Contains,
    StartsWith,
    In,
    Ge,
    Le,
    IsSet,
    IsEmpty,
}

/// The characters symbolic operators are made of.
const SYMBOLS: &str = "=!<>~";

/// Spellings.
const OPS: &[(&str, Op)] = &[
    ("=", Op::Eq),
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("in", Op::In),
    ("contains", Op::Contains),
    ("starts-with", Op::StartsWith),
    ("is-set", Op::IsSet),
    ("is-empty", Op::IsEmpty),
];

impl Op {
    fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map_or("=", |(s, _)| s)
    }

    fn takes_value(self) -> bool {
        !matches!(self, Self::IsSet | Self::IsEmpty)
    }
}

/// One parsed criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    field_name: String,
    field: Placeholder,
    op: Op,
    value: String,
}

impl Criterion {
    /// Reads `FIELD OP VALUE` (`Call Direction = Inbound`, `Talk Duration >= 30`,
    /// `Tag in VIP,Gold`, `Contact ID is-set`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (field_name, rest) = Placeholder::field_names()
            .into_iter()
            .find_map(|name| {
                let head = raw.get(..name.len())?;
                let rest = &raw[name.len()..];
                (head.eq_ignore_ascii_case(name)
                    && (rest.is_empty() || rest.starts_with([' ', '=', '!', '>', '<', '~'])))
                .then_some((name, rest))
            })
            .ok_or_else(|| {
                let field = raw
                    .split(|c: char| SYMBOLS.contains(c))
                    .next()
                    .unwrap_or(raw)
                    .trim();
                format!(
                    "`{raw}`: `{field}` is not a field; the fields are {}",
                    Placeholder::names().collect::<Vec<_>>().join(", ")
                )
            })?;
        let field = Placeholder::from_field(field_name).expect("a listed name");
        let rest = rest.trim_start();
        // The operator is the whole run of symbols (`==` is not `=` and a value `= x`)
        // or the whole word; anything else is named, with the valid ones.
        let token_len = if rest.starts_with(|c: char| SYMBOLS.contains(c)) {
            rest.find(|c: char| !SYMBOLS.contains(c))
                .unwrap_or(rest.len())
        } else {
            rest.find(|c: char| !(c.is_alphabetic() || c == '-'))
                .unwrap_or(rest.len())
        };
        let token = &rest[..token_len];
        let valid = || OPS.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ");
        let op = OPS
            .iter()
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(token))
            .map(|(_, op)| *op)
            .ok_or_else(|| match token {
                "" => format!("`{raw}` has no operator; the operators are {}", valid()),
                _ => format!(
                    "`{raw}`: `{token}` is not an operator; the operators are {}",
                    valid()
                ),
            })?;
        let value = rest[token_len..].trim();
        let word = token.starts_with(|c: char| c.is_alphabetic());
        if word && !rest[token_len..].is_empty() && !rest[token_len..].starts_with(' ') {
            return Err(format!("`{raw}`: put a space after `{token}`"));
        }
        let value = unquote(value);
        if op.takes_value() && value.is_empty() && op != Op::Eq && op != Op::Ne {
            return Err(format!("`{raw}`: `{}` needs a value", op.as_str()));
        }
        if !op.takes_value() && !value.is_empty() {
            return Err(format!("`{raw}`: `{}` takes no value", op.as_str()));
        }
        if matches!(op, Op::Ge | Op::Le) && value.parse::<f64>().is_err() {
            return Err(format!("`{raw}`: `{}` compares numbers", op.as_str()));
        }
        Ok(Self {
            field_name: field_name.to_owned(),
            field,
            op,
            value: value.to_owned(),
        })
    }

    /// Whether `call` meets it.
    pub fn holds(&self, call: &CallFacts) -> bool {
        let actual = self.field.value(call);
        let items: Vec<&str> = if self.field.is_list() {
            actual.split(',').filter(|s| !s.is_empty()).collect()
        } else {
            vec![actual.as_str()]
        };
        let any_eq = |wanted: &str| items.iter().any(|i| i.eq_ignore_ascii_case(wanted.trim()));
        match self.op {
            Op::Eq if self.value.is_empty() => actual.is_empty(),
            Op::Ne if self.value.is_empty() => !actual.is_empty(),
            Op::Eq => any_eq(&self.value),
            Op::Ne => !any_eq(&self.value),
            Op::In => self.value.split(',').any(any_eq),
            Op::Contains => actual.to_lowercase().contains(&self.value.to_lowercase()),
            Op::StartsWith => actual
                .to_lowercase()
                .starts_with(&self.value.to_lowercase()),
            Op::Ge | Op::Le => match (actual.trim().parse::<f64>(), self.value.parse::<f64>()) {
                (Ok(a), Ok(b)) if self.op == Op::Ge => a >= b,
                (Ok(a), Ok(b)) => a <= b,
                _ => false,
            },
            Op::IsSet => !actual.is_empty(),
            Op::IsEmpty => actual.is_empty(),
        }
    }
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.takes_value() {
            write!(f, "{} {} {}", self.field_name, self.op.as_str(), self.value)
        } else {
            write!(f, "{} {}", self.field_name, self.op.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(criterion: &str, call: &CallFacts) -> bool {
        Criterion::parse(criterion).unwrap().holds(call)
    }

    #[test]
    fn each_operator_compares_as_documented() {
        let call = CallFacts::sample();
        for (criterion, expected) in [
            ("Call Direction = inbound", true),
            ("Call Direction != Inbound", false),
            ("call direction=Outbound", false),
            ("DNIS starts-with 021", true),
            ("Caller Name contains doe", true),
            ("Call Direction in Outbound, Inbound", true),
            ("Talk Duration >= 120", true),
            ("Talk Duration >= 121", false),
            ("Duration <= 130", true),
            ("Contact ID is-set", true),
            ("Request ID is-empty", true),
            ("Request ID is-set", false),
            ("Tag = vip", true),
            ("Tag != VIP", false),
            ("Account Codes in 1002,1001", true),
            ("Agent = 'Agent1(200)'", true),
            ("Group/Skill = Sales", true),
            ("Request ID =", true),
        ] {
            assert_eq!(holds(criterion, &call), expected, "{criterion}");
        }
    }

    #[test]
    fn a_call_still_up_has_no_duration_to_compare() {
        let mut call = CallFacts::sample();
        call.record.talk_ms = None;
        assert!(!holds("Talk Duration >= 0", &call));
    }

    #[test]
    fn bad_criteria_say_what_is_wrong() {
        for (bad, says) in [
            ("Colour = red", "`Colour` is not a field"),
            ("DNIS ~ 021", "`~` is not an operator"),
            ("Call Direction == Inbound", "`==` is not an operator"),
            ("Call Direction =< Inbound", "`=<` is not an operator"),
            (
                "Call Direction equals Inbound",
                "`equals` is not an operator",
            ),
            ("Call Direction", "no operator"),
            ("DNIS in", "needs a value"),
            ("Contact ID is-set x", "takes no value"),
            ("Talk Duration >= long", "numbers"),
        ] {
            let e = Criterion::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            let lists = if says.contains("field") {
                "Call Direction"
            } else {
                "starts-with"
            };
            assert!(
                e.contains(lists) || !e.contains("not a"),
                "{bad}: lists the valid ones: {e}"
            );
        }
    }

    #[test]
    fn criteria_print_as_they_are_written() {
        let c = Criterion::parse("talk duration >= 30").unwrap();
        assert_eq!(c.to_string(), "Talk Duration >= 30");
        assert_eq!(
            Criterion::parse("Contact ID is-set").unwrap().to_string(),
            "Contact ID is-set"
        );
    }
}
