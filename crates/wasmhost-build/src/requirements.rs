//! A strict reader for an app's `requirements.txt`.
//!
//! A tenant's requirements file must not steer pip: it may list packages *by
//! name* only (PEP 508 names with extras, version specifiers and environment
//! markers, and per-requirement `--hash=ALG:HEX`), which the build then
//! resolves to wheels from the package index the operator chose. Everything
//! else pip would accept — option lines (`-e`, `-r`, `--index-url`,
//! `--no-binary`...), local paths, archives, URLs, VCS links and direct
//! references (`name @ url`) — can make pip run code from the app's
//! directory or fetch it from anywhere, so [`Requirements::parse`] refuses it
//! with the file, the line and what is allowed.
//!
//! pip never reads the tenant's file: [`Requirements::to_pip_file`] writes
//! the parsed entries back in one normalized form, whose characters are
//! restricted so that pip's own requirements-file syntax (options after a
//! requirement, `#` comments, `${VAR}` expansion, line continuations) has
//! nothing to act on.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// What a refused line is told it may contain instead.
const ALLOWED: &str = "requirements.txt may list only packages by name, installed as wheels from the package \
                       index: `name[extra,...] <version specifiers> ; <environment marker>`, optionally followed \
                       by `--hash=sha256:HEX`, one per line (comments and `\\` continuations are fine). Local \
                       paths, archives, URLs, VCS links, direct references (`name @ url`), editable installs \
                       and pip options are not allowed";

/// Largest requirements file read, in bytes.
const MAX_FILE_SIZE: usize = 1 << 20;

/// Deepest nesting of parentheses in an environment marker.
const MAX_MARKER_DEPTH: usize = 16;

/// Hash algorithms pip accepts for `--hash`, with their hex digest length.
const HASHES: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// Environment marker variables (PEP 508).
const MARKER_VARIABLES: [&str; 12] = [
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

/// File name endings pip takes for an archive to install (its `ARCHIVE_EXTENSIONS`).
const ARCHIVE_SUFFIXES: [&str; 12] =
    [".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma"];

/// Version comparison operators, longest first so that a prefix never wins.
const VERSION_OPERATORS: [&str; 8] = ["===", "==", "!=", "~=", "<=", ">=", "<", ">"];

/// One requirement: a package by name, with what narrows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The package's name, as written.
    pub name: String,
    /// Extras (`name[extra]`), as written.
    pub extras: Vec<String>,
    /// Version specifiers such as `>=3.1`, without spaces.
    pub specifiers: Vec<String>,
    /// The environment marker, normalized (single spaces, double quotes).
    pub marker: Option<String>,
    /// `ALG:HEX` digests the wheel must match.
    pub hashes: Vec<String>,
}

impl Requirement {
    /// Whether the version is pinned to one release (`==1.2.3` or `===x`),
    /// as pip's hash-checking mode requires.
    fn is_pinned(&self) -> bool {
        matches!(self.specifiers.as_slice(), [only] if only.starts_with("===")
            || (only.starts_with("==") && !only.ends_with(".*")))
    }
}

/// The requirements of one app, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// The requirements.
    pub entries: Vec<Requirement>,
}

impl Requirements {
    /// Reads and parses `file`, an app's `requirements.txt`; no requirements
    /// when there is no such file. The file must be a regular file inside
    /// its own directory (a symbolic link elsewhere would show another
    /// file's lines in the error), and is read up to a size limit.
    pub fn read(file: &Path) -> Result<Self> {
        let metadata = match std::fs::metadata(file) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", file.display())),
        };
        anyhow::ensure!(metadata.is_file(), "{} is not a regular file", file.display());
        let real = std::fs::canonicalize(file).with_context(|| format!("cannot resolve {}", file.display()))?;
        let dir = file.parent().context("the requirements file has no directory")?;
        let dir = std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
        anyhow::ensure!(
            real.starts_with(&dir),
            "{} links to {}, outside the app's directory; make it a file of the app's own",
            file.display(),
            real.display()
        );
        let mut bytes = Vec::new();
        std::fs::File::open(file)
            .and_then(|opened| opened.take(MAX_FILE_SIZE as u64 + 1).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", file.display()))?;
        Self::parse(file, &bytes)
    }

