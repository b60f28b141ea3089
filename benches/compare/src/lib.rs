//! Grant, Cedar and regorus set up on the same generated policy
//! ([`grant_benches::simple_policy`] and its translations), each able to
//! decide one request from a typed form or from JSON. The benches time these;
//! the tests check that the three agree.
//!
//! The request: a tool, `sensitivity` (`internal`, ordinal 1 for Cedar and
//! Rego) and `agent.delegation_depth` (Cedar and Rego: `delegation_depth`).

use std::str::FromStr;

use grant_benches::{Patterns, SENSITIVITY, cedar_policy, rego_policy, simple_policy};
use grant_engine::{Attr, Engine, Request, Value, Verdict};
use grant_syntax::SourceMap;

/// The request's values; with them every rule's condition is true.
pub const SENSITIVITY_ORDINAL: i64 = 1;
pub const DEPTH: i64 = 1;

/// The request in Grant's JSON request shape.
pub fn grant_json(tool: &str, sensitivity: i64, depth: i64) -> String {
    let name = SENSITIVITY
        .get(sensitivity as usize)
        .copied()
        .unwrap_or("public");
    format!(
        r#"{{"tool": "{tool}", "attrs": {{"sensitivity": "{name}", "agent": {{"delegation_depth": {depth}}}}}}}"#
    )
}

