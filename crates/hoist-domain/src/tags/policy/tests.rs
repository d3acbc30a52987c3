use super::*;

fn parse(tags: &[&str], flavor: &[&str]) -> Result<TagPolicy, TagPolicyError> {
    TagPolicy::parse(tags, flavor)
}

fn tags_error(tags: &[&str]) -> String {
    parse(tags, &[]).unwrap_err().to_string()
}

fn flavor_error(flavor: &[&str]) -> String {
    parse(&["type=sha"], flavor).unwrap_err().to_string()
}

#[test]
fn the_documented_lines_parse() {
    let lines = [
        "type=schedule,pattern={{date 'YYYYMMDD'}}",
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
        "type=semver,pattern={{major}}",
        "type=semver,pattern={{minor}}",
        "type=semver,pattern={{patch}}",
        "type=semver,pattern={{raw}}",
        "type=semver,pattern={{version}},value=v1.0.0",
        r"type=semver,pattern={{version}},value=p1/v1.0.0,match=v(\d.\d.\d)$",
        r"type=match,pattern=\d.\d.\d",
        "type=match,pattern=v(.*),group=1,value=v1.0.0",
        "type=edge",
        "type=edge,branch=main",
        "type=ref,event=branch",
        "type=ref,event=tag",
        "type=ref,event=pr",
        "type=raw,value=foo",
        "type=raw,bar",
        "baz",
        "type=sha",
        "type=sha,format=long",
        "type=sha,enable=true,priority=100,prefix=sha-,suffix=,format=short",
        "type=raw,value=latest,enable={{is_default_branch}}",
        "TYPE=raw, VALUE = spaced ",
    ];
    let policy = parse(&lines, &["latest=auto", "prefix=", "suffix="]).unwrap();
    assert_eq!(policy.lines.len(), lines.len());
}

#[test]
fn lines_sort_by_priority_and_keep_their_order_on_ties() {
    let policy = parse(
        &[
            "type=sha",
            "type=raw,value=a",
            "type=semver,pattern={{version}}",
            "type=raw,value=b,priority=950",
            "type=raw,value=c",
            "type=ref,event=tag,priority=-5",
        ],
        &[],
    )
    .unwrap();
    let order: Vec<(LineRef, i64)> = policy.lines.iter().map(|l| (l.line, l.priority)).collect();
    assert_eq!(
        order,
        [
            (LineRef::Tags(3), 950),
            (LineRef::Tags(2), 900),
            (LineRef::Tags(1), 200),
            (LineRef::Tags(4), 200),
            (LineRef::Tags(0), 100),
            (LineRef::Tags(5), -5),
        ]
    );
}

#[test]
fn no_tag_lines_means_the_action_defaults() {
    let policy = parse(&[], &[]).unwrap();
    assert_eq!(policy.lines.len(), 4);
    assert!(matches!(policy.lines[0].kind, LineKind::Schedule));
}

#[test]
fn flavor_lines_set_latest_prefix_suffix_and_onlatest() {
    let policy = parse(
        &["type=sha"],
        &[
            "latest=false",
            "prefix=dev-,onlatest=true",
            "suffix=-alpine",
        ],
    )
    .unwrap();
    let flavor = &policy.flavor;
    assert_eq!(flavor.latest, Latest::Never);
    assert!(flavor.prefix.is_some() && flavor.prefix_on_latest);
    assert!(flavor.suffix.is_some() && !flavor.suffix_on_latest);
}

