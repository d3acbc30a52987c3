//! Table of what metadata-action produces, drawn from its README and its own test suite
//! (same refs, commits, default branch `master` and frozen clock 2020-01-10T00:30:00Z).
//! Where a case of theirs uses something hoist refuses on purpose (`tz='Asia/Tokyo'`,
//! `{{base_ref}}`, `{{commit_date}}`, pep440 lines, a group the pattern lacks), that line is
//! left out and the refusal is tested in the parser's tests instead.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::tags::Scope;

const SHA_DEV: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";
const SHA_MASTER: &str = "266574110acf203503badf966df2ea24b5d732d7";
const SHA_INVALIDCHARS: &str = "983315b5e8d46e46fc4c49869e85e7ee5fb289ba";

struct Case {
    name: &'static str,
    git_ref: &'static str,
    sha: &'static str,
    tags: &'static [&'static str],
    flavor: &'static [&'static str],
    expected: &'static [&'static str],
}

fn event(git_ref: &str, sha: &str) -> EventContext {
    EventContext {
        git_ref: git_ref.parse().unwrap(),
        commit: sha.parse().unwrap(),
        default_branch: "master".to_owned(),
        time: UNIX_EPOCH + Duration::from_secs(1_578_616_200),
    }
}

fn compute(git_ref: &str, sha: &str, tags: &[&str], flavor: &[&str]) -> ComputedTags {
    TagPolicy::parse(tags, flavor)
        .unwrap()
        .compute(&event(git_ref, sha))
        .unwrap()
}

fn names(computed: &ComputedTags) -> Vec<&str> {
    computed.names().map(TagName::as_str).collect()
}

