//! A printable view of a tokenization, for `podium tokenize`: each id with the
//! text it stands for, as JSON or as an aligned human-readable table.

use std::fmt::Write;

use crate::error::TokenizerError;
use crate::tokenizer::Tokenizer;
use crate::vocab::TokenKind;

/// The tokens of one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenizeReport {
    pub n_tokens: usize,
    pub tokens: Vec<TokenEntry>,
}

/// One token: its id, the text it stands for and its kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenEntry {
    pub id: u32,
    /// The token's text with control tokens shown as themselves; bytes that are
    /// not UTF-8 on their own become U+FFFD.
    pub piece: String,
    pub kind: TokenKind,
}

impl TokenizeReport {
    pub fn new(tokenizer: &Tokenizer, ids: &[u32]) -> Result<TokenizeReport, TokenizerError> {
        let tokens = ids
            .iter()
            .map(|&id| {
                Ok(TokenEntry {
                    id,
                    piece: tokenizer.token_piece(id)?,
                    kind: tokenizer.token_kind(id)?,
                })
            })
            .collect::<Result<Vec<_>, TokenizerError>>()?;
        Ok(TokenizeReport {
            n_tokens: tokens.len(),
            tokens,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report is plain data")
    }

    /// One line per token: position, id and the piece with escapes, so that
    /// spaces and newlines are visible.
    pub fn to_text(&self) -> String {
        let id_width = self
            .tokens
            .iter()
            .map(|t| t.id.to_string().len())
            .max()
            .unwrap_or(1);
        let pos_width = self.n_tokens.saturating_sub(1).to_string().len();
        let mut out = format!(
            "{} token{}\n",
            self.n_tokens,
            if self.n_tokens == 1 { "" } else { "s" }
        );
        for (pos, token) in self.tokens.iter().enumerate() {
            let marker = match token.kind {
                TokenKind::Control | TokenKind::Unknown => "  [control]",
                TokenKind::UserDefined => "  [user-defined]",
                TokenKind::Byte => "  [byte]",
                _ => "",
            };
            let _ = writeln!(
                out,
                "{pos:>pos_width$}  {id:>id_width$}  {piece:?}{marker}",
                id = token.id,
                piece = token.piece
            );
        }
        out
    }
}
