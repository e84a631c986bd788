//! A small XML writer: every text and attribute value goes through one escape, so no
//! dialect can forget it. Element names are the code's own constants, or a PBX's
//! `root_tag` checked by `is_xml_name` first.

use std::fmt::Write as _;

/// The declaration every answer starts with.
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The longest `root_tag` accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A document being written.
pub struct Xml {
    out: String,
    open: Vec<&'static str>,
}

impl Xml {
    pub fn new() -> Self {
        let mut out = String::with_capacity(1024);
        out.push_str(DECLARATION);
        Self {
            out,
            open: Vec::new(),
        }
    }

    /// Opens `<name a="v" …>`.
    pub fn open(&mut self, name: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start(name, attrs);
        self.out.push('>');
        self.open.push(name);
        self
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) -> &mut Self {
        let name = self.open.pop().expect("an element is open");
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// `<name>text</name>`, or `<name/>` for an empty text.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        if text.is_empty() {
            return self.empty(name, &[]);
        }
        let _ = write!(self.out, "<{name}>");
        escape_into(&mut self.out, text);
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// Text inside the innermost open element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text);
        self
    }

    /// `<name a="v" …/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start(name, attrs);
        self.out.push_str("/>");
        self
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let _ = write!(self.out, "<{name}");
        for (attr, value) in attrs {
            let _ = write!(self.out, " {attr}=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `text` escaped for element content and attribute values alike. Characters
/// XML 1.0 cannot carry at all (most C0 controls, U+FFFE/U+FFFF) are dropped: a phone's
/// parser would refuse the whole document over one of them.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// Whether `name` may name an element: an XML 1.0 `Name` without a namespace prefix
/// (a `:` would need a namespace declaration the PBX cannot send), at most
/// `MAX_NAME_LEN` characters.
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.chars().count() <= MAX_NAME_LEN && is_name_start(first) && chars.all(is_name_char)
}

/// XML 1.0 (fifth edition) `NameStartChar`, without `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar`, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_and_unrepresentable_characters_dropped() {
        let mut xml = Xml::new();
        xml.open("a", &[("q", "x\"<'&")])
            .leaf("b", "Tom & Jerry <ltd> \u{1}'s")
            .leaf("c", "");
        let doc = xml.finish();
        assert_eq!(
            doc.strip_prefix(DECLARATION).unwrap(),
            "<a q=\"x&quot;&lt;&apos;&amp;\"><b>Tom &amp; Jerry &lt;ltd&gt; &apos;s</b><c/></a>"
        );
    }

    #[test]
    fn xml_names_follow_the_name_production_without_prefixes() {
        for good in ["contact", "_x", "a-b.c1", "Kontakt", "año", "連絡先"] {
            assert!(is_xml_name(good), "{good}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "a b",
            "a<b",
            "ns:contact",
            "a&b",
            "a\"",
            ".x",
        ] {
            assert!(!is_xml_name(bad), "{bad}");
        }
        assert!(is_xml_name(&"a".repeat(MAX_NAME_LEN)));
        assert!(!is_xml_name(&"a".repeat(MAX_NAME_LEN + 1)));
    }
}
