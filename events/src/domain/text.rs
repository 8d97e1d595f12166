//! Free-text rules shared by names, addresses, reasons and references.
//!
//! Every free-text field in a command is bounded and printable, because these
//! strings end up in logs, HTTP headers and read models that outlive the
//! request that produced them.

/// Longest reason (rejection, cancellation, decline, refusal) accepted.
pub const MAX_REASON_CHARS: usize = 500;

/// Longest external reference (payment token, provider or tracking reference).
pub const MAX_REFERENCE_CHARS: usize = 200;

/// True when `value` has 1 to `max_chars` characters, is not only whitespace and
/// contains no control characters and no format characters (Unicode category
/// Cf: bidirectional overrides such as U+202E, zero-width characters), which
/// would let a name or an address display as something other than it is.
pub fn is_valid_text(value: &str, max_chars: usize) -> bool {
    !value.trim().is_empty()
        && value.chars().count() <= max_chars
        && !value.chars().any(|c| c.is_control() || is_format(c))
}

fn is_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    // No ASCII character is in Cf; the table lookup is what costs (every
    // id and name of every event decoded passes here).
    !c.is_ascii() && c.general_category() == GeneralCategory::Format
}

/// A reason given by a person or a provider: see [`MAX_REASON_CHARS`].
pub fn is_valid_reason(value: &str) -> bool {
    is_valid_text(value, MAX_REASON_CHARS)
}

/// A token or a provider's reference: see [`MAX_REFERENCE_CHARS`].
pub fn is_valid_reference(value: &str) -> bool {
    is_valid_text(value, MAX_REFERENCE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_must_be_printable_non_blank_and_bounded() {
        assert!(is_valid_text("ok", 2));
        assert!(is_valid_text("日本", 2));
        assert!(!is_valid_text("", 10));
        assert!(!is_valid_text(" \t", 10));
        assert!(!is_valid_text("abc", 2));
        assert!(!is_valid_text("line\nbreak", 20));
    }

    #[test]
    fn format_characters_are_refused() {
        for c in [
            '\u{00AD}',
            '\u{202E}',
            '\u{200B}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            assert!(!is_valid_text(&format!("Ada{c}Lovelace"), 50), "{c:?}");
        }
        assert!(is_valid_text("Zoë Ångström", 50));
    }

    #[test]
    fn no_ascii_character_is_a_format_character() {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        assert!((0..=127u8).all(|b| char::from(b).general_category() != GeneralCategory::Format));
    }

    #[test]
    fn reasons_and_references_have_their_own_limits() {
        assert!(is_valid_reason(&"r".repeat(MAX_REASON_CHARS)));
        assert!(!is_valid_reason(&"r".repeat(MAX_REASON_CHARS + 1)));
        assert!(is_valid_reference(&"t".repeat(MAX_REFERENCE_CHARS)));
        assert!(!is_valid_reference(&"t".repeat(MAX_REFERENCE_CHARS + 1)));
    }
}
