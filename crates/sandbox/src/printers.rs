//! The columns kube-apiserver's table printers show for common built-in kinds (between NAME
//! and AGE unless an `Age` column says where it goes), as `kubectl get` prints them.

use crate::registry::Column;
use serde_json::Value;

fn text(o: &Value, pointer: &str) -> String {
    o.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn or_none(s: String) -> Value {
    Value::String(if s.is_empty() { "<none>".into() } else { s })
}

fn count_keys(o: &Value, pointers: &[&str]) -> Value {
    let n: usize = pointers
        .iter()
        .filter_map(|p| o.pointer(p).and_then(Value::as_object))
        .map(|m| m.len())
        .sum();
    Value::from(n as i64)
}

fn strings(o: &Value, pointer: &str) -> Vec<String> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `PORT(S)` of a Service: `80/TCP`, `80:30080/TCP` with a node port.
fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let protocol = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(node) => format!("{}:{node}/{protocol}", p["port"]),
                        None => format!("{}/{protocol}", p["port"]),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    or_none(ports.join(","))
}

/// The addresses of a load balancer's ingress points (IPs or host names).
fn load_balancer(o: &Value) -> Vec<String> {
    o.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `EXTERNAL-IP` of a Service.
fn external_ip(o: &Value) -> Value {
    let mut ips = strings(o, "/spec/externalIPs");
    if o.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
        let ingress = load_balancer(o);
        if ingress.is_empty() && ips.is_empty() {
            return Value::String("<pending>".into());
        }
        ips.extend(ingress);
    }
    or_none(ips.join(","))
}

/// Access modes as kubectl abbreviates them.
fn access_modes(o: &Value, pointer: &str) -> Value {
    let short: Vec<&str> = strings(o, pointer)
        .iter()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            _ => "",
        })
        .filter(|s| !s.is_empty())
        .collect();
    Value::String(short.join(","))
}

fn c(name: &str, type_: &str, description: &str, cell: fn(&Value) -> Value) -> Column {
    Column::printed(name, type_, description, cell)
}

