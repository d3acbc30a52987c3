//! One CSV record per policy line, as metadata-action reads each `tags`/`flavor` line.
//!
//! Fields are separated by commas. A field that starts with `"` is quoted: it may then hold
//! commas, and `""` stands for one quote. Like the action's CSV reader (without its relaxed
//! modes), a quote anywhere else is an error rather than a guess.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("a quoted field is not closed")]
    UnterminatedQuote,
    #[error("a quote appears inside an unquoted field (quote the whole field: \"key=value\")")]
    QuoteInUnquotedField,
    #[error("text follows the closing quote of a field")]
    TextAfterClosingQuote,
}

pub(super) fn split_fields(line: &str) -> Result<Vec<String>, CsvError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(CsvError::UnterminatedQuote),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(CsvError::TextAfterClosingQuote),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err(CsvError::QuoteInUnquotedField),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_split_on_commas() {
        assert_eq!(
            split_fields("type=semver,pattern={{version}}").unwrap(),
            ["type=semver", "pattern={{version}}"]
        );
        assert_eq!(split_fields("a,,b,").unwrap(), ["a", "", "b", ""]);
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        assert_eq!(
            split_fields(r#"type=match,"pattern=\d{1,2}",group=0"#).unwrap(),
            ["type=match", r"pattern=\d{1,2}", "group=0"]
        );
        assert_eq!(
            split_fields(r#""value=say ""hi""""#).unwrap(),
            [r#"value=say "hi""#]
        );
    }

    #[test]
    fn stray_quotes_are_errors() {
        assert_eq!(
            split_fields(r#"type=raw,value="a,b""#),
            Err(CsvError::QuoteInUnquotedField)
        );
        assert_eq!(
            split_fields(r#""value=a"x"#),
            Err(CsvError::TextAfterClosingQuote)
        );
        assert_eq!(
            split_fields(r#""value=a"#),
            Err(CsvError::UnterminatedQuote)
        );
    }
}
