//! Services as kube-apiserver's registry keeps them: a cluster IP from the service range
//! (10.96.0.0/12, kind's) and node ports from 30000-32767, each held by one Service at a
//! time; an update that leaves them out keeps them, a change of type allocates what the new
//! type needs and drops what only the old one had.

use super::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// The cluster IPs and node ports given to Service writes on their way to the store (through
/// validation and admission webhooks), by write: no other Service gets them meanwhile.
#[derive(Default)]
pub(super) struct Reservations {
    held: Arc<std::sync::Mutex<HashMap<u64, Held>>>,
    next: AtomicU64,
}

/// What one write holds: its Service (`namespace/name`), addresses and node ports.
struct Held {
    owner: String,
    ips: Vec<String>,
    ports: Vec<u64>,
}

/// A write's reservation, given back when the write is stored or fails (dropped).
pub(super) struct Reserved {
    held: Arc<std::sync::Mutex<HashMap<u64, Held>>>,
    id: u64,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// The service range, 10.96.0.0/12: its first address and its size.
const RANGE_START: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const RANGE_SIZE: u32 = 1 << 20;
const RANGE_TEXT: &str = "10.96.0.0/12";
const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

fn kind(spec: &Value) -> &str {
    spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

fn needs_cluster_ip(spec: &Value) -> bool {
    kind(spec) != "ExternalName"
}

fn needs_node_ports(spec: &Value) -> bool {
    match kind(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec.get("allocateLoadBalancerNodePorts").and_then(Value::as_bool) != Some(false),
        _ => false,
    }
}

fn cluster_ip(spec: &Value) -> &str {
    spec.get("clusterIP").and_then(Value::as_str).unwrap_or_default()
}

fn ports(spec: &Value) -> &[Value] {
    spec.get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The port of `old` a port of an update stands for: the same port number and protocol.
fn same_port<'a>(old: &'a Value, port: &Value) -> Option<&'a Value> {
    let protocol = |p: &Value| p.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_string();
    ports(old)
        .iter()
        .find(|o| o.get("port") == port.get("port") && protocol(o) == protocol(port))
}

/// The cluster IPs a Service holds (a headless one's `None` is no address).
fn held_ips(spec: &Value) -> impl Iterator<Item = &str> {
    spec.get("clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|ip| *ip != "None")
}

/// The node ports a Service holds.
fn held_ports(spec: &Value) -> impl Iterator<Item = u64> + '_ {
    ports(spec).iter().filter_map(|p| p["nodePort"].as_u64())
}

/// A spread-out first candidate, so that allocations do not all start at the range's start.
fn start(seed: &str, size: u64) -> u64 {
    seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) % size
}

impl ApiServer {
    /// The cluster IPs and node ports held by the stored Services other than `namespace/name`
    /// and by the writes of other Services under way (`reserved`).
    fn allocated(&self, namespace: &str, name: &str, reserved: &HashMap<u64, Held>) -> (HashSet<String>, HashSet<u64>) {
        let owner = format!("{namespace}/{name}");
        let mut ips = HashSet::new();
        let mut node_ports = HashSet::new();
        for held in reserved.values().filter(|h| h.owner != owner) {
            ips.extend(held.ips.iter().cloned());
            node_ports.extend(held.ports.iter().copied());
        }
        let inner = self.store.lock();
        for (key, svc) in inner.list("/services", None) {
            if key.namespace == namespace && key.name == name {
                continue;
            }
            let spec = svc.get("spec").unwrap_or(&Value::Null);
            ips.extend(held_ips(spec).map(str::to_string));
            node_ports.extend(held_ports(spec));
        }
        (ips, node_ports)
    }