    /// Parses the contents of `file` (named in errors only). Refuses every
    /// line that is not a requirement by name, with the file, the line
    /// number, the line's text and what is allowed.
    pub fn parse(file: &Path, bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_FILE_SIZE {
            bail!("{} is larger than {} KiB; {ALLOWED}", file.display(), MAX_FILE_SIZE >> 10);
        }
        let Ok(text) = std::str::from_utf8(bytes) else { bail!("{} is not UTF-8 text; {ALLOWED}", file.display()) };
        let mut entries = Vec::new();
        let mut hashed_line = None;
        let mut unhashed_line = None;
        for (number, line) in logical_lines(text.strip_prefix('\u{feff}').unwrap_or(text)) {
            let requirement = parse_requirement(&line).map_err(|reason| refusal(file, number, &line, &reason))?;
            if !requirement.hashes.is_empty() && !requirement.is_pinned() {
                let reason = "a requirement with --hash must pin one version with `==`";
                return Err(refusal(file, number, &line, reason));
            }
            let seen = if requirement.hashes.is_empty() { &mut unhashed_line } else { &mut hashed_line };
            seen.get_or_insert((number, line));
            entries.push(requirement);
        }
        if let (Some(_), Some((number, line))) = (&hashed_line, &unhashed_line) {
            let reason = "other requirements have --hash, so every requirement needs one (pip's hash-checking mode)";
            return Err(refusal(file, *number, line, reason));
        }
        Ok(Self { entries })
    }

    /// Whether the requirements carry hashes (then pip must check them all).
    pub fn has_hashes(&self) -> bool {
        self.entries.iter().any(|entry| !entry.hashes.is_empty())
    }

    /// The requirements file handed to pip: one normalized requirement per
    /// line, nothing else.
    pub fn to_pip_file(&self) -> String {
        let mut text = String::new();
        for entry in &self.entries {
            text.push_str(&entry.name);
            if !entry.extras.is_empty() {
                let _ = write!(text, "[{}]", entry.extras.join(","));
            }
            text.push_str(&entry.specifiers.join(","));
            if let Some(marker) = &entry.marker {
                let _ = write!(text, " ; {marker}");
            }
            for hash in &entry.hashes {
                let _ = write!(text, " --hash={hash}");
            }
            text.push('\n');
        }
        text
    }
}

/// The error for a refused line.
fn refusal(file: &Path, number: usize, line: &str, reason: &str) -> anyhow::Error {
    const SHOWN: usize = 200;
    let line = line.trim();
    let mut shown = printable(&line.chars().take(SHOWN).collect::<String>());
    if line.chars().count() > SHOWN {
        shown.push_str("...");
    }
    anyhow::anyhow!("{}, line {number}: `{shown}`: {}.\n{ALLOWED}.", file.display(), printable(reason))
}

/// `text` with control characters escaped, so that a line shown in an error
/// cannot rewrite the terminal or the log.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// The file's logical lines with the number of the physical line each
/// starts on: comments (`#` at the start or after whitespace) removed,
/// lines ending in `\` joined with the next, blank ones skipped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, physical) in text.lines().enumerate() {
        let content = strip_comment(physical).trim_end();
        let (start, mut line) = pending.take().unwrap_or_else(|| (index + 1, String::new()));
        match content.strip_suffix('\\') {
            Some(continued) => {
                line.push_str(continued);
                pending = Some((start, line));
            }
            None => {
                line.push_str(content);
                if !line.trim().is_empty() {
                    lines.push((start, line));
                }
            }
        }
    }
    lines.extend(pending.filter(|(_, line)| !line.trim().is_empty()));
    lines
}

/// `line` without a comment: from a `#` at its start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

