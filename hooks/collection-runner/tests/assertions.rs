//! Data-driven tests of the assertion library (`sandbox/chai.js`) and the
//! response assertions, run in the real sandbox: each row is a `pm.expect`
//! expression and whether it must pass; a failing row must also say why.

use collection_runner::sandbox::{
    Header, Limits, Sandbox, Scopes, ScriptInfo, ScriptInput, ScriptRequest, ScriptResponse,
};

const ROWS: &[(&str, bool)] = &[
    ("pm.expect(1).to.equal(1)", true),
    ("pm.expect(1).to.equal('1')", false),
    ("pm.expect({a: [1, {b: 2}]}).to.eql({a: [1, {b: 2}]})", true),
    ("pm.expect({a: 1, b: 2}).to.eql({b: 2, a: 1})", true),
    ("pm.expect([1, 2]).to.eql([2, 1])", false),
    ("pm.expect(NaN).to.eql(NaN)", true),
    ("pm.expect(0).to.equal(-0)", true),
    ("pm.expect('abc').to.be.a('string')", true),
    ("pm.expect(null).to.be.an('object')", false),
    ("pm.expect([]).to.be.an('array').that.is.empty", true),
    ("pm.expect({}).to.not.be.empty", false),
    ("pm.expect('').to.be.empty", true),
    ("pm.expect([1, 2, 3]).to.include(2)", true),
    ("pm.expect([{a: 1}]).to.include({a: 1})", false),
    ("pm.expect([{a: 1}]).to.deep.include({a: 1})", true),
    ("pm.expect({a: 1, b: 2}).to.include({b: 2})", true),
    ("pm.expect('team').to.not.include('i')", true),
    ("pm.expect(5).to.be.above(4).and.below(6)", true),
    ("pm.expect(5).to.be.within(6, 9)", false),
    ("pm.expect([1, 2, 3]).to.have.lengthOf(3)", true),
    ("pm.expect('abc').to.have.length.of.at.least(4)", false),
    ("pm.expect({a: {b: 1}}).to.have.nested.property('a.b', 1)", true),
    ("pm.expect({a: {b: 1}}).to.have.property('a.b')", false),
    ("pm.expect({a: 1}).to.have.property('a').that.equals(1)", true),
    ("pm.expect({a: 1, b: 2}).to.have.all.keys('a', 'b')", true),
    ("pm.expect({a: 1, b: 2}).to.have.all.keys('a')", false),
    ("pm.expect({a: 1, b: 2}).to.contain.keys('a')", true),
    ("pm.expect([3, 1, 2]).to.have.members([1, 2, 3])", true),
    ("pm.expect([3, 1, 2]).to.have.ordered.members([1, 2, 3])", false),
    ("pm.expect([1, 2, 3]).to.include.members([3])", true),
    ("pm.expect('x').to.be.oneOf(['x', 'y'])", true),
    (
        "pm.expect(function () { throw new RangeError('no'); }).to.throw(RangeError, 'no')",
        true,
    ),
    (
        "pm.expect(function () { throw new RangeError('no'); }).to.throw(TypeError)",
        false,
    ),
    ("pm.expect(0.1 + 0.2).to.be.closeTo(0.3, 1e-9)", true),
    ("pm.expect('2026-11-27').to.match(/^\\d{4}-\\d{2}-\\d{2}$/)", true),
    ("pm.expect(undefined).to.exist", false),
    ("pm.expect(true).to.be.true", true),
    ("pm.expect(1).to.be.true", false),
    ("pm.expect(0).to.not.be.ok", true),
    ("pm.expect(7).to.satisfy(function (n) { return n > 5; })", true),
    ("pm.expect([]).to.be.instanceOf(Array)", true),
    ("pm.expect.fail('always')", false),
    ("pm.response.to.have.status(201)", true),
    ("pm.response.to.have.status('Created')", true),
    ("pm.response.to.be.success", true),
    ("pm.response.to.be.ok", false),
    ("pm.response.to.have.header('Location')", true),
    ("pm.response.to.have.header('location', '/accounts/7')", true),
    ("pm.response.to.have.header('x-missing')", false),
    ("pm.response.to.be.json", true),
    ("pm.response.to.have.jsonBody('balance_minor', 0)", true),
    ("pm.response.to.have.jsonBody('balance_minor', 1)", false),
    ("pm.response.to.have.body(/balance/)", true),
    ("pm.response.to.not.be.error", true),
    (
        "pm.expect(pm.response.json()).to.have.property('currency', 'EUR')",
        true,
    ),
    (
        "pm.expect(pm.response.headers.get('LOCATION')).to.eql('/accounts/7')",
        true,
    ),
    ("pm.expect(pm.response.responseTime).to.be.below(100)", true),
];

