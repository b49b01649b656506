//! Reads `deploy/compose.yaml` so that a test can run its services as plain
//! processes (`common/deploy.rs`).
//!
//! Not a YAML library: a reader of the small subset that file is written
//! in, which refuses everything else with the line number, so the file
//! cannot grow a construct the test would silently misread. The subset:
//!
//! - block mappings (`key: value`, or `key:` and a more indented block);
//! - block lists of scalars (`- item`) and one-line flow lists of scalars
//!   (`["a", "b"]`); `{}` as an empty mapping;
//! - plain, `"double-quoted"` (escapes `\\`, `\"`, `\n`, `\t`) and
//!   `'single-quoted'` scalars; `#` comments; indentation by spaces.
//!
//! Not accepted: anchors and aliases, tags, multi-line strings (`|`, `>`),
//! flow mappings with content, several documents, tabs. A service may only
//! use the keys in [`SERVICE_KEYS`]; anything else (`ports`, `entrypoint`,
//! ...) is an error, since running it as a process would ignore it.
//!
//! Values are interpolated as `docker compose` does: `${NAME}`,
//! `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`,
//! `$NAME` and `$$`.

use std::collections::BTreeMap;

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `key:` with nothing under it.
    Null,
    /// A scalar.
    Str(String),
    /// A list of scalars.
    List(Vec<String>),
    /// A mapping, in file order.
    Map(Vec<(String, Yaml)>),
}

/// The keys a service may have.
pub const SERVICE_KEYS: &[&str] = &[
    "image",
    "network_mode",
    "restart",
    "user",
    "environment",
    "command",
    "volumes",
    "depends_on",
];

/// One service of the file, interpolated.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its key under `services:`.
    pub name: String,
    /// `image:`.
    pub image: String,
    /// `network_mode:`, if set.
    pub network_mode: Option<String>,
    /// `command:`: the arguments after the image's entrypoint.
    pub command: Vec<String>,
    /// `environment:`.
    pub environment: BTreeMap<String, String>,
    /// `volumes:`.
    pub volumes: Vec<Mount>,
    /// `depends_on:`.
    pub depends_on: Vec<String>,
}

/// One `SOURCE:TARGET[:ro]` of a service's `volumes:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// `./path` (a bind mount, relative to the compose file) or a named
    /// volume.
    pub source: String,
    /// The path inside the container.
    pub target: String,
    /// `:ro`.
    pub read_only: bool,
}

impl Mount {
    /// True for a bind mount of a path next to the compose file.
    pub fn is_bind(&self) -> bool {
        self.source.starts_with("./") || self.source.starts_with("../")
    }
}

/// The whole file.
#[derive(Debug, Clone)]
pub struct Compose {
    /// The services, in file order.
    pub services: Vec<Service>,
    /// The named volumes declared under `volumes:`.
    pub volumes: Vec<String>,
}

impl Compose {
    /// Parses and interpolates `text` with the variables `env` returns.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Compose, String> {
        let Yaml::Map(top) = parse(text)? else {
            return Err("the file is not a mapping".into());
        };
        let mut services = Vec::new();
        let mut volumes = Vec::new();
        for (key, value) in top {
            match (key.as_str(), value) {
                ("name", Yaml::Str(_)) => {}
                ("services", Yaml::Map(s)) => {
                    for (name, def) in s {
                        services.push(service(&name, def, env)?);
                    }
                }
                ("volumes", Yaml::Map(v)) => {
                    for (name, def) in v {
                        if !matches!(def, Yaml::Null) && def != Yaml::Map(Vec::new()) {
                            return Err(format!("volume {name}: only plain named volumes"));
                        }
                        volumes.push(name);
                    }
                }
                (k, v) => return Err(format!("top-level key {k:?} ({v:?}) is not understood")),
            }
        }
        for s in &services {
            for m in s.volumes.iter().filter(|m| !m.is_bind()) {
                if !volumes.contains(&m.source) {
                    return Err(format!("{}: volume {} is not declared", s.name, m.source));
                }
            }
            for d in &s.depends_on {
                if !services.iter().any(|o| &o.name == d) {
                    return Err(format!("{}: depends on unknown service {d}", s.name));
                }
            }
        }
        Ok(Compose { services, volumes })
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("compose.yaml has no service {name}"))
    }
}

