//! The CRI log file format: one line per write, `<RFC3339Nano time> <stream> <P|F> <msg>`,
//! where `P` marks a partial line continued by the next one.

use chrono::{DateTime, FixedOffset};

use super::Stream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: DateTime<FixedOffset>,
    pub stream: Stream,
    pub partial: bool,
    /// The message; full lines keep their newline, partial lines lose it.
    pub content: &'a [u8],
}

/// Parse one file line (with its trailing newline, if any).
pub fn parse(line: &[u8]) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let timestamp = DateTime::parse_from_rfc3339(ts).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tag = parts.next()?;
    // Tags may carry more flags separated by ':'; the first is P or F.
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    let mut content = parts.next().unwrap_or_default();
    if partial {
        content = content.strip_suffix(b"\n").unwrap_or(content);
    }
    Some(LogLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// The timestamp as upstream prints it: RFC 3339 with nine fraction digits.
pub fn format_timestamp(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        let l = parse(b"2016-10-06T00:17:09.669794202Z stdout F hello world\n").unwrap();
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.content, b"hello world\n");
        assert_eq!(
            format_timestamp(&l.timestamp),
            "2016-10-06T00:17:09.669794202Z"
        );
        let p = parse(b"2016-10-06T00:17:09.5+02:00 stderr P part\n").unwrap();
        assert!(p.partial);
        assert_eq!(p.content, b"part");
        assert_eq!(
            format_timestamp(&p.timestamp),
            "2016-10-06T00:17:09.500000000+02:00"
        );
        assert_eq!(
            parse(b"2016-10-06T00:17:09Z stdout F \n").unwrap().content,
            b"\n"
        );
        assert!(parse(b"garbage\n").is_none());
        assert!(parse(b"2016-10-06T00:17:09Z other F x\n").is_none());
    }
}
