//! openapi.yaml as a checker. Every answer a [`crate::TestApp`] serves goes through [`Contract::check`] before it
//! is sent, so the whole end-to-end suite checks the spec: the status must be declared for the operation, the
//! headers it declares `required` must be there, a JSON body must validate against the declared schema (formats
//! included), and an object must carry no member its schema does not declare. An answer with no operation is the
//! router's: 405 with an exact `Allow` (`#/components/responses/MethodNotAllowed`) on a known path, 404
//! (`#/components/responses/NoRoute`) elsewhere.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

/// The router's answer to a method a known path does not declare.
const METHOD_NOT_ALLOWED: &str = "/components/responses/MethodNotAllowed";
/// The router's answer to a path no operation has.
const NO_ROUTE: &str = "/components/responses/NoRoute";
/// The methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// openapi.yaml, loaded once, with the compiled schemas it has needed so far.
pub struct Contract {
    doc: Value,
    paths: Vec<SpecPath>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

struct SpecPath {
    template: String,
    /// `None` for a `{parameter}` segment.
    segments: Vec<Option<String>>,
    /// Lowercase, as the spec writes them.
    methods: Vec<String>,
}

impl SpecPath {
    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() == self.segments.len()
            && self.segments.iter().zip(&parts).all(|(segment, part)| match segment {
                Some(literal) => literal == part,
                None => !part.is_empty(),
            })
    }

    fn literal_segments(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }
}

/// The repository's openapi.yaml (the tests cannot run without it).
pub fn contract() -> &'static Result<Contract, String> {
    static CONTRACT: OnceLock<Result<Contract, String>> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let path = format!("{}/../openapi.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        Contract::from_yaml(&text)
    })
}

