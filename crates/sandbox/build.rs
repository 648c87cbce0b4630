//! Generates the sandbox's protobuf decoding tables from two crates it builds with:
//!
//! - `k8s-pb` (the kube-rs org's prost bindings of kube-apiserver's `generated.proto`): every
//!   message, its fields' numbers, wire types, message types, and which kinds and API
//!   versions the messages are;
//! - `k8s-openapi` (the JSON side): each type's JSON field names, which a protobuf field name
//!   does not always give back (`podIP` becomes `pod_ip`, `$ref` becomes `ref`).
//!
//! Neither crate exposes this at run time (prost keeps field numbers in derive attributes), so
//! this script reads their sources from where Cargo unpacked them and writes
//! `$OUT_DIR/protobuf_tables.rs`: static tables `src/protobuf.rs` decodes any message with.
//! Nothing is copied from either crate but names and numbers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The k8s-pb release the tables come from; the build-dependency pins the same one.
const K8S_PB: &str = "k8s-pb-0.9.0";
/// The k8s-openapi release and Kubernetes version used when its build script says nothing.
const K8S_OPENAPI: &str = "k8s-openapi-0.29.0";
const K8S_OPENAPI_VERSION_DIR: &str = "v1_33";

/// The k8s-openapi release this build links and the directory of the Kubernetes version it
/// enables: its build script publishes the version (`links = "k8s-openapi-X.Y.Z"`,
/// `DEP_K8S_OPENAPI_X.Y.Z_VERSION` = 0x0001MM00 for 1.MM).
fn k8s_openapi() -> (String, String) {
    for (name, value) in std::env::vars() {
        let Some(release) = name
            .strip_prefix("DEP_K8S_OPENAPI_")
            .and_then(|n| n.strip_suffix("_VERSION"))
        else {
            continue;
        };
        let Ok(version) = value.parse::<u32>() else { continue };
        let release = release.replace('_', ".");
        return (
            format!("k8s-openapi-{release}"),
            format!("v1_{}", (version >> 8) & 0xff),
        );
    }
    (K8S_OPENAPI.into(), K8S_OPENAPI_VERSION_DIR.into())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let pb = crate_source(K8S_PB, "k8s-pb");
    let (release, version_dir) = k8s_openapi();
    let openapi = crate_source(&release, "k8s-openapi").join(&version_dir);
    let json_names = read_openapi(&openapi);
    let mut messages = Vec::new();
    let mut resources = Vec::new();
    read_pb_dir(&pb, &pb, &mut messages, &mut resources);
    messages.sort_by(|a, b| (&a.package, &a.name).cmp(&(&b.package, &b.name)));
    let out = render(&messages, &resources, &json_names);
    let path = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by Cargo")).join("protobuf_tables.rs");
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The `src` directory of a registry crate: first where Cargo unpacks crates.io packages,
/// then wherever `cargo metadata` says (vendored or other registries).
fn crate_source(dir_prefix: &str, package: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        let mut found: Vec<PathBuf> = std::fs::read_dir(home.join("registry").join("src"))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(dir_prefix))
                    && p.join("src").is_dir()
            })
            .collect();
        found.sort();
        if let Some(dir) = found.pop() {
            return dir.join("src");
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by Cargo")).join("Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cannot run cargo metadata");
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "cargo metadata printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == package)
        .filter_map(|p| p["manifest_path"].as_str())
        .filter(|m| {
            Path::new(m)
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(dir_prefix))
        })
        .map(|m| Path::new(m).parent().expect("a manifest is in a directory").join("src"))
        .next()
        .unwrap_or_else(|| panic!("the sources of {package} ({dir_prefix}*) were not found"))
}

/// k8s-openapi: for each type (its module directory and its name in lower case), the JSON
/// name of each field, keyed by the field name with no separators, in lower case.
type JsonNames = HashMap<(String, String), HashMap<String, String>>;

fn squash(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn read_openapi(root: &Path) -> JsonNames {
    let mut out = JsonNames::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let Some(name) = text.lines().find_map(|l| l.strip_prefix("pub struct ")) else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let package = relative(root, path.parent().expect("a file is in a directory"));
            let mut fields = HashMap::new();
            for line in text.lines() {
                let line = line.trim();
                let Some(rest) = line.strip_prefix('"') else { continue };
                let Some((json, key)) = rest.split_once("\" => Field::Key_") else {
                    continue;
                };
                let key = key.trim_end_matches(',');
                fields.insert(squash(key), json.to_string());
                fields.insert(squash(json), json.to_string());
            }
            out.insert((package, name.to_ascii_lowercase()), fields);
        }
    }
    out
}

fn relative(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root)
        .expect("under the root")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[derive(Debug)]
