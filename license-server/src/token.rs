//! The bearer token that session hosts present to a remote license server: a secret, so it
//! never appears in `Debug` output or logs, and it can come from a file instead of a command
//! line that every user of the machine sees in `ps`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A bearer token: printable ASCII without spaces (it travels in an HTTP header), never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the token is empty: an empty token would let any caller in")]
    Empty,
    #[error("the token has a character other than printable ASCII at byte {0}")]
    Character(usize),
    #[error("reading the token file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl Token {
    /// The token in the first line of `path` (a trailing newline is not part of it). A file
    /// others can read gets a warning.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
            path: path.display().to_string(),
            source,
        })?;
        crate::private_files::warn_if_open_to_others(path);
        text.lines().next().unwrap_or_default().parse()
    }

    /// The secret itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Token {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if let Some(index) = text.bytes().position(|byte| !byte.is_ascii_graphic()) {
            return Err(TokenError::Character(index));
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token: Token = "s3cret-value".parse().unwrap();
        let shown = format!("{token:?} {:?}", Some(("url", token.clone())));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(token.expose(), "s3cret-value");
    }

    #[test]
    fn empty_or_unprintable_tokens_are_refused() {
        assert!(matches!("".parse::<Token>(), Err(TokenError::Empty)));
        assert!(matches!(
            "ab cd".parse::<Token>(),
            Err(TokenError::Character(2))
        ));
        assert!(matches!(
            "ab\u{e9}".parse::<Token>(),
            Err(TokenError::Character(2))
        ));
    }

    #[test]
    fn a_token_file_gives_its_first_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"from-a-file\n").unwrap();
        assert_eq!(
            Token::from_file(file.path()).unwrap().expose(),
            "from-a-file"
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            Token::from_file(empty.path()),
            Err(TokenError::Empty)
        ));
        let missing = Token::from_file(Path::new("/nonexistent/token")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/token"),
            "{missing}"
        );
    }
}