impl Contract {
    /// Reads a spec.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("openapi.yaml is not YAML: {e}"))?;
        let paths = doc["paths"]
            .as_object()
            .ok_or("openapi.yaml has no paths")?
            .iter()
            .map(|(template, item)| SpecPath {
                template: template.clone(),
                segments: template
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect(),
                methods: METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (*m).to_owned())
                    .collect(),
            })
            .collect();
        Ok(Self {
            doc,
            paths,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// Checks one answer: `Ok` names what it was checked against (`POST /v1/auth/login 200`), `Err` says how it
    /// drifted, with the request, the answer and every validation error.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Result<String, String> {
        let path = path.split('?').next().unwrap_or_default();
        let lower = method.to_ascii_lowercase();
        let matching: Vec<&SpecPath> = self.paths.iter().filter(|p| p.matches(path)).collect();
        // As the router and API Gateway do: the method picks among the templates, then the most literal wins.
        let operation = matching
            .iter()
            .filter(|p| p.methods.contains(&lower))
            .max_by_key(|p| p.literal_segments());
        let fail = |problems: Vec<String>| {
            let text = String::from_utf8_lossy(body);
            let shown: String = text.chars().take(2_000).collect();
            Err(format!(
                "{method} {path} answered {status}, which drifted from openapi.yaml:\n  - {}\n  body: {shown}",
                problems.join("\n  - ")
            ))
        };
        let (what, response_pointer) = match operation {
            Some(spec_path) => {
                let operation_pointer = format!("/paths/{}/{lower}", escape(&spec_path.template));
                let what = format!("{method} {} {status}", spec_path.template);
                match self.response_for(&operation_pointer, status) {
                    Some(pointer) => (what, pointer),
                    None => {
                        return fail(vec![format!(
                            "{status} is not a declared status of {method} {}",
                            spec_path.template
                        )])
                    }
                }
            }
            None if !matching.is_empty() => {
                let expected: BTreeSet<String> = matching
                    .iter()
                    .flat_map(|p| p.methods.iter().map(|m| m.to_ascii_uppercase()))
                    .collect();
                let mut problems = Vec::new();
                if status != 405 {
                    problems.push(format!("an undeclared method must answer 405, not {status}"));
                }
                let allow: BTreeSet<String> = headers
                    .get_all(hyper::header::ALLOW)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|m| m.trim().to_ascii_uppercase())
                    .filter(|m| !m.is_empty())
                    .collect();
                if allow != expected {
                    problems.push(format!(
                        "Allow is {allow:?}, the spec's methods for this path are {expected:?}"
                    ));
                }
                if !problems.is_empty() {
                    return fail(problems);
                }
                (format!("{method} (undeclared) 405"), self.resolve(METHOD_NOT_ALLOWED)?)
            }
            None => {
                if status != 404 {
                    return fail(vec![format!("a path without a route must answer 404, not {status}")]);
                }
                ("(no route) 404".to_owned(), self.resolve(NO_ROUTE)?)
            }
        };
        let problems = self.check_response(&response_pointer, method, headers, body);
        if problems.is_empty() {
            Ok(what)
        } else {
            fail(problems)
        }
    }

    /// The pointer to the response object the operation declares for `status`: exact, else `4XX`, else
    /// `default`, with `$ref`s followed.
    fn response_for(&self, operation_pointer: &str, status: u16) -> Option<String> {
        let responses = self.doc.pointer(&format!("{operation_pointer}/responses"))?;
        let key = [status.to_string(), format!("{}XX", status / 100), "default".to_owned()]
            .into_iter()
            .find(|key| responses.get(key).is_some())?;
        self.resolve(&format!("{operation_pointer}/responses/{key}")).ok()
    }

    /// Follows `$ref`s (local ones only: the spec has no other kind) from `pointer` to an object without one.
    fn resolve(&self, pointer: &str) -> Result<String, String> {
        let mut pointer = pointer.to_owned();
        for _ in 0..16 {
            let value = self
                .doc
                .pointer(&pointer)
                .ok_or_else(|| format!("openapi.yaml has nothing at #{pointer}"))?;
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => {
                    pointer = target
                        .strip_prefix('#')
                        .ok_or_else(|| format!("#{pointer}: only local references are supported, not {target}"))?
                        .to_owned();
                }
                None => return Ok(pointer),
            }
        }
        Err(format!("openapi.yaml: a reference cycle through #{pointer}"))
    }

    fn check_response(&self, pointer: &str, method: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(response) = self.doc.pointer(pointer) else {
            return vec![format!("openapi.yaml has nothing at #{pointer}")];
        };
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header_pointer = match self.resolve(&format!("{pointer}/headers/{}", escape(name))) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let declared = self.doc.pointer(&header_pointer).unwrap_or(header);
            match headers.get(name.as_str()).map(|v| v.to_str()) {
                None if declared["required"] == json!(true) => problems.push(format!("no {name} header")),
                None => {}
                Some(Err(_)) => problems.push(format!("the {name} header is not text")),
                Some(Ok(text)) => {
                    let value = match declared["schema"]["type"].as_str() {
                        Some("integer") => text.parse::<i64>().map(Value::from).unwrap_or(json!(text)),
                        _ => json!(text),
                    };
                    problems.extend(
                        self.validate(&format!("{header_pointer}/schema"), &value)
                            .into_iter()
                            .map(|e| format!("header {name}: {e}")),
                    );
                }
            }
        }
        let content = response["content"].as_object();
        if body.is_empty() {
            // A HEAD answer never has a body, whatever the method it stands for would send.
            if content.is_some_and(|c| !c.is_empty()) && method != "HEAD" {
                problems.push("an empty body where the spec declares one".to_owned());
            }
            return problems;
        }
        let Some(content) = content else {
            problems.push("a body where the spec declares none".to_owned());
            return problems;
        };
        let media = headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !content.contains_key(&media) {
            let declared: Vec<&String> = content.keys().collect();
            problems.push(format!(
                "Content-Type {media:?} is not one of the declared {declared:?}"
            ));
            return problems;
        }
        let is_json = media == "application/json" || media.ends_with("+json");
        if !is_json {
            return problems;
        }
        let instance: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("the body is not JSON: {e}"));
                return problems;
            }
        };
        let schema_pointer = format!("{pointer}/content/{}/schema", escape(&media));
        if self.doc.pointer(&schema_pointer).is_none() {
            problems.push(format!("{media} declares no schema"));
            return problems;
        }
        problems.extend(self.validate(&schema_pointer, &instance));
        problems
    }

    /// Validates `instance` against the schema at `pointer`: every error, then every object member no schema of
    /// that object declares (what `unevaluatedProperties: false` on every object would say).
    fn validate(&self, pointer: &str, instance: &Value) -> Vec<String> {
        let validator = match self.validator(pointer) {
            Ok(v) => v,
            Err(e) => return vec![e],
        };
        let evaluation = validator.evaluate(instance);
        let errors: Vec<String> = evaluation
            .iter_errors()
            .map(|e| {
                format!(
                    "at {:?}: {} (schema #{pointer}{})",
                    e.instance_location.as_str(),
                    e.error,
                    e.schema_location.strip_prefix("/allOf/0").unwrap_or(e.schema_location)
                )
            })
            .collect();
        if !errors.is_empty() {
            return errors;
        }
        // Members each object location's schemas declared, from the annotations of the branches that held.
        let mut declared: HashMap<String, BTreeSet<String>> = HashMap::new();
        for entry in evaluation.iter_annotations() {
            let keyword = entry.schema_location.rsplit('/').next().unwrap_or_default();
            if !matches!(keyword, "properties" | "patternProperties" | "additionalProperties") {
                continue;
            }
            let names = declared.entry(entry.instance_location.as_str().to_owned()).or_default();
            match entry.annotations.value() {
                Value::Array(items) => names.extend(items.iter().filter_map(Value::as_str).map(str::to_owned)),
                // additionalProperties: true evaluates every member.
                Value::Bool(true) => {
                    names.insert("*".to_owned());
                }
                _ => {}
            }
        }
        let mut undeclared = Vec::new();
        undeclared_members(instance, "", &declared, &mut undeclared);
        undeclared
            .into_iter()
            .map(|member| format!("at {member:?}: a member the schema (#{pointer}) does not declare"))
            .collect()
    }

    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self
            .validators
            .lock()
            .map_err(|_| "the validator cache is poisoned".to_owned())?;
        if let Some(validator) = cache.get(pointer) {
            return Ok(Arc::clone(validator));
        }
        let schema = self
            .doc
            .pointer(pointer)
            .ok_or_else(|| format!("openapi.yaml has no schema at #{pointer}"))?;
        // The schema's `#/components/...` references resolve against this root, which carries the spec's
        // components under the same name.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("openapi.yaml: the schema at #{pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }
}