    /// Fills in a Service's allocations before it is validated and stored: what an update
    /// (`old`) left out is kept, what only the old type needed is dropped, and the cluster IP
    /// and node ports its type needs are allocated. An address or port asked for that is
    /// taken or out of range is refused as kube-apiserver refuses it. What it hands out stays
    /// the Service's while the returned reservation lives: the caller keeps it until the
    /// write is stored or has failed.
    pub(super) fn allocate_service(
        &self,
        rt: &ResourceType,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> Result<Option<Reserved>, ApiError> {
        let namespace = svc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = svc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(spec) = svc.get_mut("spec").filter(|s| s.is_object()) else {
            return Ok(None);
        };
        let old_spec = old.and_then(|o| o.get("spec")).cloned().unwrap_or(Value::Null);
        if old.is_some() {
            carry_over(spec, &old_spec);
        }
        // Held from the look at what is taken to the reservation of what this write takes.
        let reservations = &self.service_reservations;
        let mut reserved = reservations.held.lock().unwrap_or_else(|p| p.into_inner());
        let (ips, taken_ports) = self.allocated(&namespace, &name, &reserved);
        let mut errors = Vec::new();
        if needs_cluster_ip(spec) {
            let asked = cluster_ip(spec).to_string();
            let ip = match asked.as_str() {
                "None" => Some(asked.clone()),
                "" => (0..RANGE_SIZE)
                    .map(|i| (start(&format!("{namespace}/{name}"), u64::from(RANGE_SIZE)) as u32 + i) % RANGE_SIZE)
                    // Neither the network's address nor the API server's own (10.96.0.1).
                    .filter(|offset| *offset > 1 && *offset < RANGE_SIZE - 1)
                    .map(|offset| std::net::Ipv4Addr::from(RANGE_START + offset).to_string())
                    .find(|ip| !ips.contains(ip)),
                _ if asked == cluster_ip(&old_spec) => Some(asked.clone()),
                _ => {
                    let problem = match asked.parse::<std::net::Ipv4Addr>() {
                        Err(_) => Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()),
                        Ok(ip) if u32::from(ip).wrapping_sub(RANGE_START) >= RANGE_SIZE => Some(format!(
                            "failed to allocate IP {asked}: the provided IP ({asked}) is not in the valid range. The range of valid IPs is {RANGE_TEXT}"
                        )),
                        Ok(_) if ips.contains(&asked) => Some(format!(
                            "failed to allocate IP {asked}: provided IP is already allocated"
                        )),
                        Ok(_) => None,
                    };
                    if let Some(p) = problem {
                        errors.push((
                            "spec.clusterIPs[0]".to_string(),
                            "FieldValueInvalid",
                            format!("Invalid value: {asked:?}: {p}"),
                        ));
                    }
                    Some(asked.clone())
                }
            };
            let Some(ip) = ip else {
                return Err(ApiError::internal("the service range is full"));
            };
            spec["clusterIP"] = json!(ip);
            if spec
                .get("clusterIPs")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                spec["clusterIPs"] = json!([ip]);
            }
            if spec.get("ipFamilies").is_none_or(Value::is_null) {
                spec["ipFamilies"] = json!(["IPv4"]);
            }
            if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
                spec["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        if needs_node_ports(spec) {
            let mut used = taken_ports;
            let keep: HashSet<u64> = held_ports(&old_spec).collect();
            let size = NODE_PORTS.end() - NODE_PORTS.start() + 1;
            let first = start(&format!("{namespace}/{name}/ports"), size);
            if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                // Ports asked for first, so that an allocated one never takes an asked one.
                for (i, port) in list.iter().enumerate() {
                    let Some(n) = port.get("nodePort").and_then(Value::as_u64).filter(|n| *n != 0) else {
                        continue;
                    };
                    let problem = if !NODE_PORTS.contains(&n) {
                        Some(format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            NODE_PORTS.start(),
                            NODE_PORTS.end()
                        ))
                    } else if used.contains(&n) && !keep.contains(&n) {
                        Some("provided port is already allocated".to_string())
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        errors.push((
                            format!("spec.ports[{i}].nodePort"),
                            "FieldValueInvalid",
                            format!("Invalid value: {n}: {p}"),
                        ));
                    }
                    used.insert(n);
                }
                for port in list.iter_mut() {
                    if port.get("nodePort").and_then(Value::as_u64).is_some_and(|n| n != 0) {
                        continue;
                    }
                    let Some(n) = (0..size)
                        .map(|i| NODE_PORTS.start() + (first + i) % size)
                        .find(|n| !used.contains(n))
                    else {
                        return Err(ApiError::internal("the node port range is full"));
                    };
                    used.insert(n);
                    port["nodePort"] = json!(n);
                }
            }
        }
        if !errors.is_empty() {
            return Err(super::write::invalid(rt, svc, errors));
        }
        let spec = svc.get("spec").unwrap_or(&Value::Null);
        let held = Held {
            owner: format!("{namespace}/{name}"),
            ips: held_ips(spec).map(str::to_string).collect(),
            ports: held_ports(spec).collect(),
        };
        let id = reservations.next.fetch_add(1, Ordering::Relaxed);
        reserved.insert(id, held);
        Ok(Some(Reserved {
            held: reservations.held.clone(),
            id,
        }))
    }
}

/// kube-apiserver's `patchAllocatedValues` and `dropTypeDependentFields`: the cluster IP,
/// families and node ports an update leaves out are the old ones while the type still needs
/// them; those the new type does not need go, unless the update set them anew.
fn carry_over(spec: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            let missing = match spec.get(field) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            };
            if missing && let Some(v) = old.get(field) {
                spec[field] = v.clone();
            }
        }
    }
    if needs_cluster_ip(old)
        && !needs_cluster_ip(spec)
        && cluster_ip(spec) == cluster_ip(old)
        && let Some(m) = spec.as_object_mut()
    {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            m.remove(field);
        }
    }
    let (keep, drop) = (
        needs_node_ports(old) && needs_node_ports(spec),
        needs_node_ports(old) && !needs_node_ports(spec),
    );
    if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in list.iter_mut() {
            let Some(was) = same_port(old, port).and_then(|o| o.get("nodePort")).cloned() else {
                continue;
            };
            let unset = port
                .get("nodePort")
                .is_none_or(|n| n.is_null() || n.as_u64() == Some(0));
            if keep && unset {
                port["nodePort"] = was;
            } else if drop
                && port.get("nodePort") == Some(&was)
                && let Some(p) = port.as_object_mut()
            {
                p.remove("nodePort");
            }
        }
    }
}
