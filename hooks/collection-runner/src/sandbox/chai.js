// A chai-compatible BDD assertion library (`expect` style), plus the
// response assertions Postman adds (`pm.response.to.have.status(200)`).
// Evaluated once per sandbox; defines `__chai` on the global object.
(function (global) {
  "use strict";

  function typeOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (value instanceof RegExp) return "regexp";
    if (value instanceof Date) return "date";
    if (value instanceof Error) return "error";
    if (value instanceof Map) return "map";
    if (value instanceof Set) return "set";
    if (typeof value === "object" && value && value.__postmanResponse) return "object";
    return typeof value;
  }

  // chai's `inspect`: strings in single quotes, arrays as [ 1, 2 ], objects as { a: 1 }.
  function inspect(value, depth) {
    depth = depth || 0;
    const type = typeOf(value);
    switch (type) {
      case "string":
        return "'" + value + "'";
      case "number":
        if (value === 0 && 1 / value < 0) return "-0";
        return String(value);
      case "undefined":
      case "boolean":
      case "null":
        return String(value);
      case "regexp":
        return String(value);
      case "function":
        return "[Function" + (value.name ? ": " + value.name : "") + "]";
      case "error":
        return "[" + value.name + ": " + value.message + "]";
      case "array":
        if (depth > 2) return "[Array]";
        if (value.length === 0) return "[]";
        return "[ " + value.map((v) => inspect(v, depth + 1)).join(", ") + " ]";
      case "date":
        return value.toISOString();
      default: {
        if (depth > 2) return "[Object]";
        const keys = Object.keys(value);
        if (keys.length === 0) return "{}";
        return "{ " + keys.map((k) => k + ": " + inspect(value[k], depth + 1)).join(", ") + " }";
      }
    }
  }

  function deepEqual(a, b) {
    if (a === b) return a !== 0 || 1 / a === 1 / b;
    if (typeof a === "number" && typeof b === "number") return a !== a && b !== b;
    const ta = typeOf(a);
    if (ta !== typeOf(b)) return false;
    if (ta === "date") return a.getTime() === b.getTime();
    if (ta === "regexp") return String(a) === String(b);
    if (ta === "array") {
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
      return true;
    }
    if (ta === "object" || ta === "error") {
      const ka = Object.keys(a).sort();
      const kb = Object.keys(b).sort();
      if (ka.length !== kb.length) return false;
      for (let i = 0; i < ka.length; i++) {
        if (ka[i] !== kb[i] || !deepEqual(a[ka[i]], b[kb[i]])) return false;
      }
      return true;
    }
    return false;
  }

  class AssertionError extends Error {
    constructor(message, expected, actual) {
      super(message);
      this.name = "AssertionError";
      this.expected = expected;
      this.actual = actual;
    }
  }

  function Assertion(obj, message) {
    this._obj = obj;
    this._flags = { message: message };
  }

  Assertion.prototype.assert = function (ok, message, negatedMessage, expected, actual) {
    const negate = !!this._flags.negate;
    if (negate ? !ok : ok) return;
    let text = negate ? negatedMessage : message;
    const shown = arguments.length > 4 ? actual : this._obj;
    text = text
      .replace(/#\{this\}/g, () => inspect(this._obj))
      .replace(/#\{act\}/g, () => inspect(shown))
      .replace(/#\{exp\}/g, () => inspect(expected));
    if (this._flags.message) text = this._flags.message + ": " + text;
    throw new AssertionError(text, expected, shown);
  };

  function addProperty(name, getter) {
    Object.defineProperty(Assertion.prototype, name, {
      configurable: true,
      get: function () {
        const result = getter.call(this);
        return result === undefined ? this : result;
      },
    });
  }

  function addMethod(name, fn) {
    Assertion.prototype[name] = function () {
      const result = fn.apply(this, arguments);
      return result === undefined ? this : result;
    };
  }

  // A property that is also callable: `.include(x)` and `.include.members(…)`.
  function addChainableMethod(name, method, chaining) {
    Object.defineProperty(Assertion.prototype, name, {
      configurable: true,
      get: function () {
        const assertion = this;
        if (chaining) chaining.call(assertion);
        const callable = function () {
          const result = method.apply(assertion, arguments);
          return result === undefined ? assertion : result;
        };
        Object.setPrototypeOf(callable, assertion);
        return callable;
      },
    });
  }

  [
    "to", "be", "been", "is", "that", "which", "and", "has", "have", "with",
    "at", "of", "same", "but", "does", "still", "also",
  ].forEach((chain) => addProperty(chain, function () { return this; }));

  addProperty("not", function () { this._flags.negate = true; });
  addProperty("deep", function () { this._flags.deep = true; });
  addProperty("nested", function () { this._flags.nested = true; });
  addProperty("own", function () { this._flags.own = true; });
  addProperty("ordered", function () { this._flags.ordered = true; });
  addProperty("any", function () { this._flags.any = true; this._flags.all = false; });
  addProperty("all", function () { this._flags.all = true; this._flags.any = false; });

  function article(type) {
    return /^[aeiou]/i.test(type) ? "an " : "a ";
  }

  function assertType(type) {
    type = String(type).toLowerCase();
    const actual = typeOf(this._obj);
    this.assert(
      actual === type,
      "expected #{this} to be " + article(type) + type,
      "expected #{this} not to be " + article(type) + type,
    );
  }
  addChainableMethod("a", assertType);
  addChainableMethod("an", assertType);

  function includes(haystack, needle, deep) {
    const type = typeOf(haystack);
    if (type === "string") return haystack.indexOf(needle) !== -1;
    if (type === "array") return haystack.some((item) => (deep ? deepEqual(item, needle) : item === needle));
    if (type === "map") return Array.from(haystack.values()).some((v) => (deep ? deepEqual(v, needle) : v === needle));
    if (type === "set") return Array.from(haystack).some((v) => (deep ? deepEqual(v, needle) : v === needle));
    if (type === "object" && typeOf(needle) === "object") {
      return Object.keys(needle).every((k) =>
        deep ? deepEqual(haystack[k], needle[k]) : haystack[k] === needle[k]);
    }
    throw new AssertionError("object tested must be an array, a map, an object, a set, a string, or a weakset, but " +
      typeOf(haystack) + " given");
  }

  function include(value) {
    this.assert(
      includes(this._obj, value, this._flags.deep),
      "expected #{this} to " + (this._flags.deep ? "deep " : "") + "include #{exp}",
      "expected #{this} to not " + (this._flags.deep ? "deep " : "") + "include #{exp}",
      value,
    );
  }
  function includeFlag() { this._flags.contains = true; }
  ["include", "includes", "contain", "contains"].forEach((n) => addChainableMethod(n, include, includeFlag));

  addProperty("ok", function () {
    this.assert(!!this._obj, "expected #{this} to be truthy", "expected #{this} to be falsy");
  });
  addProperty("true", function () {
    this.assert(this._obj === true, "expected #{this} to be true", "expected #{this} to be false");
  });
  addProperty("false", function () {
    this.assert(this._obj === false, "expected #{this} to be false", "expected #{this} to be true");
  });
  addProperty("null", function () {
    this.assert(this._obj === null, "expected #{this} to be null", "expected #{this} not to be null");
  });
  addProperty("undefined", function () {
    this.assert(this._obj === undefined, "expected #{this} to be undefined", "expected #{this} not to be undefined");
  });
  addProperty("NaN", function () {
    this.assert(typeof this._obj === "number" && this._obj !== this._obj, "expected #{this} to be NaN",
      "expected #{this} not to be NaN");
  });
  addProperty("finite", function () {
    this.assert(typeof this._obj === "number" && isFinite(this._obj), "expected #{this} to be a finite number",
      "expected #{this} to not be a finite number");
  });
  addProperty("exist", function () {
    this.assert(this._obj !== null && this._obj !== undefined, "expected #{this} to exist",
      "expected #{this} to not exist");
  });
  addProperty("empty", function () {
    const obj = this._obj;
    const type = typeOf(obj);
    let size;
    if (type === "string" || type === "array") size = obj.length;
    else if (type === "map" || type === "set") size = obj.size;
    else if (type === "object") size = Object.keys(obj).length;
    else throw new AssertionError(".empty was passed non-string primitive " + inspect(obj));
    this.assert(size === 0, "expected #{this} to be empty", "expected #{this} not to be empty");
  });

  function equal(value) {
    if (this._flags.deep) return eql.call(this, value);
    this.assert(this._obj === value, "expected #{this} to equal #{exp}", "expected #{this} to not equal #{exp}", value);
  }
  ["equal", "equals", "eq"].forEach((n) => addMethod(n, equal));

  function eql(value) {
    this.assert(deepEqual(this._obj, value), "expected #{this} to deeply equal #{exp}",
      "expected #{this} to not deeply equal #{exp}", value);
  }
  ["eql", "eqls"].forEach((n) => addMethod(n, eql));

  function sizeOrValue(assertion) {
    if (assertion._flags.doLength) {
      const obj = assertion._obj;
      return obj instanceof Map || obj instanceof Set ? obj.size : obj.length;
    }
    return assertion._obj;
  }
  function compare(word, test) {
    return function (n) {
      const actual = sizeOrValue(this);
      const subject = this._flags.doLength ? "expected #{this} to have a length " : "expected #{this} to be ";
      const negSubject = this._flags.doLength ? "expected #{this} to not have a length " : "expected #{this} to be not ";
      this.assert(test(actual, n), subject + word + " #{exp}" + (this._flags.doLength ? " but got #{act}" : ""),
        negSubject + word + " #{exp}", n, actual);
    };
  }
  const above = compare("above", (a, n) => a > n);
  const least = compare("at least", (a, n) => a >= n);
  const below = compare("below", (a, n) => a < n);
  const most = compare("at most", (a, n) => a <= n);
  ["above", "gt", "greaterThan"].forEach((n) => addMethod(n, above));
  ["least", "gte", "greaterThanOrEqual"].forEach((n) => addMethod(n, least));
  ["below", "lt", "lessThan"].forEach((n) => addMethod(n, below));
  ["most", "lte", "lessThanOrEqual"].forEach((n) => addMethod(n, most));
  addMethod("within", function (start, finish) {
    const actual = sizeOrValue(this);
    this.assert(actual >= start && actual <= finish, "expected #{this} to be within " + start + ".." + finish,
      "expected #{this} to not be within " + start + ".." + finish, undefined, actual);
  });

  function instanceOf(ctor) {
    this.assert(this._obj instanceof ctor, "expected #{this} to be an instance of " + (ctor && ctor.name),
      "expected #{this} to not be an instance of " + (ctor && ctor.name));
  }
  ["instanceof", "instanceOf"].forEach((n) => addMethod(n, instanceOf));

  function pathParts(path) {
    return String(path).replace(/\[(\w+)\]/g, ".$1").split(".").filter((p) => p !== "");
  }
  function property(name, value) {
    const obj = this._obj;
    let has;
    let actual;
    if (this._flags.nested) {
      let cursor = obj;
      has = true;
      for (const part of pathParts(name)) {
        if (cursor === null || cursor === undefined || !(Object(cursor) instanceof Object) || !(part in Object(cursor))) {
          has = false;
          break;
        }
        cursor = cursor[part];
      }
      actual = has ? cursor : undefined;
    } else if (this._flags.own) {
      has = obj !== null && obj !== undefined && Object.prototype.hasOwnProperty.call(obj, name);
      actual = has ? obj[name] : undefined;
    } else {
      has = obj !== null && obj !== undefined && name in Object(obj);
      actual = has ? obj[name] : undefined;
    }
    const what = (this._flags.deep ? "deep " : "") + (this._flags.nested ? "nested " : "") +
      (this._flags.own ? "own " : "") + "property ";
    if (arguments.length > 1) {
      const matches = has && (this._flags.deep ? deepEqual(actual, value) : actual === value);
      this.assert(matches, "expected #{this} to have " + what + inspect(name) + " of #{exp}, but got #{act}",
        "expected #{this} to not have " + what + inspect(name) + " of #{act}", value, actual);
    } else {
      this.assert(has, "expected #{this} to have " + what + inspect(name),
        "expected #{this} to not have " + what + inspect(name));
    }
    return new Assertion(actual, this._flags.message);
  }
  Assertion.prototype.property = function () {
    const result = property.apply(this, arguments);
    if (this._flags.negate || arguments.length > 1) return this;
    return result;
  };
  function ownProperty(name, value) {
    this._flags.own = true;
    return arguments.length > 1 ? this.property(name, value) : this.property(name);
  }
  ["ownProperty", "haveOwnProperty"].forEach((n) => (Assertion.prototype[n] = ownProperty));

  function lengthOf(n) {
    const obj = this._obj;
    const actual = obj instanceof Map || obj instanceof Set ? obj.size : obj.length;
    this.assert(actual === n, "expected #{this} to have a length of #{exp} but got #{act}",
      "expected #{this} to not have a length of #{act}", n, actual);
  }
  addChainableMethod("length", lengthOf, function () { this._flags.doLength = true; });
  addChainableMethod("lengthOf", lengthOf, function () { this._flags.doLength = true; });

  function match(re) {
    this.assert(re.exec(this._obj) !== null, "expected #{this} to match " + re, "expected #{this} not to match " + re);
  }
  ["match", "matches"].forEach((n) => addMethod(n, match));
  addMethod("string", function (s) {
    this.assert(typeof this._obj === "string" && this._obj.indexOf(s) !== -1, "expected #{this} to contain #{exp}",
      "expected #{this} to not contain #{exp}", s);
  });

  function keys(first) {
    const obj = this._obj;
    let expected;
    if (Array.isArray(first)) expected = first.slice();
    else if (typeOf(first) === "object" && arguments.length === 1) expected = Object.keys(first);
    else expected = Array.prototype.slice.call(arguments);
    expected = expected.map(String);
    const actual = obj instanceof Map || obj instanceof Set ? Array.from(obj.keys()).map(String) : Object.keys(obj);
    let ok;
    if (this._flags.any) ok = expected.some((k) => actual.indexOf(k) !== -1);
    else {
      ok = expected.every((k) => actual.indexOf(k) !== -1);
      if (!this._flags.contains) ok = ok && actual.length === expected.length;
    }
    const word = this._flags.any ? "any of" : "all of";
    this.assert(ok, "expected #{this} to have " + word + " keys " + expected.map((k) => inspect(k)).join(", "),
      "expected #{this} to not have " + word + " keys " + expected.map((k) => inspect(k)).join(", "));
  }
  ["keys", "key"].forEach((n) => addMethod(n, keys));

  function throws(errorLike, message) {
    let thrown = null;
    let caught = false;
    try {
      this._obj();
    } catch (err) {
      caught = true;
      thrown = err;
    }
    let ok = caught;
    if (ok && typeof errorLike === "function") ok = thrown instanceof errorLike;
    if (ok && (typeof errorLike === "string" || errorLike instanceof RegExp)) message = errorLike;
    if (ok && typeof message === "string") ok = String(thrown && thrown.message).indexOf(message) !== -1;
    if (ok && message instanceof RegExp) ok = message.test(String(thrown && thrown.message));
    this.assert(ok, "expected [Function] to throw an error", "expected [Function] to not throw an error but #{act} was thrown",
      errorLike, thrown);
  }
  ["throw", "throws", "Throw"].forEach((n) => addMethod(n, throws));

  addMethod("respondTo", function (method) {
    const obj = this._obj;
    const target = typeof obj === "function" ? obj.prototype : obj;
    this.assert(typeof (target && target[method]) === "function", "expected #{this} to respond to " + inspect(method),
      "expected #{this} to not respond to " + inspect(method));
  });
  function satisfy(predicate) {
    this.assert(!!predicate(this._obj), "expected #{this} to satisfy " + inspect(predicate),
      "expected #{this} to not satisfy " + inspect(predicate));
  }
  ["satisfy", "satisfies"].forEach((n) => addMethod(n, satisfy));
  function closeTo(expected, delta) {
    this.assert(Math.abs(this._obj - expected) <= delta, "expected #{this} to be close to " + expected + " +/- " + delta,
      "expected #{this} not to be close to " + expected + " +/- " + delta);
  }
  ["closeTo", "approximately"].forEach((n) => addMethod(n, closeTo));
  addMethod("members", function (set) {
    const obj = this._obj;
    const same = (a, b) => (this._flags.deep ? deepEqual(a, b) : a === b);
    const contained = (subset, superset) => subset.every((x) => superset.some((y) => same(x, y)));
    let ok;
    if (this._flags.ordered) {
      ok = this._flags.contains
        ? set.every((x, i) => same(x, obj[i]))
        : obj.length === set.length && set.every((x, i) => same(x, obj[i]));
    } else if (this._flags.contains) ok = contained(set, obj);
    else ok = obj.length === set.length && contained(set, obj) && contained(obj, set);
    const word = this._flags.contains ? "a superset of" : "have the same members as";
    this.assert(ok, "expected #{this} to be " + word + " #{exp}", "expected #{this} to not be " + word + " #{exp}", set);
  });
  addMethod("oneOf", function (list) {
    const same = (a, b) => (this._flags.deep ? deepEqual(a, b) : a === b);
    this.assert(list.some((x) => same(x, this._obj)), "expected #{this} to be one of #{exp}",
      "expected #{this} to not be one of #{exp}", list);
  });

  // ----- Postman's response assertions, on `pm.response.to` and `expect(pm.response)`.
  function isResponse(obj) {
    return !!(obj && obj.__postmanResponse);
  }
  function responseProperty(name, check, describe) {
    const previous = Object.getOwnPropertyDescriptor(Assertion.prototype, name);
    addProperty(name, function () {
      if (!isResponse(this._obj)) {
        if (previous) return previous.get.call(this);
        return undefined;
      }
      const code = this._obj.code;
      this.assert(check(code), "expected response code to be " + describe + " but found " + code,
        "expected response code to not be " + describe + " but found " + code, describe, code);
    });
  }
  responseProperty("info", (c) => c >= 100 && c < 200, "1XX");
  responseProperty("success", (c) => c >= 200 && c < 300, "2XX");
  responseProperty("redirection", (c) => c >= 300 && c < 400, "3XX");
  responseProperty("clientError", (c) => c >= 400 && c < 500, "4XX");
  responseProperty("serverError", (c) => c >= 500 && c < 600, "5XX");
  responseProperty("error", (c) => c >= 400 && c < 600, "4XX or 5XX");
  responseProperty("ok", (c) => c === 200, "200");
  responseProperty("accepted", (c) => c === 202, "202");
  responseProperty("badRequest", (c) => c === 400, "400");
  responseProperty("unauthorized", (c) => c === 401, "401");
  responseProperty("forbidden", (c) => c === 403, "403");
  responseProperty("notFound", (c) => c === 404, "404");
  responseProperty("rateLimited", (c) => c === 429, "429");

  addMethod("status", function (expected) {
    const response = this._obj;
    if (typeof expected === "string") {
      this.assert(response.status === expected, "expected response to have status reason #{exp} but got #{act}",
        "expected response to not have status reason #{exp}", expected, response.status);
    } else {
      this.assert(response.code === expected, "expected response to have status code #{exp} but got #{act}",
        "expected response to not have status code #{exp}", expected, response.code);
    }
  });
  const plainHeader = Assertion.prototype.header;
  addMethod("header", function (name, value) {
    if (!isResponse(this._obj) && plainHeader) return plainHeader.apply(this, arguments);
    const headers = this._obj.headers;
    const has = headers.has(name);
    if (arguments.length < 2) {
      this.assert(has, "expected response to have header with key '" + name + "'",
        "expected response to not have header with key '" + name + "'", true, has);
      return;
    }
    const actual = headers.get(name);
    this.assert(has && actual === value, "expected '" + name + "' response header to be #{exp} but got #{act}",
      "expected '" + name + "' response header to not be #{exp}", value, actual);
  });
  addProperty("withBody", function () {
    const body = this._obj.text();
    this.assert(body.length > 0, "expected response to have content in body", "expected response to not have content in body");
  });
  addProperty("json", function () {
    let parsed = true;
    try {
      this._obj.json();
    } catch (e) {
      parsed = false;
    }
    this.assert(parsed, "expected response body to be a valid json but got error", "expected response body not to be a valid json");
  });
  addMethod("body", function (expected) {
    const text = this._obj.text();
    if (arguments.length === 0) {
      this.assert(text.length > 0, "expected response to have content in body",
        "expected response to not have content in body");
    } else if (expected instanceof RegExp) {
      this.assert(expected.test(text), "expected response body text to match #{exp} but got #{act}",
        "expected response body text #{act} to not match #{exp}", expected, text);
    } else if (typeof expected === "string") {
      this.assert(text === expected, "expected response body to equal #{exp} but got #{act}",
        "expected response body to not equal #{exp}", expected, text);
    } else {
      let json;
      try {
        json = this._obj.json();
      } catch (e) {
        json = undefined;
      }
      this.assert(deepEqual(json, expected), "expected response body json to equal #{exp} but got #{act}",
        "expected response body json to not equal #{exp}", expected, json);
    }
  });
  addMethod("jsonBody", function (path, value) {
    let json;
    let parsed = true;
    try {
      json = this._obj.json();
    } catch (e) {
      parsed = false;
    }
    if (arguments.length === 0) {
      this.assert(parsed, "expected response body to be a valid json but got error",
        "expected response body not to be a valid json");
      return;
    }
    if (typeof path !== "string") {
      this.assert(parsed && deepEqual(json, path), "expected response body json to equal #{exp} but got #{act}",
        "expected response body json to not equal #{exp}", path, json);
      return;
    }
    let cursor = json;
    let has = parsed;
    for (const part of pathParts(path)) {
      if (!has || cursor === null || typeof cursor !== "object" || !(part in cursor)) {
        has = false;
        break;
      }
      cursor = cursor[part];
    }
    if (arguments.length === 1) {
      this.assert(has, "expected #{act} in response to contain property '" + path + "'",
        "expected #{act} in response to not contain property '" + path + "'", path, json);
    } else {
      this.assert(has && deepEqual(cursor, value), "expected '" + path + "' in response to contain #{exp} but got #{act}",
        "expected '" + path + "' in response to not contain #{exp}", value, cursor);
    }
  });

  function expect(value, message) {
    return new Assertion(value, message);
  }
  expect.fail = function (message) {
    throw new AssertionError(message || "expect.fail()");
  };

  global.__chai = { expect, Assertion, AssertionError, deepEqual, inspect, typeOf };
})(globalThis);
