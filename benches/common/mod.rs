//! What the benchmarks share: settings from the environment, statistics over rounds and
//! loading purchase-guard's CRDs. (Each benchmark uses part of it.)
#![allow(dead_code)]

/// The value of the environment variable `name`, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The median of `v` and its min and max (`v` not empty).
pub fn spread(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// Installs purchase-guard's CRDs into the sandbox, in-process.
pub fn install_crds(sandbox: &purchase_guard_sandbox::Sandbox) {
    for crd in purchase_guard::crdgen::all() {
        let value = serde_json::to_value(&crd).expect("CRD");
        sandbox
            .server
            .apply_builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                None,
                value,
                "bench",
            )
            .expect("CRD installed");
    }
}
