//! Grant, Cedar and regorus (RVM and interpreter) decide the same requests the
//! same way on the generated policies, so the benches compare like with like.

use grant_benches::{Patterns, UNMATCHED_TOOL, tool_of_rule};
use grant_compare::{CedarSide, GrantSide, InterpreterSide, RvmSide, flat_json, grant_json};

fn check(rules: usize, patterns: Patterns) {
    let mut grant = GrantSide::new(rules, patterns).unwrap();
    let mut cedar = CedarSide::new(rules, patterns).unwrap();
    let mut rvm = RvmSide::new(rules, patterns).unwrap();
    let mut interpreter = InterpreterSide::new(rules, patterns).unwrap();
    let tools = [
        tool_of_rule(patterns, 0),
        tool_of_rule(patterns, rules / 2),
        tool_of_rule(patterns, rules - 1),
        UNMATCHED_TOOL.to_string(),
    ];
    for tool in &tools {
        for sensitivity in 0..4 {
            for depth in 0..5 {
                grant.set(tool, sensitivity, depth);
                cedar.set(tool, sensitivity, depth).unwrap();
                rvm.set(tool, sensitivity, depth);
                interpreter.set(tool, sensitivity, depth);
                let expected = grant.decide();
                let what = format!("{patterns:?} {rules} rules, {tool} {sensitivity} {depth}");
                assert_eq!(cedar.decide(), expected, "cedar, {what}");
                assert_eq!(rvm.decide(), expected, "rvm, {what}");
                assert_eq!(interpreter.decide(), expected, "interpreter, {what}");
                assert_eq!(
                    grant.decide_json(&grant_json(tool, sensitivity, depth)),
                    expected,
                    "grant json, {what}"
                );
                let flat = flat_json(tool, sensitivity, depth);
                assert_eq!(cedar.decide_json(&flat), expected, "cedar json, {what}");
                assert_eq!(rvm.decide_json(&flat), expected, "rvm json, {what}");
            }
        }
    }
    // The benches' request is allowed, except for the unmatched tool.
    for tool in &tools {
        grant.set(tool, 1, 1);
        assert_eq!(grant.decide(), tool != UNMATCHED_TOOL, "{tool}");
    }
}

#[test]
fn engines_agree() {
    for patterns in [Patterns::Exact, Patterns::Glob] {
        for rules in [1, 2, 7, 100, 2_500] {
            check(rules, patterns);
        }
    }
}
