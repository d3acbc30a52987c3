use super::*;

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

#[test]
fn scopes_hold_stable_versions_sharing_their_parts() {
    let one_four = Scope::new(Some(1), Some(4), None);
    assert!(one_four.contains(&v("1.4.9")));
    assert!(!one_four.contains(&v("1.5.0")));
    assert!(!one_four.contains(&v("1.4.10-rc.1")));
    assert!(Scope::everything().contains(&v("0.0.1")));
    assert!(!Scope::everything().contains(&v("9.0.0-alpha")));
}