/// Collects `location/member` for every member of an object whose schemas declared members but not this one.
fn undeclared_members(
    value: &Value,
    location: &str,
    declared: &HashMap<String, BTreeSet<String>>,
    out: &mut Vec<String>,
) {
    match value {
        Value::Object(members) => {
            let names = declared.get(location);
            for (name, member) in members {
                let here = format!("{location}/{}", escape(name));
                if names.is_some_and(|n| !n.contains(name) && !n.contains("*")) {
                    out.push(here.clone());
                }
                undeclared_members(member, &here, declared, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                undeclared_members(item, &format!("{location}/{i}"), declared, out);
            }
        }
        _ => {}
    }
}

/// A JSON Pointer reference token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// What one [`crate::TestApp`]'s server answered, as checked: a count and the drifts.
#[derive(Clone, Default)]
pub struct Log {
    inner: Arc<Mutex<(usize, Vec<String>)>>,
}

impl Log {
    /// Checks one answer and keeps the verdict. With `KEYGATE_CONTRACT_TALLY` set, also appends a line per answer
    /// to that file (`ok<TAB>POST /v1/auth/login 200`, or `drift<TAB>...`), for counting across the suite.
    pub fn observe(&self, exchange: &keygate_local::Exchange<'_>) {
        let verdict = match contract() {
            Ok(contract) => contract.check(
                exchange.method,
                exchange.path,
                exchange.status,
                exchange.headers,
                exchange.body,
            ),
            Err(e) => Err(e.clone()),
        };
        if let Some(path) = std::env::var_os("KEYGATE_CONTRACT_TALLY") {
            let line = match &verdict {
                Ok(what) => format!("ok\t{what}\n"),
                Err(drift) => format!("drift\t{}\n", drift.replace('\n', " | ")),
            };
            // One short append per line: concurrent tests' lines do not interleave.
            if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = file.write_all(line.as_bytes());
            }
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        if let Err(drift) = verdict {
            inner.1.push(drift);
        }
    }

    /// How many answers were checked.
    pub fn checked(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// The drifts found so far, which are then forgotten.
    pub fn take_drifts(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()).1)
    }
}
