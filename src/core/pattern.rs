// SPDX-License-Identifier: MPL-2.0
//! File name patterns with one printf-style index, as in `multifilesink` and
//! `splitmuxsink`: `clip-%05d.mp4`, `thumb-%d.jpg`, `%u`, `%x`, `%%`.

/// Why a pattern can't be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// Substitutes `index` for the one conversion of `pattern`.
///
/// Accepts `%d`, `%u`, `%i`, `%x` with an optional `0` flag and width
/// (`%05d`), and `%%`. A pattern without a conversion is used as it is (every
/// file gets the same name); more than one conversion, or any other, is an
/// error.
pub fn format_index(pattern: &str, index: u64) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let zero = chars.peek() == Some(&'0');
        if zero {
            chars.next();
        }
        let mut width = 0usize;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = width * 10 + d as usize;
            chars.next();
            if width > 32 {
                return Err(PatternError(format!("{pattern:?}: field width above 32")));
            }
        }
        // Accept the length modifiers C code would use (%ld, %lld, %lu).
        while chars.peek() == Some(&'l') {
            chars.next();
        }
        let digits = match chars.next() {
            Some('d' | 'u' | 'i') => index.to_string(),
            Some('x') => format!("{index:x}"),
            Some(other) => {
                return Err(PatternError(format!(
                    "{pattern:?}: unsupported conversion %{other} (use %d, %u or %x, e.g. clip-%05d.mp4)"
                )));
            }
            None => return Err(PatternError(format!("{pattern:?}: ends with a lone %"))),
        };
        if used {
            return Err(PatternError(format!(
                "{pattern:?}: more than one %d; the pattern takes a single index"
            )));
        }
        used = true;
        let pad = if zero { '0' } else { ' ' };
        for _ in digits.len()..width {
            out.push(pad);
        }
        out.push_str(&digits);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_index("clip-%05d.mp4", 42).unwrap(), "clip-00042.mp4");
        assert_eq!(format_index("clip-%d.mp4", 42).unwrap(), "clip-42.mp4");
        assert_eq!(format_index("c%3u", 7).unwrap(), "c  7");
        assert_eq!(format_index("c%lu", 7).unwrap(), "c7");
        assert_eq!(format_index("%x", 255).unwrap(), "ff");
        assert_eq!(format_index("100%%-%02d", 3).unwrap(), "100%-03");
        assert_eq!(format_index("fixed.mp4", 3).unwrap(), "fixed.mp4");
        assert_eq!(
            format_index("clip-%05d.mp4", 1_234_567).unwrap(),
            "clip-1234567.mp4"
        );
    }

    #[test]
    fn errors() {
        for bad in ["%s.mp4", "%d-%d", "x%", "%099999d", "%f"] {
            let e = format_index(bad, 1).unwrap_err();
            assert!(
                e.0.contains(bad) || e.0.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }
}
