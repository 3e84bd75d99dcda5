//! The order a `--for-apply` dump goes into a new cluster: Velero's restore
//! priorities folded into phases that `kubectl apply` takes one at a time,
//! with a wait for the CRDs to be established before anything that may be
//! one of their custom resources.
//!
//! Velero restores `customresourcedefinitions`, `namespaces`,
//! `storageclasses`, the volume snapshot classes, `persistentvolumes`,
//! `persistentvolumeclaims`, `clusterroles`, `roles`, `serviceaccounts`,
//! `clusterrolebindings`, `rolebindings`, `secrets`, `configmaps`,
//! `limitranges`, `priorityclasses`, `pods`, `replicasets`, `endpoints`,
//! `services`, then everything else. We keep that order and put admission
//! webhooks, admission policies and aggregated APIServices last: applied
//! before the workloads that serve them, a webhook with `failurePolicy:
//! Fail` would refuse every later object.

use std::fmt::Write as _;

/// One phase of the apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// CustomResourceDefinitions (then wait until Established).
    Crds,
    /// Namespaces.
    Namespaces,
    /// Other cluster-scoped objects: storage classes, PVs, cluster roles
    /// and bindings, priority classes, cluster-scoped custom resources.
    Cluster,
    /// What workloads mount or run as: PVCs, service accounts, roles and
    /// bindings, secrets, config maps, limit ranges, quotas.
    Config,
    /// Everything else in a namespace: pods, controllers, services, custom
    /// resources.
    Workloads,
    /// Admission webhooks and policies, aggregated APIServices.
    Admission,
}

/// Every phase, in order.
pub const PHASES: [Phase; 6] = [
    Phase::Crds,
    Phase::Namespaces,
    Phase::Cluster,
    Phase::Config,
    Phase::Workloads,
    Phase::Admission,
];

const CONFIG: &[&str] = &[
    "persistentvolumeclaims",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "secrets",
    "configmaps",
    "limitranges",
    "resourcequotas",
];

const ADMISSION: &[&str] = &[
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "apiservices.apiregistration.k8s.io",
];

impl Phase {
    /// The phase of an object of `resource`, in a namespace or not.
    pub fn of(resource: &str, namespaced: bool) -> Phase {
        match resource {
            "customresourcedefinitions.apiextensions.k8s.io" => Phase::Crds,
            "namespaces" => Phase::Namespaces,
            r if ADMISSION.contains(&r) => Phase::Admission,
            r if namespaced && CONFIG.contains(&r) => Phase::Config,
            _ if namespaced => Phase::Workloads,
            _ => Phase::Cluster,
        }
    }

    /// Its directory in the dump.
    pub fn dir(self) -> &'static str {
        match self {
            Phase::Crds => "00-crds",
            Phase::Namespaces => "01-namespaces",
            Phase::Cluster => "02-cluster",
            Phase::Config => "03-config",
            Phase::Workloads => "04-workloads",
            Phase::Admission => "05-admission",
        }
    }
}

/// A `kustomization.yaml` naming `files` (relative to the phase directory),
/// so that `kubectl apply -k` takes the phase and `kubectl kustomize`
/// checks it offline.
pub fn kustomization(files: &[String]) -> String {
    let doc = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files,
    });
    format!(
        "# Written by etcd-rescue k8s dump --for-apply: this phase's manifests.\n{}",
        super::yaml::to_string(&doc)
    )
}

/// The script that applies the phases present, in order, waiting for the
/// CRDs (by name) to be Established and their names accepted, as Velero
/// waits, before the next phase.
pub fn apply_script(phases: &[Phase], crds: &[String], revision: i64) -> String {
    let mut s = format!(
        r#"#!/bin/sh
# Written by etcd-rescue k8s dump --for-apply (revision {revision}).
# Brings this dump into the cluster kubectl points at, one phase at a time,
# in Velero's restore order; stops at the first phase that fails. Safe to
# run again: server-side apply updates what is there.
#   KUBECTL      the kubectl to run (default: kubectl)
#   APPLY_FLAGS  how to apply (default: --server-side --force-conflicts --field-manager=etcd-rescue)
#   CRD_TIMEOUT  how long to wait for the CRDs (default: 120s)
set -eu
cd "$(dirname "$0")"
KUBECTL="${{KUBECTL:-kubectl}}"
APPLY_FLAGS="${{APPLY_FLAGS:---server-side --force-conflicts --field-manager=etcd-rescue}}"
phase() {{
  echo "etcd-rescue: applying $1" >&2
  # shellcheck disable=SC2086
  "$KUBECTL" apply $APPLY_FLAGS -k "$1"
}}
"#
    );
    for p in phases {
        let _ = writeln!(s, "phase {}", p.dir());
        if *p == Phase::Crds && !crds.is_empty() {
            let names: Vec<String> = crds.iter().map(|c| format!("crd/{}", shell_word(c))).collect();
            for cond in ["Established", "NamesAccepted"] {
                let _ = writeln!(
                    s,
                    "\"$KUBECTL\" wait --for condition={cond} --timeout=\"${{CRD_TIMEOUT:-120s}}\" {}",
                    names.join(" ")
                );
            }
        }
    }
    s.push_str("echo \"etcd-rescue: every phase applied\" >&2\n");
    s
}

/// `s` as one shell word (single-quoted unless plainly safe).
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_velero_with_admission_last() {
        assert_eq!(
            Phase::of("customresourcedefinitions.apiextensions.k8s.io", false),
            Phase::Crds
        );
        assert_eq!(Phase::of("namespaces", false), Phase::Namespaces);
        assert_eq!(Phase::of("persistentvolumes", false), Phase::Cluster);
        assert_eq!(Phase::of("ippools.crd.projectcalico.org", false), Phase::Cluster);
        assert_eq!(Phase::of("secrets", true), Phase::Config);
        assert_eq!(
            Phase::of("networkpolicies.crd.projectcalico.org", true),
            Phase::Workloads
        );
        assert_eq!(Phase::of("deployments", true), Phase::Workloads);
        assert_eq!(
            Phase::of("validatingwebhookconfigurations", false),
            Phase::Admission
        );
        assert!(PHASES.windows(2).all(|w| w[0] < w[1] && w[0].dir() < w[1].dir()));
    }

    #[test]
    fn script_waits_for_crds_by_name() {
        let s = apply_script(
            &[Phase::Crds, Phase::Workloads],
            &["ippools.crd.projectcalico.org".into(), "it's".into()],
            7,
        );
        let crd = s.find("phase 00-crds").unwrap();
        let wait = s.find("condition=Established").unwrap();
        let work = s.find("phase 04-workloads").unwrap();
        assert!(crd < wait && wait < work, "{s}");
        assert!(
            s.contains("crd/ippools.crd.projectcalico.org crd/'it'\\''s'"),
            "{s}"
        );
    }
}