fn input(code: &str) -> ScriptInput {
    ScriptInput {
        code: code.to_owned(),
        scopes: Scopes::default(),
        environment_name: None,
        request: ScriptRequest {
            method: String::from("POST"),
            url: String::from("http://127.0.0.1/accounts"),
            ..ScriptRequest::default()
        },
        response: Some(ScriptResponse {
            code: 201,
            status: String::from("Created"),
            headers: vec![
                Header {
                    key: String::from("Location"),
                    value: String::from("/accounts/7"),
                },
                Header {
                    key: String::from("Content-Type"),
                    value: String::from("application/json"),
                },
            ],
            body: r#"{"id": "7", "balance_minor": 0, "currency": "EUR"}"#.as_bytes().to_vec(),
            response_time: 12,
            response_size: 48,
        }),
        cookies: Vec::new(),
        info: ScriptInfo {
            event_name: String::from("test"),
            iteration: 0,
            iteration_count: 1,
            request_name: String::from("open"),
            request_id: String::from("open"),
        },
    }
}

#[test]
fn assertion_table() {
    let sandbox = Sandbox::new(Limits::default()).unwrap();
    let mut wrong = Vec::new();
    for (expression, should_pass) in ROWS {
        let code = format!("pm.test('row', function () {{ {expression}; }});");
        let input = input(&code);
        sandbox.start(&input).unwrap();
        let out = sandbox.finish(&input, None);
        assert!(out.error.is_none(), "{expression}: script error {:?}", out.error);
        let test = &out.tests[0];
        if test.passed != *should_pass {
            wrong.push(format!(
                "{expression}: expected {}, got {:?}",
                if *should_pass { "pass" } else { "fail" },
                test.error
            ));
        }
        if !test.passed {
            let message = test.error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
            assert!(!message.is_empty(), "{expression}: a failure must say why");
        }
    }
    assert!(wrong.is_empty(), "{} rows wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn failure_messages_read_like_chai() {
    let sandbox = Sandbox::new(Limits::default()).unwrap();
    for (expression, message) in [
        ("pm.expect(1).to.equal(2)", "expected 1 to equal 2"),
        ("pm.expect('a').to.be.a('number')", "expected 'a' to be a number"),
        ("pm.expect([1]).to.include(2)", "expected [ 1 ] to include 2"),
        (
            "pm.expect({a: 1}).to.eql({a: 2})",
            "expected { a: 1 } to deeply equal { a: 2 }",
        ),
        (
            "pm.response.to.have.status(200)",
            "expected response to have status code 200 but got 201",
        ),
    ] {
        let input = input(&format!("pm.test('row', function () {{ {expression}; }});"));
        sandbox.start(&input).unwrap();
        let out = sandbox.finish(&input, None);
        assert_eq!(
            out.tests[0].error.as_ref().map(|e| e.message.as_str()),
            Some(message),
            "{expression}"
        );
    }
}

#[test]
fn a_runaway_script_is_stopped_and_the_engine_stays_usable() {
    let limits = Limits {
        timeout: std::time::Duration::from_millis(100),
        ..Limits::default()
    };
    let sandbox = Sandbox::new(limits).unwrap();
    let looping = input("pm.test('before', function () {}); while (true) {}");
    let failure = sandbox.start(&looping).err();
    let out = sandbox.finish(&looping, failure);
    assert_eq!(out.error.as_ref().map(|e| e.name.as_str()), Some("TimeoutError"));
    assert_eq!(out.tests.len(), 1, "tests before the loop are kept");
    let next = input("pm.test('after', function () { pm.expect(1).to.eql(1); });");
    sandbox.start(&next).unwrap();
    assert!(sandbox.finish(&next, None).tests[0].passed);
}

#[test]
fn memory_is_bounded() {
    let limits = Limits {
        memory_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let sandbox = Sandbox::new(limits).unwrap();
    let hog = input("var a = []; while (true) { a.push(new Array(100000).fill('x')); }");
    let failure = sandbox.start(&hog).err();
    let out = sandbox.finish(&hog, failure);
    assert!(out.error.is_some(), "an allocation past the limit is an error");
}