/// Parses one logical line into a requirement, or says why it is refused.
fn parse_requirement(line: &str) -> Result<Requirement, String> {
    let line = line.trim();
    if let Some(reason) = refused_form(line) {
        return Err(reason);
    }
    let mut cursor = Cursor { text: line, at: 0 };
    let name = cursor.name().ok_or("a requirement must start with a valid package name")?;
    cursor.skip_spaces();
    let mut extras = Vec::new();
    if cursor.eat("[") {
        loop {
            cursor.skip_spaces();
            if cursor.eat("]") && extras.is_empty() {
                break;
            }
            extras.push(cursor.name().ok_or("expected an extra's name inside `[...]`")?);
            cursor.skip_spaces();
            if cursor.eat("]") {
                break;
            }
            if !cursor.eat(",") {
                return Err("expected `,` or `]` in the extras".into());
            }
        }
        cursor.skip_spaces();
    }
    let specifiers = cursor.specifiers()?;
    cursor.skip_spaces();
    let marker = if cursor.eat(";") { Some(cursor.marker()?) } else { None };
    let mut hashes = Vec::new();
    loop {
        cursor.skip_spaces();
        let token = cursor.token();
        if token.is_empty() {
            break;
        }
        match token.strip_prefix("--hash=") {
            Some(hash) => hashes.push(parse_hash(hash)?),
            None if token.starts_with('-') => {
                return Err(format!("`{token}` is not allowed; the only option after a requirement is --hash=ALG:HEX"))
            }
            None => return Err(format!("unexpected `{token}` after the requirement")),
        }
    }
    Ok(Requirement { name, extras, specifiers, marker, hashes })
}

/// Names the kind of line pip would treat as something other than a
/// requirement by name, if it is one.
fn refused_form(line: &str) -> Option<String> {
    if line.starts_with('-') {
        let option = if line.starts_with("--") {
            line.split(|c: char| c.is_whitespace() || c == '=').next().unwrap_or(line)
        } else {
            line.get(..2).unwrap_or(line)
        };
        let what = match option {
            "-e" | "--editable" => "editable installs are not allowed",
            "-r" | "--requirement" | "-c" | "--constraint" => "other requirement or constraint files are not allowed",
            "-i" | "--index-url" | "--extra-index-url" | "--no-index" | "-f" | "--find-links" | "--trusted-host" => {
                "choosing where packages come from is not allowed (the operator chooses the index)"
            }
            _ => "pip options are not allowed",
        };
        return Some(format!("`{option}`: {what}"));
    }
    let first = line.split(|c: char| c.is_whitespace() || c == ';').next().unwrap_or(line);
    let lower = first.to_ascii_lowercase();
    let direct_reference = line.split_once('@').is_some_and(|(before, _)| is_name_with_extras(before.trim()));
    let what = if direct_reference {
        "direct references (`name @ url`) are not allowed"
    } else if ["git+", "hg+", "svn+", "bzr+"].iter().any(|vcs| lower.starts_with(vcs)) {
        "VCS links are not allowed"
    } else if lower.starts_with("file:") {
        "local paths (file: URLs) are not allowed"
    } else if first.contains('\\') || first.starts_with(['.', '/', '~']) || first.contains('/') && !first.contains(':')
    {
        "local paths are not allowed"
    } else if first.contains(':') {
        "URLs are not allowed"
    } else if ARCHIVE_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix)) {
        "archive files are not allowed"
    } else {
        return None;
    };
    Some(what.to_owned())
}

/// Whether `text` is a package name, optionally with `[extras]`.
fn is_name_with_extras(text: &str) -> bool {
    is_name(text.split_once('[').map_or(text, |(name, _)| name).trim_end())
}

/// Whether `text` is a valid package name (PEP 508: ASCII letters and
/// digits, with `.`, `_` and `-` inside).
fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.iter().all(inner)
}

/// Checks a `--hash` value: `ALG:HEX` with a strong algorithm.
fn parse_hash(hash: &str) -> Result<String, String> {
    let (algorithm, hex) = hash.split_once(':').ok_or("a hash is --hash=ALG:HEX")?;
    let Some((_, length)) = HASHES.iter().find(|(name, _)| *name == algorithm) else {
        return Err(format!("hash algorithm `{algorithm}` is not allowed (use sha256, sha384 or sha512)"));
    };
    if hex.len() != *length || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("a {algorithm} hash is {length} hex digits"));
    }
    Ok(format!("{algorithm}:{}", hex.to_ascii_lowercase()))
}

