//! Properties of R8 and R9 for any freeze action and any object: a freeze is remembered once,
//! whatever happens between passes (drift, crashes, repeated passes), and the unfreeze puts
//! the object back exactly as it was.

use proptest::prelude::*;
use purchase_guard_policy::{BillingMode, Desired, FreezeAction, FrozenRecord, Step, Undo, plan};
use serde_json::{Value, json};

fn action() -> impl Strategy<Value = FreezeAction> {
    prop_oneof![
        Just(FreezeAction::Scale {
            replicas_path: "/spec/replicas".into()
        }),
        Just(FreezeAction::Suspend),
        Just(FreezeAction::Patch {
            patch: json!({"spec": {"running": false}})
        }),
        Just(FreezeAction::Patch {
            patch: json!({"spec": {"runStrategy": "Halted", "power": {"state": "Off", "hold": true}}})
        }),
    ]
}

/// An object with any of the fields the actions touch, present or absent.
fn object() -> impl Strategy<Value = Value> {
    (
        0i64..6,
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![Just("Always"), Just("Manual")]),
        proptest::option::of(proptest::option::of(prop_oneof![Just("On"), Just("Standby")])),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(replicas, running, strategy, power, suspend)| {
            let mut spec = json!({"replicas": replicas, "image": "debian-12"});
            if let Some(r) = running {
                spec["running"] = json!(r);
            }
            if let Some(s) = strategy {
                spec["runStrategy"] = json!(s);
            }
            match power {
                Some(Some(state)) => spec["power"] = json!({"state": state}),
                Some(None) => spec["power"] = json!({}),
                None => {}
            }
            if let Some(s) = suspend {
                spec["suspend"] = json!(s);
            }
            json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": spec})
        })
}

/// Applies a JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch.as_object() {
        Some(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in fields {
                if v.is_null() {
                    target.as_object_mut().map(|t| t.remove(k));
                } else {
                    merge(
                        target
                            .as_object_mut()
                            .expect("an object")
                            .entry(k.clone())
                            .or_insert(Value::Null),
                        v,
                    );
                }
            }
        }
        None => *target = patch.clone(),
    }
}

/// What the controller's steps do to the object (the API server's side of it).
fn carry_out(object: &mut Value, step: &Step) {
    match step {
        Step::Freeze(record) => {
            merge(object, &record.freeze_patch("1"));
            if let Undo::Scale { replicas_path, .. } = &record.undo {
                *object.pointer_mut(replicas_path).expect("replicas") = json!(0);
            }
        }
        Step::Reapply(record) => match &record.undo {
            Undo::Scale { replicas_path, .. } => *object.pointer_mut(replicas_path).expect("replicas") = json!(0),
            Undo::Patch { applied, .. } => merge(object, applied),
        },
        Step::Restore(record) => {
            let restore = record.restore(object, "1");
            if let (Some(n), Undo::Scale { replicas_path, .. }) = (restore.scale_to, &record.undo) {
                *object.pointer_mut(replicas_path).expect("replicas") = json!(n);
            }
            merge(object, &restore.patch);
        }
        Step::Nothing(_) | Step::Release | Step::Unreadable(_) => {}
    }
}

fn frozen() -> Desired {
    Desired::Frozen {
        since: "2026-11-26T00:00:00Z".into(),
        why: "fraud".into(),
        release_due: false,
    }
}

/// Clears `metadata.resourceVersion` (it moves) and empty annotation and label maps.
fn comparable(object: &Value) -> Value {
    let mut o = object.clone();
    let meta = o["metadata"].as_object_mut().expect("metadata");
    meta.remove("resourceVersion");
    for k in ["annotations", "labels"] {
        if meta.get(k).is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty())) {
            meta.remove(k);
        }
    }
    o
}

proptest! {
    /// Passes repeated any number of times, with the frozen fields moved back in between (a
    /// bypass), never rewrite the record; each ends frozen; the unfreeze restores the object.
    #[test]
    fn a_freeze_is_remembered_once_and_undone_exactly(
        action in action(),
        original in object(),
        drifts in proptest::collection::vec(any::<bool>(), 0..4),
    ) {
        prop_assume!(action.validate().is_ok());
        let mut object = original.clone();
        let step = plan(&action, "acme", &frozen(), false, BillingMode::PayPerUse, &object);
        let Step::Freeze(record) = step.clone() else {
            return Err(TestCaseError::fail(format!("first pass: {step:?}")));
        };
        carry_out(&mut object, &step);
        prop_assert!(record.holds(&object));
        for drift in drifts {
            if drift {
                // Moved back by someone allowed to, as it was before the freeze.
                let spec = original["spec"].clone();
                object["spec"] = spec;
            }
            let step = plan(&action, "acme", &frozen(), false, BillingMode::PayPerUse, &object);
            match &step {
                Step::Reapply(r) | Step::Restore(r) => prop_assert_eq!(r, &record),
                Step::Nothing(_) => {}
                other => return Err(TestCaseError::fail(format!("a later pass: {other:?}"))),
            }
            carry_out(&mut object, &step);
            prop_assert_eq!(FrozenRecord::of(&object).ok().flatten(), Some(record.clone()), "the record is never rewritten");
            prop_assert!(record.holds(&object));
        }
        let step = plan(&action, "acme", &Desired::Thawed, false, BillingMode::PayPerUse, &object);
        prop_assert!(matches!(step, Step::Restore(_)), "{:?}", step);
        carry_out(&mut object, &step);
        prop_assert_eq!(comparable(&object), comparable(&original));
        // Once restored, nothing more happens.
        let again = plan(&action, "acme", &Desired::Thawed, false, BillingMode::PayPerUse, &object);
        prop_assert!(matches!(again, Step::Nothing(_)), "{:?}", again);
    }
}
