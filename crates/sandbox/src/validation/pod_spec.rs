//! The parts of a pod spec kube-apiserver judges beyond container names, images and ports
//! (`pkg/apis/core/validation`: `ValidateVolumes`, `ValidateVolumeMounts`, `validateProbe`,
//! `validateHandler`): volumes (one source each, unique DNS-label names, what the common
//! sources require), the containers' volume mounts (naming a valid volume, one per mount path,
//! relative sub-paths), port names, and probes (one handler with a valid port, no negative
//! numbers, a success threshold of 1 for liveness and startup probes; none on init containers
//! but sidecars).

use super::{Problem, items, port_problem, present, text};
use serde_json::Value;
use std::collections::HashSet;

/// Volume sources in the order kube-apiserver looks at them, each with the name it gives the
/// field when it refuses a second source (`downwarAPI` is kube-apiserver's spelling).
const SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const HOST_PATH_TYPES: [&str; 8] = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

const FILE_MODE: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The pod's volumes: the problems, and the names of the volumes without any, which mounts
/// may name.
pub fn volumes(spec: &Value, path: &str, out: &mut Vec<Problem>) -> HashSet<String> {
    let mut valid = HashSet::new();
    let mut seen = HashSet::new();
    for (i, volume) in items(spec, "volumes").iter().enumerate() {
        let at = format!("{path}.volumes[{i}]");
        let mut problems = Vec::new();
        source(volume, &at, &mut problems);
        let name = text(volume, "name");
        if name.is_empty() {
            problems.push(Problem::required(format!("{at}.name")));
        } else {
            for p in purchase_guard_crd_validation::validate_dns1123_label(name) {
                problems.push(Problem::invalid(format!("{at}.name"), &format!("{name:?}"), &p));
            }
        }
        if seen.contains(name) {
            problems.push(Problem::duplicate(format!("{at}.name"), name));
        }
        if problems.is_empty() {
            seen.insert(name.to_string());
            valid.insert(name.to_string());
        } else {
            out.append(&mut problems);
        }
    }
    valid
}

