//! The core's error type. Each variant maps to one Ruby exception class in
//! the binding.

/// Errors a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A flags payload (bootstrap, file, server response) is malformed.
    #[error("invalid flags payload: {0}")]
    InvalidPayload(String),
    /// A configuration value is wrong.
    #[error("{0}")]
    InvalidConfig(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", ...).
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Characters of a value a message quotes before it cuts the value short.
pub(crate) const QUOTED_CHARS: usize = 64;

/// A value quoted in an error or warning: escaped as `{:?}` escapes it, and
/// cut after [`QUOTED_CHARS`] characters with its full length said, so a
/// value of megabytes makes a message of a line, however often it is named.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(QUOTED_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((end, _)) => {
                let shown = format!("{:?}", &self.0[..end]);
                let open = &shown[..shown.len() - 1];
                let length = self.0.chars().count();
                write!(f, "{open}…\" (cut, {length} characters)")
            }
        }
    }
}

/// The same message with each quoted value longer than [`QUOTED_CHARS`]
/// characters cut short, as [`Quoted`] cuts it (for messages written by
/// other libraries, which quote whole values: serde writes a wrong string
/// as `"escaped"` and an unknown name as `` `as it is` ``).
pub(crate) fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        let quote = c;
        // Inside a quoted value: in a "string", `\` escapes the next
        // character.
        let mut length = 0;
        let mut closed = false;
        while let Some(c) = chars.next() {
            let escaped = if c == '\\' && quote == '"' {
                chars.next()
            } else {
                None
            };
            if c == quote {
                closed = true;
                break;
            }
            length += 1;
            if length <= QUOTED_CHARS {
                out.push(c);
                out.extend(escaped);
            }
        }
        if length > QUOTED_CHARS {
            out.push_str(&format!("…{quote} (cut, {length} characters)"));
        } else if closed {
            out.push(quote);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_short_in_messages() {
        assert_eq!(Quoted("a\"b").to_string(), r#""a\"b""#);
        let long = "é".repeat(1 << 20);
        let quoted = Quoted(&long).to_string();
        assert!(quoted.starts_with(&format!("\"{}", "é".repeat(QUOTED_CHARS))));
        assert!(
            quoted.ends_with("…\" (cut, 1048576 characters)"),
            "{quoted}"
        );
        assert!(quoted.len() < 200);

        let message = format!(
            "invalid type: string {:?}, expected a boolean at line 1",
            long
        );
        let short = shorten_quoted(&message);
        assert!(short.starts_with("invalid type: string \"éé"), "{short}");
        assert!(
            short.ends_with("…\" (cut, 1048576 characters), expected a boolean at line 1"),
            "{short}"
        );
        let escapes = format!("value {:?} and \"ok\"", "\"\\".repeat(100));
        let short = shorten_quoted(&escapes);
        assert!(
            short.ends_with("…\" (cut, 200 characters) and \"ok\""),
            "{short}"
        );
        let variant = format!(
            "unknown variant `{}`, expected `hydration`",
            "\\\"".repeat(50)
        );
        let short = shorten_quoted(&variant);
        assert!(
            short.ends_with("…` (cut, 100 characters), expected `hydration`"),
            "{short}"
        );
        for kept in [
            "no quotes",
            "a \"short\" value",
            "an \"unclosed value",
            "`a` \"b\"",
        ] {
            assert_eq!(shorten_quoted(kept), kept);
        }
    }
}
