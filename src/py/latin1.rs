//! Latin-1 as pickles use it: protocol 0–2 picklers write `bytes` as text
//! (`_codecs.encode(text, 'latin1')`), and `.npy` headers are latin-1.

/// A string's latin-1 encoding; `None` when a character is above U+00FF.
pub fn encode(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

/// Codec names Python resolves to latin-1 that picklers write.
pub fn is_codec(name: &str) -> bool {
    matches!(name, "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1")
}