/// The columns of a built-in resource, when kube-apiserver prints more than NAME and AGE.
pub fn columns(group: &str, plural: &str) -> Option<Vec<Column>> {
    Some(match (group, plural) {
        ("", "namespaces") => vec![c("Status", "string", "The status of the namespace", |o| {
            Value::String(text(o, "/status/phase"))
        })],
        ("", "configmaps") => vec![c("Data", "string", "Number of data entries", |o| {
            count_keys(o, &["/data", "/binaryData"])
        })],
        ("", "secrets") => vec![
            c("Type", "string", "The type of the secret", |o| {
                let t = text(o, "/type");
                Value::String(if t.is_empty() { "Opaque".into() } else { t })
            }),
            c("Data", "string", "Number of data entries", |o| {
                count_keys(o, &["/data"])
            }),
        ],
        ("", "serviceaccounts") => vec![c("Secrets", "string", "Number of secrets", |o| {
            Value::from(o.pointer("/secrets").and_then(Value::as_array).map_or(0, Vec::len) as i64)
        })],
        ("", "services") => vec![
            c("Type", "string", "The type of the service", |o| {
                let t = text(o, "/spec/type");
                Value::String(if t.is_empty() { "ClusterIP".into() } else { t })
            }),
            c("Cluster-IP", "string", "The cluster IP of the service", |o| {
                or_none(text(o, "/spec/clusterIP"))
            }),
            c("External-IP", "string", "The external IP of the service", external_ip),
            c("Port(s)", "string", "The ports of the service", service_ports),
        ],
        ("coordination.k8s.io", "leases") => vec![c("Holder", "string", "The holder of the lease", |o| {
            Value::String(text(o, "/spec/holderIdentity"))
        })],
        ("", "persistentvolumeclaims") => vec![
            c("Status", "string", "The phase of the claim", |o| {
                Value::String(text(o, "/status/phase"))
            }),
            c("Volume", "string", "The volume bound to the claim", |o| {
                Value::String(text(o, "/spec/volumeName"))
            }),
            c("Capacity", "string", "The capacity of the volume", |o| {
                Value::String(text(o, "/status/capacity/storage"))
            }),
            c("Access Modes", "string", "The access modes of the volume", |o| {
                access_modes(o, "/status/accessModes")
            }),
            c("StorageClass", "string", "The storage class of the claim", |o| {
                Value::String(text(o, "/spec/storageClassName"))
            }),
            c("VolumeAttributesClass", "string", "The volume attributes class", |o| {
                let class = text(o, "/spec/volumeAttributesClassName");
                Value::String(if class.is_empty() { "<unset>".into() } else { class })
            }),
        ],
        ("networking.k8s.io", "ingresses") => vec![
            c("Class", "string", "The ingress class", |o| {
                or_none(text(o, "/spec/ingressClassName"))
            }),
            c("Hosts", "string", "The hosts of the rules", |o| {
                let hosts: Vec<String> = o
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .map(|r| r["host"].as_str().unwrap_or("*").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                Value::String(if hosts.is_empty() { "*".into() } else { hosts.join(",") })
            }),
            c("Address", "string", "The addresses of the load balancer", |o| {
                let ips = load_balancer(o);
                Value::String(ips.join(","))
            }),
            c("Ports", "string", "The ports served", |o| {
                let tls = o
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty());
                Value::String(if tls { "80, 443".into() } else { "80".into() })
            }),
        ],
        ("autoscaling", "horizontalpodautoscalers") => vec![
            c("Reference", "string", "The scale target", |o| {
                Value::String(format!(
                    "{}/{}",
                    text(o, "/spec/scaleTargetRef/kind"),
                    text(o, "/spec/scaleTargetRef/name")
                ))
            }),
            c("Targets", "string", "The metrics' current and target values", |o| {
                let metrics = o
                    .pointer("/spec/metrics")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if metrics.is_empty() {
                    return Value::String("<none>".into());
                }
                let shown: Vec<String> = metrics
                    .iter()
                    .map(|m| {
                        let name = m.pointer("/resource/name").and_then(Value::as_str).unwrap_or("metric");
                        let target = match m.pointer("/resource/target/averageUtilization").and_then(Value::as_i64) {
                            Some(p) => format!("{p}%"),
                            None => "<unknown>".into(),
                        };
                        format!("{name}: <unknown>/{target}")
                    })
                    .collect();
                Value::String(shown.join(", "))
            }),
            c("MinPods", "string", "The lower limit of replicas", |o| {
                Value::from(o.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1))
            }),
            c("MaxPods", "string", "The upper limit of replicas", |o| {
                Value::from(o.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(0))
            }),
            c("Replicas", "string", "The current replicas", |o| {
                Value::from(
                    o.pointer("/status/currentReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                )
            }),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            c("Min Available", "string", "The minimum number of Pods available", |o| {
                int_or_string(o, "/spec/minAvailable")
            }),
            c(
                "Max Unavailable",
                "string",
                "The maximum number of Pods unavailable",
                |o| int_or_string(o, "/spec/maxUnavailable"),
            ),
            c("Allowed Disruptions", "integer", "How many Pods may go now", |o| {
                Value::from(
                    o.pointer("/status/disruptionsAllowed")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                )
            }),
            Column::age(),
        ],
        ("scheduling.k8s.io", "priorityclasses") => vec![
            c("Value", "integer", "The priority", |o| {
                Value::from(o.pointer("/value").and_then(Value::as_i64).unwrap_or(0))
            }),
            c(
                "Global-Default",
                "boolean",
                "Whether this is the default priority",
                |o| Value::Bool(o.pointer("/globalDefault").and_then(Value::as_bool).unwrap_or(false)),
            ),
            Column::age(),
            c("PreemptionPolicy", "string", "The preemption policy", |o| {
                let p = text(o, "/preemptionPolicy");
                Value::String(if p.is_empty() { "PreemptLowerPriority".into() } else { p })
            }),
        ],
        ("storage.k8s.io", "storageclasses") => vec![
            c("Provisioner", "string", "The provisioner", |o| {
                Value::String(text(o, "/provisioner"))
            }),
            c("ReclaimPolicy", "string", "The reclaim policy", |o| {
                let p = text(o, "/reclaimPolicy");
                Value::String(if p.is_empty() { "Delete".into() } else { p })
            }),
            c("VolumeBindingMode", "string", "The volume binding mode", |o| {
                let m = text(o, "/volumeBindingMode");
                Value::String(if m.is_empty() { "Immediate".into() } else { m })
            }),
            c("AllowVolumeExpansion", "boolean", "Whether volumes may grow", |o| {
                Value::Bool(
                    o.pointer("/allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            }),
        ],
        ("batch", "cronjobs") => vec![
            c("Schedule", "string", "The schedule", |o| {
                Value::String(text(o, "/spec/schedule"))
            }),
            c("Timezone", "string", "The time zone", |o| {
                or_none(text(o, "/spec/timeZone"))
            }),
            c("Suspend", "boolean", "Whether the schedule is suspended", |o| {
                Value::Bool(o.pointer("/spec/suspend").and_then(Value::as_bool).unwrap_or(false))
            }),
            c("Active", "integer", "The running jobs", |o| {
                Value::from(
                    o.pointer("/status/active")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len) as i64,
                )
            }),
            c("Last Schedule", "date", "When a job was last scheduled", |o| {
                o.pointer("/status/lastScheduleTime").cloned().unwrap_or(Value::Null)
            }),
        ],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            vec![c("Role", "string", "The role bound", |o| {
                Value::String(format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name")))
            })]
        }
        _ => return None,
    })
}

/// An int-or-string field as text, `N/A` when unset (as kubectl's printers show it).
fn int_or_string(o: &Value, pointer: &str) -> Value {
    match o.pointer(pointer) {
        Some(Value::Number(n)) => Value::String(n.to_string()),
        Some(Value::String(s)) => Value::String(s.clone()),
        _ => Value::String("N/A".into()),
    }
}
