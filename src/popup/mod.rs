//! The agent's screen pop: links that name one call (`link`), the pages they open
//! (`views`), and the CRM URL templates those pages fill in.

mod link;
pub mod views;

pub use link::{LinkClaims, LinkError, LinkKey, UnverifiedLink, parse, seal};

/// What a filled-in value keeps unencoded: RFC 3986's unreserved characters, which
/// mean the same in a path and in a query (a space becomes `%20`, not a `+` that a path
/// would read as a plus).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Fills `{id}`, `{number}` (E.164) and `{national}` into a URL template, each value
/// percent-encoded so it cannot change the URL's structure.
pub fn fill_template(template: &str, id: Option<&str>, number: &str, national: &str) -> String {
    let encode = |v: &str| percent_encoding::utf8_percent_encode(v, UNRESERVED).to_string();
    template
        .replace("{id}", &encode(id.unwrap_or_default()))
        .replace("{number}", &encode(number))
        .replace("{national}", &encode(national))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_with_encoded_values() {
        let url = fill_template(
            "https://crm.example.com/c/{id}?p={number}&n={national}",
            Some("a b/c&d?e#f\"<ö"),
            "+40721",
            "0721 234",
        );
        assert_eq!(
            url,
            "https://crm.example.com/c/a%20b%2Fc%26d%3Fe%23f%22%3C%C3%B6?p=%2B40721&n=0721%20234"
        );
    }
}
