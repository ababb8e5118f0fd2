//! Unit tests of Spec validation: everything a Spec may not ask for is refused with a reason.
use super::*;
use crate::spec_builder::PayloadSpec;
use serde_json::json;

fn spec_json() -> serde_json::Value {
    serde_json::to_value(
        PayloadSpec::new(vec!["true".into()], 30001, 30000)
            .to_spec()
            .unwrap(),
    )
    .unwrap()
}

fn plan_of(v: serde_json::Value) -> Result<Plan, PlanError> {
    Plan::from_spec(&serde_json::from_value(v).unwrap())
}

#[test]
fn capabilities_are_refused() {
    let mut v = spec_json();
    v["process"]["capabilities"] =
        json!({"bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"]});
    assert!(matches!(plan_of(v), Err(PlanError::Capabilities(c)) if c.contains("NET_RAW")));
}

#[test]
fn new_privileges_are_refused() {
    let mut v = spec_json();
    v["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(plan_of(v).unwrap_err(), PlanError::NewPrivileges);
}

#[test]
fn user_pid_and_mount_namespaces_are_required() {
    for missing in ["user", "pid", "mount"] {
        let mut v = spec_json();
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != missing)
            .cloned()
            .collect();
        v["linux"]["namespaces"] = json!(ns);
        assert_eq!(
            plan_of(v).unwrap_err(),
            PlanError::NamespaceRequired(missing)
        );
    }
}

#[test]
fn unmapped_ids_are_refused() {
    let mut v = spec_json();
    v["process"]["user"]["uid"] = json!(0);
    assert!(matches!(
        plan_of(v),
        Err(PlanError::Unmapped {
            what: "uid",
            id: 0,
            ..
        })
    ));
    let mut v = spec_json();
    v["process"]["user"]["additionalGids"] = json!([27]);
    assert!(matches!(
        plan_of(v),
        Err(PlanError::Unmapped {
            what: "gid",
            id: 27,
            ..
        })
    ));
}

#[test]
fn relative_paths_and_bad_env_are_refused() {
    let mut v = spec_json();
    v["process"]["cwd"] = json!("work");
    assert!(matches!(
        plan_of(v),
        Err(PlanError::Invalid {
            what: "process.cwd",
            ..
        })
    ));
    let mut v = spec_json();
    v["process"]["env"] = json!(["NOEQUALS"]);
    assert!(matches!(
        plan_of(v),
        Err(PlanError::Invalid {
            what: "env entry",
            ..
        })
    ));
    let mut v = spec_json();
    v["process"]["args"] = json!([]);
    assert_eq!(plan_of(v).unwrap_err(), PlanError::NoArgs);
}

#[test]
fn time_namespace_is_not_supported() {
    let mut v = spec_json();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    assert!(matches!(
        plan_of(v),
        Err(PlanError::NamespaceUnsupported(_))
    ));
}

#[test]
fn mount_options_split_into_flags_propagation_and_data() {
    let opts: Vec<String> = ["rbind", "ro", "nosuid", "rslave", "size=64m", "mode=1777"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (flags, prop, bind, rec, data) = parse_mount_options(&opts);
    assert!(bind && rec);
    assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    assert_eq!(prop, Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
    assert_eq!(data, "size=64m,mode=1777");
}

#[test]
fn propagation_defaults_to_rslave_like_runc() {
    let mut v = spec_json();
    v["linux"]
        .as_object_mut()
        .unwrap()
        .remove("rootfsPropagation");
    assert_eq!(
        plan_of(v).unwrap().root_propagation,
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    );
    let mut v = spec_json();
    v["linux"]["rootfsPropagation"] = json!("rprivate");
    assert_eq!(
        plan_of(v).unwrap().root_propagation,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    );
}
