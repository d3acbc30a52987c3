use super::*;

#[test]
fn every_state_spells_itself_back() {
    for s in PublicationState::ALL {
        assert_eq!(PublicationState::parse(s.as_str()), Some(*s));
    }
    for s in Step::ALL {
        assert_eq!(Step::parse(s.as_str()), Some(*s));
    }
    for s in ReleaseState::ALL {
        assert_eq!(ReleaseState::parse(s.as_str()), Some(*s));
    }
    for s in JobState::ALL {
        assert_eq!(JobState::parse(s.as_str()), Some(*s));
    }
    assert_eq!(PublicationState::parse("Running"), None);
    assert_eq!(Step::parse(""), None);
}

#[test]
fn publication_moves_are_exactly_these() {
    use PublicationEvent as E;
    use PublicationState as S;
    // (state, event, state after; None = the event leaves it alone)
    let table: &[(S, E, Option<S>)] = &[
        (S::Waiting, E::Start, Some(S::Running)),
        (S::Stalled, E::Start, Some(S::Running)),
        (S::Running, E::Start, Some(S::Running)),
        (S::Succeeded, E::Start, None),
        (S::Failed, E::Start, None),
        (S::Withdrawn, E::Start, None),
        (S::Running, E::BuildsMissing, Some(S::Waiting)),
        (S::Waiting, E::BuildsMissing, Some(S::Waiting)),
        (S::Succeeded, E::BuildsMissing, None),
        (S::Stalled, E::BuildArrived, Some(S::Waiting)),
        (S::Waiting, E::BuildArrived, Some(S::Waiting)),
        (S::Running, E::BuildArrived, None),
        (S::Failed, E::BuildArrived, None),
        (S::Succeeded, E::BuildArrived, None),
        (S::Running, E::Succeed, Some(S::Succeeded)),
        (S::Waiting, E::Succeed, None),
        (S::Withdrawn, E::Succeed, None),
        (S::Running, E::Fail, Some(S::Failed)),
        (S::Waiting, E::Fail, Some(S::Failed)),
        (S::Succeeded, E::Fail, None),
        (S::Withdrawn, E::Fail, None),
        (S::Waiting, E::Stall, Some(S::Stalled)),
        (S::Running, E::Stall, None),
        (S::Waiting, E::Withdraw, Some(S::Withdrawn)),
        (S::Running, E::Withdraw, Some(S::Withdrawn)),
        (S::Succeeded, E::Withdraw, Some(S::Withdrawn)),
        (S::Failed, E::Withdraw, Some(S::Withdrawn)),
        (S::Stalled, E::Withdraw, Some(S::Withdrawn)),
        (S::Withdrawn, E::Withdraw, None),
        (S::Withdrawn, E::Revive, Some(S::Waiting)),
        (S::Succeeded, E::Revive, None),
        (S::Failed, E::Revive, None),
        (S::Succeeded, E::Redecide, Some(S::Waiting)),
        (S::Waiting, E::Redecide, Some(S::Waiting)),
        (S::Failed, E::Redecide, None),
        (S::Running, E::Redecide, Some(S::Waiting)),
        (S::Withdrawn, E::Redecide, None),
        (S::Failed, E::Retry, Some(S::Waiting)),
        (S::Stalled, E::Retry, Some(S::Waiting)),
        (S::Running, E::Retry, Some(S::Running)),
        (S::Succeeded, E::Retry, None),
        (S::Waiting, E::Retry, None),
        (S::Withdrawn, E::Retry, None),
    ];
    for (state, event, after) in table {
        assert_eq!(state.next(*event), *after, "{state} on {event:?}");
    }
}

#[test]
fn only_waiting_and_running_have_work_to_do() {
    let busy: Vec<_> = PublicationState::ALL
        .iter()
        .filter(|s| !s.is_at_rest())
        .collect();
    assert_eq!(
        busy,
        [&PublicationState::Waiting, &PublicationState::Running]
    );
}

#[test]
fn release_lifecycle_only_moves_on_lifecycle_actions_and_deletion_is_final() {
    use ReleaseState::*;
    // (action, draft, state before, state after)
    let cases = [
        ("published", false, None, Published),
        ("released", false, Some(Published), Published),
        ("prereleased", false, None, Published),
        ("created", true, None, Draft),
        ("created", false, None, Published),
        ("edited", false, Some(Unpublished), Unpublished),
        ("edited", false, Some(Published), Published),
        ("published", true, None, Draft),
        ("unpublished", true, Some(Published), Unpublished),
        ("unpublished", true, None, Unpublished),
        ("deleted", false, Some(Published), Deleted),
        ("deleted", true, Some(Draft), Deleted),
        ("published", false, Some(Deleted), Deleted),
        ("deleted", false, Some(Deleted), Deleted),
        ("published", false, Some(Unpublished), Published),
        ("transferred", false, Some(Published), Published),
    ];
    for (action, draft, before, after) in cases {
        assert_eq!(
            ReleaseState::next(before, &ReleaseAction::parse(action), draft),
            after,
            "{action} draft={draft} from {before:?}"
        );
    }
}
