//! What text shown to agents (the pop page) and answered to PBXs may hold.

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
/// Invisible, they reorder the text around them, so a name could read as another name
/// (or a number as another number) on the pop page or a phone's display. Letters of
/// right-to-left scripts carry their direction themselves and need none of them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub const BIDI_CONTROLS: &str = "must not contain bidirectional embedding, override or isolate \
                                 characters (U+202A–U+202E, U+2066–U+2069)";

/// Why `s` cannot be shown as one line of text, if it cannot: control characters (C0,
/// DEL, C1) or bidi controls.
pub fn display_problem(s: &str) -> Option<&'static str> {
    if s.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if s.chars().any(is_bidi_control) {
        Some(BIDI_CONTROLS)
    } else {
        None
    }
}

/// What the database refuses to store (NUL) and no PBX means to send: C0 and C1 controls
/// other than tab and line breaks.
pub const STORED_CONTROLS: &str = "must not contain NUL or other control characters";

/// Why `s` cannot be kept as text with a call, if it cannot (see [`STORED_CONTROLS`]).
/// Checked where text enters, so one request's bytes can never fail another's write.
pub fn storage_problem(s: &str) -> Option<&'static str> {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        .then_some(STORED_CONTROLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_script_are_shown_but_invisible_reordering_is_not() {
        for name in [
            "Zoë Ștefănescu",
            "محمد عبد الله",
            "דוד לוי",
            "Ana (אנה) Pop",
            "王小明",
            "O'Brien-Łukasiewicz",
        ] {
            assert_eq!(display_problem(name), None, "{name}");
        }
        for c in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}'] {
            assert_eq!(display_problem(&format!("Ana{c}Pop")), Some(BIDI_CONTROLS));
        }
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'] {
            assert_eq!(display_problem(&format!("Ana{c}Pop")), Some(BIDI_CONTROLS));
        }
        for c in [
            '\u{0}', '\u{7}', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}',
        ] {
            let problem = display_problem(&format!("Ana{c}Pop"));
            assert_eq!(
                problem,
                Some("must not contain control characters"),
                "{c:?}"
            );
        }
        // Neighbours of the refused ranges stay allowed.
        for c in ['\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}'] {
            assert!(!is_bidi_control(c), "{c:?}");
        }
    }

    #[test]
    fn stored_text_may_break_lines_but_holds_no_nul_or_other_controls() {
        assert_eq!(storage_problem("line one\nline\ttwo\r\n"), None);
        for c in ['\u{0}', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}'] {
            assert_eq!(
                storage_problem(&format!("a{c}b")),
                Some(STORED_CONTROLS),
                "{c:?}"
            );
        }
    }
}
