//! The access log's format: structured fields, off, or a template of
//! `{field}` placeholders (`--access-log`, `access_log`).

/// How access lines are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One structured event per request.
    #[default]
    Fields,
    /// No access log (metrics are still counted).
    Off,
    /// One line per request from a template of `{field}` placeholders.
    Template(Vec<Piece>),
}

/// A piece of an access-log template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Written as it is.
    Text(String),
    /// A `{field}` placeholder.
    Field(Field),
}

/// What a template placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `{time}`: when the request arrived, RFC 3339, UTC.
    Time,
    /// `{app}`: the app that served it, `-` for none.
    App,
    /// `{method}`.
    Method,
    /// `{path}`: as the client sent it.
    Path,
    /// `{status}`.
    Status,
    /// `{duration_ms}`: until the body was done.
    DurationMs,
    /// `{bytes}`: response body bytes sent.
    Bytes,
    /// `{end}`: `complete`, `error` or `client-gone`.
    End,
    /// `{request_id}`.
    RequestId,
    /// `{peer}`: the client's address.
    Peer,
}

const FIELDS: [(&str, Field); 10] = [
    ("time", Field::Time),
    ("app", Field::App),
    ("method", Field::Method),
    ("path", Field::Path),
    ("status", Field::Status),
    ("duration_ms", Field::DurationMs),
    ("bytes", Field::Bytes),
    ("end", Field::End),
    ("request_id", Field::RequestId),
    ("peer", Field::Peer),
];

impl std::str::FromStr for AccessLogFormat {
    type Err = String;

    /// `fields`, `off`, or a template with `{field}` placeholders.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "fields" => return Ok(Self::Fields),
            "off" => return Ok(Self::Off),
            _ => {}
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed `{{` in access log format {text:?}"))?;
            let name = &rest[open + 1..open + close];
            let field = FIELDS.iter().find(|(known, _)| *known == name).map(|(_, field)| *field).ok_or_else(|| {
                let known: Vec<&str> = FIELDS.iter().map(|(known, _)| *known).collect();
                format!("unknown access log field {{{name}}}; known: {}", known.join(", "))
            })?;
            pieces.push(Piece::Field(field));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if !pieces.iter().any(|piece| matches!(piece, Piece::Field(_))) {
            return Err(format!("access log format {text:?} has no {{field}}; use `fields`, `off` or a template"));
        }
        Ok(Self::Template(pieces))
    }
}

impl std::fmt::Display for AccessLogFormat {
    /// The format as `--access-log` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fields => f.write_str("fields"),
            Self::Off => f.write_str("off"),
            Self::Template(pieces) => pieces.iter().try_for_each(|piece| match piece {
                Piece::Text(text) => f.write_str(text),
                Piece::Field(field) => {
                    let name = FIELDS.iter().find(|(_, known)| known == field).map_or("?", |(name, _)| name);
                    write!(f, "{{{name}}}")
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_back_as_written() {
        for text in ["fields", "off", r#"{peer} "{method} {path}" {status} {duration_ms}ms"#] {
            let format: AccessLogFormat = text.parse().unwrap();
            assert_eq!(format.to_string(), text);
        }
        assert!("{nope}".parse::<AccessLogFormat>().is_err());
        assert!("no fields".parse::<AccessLogFormat>().is_err());
    }
}