/// The request as Cedar context / Rego input JSON.
pub fn flat_json(tool: &str, sensitivity: i64, depth: i64) -> String {
    format!(r#"{{"tool": "{tool}", "sensitivity": {sensitivity}, "delegation_depth": {depth}}}"#)
}

/// Grant with a reused typed request and verdict.
#[derive(Debug)]
pub struct GrantSide {
    pub engine: Engine,
    request: Request,
    verdict: Verdict,
    sensitivity: Attr,
    depth: Attr,
}

impl GrantSide {
    pub fn new(rules: usize, patterns: Patterns) -> Result<GrantSide, String> {
        let mut sources = SourceMap::new();
        sources.add("policy.grant", simple_policy(rules, patterns));
        let engine = Engine::from_sources(sources).map_err(|e| e.to_string())?;
        let attr = |path: &str| engine.attr(path).ok_or(format!("`{path}` undeclared"));
        let (sensitivity, depth) = (attr("sensitivity")?, attr("agent.delegation_depth")?);
        let (request, verdict) = (engine.request(), engine.verdict());
        Ok(GrantSide {
            engine,
            request,
            verdict,
            sensitivity,
            depth,
        })
    }

    /// Fills the reused request (what an issuer does per call).
    pub fn set(&mut self, tool: &str, sensitivity: i64, depth: i64) {
        let name = SENSITIVITY
            .get(sensitivity as usize)
            .copied()
            .unwrap_or("public");
        self.request
            .clear()
            .set_tool(tool)
            .set(self.sensitivity, Value::Str(name))
            .set(self.depth, Value::Int(depth));
    }

    /// Decides the request last set, allocating nothing.
    pub fn decide(&mut self) -> bool {
        self.engine.decide_into(&self.request, &mut self.verdict);
        self.verdict.is_allow()
    }

    /// JSON in, a full `Decision` out.
    pub fn decide_json(&self, json: &str) -> bool {
        self.engine.decide_json(json).is_allow()
    }
}

/// Cedar: a policy set, no entities, a prebuilt request.
#[derive(Debug)]
pub struct CedarSide {
    policies: cedar_policy::PolicySet,
    authorizer: cedar_policy::Authorizer,
    entities: cedar_policy::Entities,
    request: Option<cedar_policy::Request>,
    principal: cedar_policy::EntityUid,
    action: cedar_policy::EntityUid,
    tool_type: cedar_policy::EntityTypeName,
}

impl CedarSide {
    pub fn new(rules: usize, patterns: Patterns) -> Result<CedarSide, String> {
        let policies = cedar_policy::PolicySet::from_str(&cedar_policy(rules, patterns))
            .map_err(|e| e.to_string())?;
        let uid = |s: &str| cedar_policy::EntityUid::from_str(s).map_err(|e| e.to_string());
        Ok(CedarSide {
            policies,
            authorizer: cedar_policy::Authorizer::new(),
            entities: cedar_policy::Entities::empty(),
            request: None,
            principal: uid(r#"Agent::"agent-1""#)?,
            action: uid(r#"Action::"call""#)?,
            tool_type: cedar_policy::EntityTypeName::from_str("Tool").map_err(|e| e.to_string())?,
        })
    }

    fn request(
        &self,
        tool: &str,
        context: cedar_policy::Context,
    ) -> Result<cedar_policy::Request, String> {
        let resource = cedar_policy::EntityUid::from_type_name_and_id(
            self.tool_type.clone(),
            cedar_policy::EntityId::new(tool),
        );
        cedar_policy::Request::new(
            self.principal.clone(),
            self.action.clone(),
            resource,
            context,
            None,
        )
        .map_err(|e| e.to_string())
    }

    /// Builds the request from typed values.
    pub fn set(&mut self, tool: &str, sensitivity: i64, depth: i64) -> Result<(), String> {
        use cedar_policy::RestrictedExpression as E;
        let context = cedar_policy::Context::from_pairs([
            ("tool".to_string(), E::new_string(tool.to_string())),
            ("sensitivity".to_string(), E::new_long(sensitivity)),
            ("delegation_depth".to_string(), E::new_long(depth)),
        ])
        .map_err(|e| e.to_string())?;
        self.request = Some(self.request(tool, context)?);
        Ok(())
    }

    /// Decides the request last set.
    pub fn decide(&self) -> bool {
        self.request.as_ref().is_some_and(|request| {
            self.authorizer
                .is_authorized(request, &self.policies, &self.entities)
                .decision()
                == cedar_policy::Decision::Allow
        })
    }

    /// JSON context (with the tool in it) in, a decision out.
    pub fn decide_json(&self, json: &str) -> bool {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
            return false;
        };
        let Some(tool) = value
            .get("tool")
            .and_then(|t| t.as_str())
            .map(str::to_string)
        else {
            return false;
        };
        let Ok(context) = cedar_policy::Context::from_json_value(value, None) else {
            return false;
        };
        let Ok(request) = self.request(&tool, context) else {
            return false;
        };
        self.authorizer
            .is_authorized(&request, &self.policies, &self.entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

const ENTRY_POINT: &str = "data.grant.allow";

fn rego_engine(rules: usize, patterns: Patterns) -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    for (i, module) in rego_policy(rules, patterns).into_iter().enumerate() {
        engine
            .add_policy(format!("policy{i}.rego"), module)
            .map_err(|e| e.to_string())?;
    }
    Ok(engine)
}

/// The Rego input document.
fn input(tool: &str, sensitivity: i64, depth: i64) -> regorus::Value {
    let mut input = regorus::Value::new_object();
    if let Ok(map) = input.as_object_mut() {
        map.insert("tool".into(), regorus::Value::from(tool));
        map.insert("sensitivity".into(), regorus::Value::from(sensitivity));
        map.insert("delegation_depth".into(), regorus::Value::from(depth));
    }
    input
}

/// regorus's RVM: the policy compiled to RVM bytecode, one VM reused.
pub struct RvmSide {
    vm: regorus::rvm::RegoVM,
    input: regorus::Value,
}

impl std::fmt::Debug for RvmSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RvmSide")
    }
}

impl RvmSide {
    pub fn new(rules: usize, patterns: Patterns) -> Result<RvmSide, String> {
        let mut engine = rego_engine(rules, patterns)?;
        let compiled = engine
            .compile_with_entrypoint(&regorus::Rc::from(ENTRY_POINT))
            .map_err(|e| e.to_string())?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
            &compiled,
            &[ENTRY_POINT],
        )
        .map_err(|e| e.to_string())?;
        let mut vm = regorus::rvm::RegoVM::new();
        vm.load_program(program);
        vm.set_data(regorus::Value::new_object())
            .map_err(|e| e.to_string())?;
        Ok(RvmSide {
            vm,
            input: regorus::Value::Undefined,
        })
    }

    /// Builds the input document from typed values.
    pub fn set(&mut self, tool: &str, sensitivity: i64, depth: i64) {
        self.input = input(tool, sensitivity, depth);
    }

    /// Decides the input last set (a reference-counted clone is handed in).
    pub fn decide(&mut self) -> bool {
        self.vm.set_input(self.input.clone());
        matches!(self.vm.execute(), Ok(regorus::Value::Bool(true)))
    }

    /// JSON input in, a decision out.
    pub fn decide_json(&mut self, json: &str) -> bool {
        let Ok(input) = regorus::Value::from_json_str(json) else {
            return false;
        };
        self.vm.set_input(input);
        matches!(self.vm.execute(), Ok(regorus::Value::Bool(true)))
    }
}

/// regorus's tree-walking interpreter, for reference.
pub struct InterpreterSide {
    engine: regorus::Engine,
    rule: regorus::Rc<str>,
}

impl std::fmt::Debug for InterpreterSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InterpreterSide")
    }
}

impl InterpreterSide {
    pub fn new(rules: usize, patterns: Patterns) -> Result<InterpreterSide, String> {
        let mut engine = rego_engine(rules, patterns)?;
        // Prepare the engine once, outside the timed decisions.
        engine
            .eval_rule(ENTRY_POINT.to_string())
            .map_err(|e| e.to_string())?;
        Ok(InterpreterSide {
            engine,
            rule: regorus::Rc::from(ENTRY_POINT),
        })
    }

    /// Builds the input document from typed values.
    pub fn set(&mut self, tool: &str, sensitivity: i64, depth: i64) {
        self.engine.set_input(input(tool, sensitivity, depth));
    }

    pub fn decide(&mut self) -> bool {
        matches!(
            self.engine.eval_rule(self.rule.to_string()),
            Ok(regorus::Value::Bool(true))
        )
    }
}