enum Ty {
    Scalar(&'static str),
    Message(String, String),
    Map(&'static str),
    MapMessage(String, String),
}

#[derive(Debug)]
struct PbField {
    tag: u32,
    name: String,
    repeated: bool,
    ty: Ty,
}

#[derive(Debug)]
struct PbMessage {
    package: String,
    name: String,
    fields: Vec<PbField>,
}

fn read_pb_dir(
    root: &Path,
    dir: &Path,
    messages: &mut Vec<PbMessage>,
    resources: &mut Vec<(String, String, String, String)>,
) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_pb_dir(root, &path, messages, resources);
        } else if path.file_name().and_then(|n| n.to_str()) == Some("mod.rs") {
            let package = relative(root, dir);
            if package.is_empty() || package.starts_with("metrics") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            read_pb_module(&package, &text, messages, resources);
        }
    }
}

/// Resolves a Rust type path as written in module `package` to (package, struct name).
fn resolve(package: &str, path: &str) -> (String, String) {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let name = segments.pop().expect("a path has a last segment").to_string();
    let mut module: Vec<&str> = if segments.first() == Some(&"crate") {
        segments.remove(0);
        Vec::new()
    } else {
        package.split('/').collect()
    };
    for s in segments {
        if s == "super" {
            module.pop();
        } else {
            module.push(s);
        }
    }
    (module.join("/"), name)
}

/// The innermost type of `Option<..>`, `Vec<..>`, `Box<..>` or a map's value.
fn inner_type(ty: &str) -> String {
    let mut t = ty.trim().trim_end_matches(',').to_string();
    loop {
        // rustfmt leaves a trailing comma after a type argument it put on its own line.
        t = t.trim().trim_end_matches(',').to_string();
        let Some(open) = t.find('<') else { return t };
        let head = &t[..open];
        let body = t[open + 1..]
            .trim_end()
            .strip_suffix('>')
            .unwrap_or(&t[open + 1..])
            .to_string();
        if head.ends_with("BTreeMap") || head.ends_with("HashMap") {
            let mut depth = 0;
            let split = body
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '<' => depth += 1,
                        '>' => depth -= 1,
                        ',' if depth == 0 => return true,
                        _ => {}
                    }
                    false
                })
                .map(|(i, _)| i)
                .expect("a map type has two arguments");
            t = body[split + 1..].trim().to_string();
        } else {
            t = body;
        }
    }
}

fn scalar(word: &str) -> Option<&'static str> {
    Some(match word {
        "string" => "Str",
        "bytes" => "Bytes",
        "int32" => "I32",
        "int64" => "I64",
        "bool" => "Bool",
        "double" => "F64",
        _ => return None,
    })
}

fn read_pb_module(
    package: &str,
    text: &str,
    messages: &mut Vec<PbMessage>,
    resources: &mut Vec<(String, String, String, String)>,
) {
    let lines: Vec<&str> = text.lines().collect();
    let mut current: Option<PbMessage> = None;
    let mut i = 0;
    let mut api_version = None;
    let mut resource_of = String::new();
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if rest.trim_end().ends_with('{') {
                current = Some(PbMessage {
                    package: package.to_string(),
                    name,
                    fields: Vec::new(),
                });
            } else {
                messages.push(PbMessage {
                    package: package.to_string(),
                    name,
                    fields: Vec::new(),
                });
            }
        } else if line == "}" {
            if let Some(m) = current.take() {
                messages.push(m);
            }
        } else if let Some(attr) = line.trim().strip_prefix("#[prost(").and_then(|a| a.strip_suffix(")]")) {
            let message = current
                .as_mut()
                .unwrap_or_else(|| panic!("{package}: a field outside a struct: {line}"));
            // The field's declaration follows, possibly over several lines.
            let mut decl = String::new();
            let mut depth = 0i32;
            loop {
                i += 1;
                let l = lines[i].trim();
                decl.push_str(l);
                depth += l.matches('<').count() as i32 - l.matches('>').count() as i32;
                if depth <= 0 && l.ends_with(',') {
                    break;
                }
            }
            let (name, ty) = decl
                .strip_prefix("pub ")
                .and_then(|d| d.split_once(':'))
                .unwrap_or_else(|| panic!("{package}: unexpected field declaration {decl}"));
            let name = name.trim().trim_start_matches("r#").to_string();
            let parts: Vec<&str> = attr.split(", ").collect();
            let tag: u32 = parts
                .iter()
                .find_map(|p| p.strip_prefix("tag = \""))
                .and_then(|t| t.trim_end_matches('"').parse().ok())
                .unwrap_or_else(|| panic!("{package}: no tag in {attr}"));
            let repeated = parts.contains(&"repeated");
            let first = parts[0];
            let ty = if let Some(map) = attr
                .strip_prefix("btree_map = \"")
                .or_else(|| attr.strip_prefix("map = \""))
            {
                let (_, value) = map
                    .split_once('"')
                    .map(|(kv, _)| kv)
                    .and_then(|kv| kv.split_once(", "))
                    .expect("map key, value");
                if value == "message" {
                    let (p, n) = resolve(package, &inner_type(ty));
                    Ty::MapMessage(p, n)
                } else {
                    Ty::Map(scalar(value).unwrap_or_else(|| panic!("{package}: map value {value}")))
                }
            } else if first == "message" {
                let (p, n) = resolve(package, &inner_type(ty));
                Ty::Message(p, n)
            } else {
                let word = first.split(" = ").next().unwrap_or(first);
                Ty::Scalar(scalar(word).unwrap_or_else(|| panic!("{package}: field type {attr}")))
            };
            message.fields.push(PbField {
                tag,
                name,
                repeated,
                ty,
            });
        } else if let Some(rest) = line.strip_prefix("impl crate::Resource for ") {
            api_version = None;
            resource_of = rest.trim_end_matches(" {").to_string();
        } else if let Some(v) = line.trim().strip_prefix("const API_VERSION: &'static str = \"") {
            api_version = Some(v.trim_end_matches("\";").to_string());
        } else if let Some(k) = line.trim().strip_prefix("const KIND: &'static str = \"") {
            let kind = k.trim_end_matches("\";").to_string();
            if let Some(v) = api_version.take() {
                resources.push((v, kind, package.to_string(), std::mem::take(&mut resource_of)));
            }
        }
        i += 1;
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn lower_camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How a message reads in JSON when it is not an object of its fields.
fn special(package: &str, name: &str) -> &'static str {
    match (package, name) {
        ("apimachinery/pkg/apis/meta/v1", "Time") => "Time",
        ("apimachinery/pkg/apis/meta/v1", "MicroTime") => "MicroTime",
        ("apimachinery/pkg/apis/meta/v1", "Duration") => "Duration",
        ("apimachinery/pkg/apis/meta/v1", "ObjectMeta") => "ObjectMeta",
        ("apimachinery/pkg/apis/meta/v1", "FieldsV1") | ("apimachinery/pkg/runtime", "RawExtension") => "RawJson",
        ("apimachinery/pkg/util/intstr", "IntOrString") => "IntOrString",
        ("apimachinery/pkg/api/resource", "Quantity") => "Quantity",
        (p, "Json") if p.starts_with("apiextensions_apiserver/") => "RawJson",
        (p, "JsonSchemaPropsOrArray" | "JsonSchemaPropsOrBool" | "JsonSchemaPropsOrStringArray")
            if p.starts_with("apiextensions_apiserver/") =>
        {
            "Either"
        }
        (_, "ExtraValue") => "Items",
        _ => "None",
    }
}