#[test]
fn tag_line_errors_name_the_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["type=sha", "type=edge", "type=semvr,pattern={{version}}"],
            r#"tags[2]: unknown type "semvr""#,
        ),
        (
            &["type=semver"],
            "tags[0]: type=semver needs a pattern= attribute",
        ),
        (
            &["type=match,group=1"],
            "tags[0]: type=match needs a pattern= attribute",
        ),
        (&["type=ref"], "tags[0]: type=ref needs a event= attribute"),
        (&["type=raw"], "tags[0]: type=raw needs a value= attribute"),
        (
            &["type=ref,event=push"],
            r#"tags[0]: event="push" is invalid, expected branch, tag or pr"#,
        ),
        (
            &["type=sha,format=medium"],
            r#"tags[0]: format="medium" is invalid, expected short or long"#,
        ),
        (
            &["type=sha,prefx=x-"],
            r#"tags[0]: unknown attribute "prefx" for type=sha"#,
        ),
        (
            &["type=edge,pattern={{version}}"],
            r#"tags[0]: unknown attribute "pattern" for type=edge"#,
        ),
        (
            &["type=sha,priority=high"],
            r#"tags[0]: priority="high" is invalid, expected an integer"#,
        ),
        (
            &["type=sha,enable=yes"],
            r#"tags[0]: enable="yes" is invalid, expected true, false or an expression"#,
        ),
        (
            &["type=pep440,pattern={{version}}"],
            "tags[0]: type=pep440 is not supported: hoist orders releases by SemVer; use type=semver",
        ),
        (&["type=sha", " "], "tags[1]: empty line"),
        (
            &[r#"type=raw,value="a,b""#],
            "tags[0]: a quote appears inside an unquoted field (quote the whole field: \"key=value\")",
        ),
        (
            &["type=raw,value={{brnach}}"],
            "tags[0]: value=: unknown expression {{brnach}}",
        ),
        (
            &["type=semver,pattern={{sha}}"],
            "tags[0]: pattern=: unknown expression {{sha}} in a semver pattern (use version, major, minor, patch or raw)",
        ),
        (
            &["type=raw,value={{date 'YYYYMMDD' tz='Asia/Tokyo'}}"],
            r#"tags[0]: value=: {{date}} time zone "Asia/Tokyo" is not supported: hoist renders dates in UTC only"#,
        ),
        (
            &["type=raw,value={{commit_date 'YYYY'}}"],
            "tags[0]: value=: {{commit_date}} is not supported: hoist does not receive it with a release",
        ),
        (
            &["type=raw,value={{base_ref}}-foo"],
            "tags[0]: value=: {{base_ref}} is not supported: hoist does not receive it with a release",
        ),
        (
            &[r"type=match,pattern=p1/v(\d.\d),group=3"],
            r#"tags[0]: group="3" is invalid, expected a group the pattern has"#,
        ),
        (
            &["type=match,pattern=v(.*),group=first"],
            r#"tags[0]: group="first" is invalid, expected a group number"#,
        ),
        (
            &[r"type=semver,pattern={{version}},match=v\d"],
            "tags[0]: match= is not a regular expression hoist can run: it needs a capture group: the version is group 1",
        ),
        (
            &[r#"type=match,"pattern=/v(\d)/y""#],
            r#"tags[0]: pattern= is not a regular expression hoist can run: flag 'y' is not supported (use i, m, s, g or u)"#,
        ),
    ];
    for (lines, expected) in cases {
        assert_eq!(tags_error(lines), *expected, "{lines:?}");
    }
}

#[test]
fn regex_syntax_errors_name_the_line() {
    let message = tags_error(&["type=sha", "type=match,pattern=v(\\d"]);
    assert!(
        message.starts_with("tags[1]: pattern= is not a regular expression hoist can run:"),
        "{message}"
    );
}

#[test]
fn flavor_errors_name_the_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["latest=auto", "latest=foo"],
            r#"flavor[1]: latest="foo" is invalid, expected auto, true or false"#,
        ),
        (
            &["prefix=a-,onlatest=maybe"],
            r#"flavor[0]: onlatest="maybe" is invalid, expected true or false"#,
        ),
        (
            &["onlatest=true,prefix=a-"],
            "flavor[0]: onlatest= must follow a prefix= or suffix= on the same line",
        ),
        (
            &["latests=true"],
            r#"flavor[0]: unknown flavor "latests" (expected latest, prefix, suffix or onlatest)"#,
        ),
        (&["auto"], r#"flavor[0]: "auto" is not key=value"#),
        (&[""], "flavor[0]: empty line"),
    ];
    for (lines, expected) in cases {
        assert_eq!(flavor_error(lines), *expected, "{lines:?}");
    }
}