fn service(name: &str, def: Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<Service, String> {
    let Yaml::Map(fields) = def else {
        return Err(format!("service {name} is not a mapping"));
    };
    let at = |what: &str| format!("service {name}, {what}");
    let mut s = Service {
        name: name.to_owned(),
        image: String::new(),
        network_mode: None,
        command: Vec::new(),
        environment: BTreeMap::new(),
        volumes: Vec::new(),
        depends_on: Vec::new(),
    };
    let str_of = |v: Yaml, what: &str| match v {
        Yaml::Str(s) => interpolate(&s, env).map_err(|e| format!("{}: {e}", at(what))),
        other => Err(format!("{}: expected a string, got {other:?}", at(what))),
    };
    let list_of = |v: Yaml, what: &str| match v {
        Yaml::List(items) => items
            .iter()
            .map(|i| interpolate(i, env).map_err(|e| format!("{}: {e}", at(what))))
            .collect::<Result<Vec<_>, _>>(),
        other => Err(format!("{}: expected a list, got {other:?}", at(what))),
    };
    for (key, value) in fields {
        match key.as_str() {
            "image" => s.image = str_of(value, "image")?,
            "network_mode" => s.network_mode = Some(str_of(value, "network_mode")?),
            "restart" | "user" => {
                str_of(value, &key)?;
            }
            "command" => s.command = list_of(value, "command")?,
            "depends_on" => s.depends_on = list_of(value, "depends_on")?,
            "environment" => {
                let Yaml::Map(vars) = value else {
                    return Err(at("environment must be a mapping"));
                };
                for (k, v) in vars {
                    let v = str_of(v, &format!("environment {k}"))?;
                    s.environment.insert(k, v);
                }
            }
            "volumes" => {
                for v in list_of(value, "volumes")? {
                    s.volumes.push(mount(&v).map_err(|e| at(&e))?);
                }
            }
            other => {
                return Err(format!(
                    "{}: key {other:?} is not one of {SERVICE_KEYS:?}",
                    at("keys")
                ))
            }
        }
    }
    if s.image.is_empty() {
        return Err(at("no image"));
    }
    Ok(s)
}

fn mount(v: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, target, read_only) = match parts[..] {
        [s, t] => (s, t, false),
        [s, t, "ro"] => (s, t, true),
        [s, t, "rw"] => (s, t, false),
        _ => return Err(format!("volume {v:?} is not SOURCE:TARGET[:ro]")),
    };
    if !target.starts_with('/') {
        return Err(format!("volume {v:?}: the target must be absolute"));
    }
    Ok(Mount {
        source: source.to_owned(),
        target: target.trim_end_matches('/').to_owned(),
        read_only,
    })
}

/// Interpolates `${..}` and `$NAME` as `docker compose` does.
pub fn interpolate(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            out.push_str(&expand(&r[..end], env)?);
            rest = &r[end + 1..];
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                return Err(format!("a lone $ in {s:?} (write $$)"));
            }
            out.push_str(&env(&rest[..len]).unwrap_or_default());
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(len);
    if name.is_empty() {
        return Err(format!("${{{inner}}} has no variable name"));
    }
    let value = env(name);
    let set = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, arg) = match op.find(['-', '?']) {
        Some(i) => op.split_at(i + 1),
        None if op.is_empty() => return Ok(value.unwrap_or_default()),
        None => return Err(format!("${{{inner}}} is not understood")),
    };
    match op {
        ":-" if !set => Ok(arg.to_owned()),
        "-" if value.is_none() => Ok(arg.to_owned()),
        ":?" if !set => Err(format!("{name}: {arg}")),
        "?" if value.is_none() => Err(format!("{name}: {arg}")),
        ":-" | "-" | ":?" | "?" => Ok(value.unwrap_or_default()),
        _ => Err(format!("${{{inner}}} is not understood")),
    }
}

/// One meaningful line: its number (from 1), indentation and text without
/// the comment.
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

/// Parses the subset described in the module docs.
pub fn parse(text: &str) -> Result<Yaml, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let body = raw.trim_start_matches(' ');
        if body.starts_with('\t') {
            return Err(format!("line {no}: indentation by a tab"));
        }
        let text = strip_comment(body).trim_end();
        if text.is_empty() {
            continue;
        }
        if text == "---" || text == "..." {
            return Err(format!("line {no}: document markers are not supported"));
        }
        lines.push(Line {
            no,
            indent: raw.len() - body.len(),
            text,
        });
    }
    let mut at = 0;
    let value = match lines.first() {
        None => return Ok(Yaml::Null),
        Some(first) => block(&lines, &mut at, first.indent)?,
    };
    match lines.get(at) {
        None => Ok(value),
        Some(l) => Err(format!("line {}: unexpected indentation", l.no)),
    }
}