fn render(messages: &[PbMessage], resources: &[(String, String, String, String)], json_names: &JsonNames) -> String {
    let index: HashMap<(&str, &str), usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.package.as_str(), m.name.as_str()), i))
        .collect();
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    for fields in json_names.values() {
        for (k, v) in fields {
            global.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let lookup = |p: &str, n: &str| -> usize {
        *index
            .get(&(p, n))
            .unwrap_or_else(|| panic!("message {p}/{n} is referred to but not declared"))
    };
    let mut out = String::from("// Generated by build.rs from the k8s-pb and k8s-openapi sources.\n\n");
    out.push_str("pub(crate) static MESSAGES: &[Message] = &[\n");
    for m in messages {
        let own = json_names.get(&(m.package.clone(), m.name.to_ascii_lowercase()));
        write!(
            out,
            "    Message {{ package: {:?}, name: {:?}, special: Special::{}, fields: &[",
            m.package,
            m.name,
            special(&m.package, &m.name)
        )
        .unwrap();
        let mut fields: Vec<&PbField> = m.fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        for f in fields {
            let key = squash(&f.name);
            let own_name = own.and_then(|o| o.get(&key));
            let known = own_name.or_else(|| global.get(&key));
            let ty = match &f.ty {
                Ty::Scalar(s) => (*s).to_string(),
                Ty::Message(p, n) => format!("Msg({})", lookup(p, n)),
                Ty::Map(s) => format!("Map{s}"),
                Ty::MapMessage(p, n) => format!("MapMsg({})", lookup(p, n)),
            };
            // A Go struct embedded with `json:",inline"` (Volume's VolumeSource) is a protobuf
            // field named after its type whose fields JSON shows in the parent.
            let unnamed = if own.is_some() {
                own_name.is_none()
            } else {
                known.is_none()
            };
            let inline = unnamed && matches!(&f.ty, Ty::Message(_, n) if snake(n) == f.name);
            let json = known.cloned().unwrap_or_else(|| lower_camel(&f.name));
            write!(
                out,
                "Field {{ tag: {}, json: {:?}, ty: Ty::{ty}, repeated: {}, inline: {inline} }}, ",
                f.tag, json, f.repeated
            )
            .unwrap();
        }
        out.push_str("] },\n");
    }
    out.push_str("];\n\n/// (apiVersion, kind, message index) of every kind k8s-pb declares as a resource.\n");
    out.push_str("pub(crate) static RESOURCES: &[(&str, &str, usize)] = &[\n");
    let mut sorted: Vec<_> = resources.iter().filter(|r| !r.3.is_empty()).collect();
    sorted.sort();
    sorted.dedup();
    for (api_version, kind, package, name) in sorted {
        writeln!(out, "    ({api_version:?}, {kind:?}, {}),", lookup(package, name)).unwrap();
    }
    out.push_str("];\n");
    out
}