const SEMVER_TRIO: &[&str] = &[
    "type=semver,pattern={{version}}",
    "type=semver,pattern={{major}}.{{minor}}",
    "type=semver,pattern={{major}}",
];
const THREE_RAWS: [&str; 3] = ["type=raw,my", "type=raw,custom", "type=raw,tags"];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Branch pushes.
    Case { name: "push01 default lines on a branch give its name", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["dev"] },
    Case { name: "push02 edge on the default branch", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=edge"], flavor: &[], expected: &["edge"] },
    Case { name: "push03 default lines on the default branch", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &[], flavor: &[], expected: &["master"] },
    Case { name: "push07 branch name and short sha", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=sha"], flavor: &[], expected: &["dev", "sha-860c190"] },
    Case { name: "push08 edge and short sha", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=edge", "type=sha"], flavor: &[], expected: &["edge", "sha-2665741"] },
    Case { name: "push09 edge follows the branch it names", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=edge,branch=dev", "type=sha"], flavor: &[], expected: &["edge", "sha-860c190"] },
    Case { name: "push10 edge of another branch is silent", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=edge,branch=dev", "type=sha"], flavor: &[], expected: &["sha-2665741"] },
    Case { name: "push11 edge only on the default branch", git_ref: "refs/heads/my/feature#1245", sha: SHA_INVALIDCHARS, tags: &["type=edge", "type=sha"], flavor: &[], expected: &["sha-983315b"] },
    Case { name: "push11 branch names are sanitized", git_ref: "refs/heads/my/feature#1245", sha: SHA_INVALIDCHARS, tags: &[], flavor: &[], expected: &["my-feature-1245"] },
    Case { name: "push12 semver needs a tag or a value", git_ref: "refs/heads/my/feature#1245", sha: SHA_INVALIDCHARS, tags: &["type=semver,pattern={{version}}", "type=edge"], flavor: &[], expected: &[] },
    Case { name: "push13 priority puts the branch first", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=ref,priority=2000,event=branch", "type=edge"], flavor: &[], expected: &["master", "edge"] },
    Case { name: "push14 semver from a value on a branch brings latest", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=semver,pattern={{version}},value=v1.2.3", "type=edge"], flavor: &[], expected: &["1.2.3", "edge", "latest"] },
    Case { name: "push15 match from a value brings latest", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=match,pattern=v(.*),group=1,value=v1.2.3", "type=edge"], flavor: &[], expected: &["1.2.3", "edge", "latest"] },
    Case { name: "push16 a disabled line does nothing", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=match,enable=false,pattern=v(.*),group=1,value=v1.2.3", "type=edge"], flavor: &[], expected: &["edge"] },
    Case { name: "push17 global expressions in values", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &["type=raw,value=mytag-{{branch}}", "type=raw,value=mytag-{{date 'YYYYMMDD'}}", "type=raw,value=mytag-{{date 'YYYYMMDD-HHmmss'}}", "type=raw,value=mytag-tag-{{tag}}", "type=raw,value=mytag-defbranch,enable={{is_default_branch}}"], flavor: &[], expected: &["mytag-master", "mytag-20200110", "mytag-20200110-003000", "mytag-tag-", "mytag-defbranch"] },
    Case { name: "push18 long sha", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=sha,format=long"], flavor: &[], expected: &["dev", "sha-860c1904a1ce19322e91ac35af1ab07466440c37"] },
    Case { name: "push19 is_default_branch is false elsewhere", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=edge,branch=master", "type=ref,event=branch,enable=false", "type=sha,format=long", "type=raw,value=defbranch,enable={{is_default_branch}}"], flavor: &[], expected: &["sha-860c1904a1ce19322e91ac35af1ab07466440c37"] },
    Case { name: "push22 is_not_default_branch", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=edge,branch=master", "type=sha,format=long", "type=raw,value=notdefbranch,enable={{is_not_default_branch}}"], flavor: &[], expected: &["notdefbranch", "sha-860c1904a1ce19322e91ac35af1ab07466440c37"] },
    Case { name: "push35 semver match= picks group 1 of a value", git_ref: "refs/heads/master", sha: SHA_MASTER, tags: &[r#"type=semver,pattern={{version}},value=p1/v1.2.3,"match=v(\d.\d.\d)$""#, "type=edge"], flavor: &[], expected: &["1.2.3", "edge", "latest"] },
    Case { name: "readme ref: nested branch", git_ref: "refs/heads/releases/v1", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}"], flavor: &[], expected: &["releases-v1"] },
    Case { name: "readme global: branch as sha prefix", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=sha,prefix={{branch}}-", "type=raw,value=mytag-{{branch}}-{{sha}}"], flavor: &[], expected: &["mytag-dev-860c190", "dev-860c190"] },
    Case { name: "readme date: a quoted field holds commas", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &[r#"type=raw,"value={{date 'dddd, MMMM Do YYYY, h:mm:ss a'}}""#], flavor: &[], expected: &["Friday-January-10th-2020-12-30-00-am"] },
    Case { name: "unquoted commas split fields, the last bare one wins", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=raw,value=first,second, third "], flavor: &[], expected: &["third"] },
    Case { name: "handlebars escapes expressions, refs are not", git_ref: "refs/heads/feature/a=b", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=raw,value={{branch}}"], flavor: &[], expected: &["feature-a-b", "feature-a-x3D-b"] },
    Case { name: "pr ref with default lines", git_ref: "refs/pull/15/merge", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["pr-15"] },
    Case { name: "pr05 flavor suffix but the line's own prefix", git_ref: "refs/pull/15/merge", sha: SHA_DEV, tags: &["type=ref,event=pr"], flavor: &["prefix=glo-", "suffix=-bal"], expected: &["pr-15-bal"] },
    Case { name: "pr06 an empty prefix= still replaces the flavor's", git_ref: "refs/pull/15/merge", sha: SHA_DEV, tags: &["type=ref,event=pr,prefix="], flavor: &["prefix=glo-", "suffix=-bal"], expected: &["15-bal"] },
    // Tag pushes and releases.
    Case { name: "tag01 non-semver tag with default lines gets latest", git_ref: "refs/tags/release1", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["release1", "latest"] },
    Case { name: "tag02 default lines keep the tag as is", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["20200110-RC2", "latest"] },
    Case { name: "tag03 match a date, latest off", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &[r"type=match,pattern=\d{8}"], flavor: &["latest=false"], expected: &["20200110"] },
    Case { name: "tag04 match group 1", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &["type=match,pattern=(.*)-RC,group=1"], flavor: &["latest=false"], expected: &["20200110"] },
    Case { name: "tag05 quoted match pattern", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &[r#"type=match,"pattern=\d.\d.\d""#], flavor: &[], expected: &["1.1.1", "latest"] },
    Case { name: "tag06 anchored match with group", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &[r#"type=match,"pattern=^v(\d.\d.\d)$",group=1"#], flavor: &[], expected: &["1.1.1", "latest"] },
    Case { name: "tag07 match keeps a prerelease and latest", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &[r#"type=match,"pattern=\d.\d.\d-(alpha|beta).\d+""#], flavor: &[], expected: &["2.0.8-beta.67", "latest"] },
    Case { name: "tag08 match a prefix of the version", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &[r#"type=match,"pattern=\d.\d""#], flavor: &[], expected: &["2.0", "latest"] },
    Case { name: "tag09 two groups of one pattern", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &[r#"type=match,"pattern=v(.*)-beta.(.*)",group=1"#, r#"type=match,"pattern=v(.*)-beta.(.*)",group=2"#], flavor: &[], expected: &["2.0.8", "67", "latest"] },
    Case { name: "tag10 no match, no tag", git_ref: "refs/tags/sometag", sha: SHA_DEV, tags: &[r#"type=match,"pattern=\d.\d""#], flavor: &[], expected: &[] },
    Case { name: "tag11 version, major.minor, major", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: SEMVER_TRIO, flavor: &[], expected: &["1.1.1", "1.1", "1", "latest"] },
    Case { name: "tag12 duplicate values collapse", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}.{{patch}}"], flavor: &[], expected: &["1.1.1", "latest"] },
    Case { name: "tag13 prerelease gets only its version, no latest", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &["type=semver,pattern={{major}}.{{minor}}", "type=semver,pattern={{major}}"], flavor: &[], expected: &["2.0.8-beta.67"] },
    Case { name: "tag14 non-semver tag skips semver lines", git_ref: "refs/tags/sometag", sha: SHA_DEV, tags: &["type=ref,event=tag", "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}", "type=semver,pattern={{major}}"], flavor: &["latest=false"], expected: &["sometag"] },
    Case { name: "tag15 first value decides latest", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &["type=raw,priority=2000,foo", "type=semver,pattern={{version}}", r#"type=match,"pattern=\d.\d""#], flavor: &[], expected: &["foo", "2.0.8-beta.67", "2.0"] },
    Case { name: "tag16 raw first, tag name, no edge on tags", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=raw,priority=2000,foo", "type=ref,event=tag", "type=edge"], flavor: &[], expected: &["foo", "v1.1.1"] },
    Case { name: "tag17 regex literal with flags", git_ref: "refs/tags/p1/v1.0.0", sha: SHA_DEV, tags: &[r#"type=match,"pattern=/^v(\d.\d.\d)$/ig",group=1"#, r"type=match,pattern=\d.\d.\d", r"type=match,pattern=\d.\d", "type=ref,event=pr", "type=sha"], flavor: &[], expected: &["1.0.0", "1.0", "sha-860c190", "latest"] },
    Case { name: "tag18 match in a nested tag", git_ref: "refs/tags/p1/v1.0.0", sha: SHA_DEV, tags: &[r"type=match,pattern=p1/v(\d.\d.\d),group=1", r"type=match,pattern=p1/v(\d.\d),group=1", "type=ref,event=pr", "type=sha"], flavor: &[], expected: &["1.0.0", "1.0", "sha-860c190", "latest"] },
    Case { name: "tag19 flavor suffix unless the line sets one", git_ref: "refs/tags/p1/v1.0.0", sha: SHA_DEV, tags: &[r"type=match,pattern=p1/v(\d.\d.\d),group=1", r"type=match,pattern=p1/v(\d.\d),group=1,suffix=", "type=ref,event=pr", "type=sha"], flavor: &["suffix=-dev"], expected: &["1.0.0-dev", "1.0", "sha-860c190-dev", "latest"] },
    Case { name: "tag20 tag and sha expressions", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=raw,{{tag}}-{{sha}}-foo", "type=raw,defbranch-foo,enable={{is_default_branch}}"], flavor: &[], expected: &["v1.1.1-860c190-foo"] },
    Case { name: "tag21 suffix on latest", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}.{{patch}}"], flavor: &["suffix=-dev,onlatest=true"], expected: &["1.1.1-dev", "latest-dev"] },
    Case { name: "tag22 prefix and suffix on latest", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}.{{patch}}"], flavor: &["prefix=foo-,onlatest=true", "suffix=-dev,onlatest=true"], expected: &["foo-1.1.1-dev", "foo-latest-dev"] },
    Case { name: "tag31 raw pattern keeps the v of a prerelease", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &["type=semver,pattern={{raw}}"], flavor: &[], expected: &["v2.0.8-beta.67"] },
    Case { name: "tag34 semver match= on the tag", git_ref: "refs/tags/p1/v1.0.0", sha: SHA_DEV, tags: &[r#"type=semver,pattern={{version}},"match=v(\d.\d.\d)$""#], flavor: &[], expected: &["1.0.0", "latest"] },
    Case { name: "latest01 match from the start", git_ref: "refs/tags/release1", sha: SHA_DEV, tags: &[r#"type=match,"pattern=^release\d{1,2}""#], flavor: &[], expected: &["release1", "latest"] },
    Case { name: "latest02 match with repetition", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &[r#"type=match,"pattern=^\d+-RC\d{1,2}""#], flavor: &[], expected: &["20200110-RC2", "latest"] },
    Case { name: "latest05 default lines on a version tag", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["v1.1.1", "latest"] },
    Case { name: "latest06 match on a prerelease still brings latest", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &[r#"type=match,"pattern=\d.\d.\d""#], flavor: &[], expected: &["2.0.8", "latest"] },
    Case { name: "latest07 latest=false", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &["type=ref,event=tag"], flavor: &["latest=false"], expected: &["v1.1.1"] },
    Case { name: "release01 release event, default lines", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["v1.1.1", "latest"] },
    Case { name: "readme semver: v tag with branch and pr lines", git_ref: "refs/tags/v1.2.3", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}"], flavor: &[], expected: &["1.2.3", "1.2", "latest"] },
    Case { name: "readme semver: prerelease", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &["type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}"], flavor: &[], expected: &["2.0.8-beta.67"] },
    Case { name: "readme basic: default lines on a prerelease tag", git_ref: "refs/tags/v2.0.8-beta.67", sha: SHA_DEV, tags: &[], flavor: &[], expected: &["v2.0.8-beta.67", "latest"] },
    Case { name: "readme semver table: raw, v-major, minor, patch", git_ref: "refs/tags/v1.2.3", sha: SHA_DEV, tags: &["type=semver,pattern={{raw}}", "type=semver,pattern=v{{major}}", "type=semver,pattern={{minor}}", "type=semver,pattern={{patch}}"], flavor: &[], expected: &["v1.2.3", "v1", "2", "3", "latest"] },
    Case { name: "readme match table: digits", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &[r"type=match,pattern=\d+"], flavor: &[], expected: &["20200110", "latest"] },
    Case { name: "readme major zero: disable the major line", git_ref: "refs/tags/v0.1.2", sha: SHA_DEV, tags: &["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}", "type=semver,pattern={{major}},enable=false"], flavor: &[], expected: &["0.1.2", "0.1", "latest"] },
    Case { name: "build metadata: version drops it, raw sanitizes it", git_ref: "refs/tags/v1.2.3+build.7", sha: SHA_DEV, tags: &["type=semver,pattern={{version}}", "type=semver,pattern={{raw}}"], flavor: &[], expected: &["1.2.3", "v1.2.3-build.7", "latest"] },
    // Raw lines.
    Case { name: "raw01 branch then raws", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=ref,event=branch", THREE_RAWS[0], THREE_RAWS[1], THREE_RAWS[2]], flavor: &[], expected: &["dev", "my", "custom", "tags"] },
    Case { name: "raw03 tag then raws, latest last", git_ref: "refs/tags/release1", sha: SHA_DEV, tags: &["type=ref,event=tag", THREE_RAWS[0], THREE_RAWS[1], THREE_RAWS[2]], flavor: &[], expected: &["release1", "my", "custom", "tags", "latest"] },
    Case { name: "raw04 match then raws, latest off", git_ref: "refs/tags/20200110-RC2", sha: SHA_DEV, tags: &[r"type=match,pattern=\d{8}", THREE_RAWS[0], THREE_RAWS[1], THREE_RAWS[2]], flavor: &["latest=false"], expected: &["20200110", "my", "custom", "tags"] },
    Case { name: "raw05 semver trio then raws", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &[SEMVER_TRIO[0], SEMVER_TRIO[1], SEMVER_TRIO[2], THREE_RAWS[0], THREE_RAWS[1], THREE_RAWS[2]], flavor: &[], expected: &["1.1.1", "1.1", "1", "my", "custom", "tags", "latest"] },
    Case { name: "raw06 raws alone never bring latest", git_ref: "refs/tags/v1.1.1", sha: SHA_DEV, tags: &THREE_RAWS, flavor: &[], expected: &["my", "custom", "tags"] },
    Case { name: "raw07 low priority branch, latest forced", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=ref,priority=90,event=branch", THREE_RAWS[0], THREE_RAWS[1], THREE_RAWS[2]], flavor: &["latest=true"], expected: &["my", "custom", "tags", "dev", "latest"] },
    Case { name: "raw09 line affixes beat flavor affixes", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &[r"type=match,pattern=\d{8}", "type=raw,my,prefix=foo-,suffix=-bar", "type=raw,custom", "type=raw,tags"], flavor: &["latest=false", "prefix=glo-", "suffix=-bal"], expected: &["foo-my-bar", "glo-custom-bal", "glo-tags-bal"] },
    Case { name: "raw10 enable true and false", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=raw,foo", "type=raw,bar,enable=false", "type=raw,baz,enable=true"], flavor: &["latest=false"], expected: &["foo", "baz"] },
    Case { name: "bare value lines are raw", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["foo", "bar"], flavor: &[], expected: &["foo", "bar"] },
    Case { name: "an empty value after the flavor prefix still counts", git_ref: "refs/heads/dev", sha: SHA_DEV, tags: &["type=raw,value="], flavor: &["prefix=glo-"], expected: &["glo-"] },
];

#[test]
fn table_of_metadata_action_behaviour() {
    assert!(CASES.len() >= 40, "the issue asks for at least 40 cases");
    let mut failures = Vec::new();
    for case in CASES {
        let computed = compute(case.git_ref, case.sha, case.tags, case.flavor);
        let got = names(&computed);
        if got != case.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn roles(computed: &ComputedTags) -> Vec<(&str, TagRole)> {
    computed
        .tags()
        .iter()
        .map(|tag| (tag.name.as_str(), tag.role.clone()))
        .collect()
}

#[test]
fn stable_release_tags_are_pinned_floating_or_plain() {
    let lines = [SEMVER_TRIO[0], SEMVER_TRIO[1], SEMVER_TRIO[2], "type=sha"];
    let computed = compute("refs/tags/v1.2.3", SHA_DEV, &lines, &["latest=auto"]);
    assert_eq!(
        roles(&computed),
        [
            ("1.2.3", TagRole::Pinned),
            ("1.2", TagRole::Floating(Scope::new(Some(1), Some(2), None))),
            ("1", TagRole::Floating(Scope::new(Some(1), None, None))),
            ("sha-860c190", TagRole::Plain),
            ("latest", TagRole::Floating(Scope::everything())),
        ]
    );
    assert_eq!(computed.release_version(), Some(&"1.2.3".parse().unwrap()));
    assert_eq!(computed.image_version().map(TagName::as_str), Some("1.2.3"));
}

#[test]
fn prerelease_tags_are_all_pinned_even_with_latest_forced() {
    let computed = compute(
        "refs/tags/v2.0.0-rc.1",
        SHA_DEV,
        SEMVER_TRIO,
        &["latest=true"],
    );
    assert_eq!(
        roles(&computed),
        [
            ("2.0.0-rc.1", TagRole::Pinned),
            ("latest", TagRole::Floating(Scope::everything())),
        ]
    );
}

#[test]
fn latest_from_a_plain_tag_line_still_floats_by_the_tag_version() {
    let computed = compute("refs/tags/v3.1.0", SHA_DEV, &["type=ref,event=tag"], &[]);
    assert_eq!(
        roles(&computed),
        [
            ("v3.1.0", TagRole::Plain),
            ("latest", TagRole::Floating(Scope::everything())),
        ]
    );
}

#[test]
fn latest_without_any_version_is_plain() {
    let computed = compute(
        "refs/heads/dev",
        SHA_DEV,
        &["type=ref,event=branch"],
        &["latest=true"],
    );
    assert_eq!(
        roles(&computed),
        [("dev", TagRole::Plain), ("latest", TagRole::Plain)]
    );
    assert_eq!(computed.release_version(), None);
}

#[test]
fn a_raw_latest_line_and_the_flavor_latest_make_one_tag() {
    let computed = compute(
        "refs/tags/v1.0.0",
        SHA_DEV,
        &["type=semver,pattern={{version}}", "type=raw,value=latest"],
        &[],
    );
    assert_eq!(
        roles(&computed),
        [
            ("1.0.0", TagRole::Pinned),
            ("latest", TagRole::Floating(Scope::everything())),
        ]
    );
}

#[test]
fn enable_must_evaluate_to_a_boolean() {
    let policy = TagPolicy::parse(&["type=raw,value=x,enable={{branch}}"], &[] as &[&str]).unwrap();
    let error = policy
        .compute(&event("refs/heads/dev", SHA_DEV))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"tags[0]: enable= evaluated to "dev", expected true or false"#
    );
}

#[test]
fn a_tag_the_registry_would_refuse_is_an_error_naming_the_line() {
    let policy = TagPolicy::parse(&["type=sha", "type=raw,value=/x"], &[] as &[&str]).unwrap();
    let error = policy
        .compute(&event("refs/heads/dev", SHA_DEV))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"tags[1]: produced "-x": a tag cannot start with '.' or '-'"#
    );
}