/// A position in a line being parsed.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, literal: &str) -> bool {
        let found = self.rest().starts_with(literal);
        if found {
            self.at += literal.len();
        }
        found
    }

    /// Takes the longest run of characters satisfying `keep`.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let length = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.at += length;
        &rest[..length]
    }

    /// A whitespace-separated token.
    fn token(&mut self) -> &'a str {
        self.take_while(|c| !c.is_whitespace())
    }

    fn name(&mut self) -> Option<String> {
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        is_name(name).then(|| name.to_owned())
    }

    /// Version specifiers (`>=1, <2`, optionally in parentheses), if any.
    fn specifiers(&mut self) -> Result<Vec<String>, String> {
        let parenthesized = self.eat("(");
        let mut specifiers = Vec::new();
        loop {
            self.skip_spaces();
            let Some(operator) = VERSION_OPERATORS.iter().find(|op| self.eat(op)) else {
                if specifiers.is_empty() && !parenthesized {
                    return Ok(specifiers);
                }
                return Err("expected a version specifier such as `>=1.0`".into());
            };
            self.skip_spaces();
            let version =
                self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '_' | '-'));
            if !version.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                return Err(format!("expected a version after `{operator}`"));
            }
            specifiers.push(format!("{operator}{version}"));
            self.skip_spaces();
            if !self.eat(",") {
                break;
            }
        }
        if parenthesized && !self.eat(")") {
            return Err("expected `)` after the version specifiers".into());
        }
        Ok(specifiers)
    }

    /// An environment marker (after `;`), normalized.
    fn marker(&mut self) -> Result<String, String> {
        let mut marker = String::new();
        self.marker_or(&mut marker, 0)?;
        Ok(marker)
    }

    fn marker_or(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        self.marker_and(out, depth)?;
        while self.keyword("or") {
            out.push_str(" or ");
            self.marker_and(out, depth)?;
        }
        Ok(())
    }

    fn marker_and(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        self.marker_expression(out, depth)?;
        while self.keyword("and") {
            out.push_str(" and ");
            self.marker_expression(out, depth)?;
        }
        Ok(())
    }

    fn marker_expression(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        self.skip_spaces();
        if self.eat("(") {
            if depth >= MAX_MARKER_DEPTH {
                return Err(format!("the environment marker nests more than {MAX_MARKER_DEPTH} parentheses"));
            }
            out.push('(');
            self.marker_or(out, depth + 1)?;
            self.skip_spaces();
            if !self.eat(")") {
                return Err("expected `)` in the environment marker".into());
            }
            out.push(')');
            return Ok(());
        }
        self.marker_value(out)?;
        self.skip_spaces();
        let operator = if let Some(op) = VERSION_OPERATORS.iter().find(|op| self.eat(op)) {
            *op
        } else if self.keyword("in") {
            "in"
        } else if self.keyword("not") && self.keyword("in") {
            "not in"
        } else {
            return Err("expected a comparison (`==`, `>=`, `in`...) in the environment marker".into());
        };
        let _ = write!(out, " {operator} ");
        self.marker_value(out)
    }

    /// A marker variable or a quoted string.
    fn marker_value(&mut self, out: &mut String) -> Result<(), String> {
        self.skip_spaces();
        let Some(quote) = self.rest().chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            let variable = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            if !MARKER_VARIABLES.contains(&variable) {
                return Err(format!(
                    "expected a marker variable ({}) or a quoted string in the environment marker",
                    MARKER_VARIABLES.join(", ")
                ));
            }
            out.push_str(variable);
            return Ok(());
        };
        self.at += 1;
        let value = self.take_while(|c| c != quote);
        if !self.eat(&quote.to_string()) {
            return Err("unterminated string in the environment marker".into());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-+*!~,".contains(c);
        if !value.chars().all(allowed) || value.contains(" -") {
            return Err(format!(
                "marker string {quote}{value}{quote} may contain only letters, digits, spaces and `._-+*!~,` \
                 (no word starting with `-`)"
            ));
        }
        let _ = write!(out, "\"{value}\"");
        Ok(())
    }

    /// Takes `word` if it comes next as a whole word (after spaces).
    fn keyword(&mut self, word: &str) -> bool {
        let start = self.at;
        self.skip_spaces();
        let rest = self.rest();
        let whole =
            rest.starts_with(word) && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if whole {
            self.at += word.len();
        } else {
            self.at = start;
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Requirements> {
        Requirements::parse(Path::new("/app/requirements.txt"), text.as_bytes())
    }

    fn refused(text: &str) -> String {
        format!("{:#}", parse(text).expect_err(text))
    }

    #[test]
    fn names_extras_specifiers_markers_and_hashes_are_accepted_and_normalized() {
        let text = "\u{feff}# the shop\n\
                    flask==3.1.*\n\
                    \n\
                    Flask-Login [ async , dotenv ] >= 0.6 , <0.7   # trailing comment\n\
                    requests (>=2.31)\n\
                    six ; python_version >= '3.8' and (sys_platform == \"linux\" or os_name != 'nt')\n\
                    tomli;python_version<\"3.11\"\n\
                    zope.interface\\\n    ~=6.0\n\
                    attrs[]\n";
        let requirements = parse(text).unwrap();
        assert_eq!(
            requirements.to_pip_file(),
            "flask==3.1.*\n\
             Flask-Login[async,dotenv]>=0.6,<0.7\n\
             requests>=2.31\n\
             six ; python_version >= \"3.8\" and (sys_platform == \"linux\" or os_name != \"nt\")\n\
             tomli ; python_version < \"3.11\"\n\
             zope.interface~=6.0\n\
             attrs\n"
        );
        assert!(!requirements.has_hashes());
    }

    #[test]
    fn hashed_requirements_pin_a_version_and_all_have_hashes() {
        let hash = "a".repeat(64);
        let text = format!("flask==3.1.0 \\\n    --hash=sha256:{hash} \\\n    --hash=sha256:{}\n", "B".repeat(64));
        let requirements = parse(&text).unwrap();
        assert!(requirements.has_hashes());
        let expected = format!("flask==3.1.0 --hash=sha256:{hash} --hash=sha256:{}\n", "b".repeat(64));
        assert_eq!(requirements.to_pip_file(), expected);

        let error = refused(&format!("flask>=3 --hash=sha256:{hash}\n"));
        assert!(error.contains("line 1") && error.contains("pin one version"), "{error}");
        let error = refused(&format!("flask==3.1.0 --hash=sha256:{hash}\nwerkzeug==3.1.0\n"));
        assert!(error.contains("line 2: `werkzeug==3.1.0`") && error.contains("every requirement"), "{error}");
        assert!(refused(&format!("flask==3.1.0 --hash=md5:{}\n", "a".repeat(32))).contains("`md5` is not allowed"));
        assert!(refused("flask==3.1.0 --hash=sha256:abc\n").contains("64 hex digits"));
    }

    #[test]
    fn every_other_form_is_refused_with_its_line_and_what_it_is() {
        let cases = [
            ("-r other.txt", "`-r`: other requirement or constraint files"),
            ("--requirement=other.txt", "`--requirement`: other requirement"),
            ("-c constraints.txt", "constraint files"),
            ("-e ./evilpkg", "`-e`: editable installs"),
            ("-e./evilpkg", "`-e`: editable installs"),
            ("--editable git+https://h/x.git", "editable installs"),
            ("-i https://evil.example/simple", "choosing where packages come from"),
            ("--index-url=https://evil.example/simple", "choosing where packages come from"),
            ("--extra-index-url https://evil.example/simple", "choosing where packages come from"),
            ("-f ./wheels", "choosing where packages come from"),
            ("--find-links ./wheels", "choosing where packages come from"),
            ("--trusted-host evil.example", "choosing where packages come from"),
            ("--no-binary :all:", "`--no-binary`: pip options are not allowed"),
            ("--only-binary :none:", "pip options are not allowed"),
            ("--pre", "pip options are not allowed"),
            ("--prefer-binary", "pip options are not allowed"),
            ("./evilpkg", "local paths are not allowed"),
            ("../evilpkg", "local paths are not allowed"),
            ("/srv/evilpkg", "local paths are not allowed"),
            ("evilpkg/", "local paths are not allowed"),
            ("~/evilpkg", "local paths are not allowed"),
            ("sub\\evilpkg", "local paths are not allowed"),
            ("file:./evilpkg", "local paths (file: URLs)"),
            ("FILE:///srv/evilpkg", "local paths (file: URLs)"),
            ("evilpkg-1.0-py3-none-any.whl", "archive files are not allowed"),
            ("evilpkg-1.0.tar.gz", "archive files are not allowed"),
            ("evilpkg.zip", "archive files are not allowed"),
            ("https://evil.example/evilpkg-1.0.tar.gz", "URLs are not allowed"),
            ("http://evil.example/x", "URLs are not allowed"),
            ("git+https://evil.example/evilpkg.git", "VCS links are not allowed"),
            ("hg+https://evil.example/evilpkg", "VCS links are not allowed"),
            ("svn+svn://evil.example/evilpkg", "VCS links are not allowed"),
            ("bzr+lp:evilpkg", "VCS links are not allowed"),
            ("evilpkg @ file:///srv/evilpkg", "direct references"),
            ("evilpkg@https://evil.example/x.whl", "direct references"),
            ("evilpkg[extra] @ git+https://evil.example/x", "direct references"),
            ("flask --no-binary=:all:", "only option after a requirement is --hash"),
            ("flask --global-option=--x", "only option after a requirement is --hash"),
            ("flask==${SECRET}", "expected a version after `==`"),
            ("_flask", "valid package name"),
            ("flask!", "unexpected"),
            ("flask[", "extra's name"),
            ("flask==", "expected a version"),
            ("flask (>=1", "expected `)`"),
            ("flask ; python_version >= \"3\" --index-url x", "only option after a requirement"),
            ("flask ; os_name == 'a -x'", "no word starting with `-`"),
            ("flask ; os_name == '${HOME}'", "may contain only"),
            ("flask ; nope == '1'", "marker variable"),
            ("flask ; os_name", "expected a comparison"),
        ];
        for (line, reason) in cases {
            let error = refused(&format!("# header\nsix\n{line}\n"));
            let shown = printable(line);
            assert!(error.contains(&format!("/app/requirements.txt, line 3: `{shown}`: ")), "{line}: {error}");
            assert!(error.contains(reason), "{line}: {error}");
            assert!(error.contains("may list only packages by name"), "{line}: {error}");
        }
    }

    #[test]
    fn a_continued_line_is_reported_at_its_first_line() {
        let error = refused("six\n-e \\\n  ./evilpkg\n");
        assert!(error.contains("line 2: `-e   ./evilpkg`: `-e`: editable"), "{error}");
        assert!(parse("six \\\n").is_ok(), "a dangling continuation ends the file");
    }

    #[test]
    fn a_comment_ends_the_line_even_inside_a_marker_string() {
        let error = refused("six ; os_name == 'a #x'\n");
        assert!(error.contains("line 1: `six ; os_name == 'a`: unterminated string"), "{error}");
    }

    #[test]
    fn only_a_regular_file_inside_the_app_directory_is_read() {
        let root = std::env::temp_dir().join(format!("wasmhost-requirements-{}", std::process::id()));
        let app = root.join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(root.join("secret.txt"), "root:x:0:0\n").unwrap();
        let file = app.join("requirements.txt");
        assert!(Requirements::read(&file).unwrap().entries.is_empty(), "no file, no requirements");
        std::fs::write(app.join("real.txt"), "six\n").unwrap();
        std::os::unix::fs::symlink("real.txt", &file).unwrap();
        assert_eq!(Requirements::read(&file).unwrap().entries.len(), 1, "a link inside the directory is fine");
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(root.join("secret.txt"), &file).unwrap();
        let error = format!("{:#}", Requirements::read(&file).unwrap_err());
        assert!(error.contains("outside the app's directory") && !error.contains("root:x"), "{error}");
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
        assert!(format!("{:#}", Requirements::read(&file).unwrap_err()).contains("not a regular file"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn hostile_files_are_refused_without_panicking() {
        assert!(refused(&format!("flask ; {}os_name == 'nt'{}\n", "(".repeat(10_000), ")".repeat(10_000)))
            .contains("nests more than"));
        assert!(
            format!("{:#}", Requirements::parse(Path::new("r.txt"), b"flask\xff\n").unwrap_err()).contains("not UTF-8")
        );
        assert!(refused(&"x".repeat(MAX_FILE_SIZE + 1)).contains("larger than"));
        let error = refused("flask\u{1b}[31m\n");
        assert!(
            error.contains("`\\u{1b}[31m`") && !error.contains('\u{1b}'),
            "control characters are escaped: {error}"
        );
        assert!(parse("").unwrap().entries.is_empty());
        assert!(parse("# only comments\n\n   \n").unwrap().entries.is_empty());
    }
}