/// The text before a `#` comment that is outside quotes and starts the
/// line or follows a space.
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev == ' ' => return &s[..i],
            _ => {}
        }
        prev = c;
    }
    s
}

fn block(lines: &[Line], at: &mut usize, indent: usize) -> Result<Yaml, String> {
    let first = &lines[*at];
    if first.text == "-" || first.text.starts_with("- ") {
        let mut items = Vec::new();
        while let Some(l) = lines.get(*at).filter(|l| l.indent == indent) {
            let Some(item) = l.text.strip_prefix("- ") else {
                return Err(format!("line {}: expected a list item", l.no));
            };
            if split_key(item).is_some() {
                return Err(format!(
                    "line {}: lists of mappings are not supported",
                    l.no
                ));
            }
            match inline(item.trim(), l.no)? {
                Yaml::Str(s) => items.push(s),
                other => return Err(format!("line {}: nested list item {other:?}", l.no)),
            }
            *at += 1;
        }
        return Ok(Yaml::List(items));
    }
    let mut entries: Vec<(String, Yaml)> = Vec::new();
    while let Some(l) = lines.get(*at).filter(|l| l.indent == indent) {
        let (key, rest) =
            split_key(l.text).ok_or_else(|| format!("line {}: expected `key: value`", l.no))?;
        let key = match inline(key, l.no)? {
            Yaml::Str(k) => k,
            other => return Err(format!("line {}: key {other:?}", l.no)),
        };
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(format!("line {}: duplicate key {key:?}", l.no));
        }
        *at += 1;
        let value = if !rest.is_empty() {
            inline(rest, l.no)?
        } else {
            match lines.get(*at) {
                Some(next) if next.indent > indent => block(lines, at, next.indent)?,
                _ => Yaml::Null,
            }
        };
        entries.push((key, value));
    }
    match lines.get(*at) {
        Some(l) if l.indent > indent => Err(format!("line {}: unexpected indentation", l.no)),
        _ => Ok(Yaml::Map(entries)),
    }
}

/// Splits `key: value` (or `key:`) at the first `: ` outside quotes.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ':') if s[i + 1..].is_empty() || s[i + 1..].starts_with(' ') => {
                return Some((s[..i].trim(), s[i + 1..].trim()))
            }
            _ => {}
        }
    }
    None
}

/// A value on one line: a flow list, `{}`, or a scalar.
fn inline(s: &str, no: usize) -> Result<Yaml, String> {
    if s == "{}" {
        return Ok(Yaml::Map(Vec::new()));
    }
    if let Some(body) = s.strip_prefix('[') {
        let body = body
            .strip_suffix(']')
            .ok_or_else(|| format!("line {no}: a flow list must close on its line"))?;
        let mut items = Vec::new();
        for part in split_commas(body, no)? {
            match scalar(part.trim(), no)? {
                s if s.is_empty() && part.trim().is_empty() => {}
                s => items.push(s),
            }
        }
        return Ok(Yaml::List(items));
    }
    scalar(s, no).map(Yaml::Str)
}

fn split_commas(s: &str, no: usize) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some('"'), '\\') => {}
            (Some(q), c) if c == q => quote = None,
            (None, '[' | ']' | '{' | '}') => {
                return Err(format!("line {no}: nested collections are not supported"))
            }
            (None, ',') => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn scalar(s: &str, no: usize) -> Result<String, String> {
    if let Some(body) = s.strip_prefix('"') {
        let body = body
            .strip_suffix('"')
            .ok_or_else(|| format!("line {no}: unterminated \"string\""))?;
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    e => return Err(format!("line {no}: escape \\{e:?} is not supported")),
                },
                ('"', false) => return Err(format!("line {no}: stray \" in a string")),
                (c, false) => out.push(c),
            }
        }
        return Ok(out);
    }
    if let Some(body) = s.strip_prefix('\'') {
        let body = body
            .strip_suffix('\'')
            .ok_or_else(|| format!("line {no}: unterminated 'string'"))?;
        return Ok(body.replace("''", "'"));
    }
    if s.starts_with([
        '&', '*', '!', '|', '>', '%', '@', '`', '{', '[', '?', '"', '\'',
    ]) {
        return Err(format!("line {no}: {s:?} is outside the supported subset"));
    }
    Ok(s.to_owned())
}
