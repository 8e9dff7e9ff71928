//! Field selectors: `a=b`, `a==b`, `a!=b` joined by commas, with `\,` `\=` `\\` escapes.
//! Which fields a resource supports is the registry's business: it provides the field set.

use std::collections::BTreeMap;

use super::ParseError;

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Field path, e.g. `spec.nodeName`.
    pub field: String,
    /// Value to compare with.
    pub value: String,
    /// `!=` instead of `=`.
    pub negated: bool,
}

/// A parsed field selector (terms ANDed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The terms.
    pub terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut terms = Vec::new();
        for raw in split_unescaped(s, ',') {
            if raw.trim().is_empty() {
                continue;
            }
            terms.push(parse_term(&raw)?);
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value required by an `=` term on `field`, if any (used to narrow watches).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// The first field not in `supported`, if any.
    pub fn unsupported<'a>(&'a self, supported: &[&str]) -> Option<&'a str> {
        self.terms
            .iter()
            .map(|t| t.field.as_str())
            .find(|f| !supported.contains(f))
    }

    /// Matches a set of field values; a field missing from the set compares as "".
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| {
            let v = fields.get(&t.field).map(String::as_str).unwrap_or("");
            (v == t.value) != t.negated
        })
    }
}

fn parse_term(raw: &str) -> Result<FieldTerm, ParseError> {
    // Find the first unescaped operator.
    let bytes: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '\\' => i += 2,
            '!' if bytes.get(i + 1) == Some(&'=') => {
                return term(&bytes[..i], &bytes[i + 2..], true);
            }
            '=' if bytes.get(i + 1) == Some(&'=') => {
                return term(&bytes[..i], &bytes[i + 2..], false);
            }
            '=' => return term(&bytes[..i], &bytes[i + 1..], false),
            _ => i += 1,
        }
    }
    Err(ParseError(format!(
        "invalid selector: '{raw}'; can't understand '{raw}'"
    )))
}

fn term(field: &[char], value: &[char], negated: bool) -> Result<FieldTerm, ParseError> {
    let field: String = field.iter().collect::<String>().trim().to_string();
    if field.is_empty() {
        return Err(ParseError(
            "invalid field selector: empty field name".into(),
        ));
    }
    Ok(FieldTerm {
        field,
        value: unescape(&value.iter().collect::<String>())?,
        negated,
    })
}

fn unescape(s: &str) -> Result<String, ParseError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(ParseError(format!(
                        "invalid field selector value: invalid escape sequence \\{e}"
                    )));
                }
                None => {
                    return Err(ParseError(
                        "invalid field selector value: trailing backslash".into(),
                    ));
                }
            }
        } else if c == ',' || c == '=' {
            return Err(ParseError(format!(
                "invalid field selector value: unescaped {c:?} in {s:?}"
            )));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_all_operators() {
        let s =
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed,metadata.name==p").unwrap();
        assert_eq!(s.terms.len(), 3);
        assert!(s.terms[1].negated);
        assert_eq!(s.required("spec.nodeName"), Some("n1"));
        let f = fields(&[
            ("spec.nodeName", "n1"),
            ("status.phase", "Running"),
            ("metadata.name", "p"),
        ]);
        assert!(s.matches(&f));
        let f2 = fields(&[
            ("spec.nodeName", "n1"),
            ("status.phase", "Failed"),
            ("metadata.name", "p"),
        ]);
        assert!(!s.matches(&f2));
    }

    #[test]
    fn empty_value_selects_unset_fields() {
        // The scheduler's "unassigned pods" selector.
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(s.matches(&fields(&[("spec.nodeName", "")])));
        assert!(!s.matches(&fields(&[("spec.nodeName", "n")])));
    }

    #[test]
    fn escapes() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c").unwrap();
        assert_eq!(s.terms[0].value, "a,b=c");
        assert!(FieldSelector::parse("noop").is_err());
        assert!(FieldSelector::parse(r"a=b\x").is_err());
    }

    #[test]
    fn reports_unsupported_fields() {
        let s = FieldSelector::parse("spec.foo=1").unwrap();
        assert_eq!(s.unsupported(&["metadata.name"]), Some("spec.foo"));
    }
}