/// One volume's source: exactly one, with what the common ones require.
fn source(volume: &Value, at: &str, out: &mut Vec<Problem>) {
    let mut found = 0;
    for (field, shown) in SOURCES {
        let Some(src) = present(volume, field) else { continue };
        if found > 0 {
            out.push(Problem::forbidden(
                format!("{at}.{shown}"),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        found += 1;
        let at = format!("{at}.{field}");
        match field {
            "hostPath" => {
                let path = text(src, "path");
                if path.is_empty() {
                    out.push(Problem::required(format!("{at}.path")));
                    continue;
                }
                no_backsteps(path, &format!("{at}.path"), out);
                let kind = text(src, "type");
                if !HOST_PATH_TYPES.contains(&kind) {
                    out.push(Problem::not_supported(format!("{at}.type"), kind, &HOST_PATH_TYPES));
                }
            }
            "secret" => {
                if text(src, "secretName").is_empty() {
                    out.push(Problem::required(format!("{at}.secretName")));
                }
                files(src, &at, out);
            }
            "configMap" => {
                if text(src, "name").is_empty() {
                    out.push(Problem::required(format!("{at}.name")));
                }
                files(src, &at, out);
            }
            "persistentVolumeClaim" if text(src, "claimName").is_empty() => {
                out.push(Problem::required(format!("{at}.claimName")))
            }
            "nfs" => {
                if text(src, "server").is_empty() {
                    out.push(Problem::required(format!("{at}.server")));
                }
                match text(src, "path") {
                    "" => out.push(Problem::required(format!("{at}.path"))),
                    p if !p.starts_with('/') => out.push(Problem::invalid(
                        format!("{at}.path"),
                        &format!("{p:?}"),
                        "must be an absolute path",
                    )),
                    _ => {}
                }
            }
            "csi" if text(src, "driver").is_empty() => out.push(Problem::required(format!("{at}.driver"))),
            "downwardAPI" => {
                file_mode(src, "defaultMode", &at, out);
                for item in items(src, "items") {
                    downward_file(item, &at, out);
                }
            }
            "projected" => projected(src, &at, out),
            _ => {}
        }
    }
    // The v1 API defaults a volume without a source to an empty directory, so this is only met
    // by a source kube-apiserver would not know.
    if found == 0 {
        out.push(Problem::required_because(at, "must specify a volume type"));
    }
}

/// A Secret's or ConfigMap's volume: its default mode and the files it names.
fn files(src: &Value, at: &str, out: &mut Vec<Problem>) {
    file_mode(src, "defaultMode", at, out);
    for (j, item) in items(src, "items").iter().enumerate() {
        key_to_path(item, &format!("{at}.items[{j}]"), out);
    }
}

/// A file's `mode` or a source's `defaultMode`: 0 to 0777.
fn file_mode(src: &Value, field: &str, at: &str, out: &mut Vec<Problem>) {
    if let Some(mode) = src.get(field).and_then(Value::as_i64)
        && !(0..=0o777).contains(&mode)
    {
        out.push(Problem::invalid(format!("{at}.{field}"), &mode.to_string(), FILE_MODE));
    }
}

/// A key written to a file (`validateKeyToPath`).
fn key_to_path(item: &Value, at: &str, out: &mut Vec<Problem>) {
    if text(item, "key").is_empty() {
        out.push(Problem::required(format!("{at}.key")));
    }
    let path = text(item, "path");
    if path.is_empty() {
        out.push(Problem::required(format!("{at}.path")));
    }
    non_reserved(path, &format!("{at}.path"), out);
    file_mode(item, "mode", at, out);
}

/// Where a volume writes a file (`validateLocalNonReservedPath`): relative, without `..`, and
/// not starting with `..` (`../` is refused already).
fn non_reserved(path: &str, at: &str, out: &mut Vec<Problem>) {
    descending(path, at, out);
    if path.starts_with("..") && !path.starts_with("../") {
        out.push(Problem::invalid(at, &format!("{path:?}"), "must not start with '..'"));
    }
}

/// The pod fields a downward API file may hold (`validVolumeDownwardAPIFieldPathExpressions`),
/// sorted as kube-apiserver lists them.
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// A file of a downward API volume or projection (`validateDownwardAPIVolumeFile`).
/// kube-apiserver reports its problems at the source, without the item's index.
fn downward_file(item: &Value, at: &str, out: &mut Vec<Problem>) {
    let path = text(item, "path");
    if path.is_empty() {
        out.push(Problem::required(format!("{at}.path")));
    }
    non_reserved(path, &format!("{at}.path"), out);
    if let Some(selector) = present(item, "fieldRef") {
        field_ref(selector, VOLUME_FIELD_PATHS, &format!("{at}.fieldRef"), out);
        if present(item, "resourceFieldRef").is_some() {
            out.push(Problem::invalid(
                at,
                "\"resource\"",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(selector) = present(item, "resourceFieldRef") {
        resource_field_ref(selector, &format!("{at}.resourceFieldRef"), Reader::Volume, out);
    } else {
        out.push(Problem::required_because(
            at,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    file_mode(item, "mode", at, out);
}

/// A projected volume (`validateProjectedVolumeSource`): each source's files, no path twice
/// among all of them, and the ServiceAccount tokens' lifetimes.
fn projected(src: &Value, at: &str, out: &mut Vec<Problem>) {
    file_mode(src, "defaultMode", at, out);
    let mut paths = HashSet::new();
    let mut unique = |path: &str, shown: &str, out: &mut Vec<Problem>| {
        if !path.is_empty() && !paths.insert(path.to_string()) {
            out.push(Problem::invalid(
                at,
                &format!("{shown:?}"),
                "conflicting duplicate paths",
            ));
        }
    };
    for (i, source) in items(src, "sources").iter().enumerate() {
        let source_at = format!("{at}.sources[{i}]");
        for kind in ["secret", "configMap"] {
            let Some(projection) = present(source, kind) else {
                continue;
            };
            let name = text(projection, "name");
            if name.is_empty() {
                out.push(Problem::required(format!("{source_at}.{kind}.name")));
            }
            for (j, item) in items(projection, "items").iter().enumerate() {
                key_to_path(item, &format!("{source_at}.{kind}.items[{j}]"), out);
                unique(text(item, "path"), name, out);
            }
        }
        if let Some(projection) = present(source, "downwardAPI") {
            for item in items(projection, "items") {
                downward_file(item, &format!("{source_at}.downwardAPI"), out);
                let path = text(item, "path");
                unique(path, path, out);
            }
        }
        if let Some(token) = present(source, "serviceAccountToken") {
            let token_at = format!("{source_at}.serviceAccountToken.expirationSeconds");
            // Defaulted to an hour.
            let seconds = token.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
            if seconds < 600 {
                out.push(Problem::invalid(
                    token_at.as_str(),
                    &seconds.to_string(),
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if seconds > 1 << 32 {
                out.push(Problem::invalid(
                    token_at,
                    &seconds.to_string(),
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // kube-apiserver names the volume's path, not the token's.
            if text(token, "path").is_empty() {
                out.push(Problem::required(format!("{at}.path")));
            }
        }
    }
}

/// A path that must stay below where it is joined: relative, without `..`.
fn descending(path: &str, at: &str, out: &mut Vec<Problem>) {
    if path.starts_with('/') {
        out.push(Problem::invalid(at, &format!("{path:?}"), "must be a relative path"));
    }
    no_backsteps(path, at, out);
}

fn no_backsteps(path: &str, at: &str, out: &mut Vec<Problem>) {
    if path.split('/').any(|part| part == "..") {
        out.push(Problem::invalid(at, &format!("{path:?}"), "must not contain '..'"));
    }
}

/// A container's volume mounts, against the pod's valid volumes.
pub fn volume_mounts(c: &Value, at: &str, volumes: &HashSet<String>, out: &mut Vec<Problem>) {
    let mut paths = HashSet::new();
    for (i, mount) in items(c, "volumeMounts").iter().enumerate() {
        let at = format!("{at}.volumeMounts[{i}]");
        let name = text(mount, "name");
        if name.is_empty() {
            out.push(Problem::required(format!("{at}.name")));
        }
        if !volumes.contains(name) {
            out.push(Problem::not_found(format!("{at}.name"), name));
        }
        let path = text(mount, "mountPath");
        if path.is_empty() {
            out.push(Problem::required(format!("{at}.mountPath")));
        }
        if !paths.insert(path) {
            out.push(Problem::invalid(
                format!("{at}.mountPath"),
                &format!("{path:?}"),
                "must be unique",
            ));
        }
        let sub = text(mount, "subPath");
        if !sub.is_empty() {
            descending(sub, &format!("{at}.subPath"), out);
        }
    }
}

/// apimachinery's `IsValidPortName`.
pub fn port_name_problems(name: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.is_empty()
    {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    problems
}

/// A port given by number or by name (`ValidatePortNumOrName`).
fn port_num_or_name(port: Option<&Value>, at: String, out: &mut Vec<Problem>) {
    match port {
        Some(Value::String(name)) => {
            for p in port_name_problems(name) {
                out.push(Problem::invalid(at.clone(), &format!("{name:?}"), p));
            }
        }
        other => port_problem(at, other.unwrap_or(&Value::Null), out),
    }
}

/// Which container a probe belongs to, for the rules that depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Probes {
    /// A regular container or a sidecar (an init container that restarts): probes allowed.
    Allowed,
    /// An init container that runs to completion: no lifecycle hooks, no probes.
    Forbidden,
}

/// A container's lifecycle hooks and probes, in kube-apiserver's order.
pub fn probes(c: &Value, at: &str, allowed: Probes, out: &mut Vec<Problem>) {
    if allowed == Probes::Forbidden {
        for field in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
            if present(c, field).is_some() {
                out.push(Problem::forbidden(
                    format!("{at}.{field}"),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
        return;
    }
    for field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = present(c, field) else { continue };
        let at = format!("{at}.{field}");
        handler(probe, &at, out);
        for number in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            if let Some(n) = probe.get(number).and_then(Value::as_i64).filter(|n| *n < 0) {
                out.push(Problem::invalid(
                    format!("{at}.{number}"),
                    &n.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        let grace = probe.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
        if let Some(g) = grace.filter(|g| *g <= 0) {
            out.push(Problem::invalid(
                format!("{at}.terminationGracePeriodSeconds"),
                &g.to_string(),
                "must be greater than 0",
            ));
        }
        // Defaulted to 1 before validation when unset.
        let success = probe.get("successThreshold").and_then(Value::as_i64).unwrap_or(1);
        match field {
            "readinessProbe" => {
                if let Some(g) = grace {
                    out.push(Problem::invalid(
                        format!("{at}.terminationGracePeriodSeconds"),
                        &g.to_string(),
                        "must not be set for readinessProbes",
                    ));
                }
            }
            _ if success != 1 => out.push(Problem::invalid(
                format!("{at}.successThreshold"),
                &success.to_string(),
                "must be 1",
            )),
            _ => {}
        }
    }
}

/// A probe's handler: exactly one of exec, httpGet, tcpSocket and grpc.
fn handler(probe: &Value, at: &str, out: &mut Vec<Problem>) {
    let mut found = false;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc"] {
        let Some(action) = present(probe, kind) else { continue };
        let at = format!("{at}.{kind}");
        if found {
            out.push(Problem::forbidden(at, "may not specify more than 1 handler type"));
            continue;
        }
        found = true;
        match kind {
            "exec" if items(action, "command").is_empty() => out.push(Problem::required(format!("{at}.command"))),
            "httpGet" => {
                // Path and scheme are defaulted before validation when unset.
                if action.get("path").and_then(Value::as_str) == Some("") {
                    out.push(Problem::required(format!("{at}.path")));
                }
                port_num_or_name(action.get("port"), format!("{at}.port"), out);
                let scheme = action.get("scheme").and_then(Value::as_str).unwrap_or("HTTP");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    out.push(Problem::not_supported(
                        format!("{at}.scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => port_num_or_name(action.get("port"), format!("{at}.port"), out),
            "grpc" => port_problem(format!("{at}.port"), action.get("port").unwrap_or(&Value::Null), out),
            _ => {}
        }
    }
    if !found {
        out.push(Problem::required_because(at, "must specify a handler type"));
    }
}

/// A container's environment (`ValidateEnv`, with the relaxed names kube-apiserver 1.33
/// accepts: printable ASCII but `=`), and where values come from.
pub fn env(c: &Value, at: &str, out: &mut Vec<Problem>) {
    for (i, var) in items(c, "env").iter().enumerate() {
        let at = format!("{at}.env[{i}]");
        let name = text(var, "name");
        if name.is_empty() {
            out.push(Problem::required(format!("{at}.name")));
            out.push(Problem::invalid(
                format!("{at}.name"),
                "\"\"",
                "environment variable name must be non-empty",
            ));
        } else if name.chars().any(|ch| !(' '..='~').contains(&ch) || ch == '=') {
            out.push(Problem::invalid(
                format!("{at}.name"),
                &format!("{name:?}"),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = present(var, "valueFrom") else {
            continue;
        };
        let at = format!("{at}.valueFrom");
        let mut sources = 0;
        for source in ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"] {
            let Some(selector) = present(from, source) else {
                continue;
            };
            sources += 1;
            match source {
                "fieldRef" => field_ref(selector, ENV_FIELD_PATHS, &format!("{at}.{source}"), out),
                "resourceFieldRef" => resource_field_ref(selector, &format!("{at}.{source}"), Reader::Env, out),
                _ => {}
            }
            if matches!(source, "configMapKeyRef" | "secretKeyRef") {
                let name = text(selector, "name");
                super::subdomain(&format!("{at}.{source}.name"), name, out);
                let key = text(selector, "key");
                if key.is_empty() {
                    out.push(Problem::required(format!("{at}.{source}.key")));
                } else {
                    super::invalid_each(&format!("{at}.{source}.key"), key, super::config_key_problems(key), out);
                }
            }
        }
        let detail = if sources == 0 {
            Some("must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        } else if !text(var, "value").is_empty() {
            Some("may not be specified when `value` is not empty")
        } else if sources > 1 {
            Some("may not have more than one field specified at a time")
        } else {
            None
        };
        if let Some(detail) = detail {
            out.push(Problem::invalid(at, "\"\"", detail));
        }
    }
}

/// The pod fields an environment variable may read (`validEnvDownwardAPIFieldPathExpressions`),
/// sorted as kube-apiserver lists them.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// `metadata.labels['key']` as (`metadata.labels`, `key`) (`SplitMaybeSubscriptedPath`).
fn subscripted(path: &str) -> Option<(&str, &str)> {
    let (base, key) = path.strip_suffix("']")?.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// An object field selector (`validateObjectFieldSelector`): an API version (`v1`, the only
/// one a Pod's fields convert from) and a field path kube-apiserver knows, among `allowed`,
/// or a label or annotation by key.
fn field_ref(selector: &Value, allowed: &[&str], at: &str, out: &mut Vec<Problem>) {
    let version = text(selector, "apiVersion");
    let path = text(selector, "fieldPath");
    if version.is_empty() {
        out.push(Problem::required(format!("{at}.apiVersion")));
        return;
    }
    if path.is_empty() {
        out.push(Problem::required(format!("{at}.fieldPath")));
        return;
    }
    // `ConvertDownwardAPIFieldLabel`.
    const KNOWN: &[&str] = &[
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    let converted = if version != "v1" {
        Err(format!("unsupported pod version: {version}"))
    } else if let Some((base, _)) = subscripted(path) {
        if matches!(base, "metadata.annotations" | "metadata.labels") {
            Ok(path)
        } else {
            Err(format!("field label does not support subscript: {path}"))
        }
    } else if path == "spec.host" {
        Ok("spec.nodeName")
    } else if KNOWN.contains(&path) {
        Ok(path)
    } else {
        Err(format!("field label not supported: {path}"))
    };
    let path = match converted {
        Ok(path) => path,
        Err(e) => {
            out.push(Problem::invalid(
                format!("{at}.fieldPath"),
                &format!("{path:?}"),
                &format!("error converting fieldPath: {e}"),
            ));
            return;
        }
    };
    match subscripted(path) {
        Some((base, key)) => {
            let key = if base == "metadata.annotations" {
                key.to_lowercase()
            } else {
                key.to_string()
            };
            super::invalid_each(at, &key, super::qualified_name_problems(&key), out);
        }
        None if !allowed.contains(&path) => {
            out.push(Problem::not_supported(format!("{at}.fieldPath"), path, allowed));
        }
        None => {}
    }
}

/// A container resource an environment variable may read (`validContainerResourceFieldPath
/// Expressions`), sorted; huge pages by prefix.
const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Who reads a resource field selector: a volume must name its container, an environment
/// variable reads its own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Env,
    Volume,
}

/// A resource field selector (`validateContainerResourceFieldSelector`).
fn resource_field_ref(selector: &Value, at: &str, reader: Reader, out: &mut Vec<Problem>) {
    let resource = text(selector, "resource");
    if reader == Reader::Volume && text(selector, "containerName").is_empty() {
        out.push(Problem::required(format!("{at}.containerName")));
    } else if resource.is_empty() {
        out.push(Problem::required(format!("{at}.resource")));
    } else if !RESOURCE_FIELDS.contains(&resource)
        && !["requests.hugepages-", "limits.hugepages-"]
            .iter()
            .any(|p| resource.starts_with(p))
    {
        out.push(Problem::not_supported(
            format!("{at}.resource"),
            resource,
            RESOURCE_FIELDS,
        ));
    }
    let divisor = match selector.get("divisor") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return,
    };
    let (allowed, unit) = match resource {
        "limits.cpu" | "requests.cpu" => (&["1m", "1"][..], "1m and 1 are supported with the cpu resource"),
        "limits.memory" | "requests.memory" => (
            BYTE_DIVISORS,
            "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
        ),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => (
            BYTE_DIVISORS,
            "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
        ),
        _ => return,
    };
    // A zero divisor is the unset one (the default); one that is not a quantity was refused
    // when the object was read.
    match divisor_text(&divisor) {
        Some(canonical) if canonical == "0" || allowed.contains(&canonical.as_str()) => {}
        None => {}
        Some(_) => out.push(Problem::invalid(
            format!("{at}.divisor"),
            &format!("{resource:?}"),
            &format!("only divisor's values {unit}"),
        )),
    }
}

/// The divisors of byte resources kube-apiserver accepts, as `Quantity.String()` writes them.
const BYTE_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];

/// How `Quantity.String()` writes a divisor, for the values a divisor may have (one of a unit
/// or zero): "0", "1", and one of each suffix of the quantity's own format (decimal suffixes
/// for a decimal quantity, binary ones for a binary quantity; an exponent quantity is written
/// with an exponent: `1e3` stays `1e3`). Any other value gets a text that is none of those.
fn divisor_text(text: &str) -> Option<String> {
    let value = crate::quantity::nanos(text)?;
    const ONE: i128 = 1_000_000_000;
    if value == 0 {
        return Some("0".into());
    }
    if value == ONE {
        return Some("1".into());
    }
    let trimmed = text.trim();
    let suffix = trimmed.trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'));
    let other = || Some(format!("{value}n"));
    if suffix.starts_with(['e', 'E']) {
        return other();
    }
    if suffix.ends_with('i') {
        return ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
            .iter()
            .zip(1u32..)
            .find(|(_, k)| value == ONE * (1i128 << (10 * k)))
            .map(|(s, _)| format!("1{s}"))
            .or_else(other);
    }
    if value == ONE / 1000 {
        return Some("1m".into());
    }
    ["k", "M", "G", "T", "P", "E"]
        .iter()
        .zip(1u32..)
        .find(|(_, k)| value == ONE * 1000i128.pow(*k))
        .map(|(s, _)| format!("1{s}"))
        .or_else(other)
}

const ID_RANGE: &str = "must be between 0 and 2147483647, inclusive";

/// User and group ids of a security context: 0 to 2^31-1.
fn ids(sc: &Value, at: &str, fields: &[&str], out: &mut Vec<Problem>) {
    for field in fields {
        if let Some(id) = sc.get(*field).and_then(Value::as_i64)
            && !(0..=i64::from(i32::MAX)).contains(&id)
        {
            out.push(Problem::invalid(format!("{at}.{field}"), &id.to_string(), ID_RANGE));
        }
    }
}

/// A seccomp profile: a known type, a local profile exactly when the type is Localhost.
fn seccomp(sc: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(profile) = present(sc, "seccompProfile") else {
        return;
    };
    let at = format!("{at}.seccompProfile");
    let kind = text(profile, "type");
    match kind {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => out.push(Problem::required_because(
            format!("{at}.type"),
            "type is required when seccompProfile is set",
        )),
        other => out.push(Problem::not_supported(
            format!("{at}.type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    let local = profile.get("localhostProfile").and_then(Value::as_str);
    match (kind, local) {
        ("Localhost", None) => out.push(Problem::required_because(
            format!("{at}.localhostProfile"),
            "must be set when seccomp type is Localhost",
        )),
        ("Localhost", Some(path)) => descending(path, &format!("{at}.localhostProfile"), out),
        (_, Some(_)) => out.push(Problem::invalid(
            format!("{at}.localhostProfile"),
            &format!("core.SeccompProfile{{Type:{kind:?}, LocalhostProfile:(*string)(0xc000000000)}}"),
            "can only be set when seccomp type is Localhost",
        )),
        (_, None) => {}
    }
}

/// kube-apiserver's sysctl names: segments of lowercase letters, digits, `-` and `_`
/// (starting and ending with a letter or digit), separated by `.` or `/`.
static SYSCTL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$").expect("regex")
});

/// The kernel namespaces a sysctl can belong to, as far as the host checks need them.
enum SysctlNamespace {
    Net,
    Ipc,
}

/// Which namespace `name` belongs to (`utilsysctl.GetNamespace`): a name whose first separator
/// is `/` reads with `/` and `.` swapped.
fn sysctl_namespace(name: &str) -> Option<SysctlNamespace> {
    let dotted: String = match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    };
    if dotted.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else if dotted == "kernel.sem"
        || ["kernel.shm", "kernel.msg", "fs.mqueue."]
            .iter()
            .any(|p| dotted.starts_with(p))
    {
        Some(SysctlNamespace::Ipc)
    } else {
        None
    }
}

/// A pod's security context (`validatePodSpecSecurityContext`).
pub fn pod_security(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    let Some(sc) = present(spec, "securityContext") else {
        return;
    };
    let at = format!("{path}.securityContext");
    ids(sc, &at, &["fsGroup", "runAsUser", "runAsGroup"], out);
    for (i, gid) in items(sc, "supplementalGroups").iter().enumerate() {
        if let Some(gid) = gid.as_i64().filter(|g| !(0..=i64::from(i32::MAX)).contains(g)) {
            out.push(Problem::invalid(
                format!("{at}.supplementalGroups[{i}]"),
                &gid.to_string(),
                ID_RANGE,
            ));
        }
    }
    // Pod-level fields in v1, judged as part of the security context (where kube-apiserver's
    // internal type keeps them).
    let host = |field: &str| spec.get(field).and_then(Value::as_bool) == Some(true);
    if host("shareProcessNamespace") && host("hostPID") {
        out.push(Problem::invalid(
            format!("{at}.shareProcessNamespace"),
            "true",
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut seen = HashSet::new();
    for (i, sysctl) in items(sc, "sysctls").iter().enumerate() {
        let at = format!("{at}.sysctls[{i}].name");
        let name = text(sysctl, "name");
        if name.is_empty() {
            out.push(Problem::required(at.clone()));
        } else if name.len() > 253 || !SYSCTL.is_match(name) {
            out.push(Problem::invalid(
                at.clone(),
                &format!("{name:?}"),
                &format!("must have at most 253 characters and match regex {}", SYSCTL.as_str()),
            ));
        } else if seen.contains(name) {
            out.push(Problem::duplicate(at.clone(), name));
        }
        // `ValidateHostSysctl`: a namespaced sysctl of a namespace shared with the host.
        match sysctl_namespace(name) {
            Some(SysctlNamespace::Net) if host("hostNetwork") => out.push(Problem::invalid(
                at.clone(),
                &format!("{name:?}"),
                "may not be specified when 'hostNetwork' is true",
            )),
            Some(SysctlNamespace::Ipc) if host("hostIPC") => out.push(Problem::invalid(
                at.clone(),
                &format!("{name:?}"),
                "may not be specified when 'hostIPC' is true",
            )),
            _ => {}
        }
        seen.insert(name);
    }
    if let Some(policy) = sc.get("fsGroupChangePolicy").and_then(Value::as_str)
        && !matches!(policy, "Always" | "OnRootMismatch")
    {
        out.push(Problem::not_supported(
            format!("{at}.fsGroupChangePolicy"),
            policy,
            &["Always", "OnRootMismatch"],
        ));
    }
    seccomp(sc, &at, out);
    windows_options(sc, &at, out);
}

/// A container's security context (`ValidateSecurityContext`). The refusals that print the
/// whole context print Go's rendering of its fields, with a placeholder for the addresses of
/// set pointers.
pub fn container_security(c: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(sc) = present(c, "securityContext") else {
        return;
    };
    let at = format!("{at}.securityContext");
    ids(sc, &at, &["runAsUser", "runAsGroup"], out);
    if let Some(mount) = sc.get("procMount").and_then(Value::as_str)
        && !matches!(mount, "Default" | "Unmasked")
    {
        out.push(Problem::not_supported(
            format!("{at}.procMount"),
            mount,
            &["Default", "Unmasked"],
        ));
    }
    seccomp(sc, &at, out);
    if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        let shown = go_security_context(sc);
        if sc.get("privileged").and_then(Value::as_bool) == Some(true) {
            out.push(Problem::invalid(
                at.clone(),
                &shown,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let added = sc
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for _ in added.iter().filter(|c| c.as_str() == Some("CAP_SYS_ADMIN")) {
            out.push(Problem::invalid(
                at.clone(),
                &shown,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    windows_options(sc, &at, out);
}

/// `validateWindowsHostProcessPod`: a pod whose containers run as host processes runs only
/// such containers, on the host's network, and its containers agree with it.
pub fn host_process(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    let flag = |sc: Option<&Value>| {
        sc.and_then(|sc| sc.pointer("/windowsOptions/hostProcess"))
            .and_then(Value::as_bool)
    };
    let pod = flag(present(spec, "securityContext"));
    let (mut containers, mut host_processes) = (0, 0);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in items(spec, list).iter().enumerate() {
            containers += 1;
            let own = flag(present(c, "securityContext"));
            if let (Some(pod), Some(own)) = (pod, own)
                && pod != own
            {
                out.push(Problem::invalid(
                    format!("{path}.{list}[{i}].securityContext.windowsOptions.hostProcess"),
                    &own.to_string(),
                    &format!("pod hostProcess value must be identical if both are specified, was {pod}"),
                ));
            }
            if own.or(pod) == Some(true) {
                host_processes += 1;
            }
        }
    }
    if host_processes == 0 {
        return;
    }
    if host_processes != containers {
        out.push(Problem::invalid(
            path,
            "\"\"",
            "If pod contains any hostProcess containers then all containers must be HostProcess containers",
        ));
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) != Some(true) {
        out.push(Problem::invalid(
            format!("{path}.hostNetwork"),
            "false",
            "hostNetwork must be true if pod contains any hostProcess containers",
        ));
    }
}

/// The longest GMSA credential spec, in KiB.
const GMSA_SPEC_KIB: usize = 64;

/// Windows options of a security context (`validateWindowsSecurityContextOptions`): a GMSA
/// credential spec name that is a DNS subdomain, a credential spec neither empty nor over
/// 64 KiB, and a user name `[DOMAIN\]USER` as Windows accepts it.
fn windows_options(sc: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(windows) = present(sc, "windowsOptions") else {
        return;
    };
    let at = format!("{at}.windowsOptions");
    if let Some(name) = present(windows, "gmsaCredentialSpecName") {
        let name = name.as_str().unwrap_or_default();
        super::subdomain(&format!("{at}.gmsaCredentialSpecName"), name, out);
    }
    if let Some(spec) = present(windows, "gmsaCredentialSpec") {
        let spec = spec.as_str().unwrap_or_default();
        let detail = if spec.is_empty() {
            Some("gmsaCredentialSpec cannot be an empty string".to_string())
        } else if spec.len() > GMSA_SPEC_KIB * 1024 {
            Some(format!("gmsaCredentialSpec size must be under {GMSA_SPEC_KIB} KiB"))
        } else {
            None
        };
        if let Some(detail) = detail {
            out.push(Problem::invalid(
                format!("{at}.gmsaCredentialSpec"),
                &format!("{spec:?}"),
                &detail,
            ));
        }
    }
    if let Some(user) = present(windows, "runAsUserName") {
        let user = user.as_str().unwrap_or_default();
        for detail in run_as_user_name_problems(user) {
            out.push(Problem::invalid(
                format!("{at}.runAsUserName"),
                &format!("{user:?}"),
                detail,
            ));
        }
    }
}

/// What Windows refuses in `[DOMAIN\]USER`: control characters, more than one backslash, a
/// domain of 256 characters or more or neither a NetBIOS nor a DNS name, a user that is empty,
/// longer than 104 characters, only periods and spaces, or with `"/\:;|=,+*?<>@[]`.
fn run_as_user_name_problems(name: &str) -> Vec<&'static str> {
    if name.is_empty() {
        return vec!["runAsUserName cannot be an empty string"];
    }
    if name.chars().any(|c| c.is_ascii_control()) {
        return vec!["runAsUserName cannot contain control characters"];
    }
    let parts: Vec<&str> = name.split('\\').collect();
    let (domain, user) = match parts.as_slice() {
        [user] => (None, *user),
        [domain, user] => (Some(*domain), *user),
        _ => return vec!["runAsUserName cannot contain more than one backslash"],
    };
    let mut problems = vec![];
    if domain.is_some_and(|d| d.len() >= 256) {
        problems.push("runAsUserName's Domain length must be under 256 characters");
    }
    if let Some(domain) = domain
        && !(NETBIOS.is_match(domain) || WINDOWS_DNS.is_match(domain))
    {
        problems.push("runAsUserName's Domain doesn't match the NetBios nor the DNS format");
    }
    if user.is_empty() {
        problems.push("runAsUserName's User cannot be empty");
    } else if user.len() > 104 {
        problems.push("runAsUserName's User length must not be longer than 104 characters");
    }
    if !user.is_empty() && user.chars().all(|c| c == '.' || c == ' ') {
        problems.push("runAsUserName's User cannot contain only periods or spaces");
    }
    if user.chars().any(|c| "\"/\\:;|=,+*?<>@[]".contains(c)) {
        problems.push(r#"runAsUserName's User cannot contain the following characters: "/\:;|=,+*?<>@[]"#);
    }
    problems
}

/// A NetBIOS domain: 1 to 15 characters, none of `\/:*?"<>|`, not starting with a period.
static NETBIOS: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r#"^[^\\/:\*\?"<>|\.][^\\/:\*\?"<>|]{0,14}$"#).expect("regex"));

/// A DNS domain of letters, digits and dashes in labels of up to 63 characters.
static WINDOWS_DNS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    let label = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
    regex::Regex::new(&format!("^{label}(?:\\.{label})*$")).expect("regex")
});

/// Go's `%#v` of a `core.SecurityContext`.
fn go_security_context(sc: &Value) -> String {
    let pointer = |field: &str, ty: &str| match present(sc, field) {
        Some(_) => format!("(*{ty})(0xc000000000)"),
        None => format!("(*{ty})(nil)"),
    };
    format!(
        "core.SecurityContext{{Capabilities:{}, Privileged:{}, SELinuxOptions:{}, WindowsOptions:{}, RunAsUser:{}, RunAsGroup:{}, RunAsNonRoot:{}, ReadOnlyRootFilesystem:{}, AllowPrivilegeEscalation:{}, ProcMount:{}, SeccompProfile:{}, AppArmorProfile:{}}}",
        pointer("capabilities", "core.Capabilities"),
        pointer("privileged", "bool"),
        pointer("seLinuxOptions", "core.SELinuxOptions"),
        pointer("windowsOptions", "core.WindowsSecurityContextOptions"),
        pointer("runAsUser", "int64"),
        pointer("runAsGroup", "int64"),
        pointer("runAsNonRoot", "bool"),
        pointer("readOnlyRootFilesystem", "bool"),
        pointer("allowPrivilegeEscalation", "bool"),
        pointer("procMount", "core.ProcMountType"),
        pointer("seccompProfile", "core.SeccompProfile"),
        pointer("appArmorProfile", "core.AppArmorProfile"),
    )
}

/// A pod's node selector: label keys and values.
pub fn node_selector(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    if let Some(selector) = spec.get("nodeSelector").and_then(Value::as_object) {
        let at = format!("{path}.nodeSelector");
        for (key, value) in selector {
            super::invalid_each(&at, key, super::qualified_name_problems(key), out);
            let value = value.as_str().unwrap_or_default();
            super::invalid_each(&at, value, super::label_value_problems(value), out);
        }
    }
}

/// A pod's tolerations (`ValidateTolerations`).
pub fn tolerations(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    for (i, toleration) in items(spec, "tolerations").iter().enumerate() {
        let at = format!("{path}.tolerations[{i}]");
        let key = text(toleration, "key");
        let operator = text(toleration, "operator");
        let value = text(toleration, "value");
        let effect = text(toleration, "effect");
        if !key.is_empty() {
            super::invalid_each(&format!("{at}.key"), key, super::qualified_name_problems(key), out);
        }
        if key.is_empty() && operator != "Exists" {
            out.push(Problem::invalid(
                format!("{at}.operator"),
                &format!("{operator:?}"),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let seconds = toleration.get("tolerationSeconds").and_then(Value::as_i64);
        if seconds.is_some() && effect != "NoExecute" {
            out.push(Problem::invalid(
                format!("{at}.effect"),
                &format!("{effect:?}"),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "" | "Equal" => {
                let problems = super::label_value_problems(value);
                if !problems.is_empty() {
                    out.push(Problem::invalid(
                        format!("{at}.operator"),
                        &format!("{value:?}"),
                        &problems.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => {
                let seconds = seconds.map_or("(*int64)(nil)".to_string(), |_| "(*int64)(0xc000000000)".to_string());
                out.push(Problem::invalid(
                    format!("{at}.operator"),
                    &format!(
                        "core.Toleration{{Key:{key:?}, Operator:{operator:?}, Value:{value:?}, Effect:{effect:?}, TolerationSeconds:{seconds}}}"
                    ),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
            "Exists" => {}
            other => out.push(Problem::not_supported(
                format!("{at}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            out.push(Problem::not_supported(
                format!("{at}.effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

/// A pod's affinity (`validateAffinity`): node selector terms and requirements, pod affinity
/// terms with a topology key, weights from 1 to 100.
pub fn affinity(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    let Some(affinity) = present(spec, "affinity") else {
        return;
    };
    let at = format!("{path}.affinity");
    if let Some(node) = present(affinity, "nodeAffinity") {
        let at = format!("{at}.nodeAffinity");
        if let Some(required) = present(node, "requiredDuringSchedulingIgnoredDuringExecution") {
            let at = format!("{at}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
            let terms = items(required, "nodeSelectorTerms");
            if terms.is_empty() {
                out.push(Problem::required_because(
                    at.clone(),
                    "must have at least one node selector term",
                ));
            }
            for (i, term) in terms.iter().enumerate() {
                node_selector_term(term, &format!("{at}[{i}]"), out);
            }
        }
        let at = format!("{at}.preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in items(node, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            weight(term, &format!("{at}[{i}]"), out);
            node_selector_term(
                term.get("preference").unwrap_or(&Value::Null),
                &format!("{at}[{i}].preference"),
                out,
            );
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pods) = present(affinity, kind) else { continue };
        let at = format!("{at}.{kind}");
        let required = "requiredDuringSchedulingIgnoredDuringExecution";
        for (i, term) in items(pods, required).iter().enumerate() {
            pod_affinity_term(term, &format!("{at}.{required}[{i}]"), out);
        }
        let preferred = "preferredDuringSchedulingIgnoredDuringExecution";
        for (i, term) in items(pods, preferred).iter().enumerate() {
            let at = format!("{at}.{preferred}[{i}]");
            weight(term, &at, out);
            pod_affinity_term(
                term.get("podAffinityTerm").unwrap_or(&Value::Null),
                &format!("{at}.podAffinityTerm"),
                out,
            );
        }
    }
}

fn weight(term: &Value, at: &str, out: &mut Vec<Problem>) {
    let weight = term.get("weight").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=100).contains(&weight) {
        out.push(Problem::invalid(
            format!("{at}.weight"),
            &weight.to_string(),
            "must be in the range 1-100",
        ));
    }
}

fn node_selector_term(term: &Value, at: &str, out: &mut Vec<Problem>) {
    for (j, requirement) in items(term, "matchExpressions").iter().enumerate() {
        let at = format!("{at}.matchExpressions[{j}]");
        let values = items(requirement, "values").len();
        match text(requirement, "operator") {
            "In" | "NotIn" if values == 0 => out.push(Problem::required_because(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if values > 0 => out.push(Problem::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" if values != 1 => out.push(Problem::required_because(
                format!("{at}.values"),
                "must be specified single value when `operator` is 'Lt' or 'Gt'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            other => out.push(Problem::invalid(
                format!("{at}.operator"),
                &format!("{other:?}"),
                "not a valid selector operator",
            )),
        }
        let key = text(requirement, "key");
        super::invalid_each(&format!("{at}.key"), key, super::qualified_name_problems(key), out);
    }
    // Node field selectors (`ValidateNodeFieldSelectorRequirement`): `metadata.name` only,
    // `In` or `NotIn` one node name.
    for (j, requirement) in items(term, "matchFields").iter().enumerate() {
        let at = format!("{at}.matchFields[{j}]");
        let values = items(requirement, "values");
        match text(requirement, "operator") {
            "In" | "NotIn" if values.len() != 1 => out.push(Problem::required_because(
                format!("{at}.values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            )),
            "In" | "NotIn" => {}
            other => out.push(Problem::invalid(
                format!("{at}.operator"),
                &format!("{other:?}"),
                "not a valid selector operator",
            )),
        }
        match text(requirement, "key") {
            "metadata.name" => {
                for (i, value) in values.iter().enumerate() {
                    let value = value.as_str().unwrap_or_default();
                    super::subdomain(&format!("{at}.values[{i}]"), value, out);
                }
            }
            other => out.push(Problem::invalid(
                format!("{at}.key"),
                &format!("{other:?}"),
                "not a valid field selector key",
            )),
        }
    }
}

/// The strings of a list field (non-strings read as "").
fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    items(v, key).iter().map(|x| x.as_str().unwrap_or_default()).collect()
}

/// `validatePodAffinityTerm`: its label and namespace selectors, namespaces, label keys, and
/// topology key.
fn pod_affinity_term(term: &Value, at: &str, out: &mut Vec<Problem>) {
    let selector = present(term, "labelSelector");
    super::label_selector(selector, &format!("{at}.labelSelector"), out);
    super::label_selector(
        present(term, "namespaceSelector"),
        &format!("{at}.namespaceSelector"),
        out,
    );
    for namespace in strings(term, "namespaces") {
        for p in purchase_guard_crd_validation::validate_dns1123_label(namespace) {
            // kube-apiserver names the field `namespace`.
            out.push(Problem::invalid(
                format!("{at}.namespace"),
                &format!("{namespace:?}"),
                &p,
            ));
        }
    }
    // `validateMatchLabelKeysAndMismatchLabelKeys`, after the keys joined the selector.
    let (matching, mismatching) = (strings(term, "matchLabelKeys"), strings(term, "mismatchLabelKeys"));
    for (field, keys) in [("matchLabelKeys", &matching), ("mismatchLabelKeys", &mismatching)] {
        label_keys(keys, selector, &format!("{at}.{field}"), out);
    }
    if let Some(selector) = selector {
        // A key in `matchLabelKeys` (its last place there) that the selector names twice.
        let place: std::collections::HashMap<&str, usize> = matching.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut seen: HashSet<&str> = selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for requirement in items(selector, "matchExpressions") {
            let key = text(requirement, "key");
            if let Some(i) = place.get(key)
                && seen.contains(key)
            {
                // kube-apiserver puts the index after the term's own path.
                out.push(Problem::invalid(
                    format!("{at}[{i}]"),
                    &format!("{key:?}"),
                    "exists in both matchLabelKeys and labelSelector",
                ));
            }
            seen.insert(key);
        }
    }
    for (i, key) in matching.iter().enumerate() {
        if mismatching.contains(key) {
            out.push(Problem::invalid(
                format!("{at}.matchLabelKeys[{i}]"),
                &format!("{key:?}"),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    let key = text(term, "topologyKey");
    if key.is_empty() {
        out.push(Problem::required_because(
            format!("{at}.topologyKey"),
            "can not be empty",
        ));
    }
    super::invalid_each(
        &format!("{at}.topologyKey"),
        key,
        super::qualified_name_problems(key),
        out,
    );
}

/// Label keys a term or constraint takes from the Pod's labels: only beside a label selector,
/// each a label name.
fn label_keys(keys: &[&str], selector: Option<&Value>, at: &str, out: &mut Vec<Problem>) {
    if keys.is_empty() {
        return;
    }
    if selector.is_none() {
        out.push(Problem::forbidden(
            at,
            "must not be specified when labelSelector is not set",
        ));
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        super::invalid_each(&format!("{at}[{i}]"), key, super::qualified_name_problems(key), out);
    }
}

/// A pod's topology spread constraints (`validateTopologySpreadConstraints` of 1.33).
pub fn topology_spread(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    let constraints = items(spec, "topologySpreadConstraints");
    let at = format!("{path}.topologySpreadConstraints");
    for (i, constraint) in constraints.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let skew = constraint.get("maxSkew").and_then(Value::as_i64).unwrap_or(0);
        if skew <= 0 {
            out.push(Problem::invalid(
                format!("{at}.maxSkew"),
                &skew.to_string(),
                "must be greater than zero",
            ));
        }
        let key = text(constraint, "topologyKey");
        if key.is_empty() {
            out.push(Problem::required_because(
                format!("{at}.topologyKey"),
                "can not be empty",
            ));
        }
        let action = text(constraint, "whenUnsatisfiable");
        if !matches!(action, "DoNotSchedule" | "ScheduleAnyway") {
            out.push(Problem::not_supported(
                format!("{at}.whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        // The pair (topology key, action) names one kind of constraint: once.
        let repeated = constraints[i + 1..]
            .iter()
            .any(|other| text(other, "topologyKey") == key && text(other, "whenUnsatisfiable") == action);
        if repeated {
            out.push(Problem::duplicate(
                format!("{at}.{{topologyKey, whenUnsatisfiable}}"),
                &format!("{{{key}, {action}}}"),
            ));
        }
        if let Some(domains) = present(constraint, "minDomains") {
            let domains = domains.as_i64().unwrap_or(0);
            if domains <= 0 {
                out.push(Problem::invalid(
                    format!("{at}.minDomains"),
                    &domains.to_string(),
                    "must be greater than zero",
                ));
            }
            if action != "DoNotSchedule" {
                out.push(Problem::invalid(
                    format!("{at}.minDomains"),
                    &domains.to_string(),
                    &format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"),
                ));
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(value) = present(constraint, policy) {
                let value = value.as_str().unwrap_or_default();
                if !matches!(value, "Honor" | "Ignore") {
                    out.push(Problem::not_supported(
                        format!("{at}.{policy}"),
                        value,
                        &["Honor", "Ignore"],
                    ));
                }
            }
        }
        // `validateMatchLabelKeysInTopologySpread`: keys beside a label selector, not in it.
        let selector = present(constraint, "labelSelector");
        let keys = strings(constraint, "matchLabelKeys");
        if !keys.is_empty() {
            let at = format!("{at}.matchLabelKeys");
            let mut in_selector: HashSet<&str> = HashSet::new();
            match selector {
                Some(s) => {
                    if let Some(labels) = s.get("matchLabels").and_then(Value::as_object) {
                        in_selector.extend(labels.keys().map(String::as_str));
                    }
                    in_selector.extend(items(s, "matchExpressions").iter().map(|r| text(r, "key")));
                }
                None => out.push(Problem::forbidden(
                    at.clone(),
                    "must not be specified when labelSelector is not set",
                )),
            }
            for (i, key) in keys.iter().enumerate() {
                super::invalid_each(&format!("{at}[{i}]"), key, super::qualified_name_problems(key), out);
                if in_selector.contains(key) {
                    out.push(Problem::invalid(
                        format!("{at}[{i}]"),
                        &format!("{key:?}"),
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        super::label_selector(selector, &format!("{at}.labelSelector"), out);
    }
}
