//! PostgreSQL URLs as hoist takes them: `postgres://user@host:port/database`, with TLS
//! settings in the query and the password never in the URL (it comes from `password_env`
//! or `password_file`). Checked here for `hoist config check` and again by the PostgreSQL
//! store before it connects, so neither can be talked round: the query is read as the
//! driver reads it (percent-decoded), and only the TLS keys are taken there. Every message
//! that shows a URL shows it through [`redact_url`].

/// The query keys a URL may carry (the driver's spellings of the TLS settings).
const QUERY_KEYS: [&str; 9] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
];

const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

const PASSWORD: &str = "holds a password: give it with database.password_env or password_file";
const EXPECTED: &str = "expected postgres://user@host:port/database";

/// What is wrong with a PostgreSQL URL, if anything (a message to follow the redacted URL).
pub fn check_postgres_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err(EXPECTED.to_owned());
    };
    if rest.contains('#') {
        return Err(format!("has a fragment (#): {EXPECTED}"));
    }
    // The user part ends at the last `@` before the query, wherever a `/` or `?` in a
    // password would have cut it: such a URL still holds a password.
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err(PASSWORD.to_owned());
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = path.split_once('/').unwrap_or((path, ""));
    let (_, host) = authority.rsplit_once('@').unwrap_or(("", authority));
    if query_pairs(query).any(|(key, _)| names_a_password(&key)) {
        return Err(PASSWORD.to_owned());
    }
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("names no host: {EXPECTED}"));
    }
    if database.is_empty() {
        return Err(format!("names no database: {EXPECTED}"));
    }
    let mut seen = Vec::new();
    for (key, value) in query_pairs(query) {
        if seen.contains(&key) {
            return Err(format!("has {key:?} twice in its query: say it once"));
        }
        seen.push(key.clone());
        if !QUERY_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "has {key:?} in its query: only sslmode, sslrootcert, sslcert and sslkey \
                 (lower case, as the driver reads them) are taken there; host, port, user \
                 and database belong in the URL itself"
            ));
        }
        if key.ends_with("mode") && !SSL_MODES.contains(&value.as_str()) {
            return Err(format!(
                "has sslmode={value:?}: expected one of {}",
                SSL_MODES.join(", ")
            ));
        }
    }
    Ok(())
}

/// `url` fit for a message or a log: a password in its user part, and the value of any
/// query key that speaks of one, become `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL of any shape: only what names its kind is safe to show.
        let kind = url.split(':').next().unwrap_or_default();
        return format!("{kind}:***");
    };
    // As in the check: the user part runs to the last `@`, whatever a password holds.
    let (user, rest) = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), host),
            None => (format!("{userinfo}@"), host),
        },
        None => (String::new(), rest),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://{user}{path}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                if names_a_password(&decode(key)) {
                    format!("{key}=***")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Whether a (decoded) query key speaks of a password, in any case: refused by the check,
/// its value hidden by the redaction.
fn names_a_password(key: &str) -> bool {
    key.to_ascii_lowercase().contains("pass")
}

/// The query's key-value pairs, decoded as form data (`+` is a space, `%XX` a byte), as the
/// driver decodes them; keys keep their case, as the driver matches them exactly.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key), decode(value))
    })
}

/// Percent-decodes `text` (and `+` to a space); a malformed escape stays as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
